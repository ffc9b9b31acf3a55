"""Shared test set-up: anyio's own pytest plugin (asyncio backend) and the server fixtures."""

from __future__ import annotations

import pytest

pytest_plugins = [
    "tests.plugins.servers",
    "tests.plugins.db",
    "tests.plugins.mail",
    "tests.plugins.smtp_tls",
    "tests.plugins.imap",
    "tests.plugins.browser",
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
