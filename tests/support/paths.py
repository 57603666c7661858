"""Where the checkout and the tests lie, wherever a test module sits in the tree."""

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
