"""Entry point of the ``feel`` console script.

Each subcommand lives in its own module that exposes ``register(subparsers)``; the
registered parser sets ``func(args) -> int``. Bad input raises :class:`cli.errors.UsageError`
(or a ``ValueError`` subclass from a library that names its field), which is printed as one
line on stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cli.errors import UsageError

# Modules of the subcommands, under ``cli``.
SUBCOMMANDS = (
    "schedule",
    "simulate",
    "deploy_local",
    "profile",
    "pretrain",
    "compare.command",
    "paper_scale.command",
    "report.command",
)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line with exit code 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the ``feel`` parser with every available subcommand."""
    parser = _Parser(prog="feel", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``feel``; return the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"feel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # stdout closed early, e.g. piped into head
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"feel {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
