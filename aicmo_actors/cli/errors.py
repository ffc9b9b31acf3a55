"""User mistakes get one line and a non-zero exit, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A mistake of the person at the keyboard: bad file, bad flag, missing setting.

    `run.py` prints ``error: <message>`` on one line and exits with ``exit_code``.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
