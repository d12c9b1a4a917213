"""The kit's error types. A `UserError` is a user's mistake (a bad option, value, file or shape):
the CLI prints its message in one line and exits with code 2. Anything else is the kit's own bug
and keeps its traceback. `UserError` subclasses `ValueError`, so `except ValueError` still works."""

from __future__ import annotations


class UserError(ValueError):
    """A user's mistake; the message names the argument, the value and what is allowed."""


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf (names epoch, step, lr and alpha)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by the CLI's signal handler so that a run stops as cleanly as on Ctrl-C (exit 143)."""


class Interrupted(KeyboardInterrupt):
    """An interrupted command; the message says what was kept and how to resume."""

    def __init__(self, message: str, terminated: bool):
        super().__init__(message)
        self.terminated = terminated
