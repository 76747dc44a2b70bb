"""Failures the CLI reports in one line on stderr, with an exit code and never a traceback."""

from __future__ import annotations


class CliError(Exception):
    """Something the user can act on: a message, an optional hint and an exit code."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


class ApiError(CliError):
    """The server refused a request; ``message`` is the problem document's ``detail``."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, exit_code=1)
        self.status = status
