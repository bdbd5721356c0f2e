"""The one error type for bad experiment input (no heavy imports: `innerlab list` loads it)."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad user input. `str(err)` is the one line shown to the user: it names the field and
    what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")
