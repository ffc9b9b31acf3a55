"""Small SQL helpers any module's repositories may use (modules import storage, never each other)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["chunks"]


def chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    """`items` in slices small enough for one IN (...) list on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
