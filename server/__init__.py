"""The ServerApp of the FEEL Flower app, its evaluation and its results files."""
