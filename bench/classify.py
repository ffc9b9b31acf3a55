"""Classifier benchmark: messages classified per second, pure CPU.

    python -m bench classify [--seconds S] [--isolated]

Classifies the test corpus (tests/unit/classify/corpus: bounces, complaints, auto-replies,
replies) over and over for S seconds. The baseline, measured in the same run, is the stdlib
parser alone (`email.message_from_bytes` with `policy.default`) on the same messages.
Last line of stdout: one JSON object with classify_per_s, parse_per_s and ratio
(classify / parse). With --isolated, also isolated_per_s and isolated_ratio (isolated /
classify): the same classification in a child process (`IsolatedWorker`, the way the
service runs it), the pipe and the JSON round trip included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.gateways.isolated import IsolatedWorker
from contracts.cam import Classification

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "unit" / "classify" / "corpus"


def corpus() -> list[bytes]:
    """The raw messages of the test corpus, in name order."""
    messages = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    if not messages:
        raise FileNotFoundError(f"no .eml files in {CORPUS}")
    return messages


def _per_second(work: Callable[[bytes], object], messages: list[bytes], seconds: float) -> float:
    for raw in messages:  # warm up: first-call costs are not what we measure
        work(raw)
    done = 0
    start = time.perf_counter()
    deadline = start + max(seconds, 0.001)
    while True:
        for raw in messages:
            work(raw)
        done += len(messages)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def classify_per_s(seconds: float = 1.0) -> float:
    """Messages per second `classify_message` gets through, the corpus repeated for `seconds`."""
    return _per_second(classify_message, corpus(), seconds)


def parse_per_s(seconds: float = 1.0) -> float:
    """The baseline: messages per second the stdlib parser alone gets through."""
    return _per_second(lambda raw: message_from_bytes(raw, policy=policy.default), corpus(), seconds)


async def _isolated_per_s(messages: list[bytes], seconds: float) -> float:
    async with IsolatedWorker(
        "aicmo_actors.cam.classify:classify_to_json", timeout_s=30, name="bench-classify"
    ) as worker:
        for raw in messages:  # warm up
            Classification.model_validate_json(await worker.call(raw))
        done = 0
        start = time.perf_counter()
        deadline = start + max(seconds, 0.001)
        while True:
            for raw in messages:
                Classification.model_validate_json(await worker.call(raw))
            done += len(messages)
            now = time.perf_counter()
            if now >= deadline:
                return done / (now - start)


def isolated_per_s(seconds: float = 1.0) -> float:
    """Messages per second classified in a child process, one call at a time."""
    return asyncio.run(_isolated_per_s(corpus(), seconds))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench classify", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per figure (default 2)")
    parser.add_argument("--isolated", action="store_true", help="also classify in a child process")
    args = parser.parse_args(argv)
    print(f"classifying {len(corpus())} messages for {args.seconds:g} s ...", file=sys.stderr)
    classify = classify_per_s(args.seconds)
    parse = parse_per_s(args.seconds)
    result = {"classify_per_s": round(classify, 1), "parse_per_s": round(parse, 1), "ratio": round(classify / parse, 3)}
    if args.isolated:
        isolated = isolated_per_s(args.seconds)
        result |= {"isolated_per_s": round(isolated, 1), "isolated_ratio": round(isolated / classify, 3)}
    for key, value in result.items():
        print(f"  {key:<16} {value:>12,.3f}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
