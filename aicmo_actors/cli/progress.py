"""A progress bar for long commands: drawn in place on a terminal, a few plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """`update(done, total)` as often as you like; it redraws at most ten times a second."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._last_pct = -1
        self._shown = False

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        pct = int(done * 100 / total) if total else 100
        if self.tty:
            if now - self._last < 0.1 and done < total:
                return
            width = 30
            filled = int(width * pct / 100)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {pct:3d}% {done}/{total}")
            self.stream.flush()
            self._shown = True
        elif pct // 25 > self._last_pct // 25 and total >= 1000:
            self.stream.write(f"{self.label}: {pct}% ({done}/{total})\n")
            self.stream.flush()
            self._last_pct = pct
        self._last = now

    def close(self) -> None:
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()
