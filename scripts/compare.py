"""Run ``feel compare`` with the given options: ``python scripts/compare.py --quick``.

The same code as the ``feel compare`` console command (:mod:`cli.compare.command`).
"""

import sys

from cli.main import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
