"""The engine: cut the input into chunks (`plan`), scan and fold each chunk (`scan`), run the
chunks (`run`: a local process pool; a cluster runner can sit beside it). `tlslog.stitch`
merges the results in order and `tlslog.analysis` drives the whole."""
