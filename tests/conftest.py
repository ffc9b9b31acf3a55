"""Shared test set-up: anyio's own pytest plugin (asyncio backend) and the server fixtures."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicmo_actors.storage import changes

# The tests start the service and the CLI as processes several hundred times. Where the environment
# forbids bytecode files (PYTHONDONTWRITEBYTECODE), each of those compiled every module again at
# start (about 0.25 s each); they keep their bytecode in a cache outside the repository instead.
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / f"aicmo-test-pycache-{os.getuid()}"))

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


@pytest.fixture(autouse=True, scope="session")
def _only_writer() -> Iterator[None]:
    """Each test process is its databases' only writer, as a simulation is: the modules keep
    their tick reads of state between writes (`storage.changes`). The service processes the
    tests start keep nothing, as in production."""
    with changes.as_sole_writer():
        yield
