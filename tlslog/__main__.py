from tlslog.cli import main

if __name__ == "__main__":  # not when a worker process (Dask, multiprocessing spawn) imports it
    main()
