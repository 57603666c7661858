"""The error a bad setting raises: one line naming the setting and the value."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad setting or input file.

    Parameters
    ----------
    field
        The run-config key, option or file path of the bad value (``model``,
        ``devices[2].cpu_hz``).
    message
        What is wrong, including the offending value.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str]]:
        """Pickle by field and message (a check run in a child process raises it)."""
        return type(self), (self.field, self.message)

    @classmethod
    def unknown_choice(cls, field: str, value: object, choices: tuple[str, ...]) -> ConfigError:
        """Build the error for a name-valued setting outside ``choices``."""
        names = ", ".join(choice or "'' (none)" for choice in choices)
        return cls(field, f"unknown {field} {value!r}; choose from {names}")
