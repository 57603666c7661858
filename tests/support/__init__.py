"""Helpers shared by the tests of every tier; ``tests`` is on ``sys.path`` (pytest's pythonpath)."""
