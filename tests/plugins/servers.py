"""How a test asks for a real server: skip locally when it is absent, fail under CI=true."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def server_missing(what: str, why: str) -> None:
    """Skip (developer machine) or fail (CI=true) because a real server is not there."""
    message = f"{what} is not available: {why}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: integration tests must run, not skip)", pytrace=False)
    pytest.skip(message)
