from tlslog.cli import main

main()
