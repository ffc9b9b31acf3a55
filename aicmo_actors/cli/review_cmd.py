"""`python run.py review ...`. PLACEHOLDER: written by the session building issue 19."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:
    """Nothing yet."""
