"""`python -m bench storage` runs end to end and reports its figures (not their size)."""

from __future__ import annotations

import json

import pytest

from bench import storage as bench_storage
from tests.plugins.db import pg_server_url

pytestmark = pytest.mark.integration


def test_bench_storage_reports_json(postgresql_database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    server = pg_server_url().render_as_string(hide_password=False)
    argv = ["--rows", "120", "--batch", "50", "--repeat", "1", "--pg-url", server]
    assert bench_storage.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("orm_per_s_sqlite", "orm_per_s_pg", "raw_pg_per_s", "ratio_pg"):
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["ratio_pg"] == pytest.approx(result["orm_per_s_pg"] / result["raw_pg_per_s"], rel=0.01)
