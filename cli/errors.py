"""The one error type a subcommand raises for bad user input."""

from __future__ import annotations


class UsageError(Exception):
    """Bad user input: reported as one line naming the field and the value, exit code 2.

    Parameters
    ----------
    field
        The option, key or JSON path that is wrong (``--rounds``, ``devices[3].cpu_hz``).
    message
        What is wrong with it, including the offending value.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
