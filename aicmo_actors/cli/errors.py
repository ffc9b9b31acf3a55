"""User mistakes get one line and a non-zero exit, never a traceback."""

from __future__ import annotations

#: What `python run.py` exit codes mean (printed in `--help`).
EXIT_CODES = (
    (0, "done"),
    (1, "a check found problems, nothing could be imported, an invariant broke, or the service failed"),
    (
        2,
        "a mistake in the command, a file or a setting, or a database that cannot be reached or written: "
        "one line on stderr says which",
    ),
    (3, "leads import: a partial import (some rows were rejected; the others are in)"),
    (130, "interrupted (Ctrl-C)"),
    (141, "the reader of the output went away (a closed pipe)"),
)


class UserError(Exception):
    """A mistake of the person at the keyboard: bad file, bad flag, missing setting.

    `run.py` prints ``error: <message>`` on one line and exits with ``exit_code`` (see
    `EXIT_CODES`; 2 unless the command documents another).
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
