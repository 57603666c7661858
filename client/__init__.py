"""The Flower ClientApp of a FEEL device (Message API)."""
