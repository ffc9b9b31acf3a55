"""Quality control's cost per draft: `python -m bench qc [--repeat N]`.

One ~1,500-word blog post checked against 18 earlier drafts of the same client (what
`qc.checker` does for a long piece late in a period), after the dictionaries are loaded.
Baseline in the same run: splitting the same text into words with `str.split` (a check cannot
be cheaper than reading its text once). Figures: `check_ms` (median), `ratio_to_split`, and
`target_check_ms` (50: above it the service runs the check off the event loop anyway, in a
worker thread, so the figure is about throughput, not latency). Progress on stderr; the last
line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

from aicmo_actors.qc.checks import Earlier
from tests.unit.qc.cases import CASES, EN_BLOG, EN_NEWSLETTER, item


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench qc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="checks measured (default 20)")
    args = parser.parse_args(argv)
    text = "\n\n".join([EN_BLOG.text] * 3 + [EN_NEWSLETTER.text])
    earlier = tuple(Earlier(c.name, c.title, c.text) for c in CASES) * 3
    print("loading the dictionaries ...", file=sys.stderr)
    EN_BLOG.check(text, earlier=earlier)
    check_ms = _median_ms(lambda: EN_BLOG.check(text, earlier=earlier, item=item("blog_post", "blog")), args.repeat)
    split_ms = _median_ms(lambda: [w.lower() for w in text.split()], max(args.repeat, 50))
    figures = {
        "words": len(text.split()),
        "earlier_drafts": len(earlier),
        "check_ms": round(check_ms, 2),
        "split_ms": round(split_ms, 4),
        "ratio_to_split": round(check_ms / split_ms, 1) if split_ms else None,
        "target_check_ms": 50,
    }
    print(json.dumps(figures))
    return 0
