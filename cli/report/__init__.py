"""``feel report``: one self-contained HTML page comparing finished runs."""
