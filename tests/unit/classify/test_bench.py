"""The classifier benchmark runs on the test corpus and reports a rate."""

from __future__ import annotations

from bench.classify import classify_per_s, corpus


def test_classify_per_s_reports_a_positive_rate_on_the_corpus() -> None:
    assert len(corpus()) >= 60
    assert classify_per_s(0.05) > 10
