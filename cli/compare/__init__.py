"""``feel compare``: every scheme over a grid of cells, Table II and Figs. 3-5 (Sec. VI).

:mod:`cli.compare.command` parses the options, :mod:`cli.compare.runner` runs the grid and
:mod:`cli.compare.report` writes its tables, plots and verdicts.
"""
