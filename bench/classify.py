"""Classifier benchmark: messages classified per second, warm and cold, and against Sisimai.

    python -m bench classify [--seconds S] [--isolated] [--copies N] [--cold-runs R]

Warm: classifies the test corpus (tests/unit/classify/corpus: bounces, complaints,
auto-replies, replies) over and over for S seconds. The baseline, measured in the same run,
is the stdlib parser alone (`email.message_from_bytes` with `policy.default`) on the same
messages: classify_per_s, parse_per_s and ratio (classify / parse). With --isolated, also
isolated_per_s and isolated_ratio (isolated / classify): the same classification in a child
process (`IsolatedWorker`, the way the service runs it), the pipe and the JSON round trip
included.

Cold, against Sisimai (the reference bounce parser, Perl): the corpus, each file written N
times under distinct names (--copies, default 5), goes into one temporary folder. One fresh
`perl bench/sisimai_verdicts.pl` process runs `Sisimai->make` over the folder, and one fresh
`python -c` process imports the classifier and classifies each file once: every message is
parsed once, no warm caches. Each is also run over an empty folder, which times its start-up
(perl with `use Sisimai`; Python with the classifier's import); net = raw - start-up. Each
figure is the median of R rounds (--cold-runs, default 5). Figures: sisimai_per_s and
ours_cold_per_s (net), sisimai_raw_per_s and ours_cold_raw_per_s (start-up included),
sisimai_startup_s and ours_import_s, and vs_sisimai = ours_cold_per_s / sisimai_per_s
(vs_sisimai_raw from the raw figures). Without Sisimai (`apt-get install libsisimai-perl`)
its figures are null and stderr says why.

The last line of stdout is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

from aicmo_actors.cam.classify import classify_message
from aicmo_actors.gateways.isolated import IsolatedWorker
from contracts.cam import Classification

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "unit" / "classify" / "corpus"
#: Our Perl script around `Sisimai->make`: verdicts per recipient, or with --count only their number.
SISIMAI_SCRIPT = Path(__file__).resolve().with_name("sisimai_verdicts.pl")
#: The child process of our cold run: import the classifier, classify each file of a folder once.
OURS_COLD = """
import sys
from pathlib import Path

from aicmo_actors.cam.classify import classify_message

done = 0
for path in sorted(Path(sys.argv[1]).iterdir()):
    classify_message(path.read_bytes())
    done += 1
print(done)
"""


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


def sisimai_version() -> str | None:
    """The installed Sisimai's version (e.g. "v4.25.15"), or None with perl or Sisimai missing."""
    perl = shutil.which("perl")
    if perl is None:
        return None
    done = subprocess.run(
        [perl, "-MSisimai", "-e", "print $Sisimai::VERSION"], capture_output=True, text=True, check=False
    )
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _wall(command: list[str]) -> float:
    """Seconds one child process takes from spawn to exit; it must succeed."""
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def cold(copies: int = 5, rounds: int = 5, *, with_sisimai: bool = True) -> dict[str, float | int | None]:
    """Cold figures: one fresh process each for Sisimai and for us over the same folder (module docstring)."""
    files = sorted(CORPUS.glob("*.eml"))
    perl = shutil.which("perl")
    sisimai = [perl, str(SISIMAI_SCRIPT), "--count"] if with_sisimai and perl else None
    timings: dict[str, list[float]] = {"sisimai_raw": [], "sisimai_startup": [], "ours_raw": [], "ours_import": []}
    with tempfile.TemporaryDirectory(prefix="bench-classify-") as tmp:
        folder, empty = Path(tmp) / "messages", Path(tmp) / "empty"
        folder.mkdir()
        empty.mkdir()
        for copy in range(copies):
            for path in files:
                (folder / f"{copy:03d}-{path.name}").write_bytes(path.read_bytes())
        ours = [sys.executable, "-c", OURS_COLD]
        for _ in range(max(rounds, 1)):  # interleaved, so that a noisy moment hits every figure alike
            if sisimai:
                timings["sisimai_startup"].append(_wall([*sisimai, str(empty)]))
                timings["sisimai_raw"].append(_wall([*sisimai, str(folder)]))
            timings["ours_import"].append(_wall([*ours, str(empty)]))
            timings["ours_raw"].append(_wall([*ours, str(folder)]))
    median = {k: statistics.median(v) if v else None for k, v in timings.items()}
    messages = len(files) * copies

    def per_s(seconds: float | None) -> float | None:
        return round(messages / seconds, 1) if seconds and seconds > 0 else None

    def net(raw: float | None, startup: float | None) -> float | None:
        return raw - startup if raw is not None and startup is not None else None

    result: dict[str, float | int | None] = {
        "cold_messages": messages,
        "ours_cold_per_s": per_s(net(median["ours_raw"], median["ours_import"])),
        "ours_cold_raw_per_s": per_s(median["ours_raw"]),
        "ours_import_s": round(median["ours_import"] or 0.0, 4),
        "sisimai_per_s": per_s(net(median["sisimai_raw"], median["sisimai_startup"])),
        "sisimai_raw_per_s": per_s(median["sisimai_raw"]),
        "sisimai_startup_s": round(median["sisimai_startup"], 4) if median["sisimai_startup"] is not None else None,
    }

    def ratio(ours_key: str, theirs_key: str) -> float | None:
        ours_rate, theirs_rate = result[ours_key], result[theirs_key]
        return round(ours_rate / theirs_rate, 3) if ours_rate and theirs_rate else None

    result["vs_sisimai"] = ratio("ours_cold_per_s", "sisimai_per_s")
    result["vs_sisimai_raw"] = ratio("ours_cold_raw_per_s", "sisimai_raw_per_s")
    return result


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:>12,.3f}"
    if isinstance(value, int):
        return f"{value:>12,}"
    return f"{value!s:>12}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench classify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per warm figure (default 2)")
    parser.add_argument("--isolated", action="store_true", help="also classify in a child process")
    parser.add_argument("--copies", type=int, default=5, help="copies of the corpus in the cold folder (default 5)")
    parser.add_argument("--cold-runs", type=int, default=5, help="rounds of the cold runs, median kept (default 5)")
    args = parser.parse_args(argv)
    if args.copies < 1 or args.cold_runs < 1:
        parser.error("--copies and --cold-runs must be at least 1")
    print(f"classifying {len(corpus())} messages for {args.seconds:g} s ...", file=sys.stderr)
    classify = classify_per_s(args.seconds)
    parse = parse_per_s(args.seconds)
    result: dict[str, object] = {
        "classify_per_s": round(classify, 1),
        "parse_per_s": round(parse, 1),
        "ratio": round(classify / parse, 3),
    }
    if args.isolated:
        isolated = isolated_per_s(args.seconds)
        result |= {"isolated_per_s": round(isolated, 1), "isolated_ratio": round(isolated / classify, 3)}
    version = sisimai_version()
    if version is None:
        print("Sisimai is not installed (apt-get install libsisimai-perl): vs_sisimai is null", file=sys.stderr)
    n = len(corpus()) * args.copies
    who = f"Sisimai {version} and us" if version else "us"
    print(f"cold: {who}, one process each over {n} messages, {args.cold_runs} rounds ...", file=sys.stderr)
    result |= {"sisimai_version": version, **cold(args.copies, args.cold_runs, with_sisimai=version is not None)}
    for key, value in result.items():
        print(f"  {key:<20} {_shown(value)}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
