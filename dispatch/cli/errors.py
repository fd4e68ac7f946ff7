"""The CLI's own error: a one-line reason and an exit code."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """Fatal for the command: print ``str(self)`` on one line and exit ``exit_code``."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
