"""Inbox benchmark: replies fetched from a real Dovecot, classified and stored, per second,
against classifying the same messages alone.

    python -m bench inbox [--messages N] [--db sqlite|postgresql] [--profile FILE]

Starts a private Dovecot (tests/plugins/imap.py; run from the repository root with the
test dependencies installed), APPENDs N messages (default 5,000: the classifier test
corpus of replies, bounces, complaints and auto-replies, repeated, each with a Message-ID
of its own), then measures:

- `pipeline_per_s`: the real `cam.inbox` -> `cam.classifier` actors and `CamStore`, from
  the first poll until every message is a row of cam_inbound_emails with processed_at
  set, on a SQLite file (default) or a scratch PostgreSQL database created on
  AICMO_TEST_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/test)
  and dropped afterwards. The classifier reads inline, as in the simulation (what the
  service's child process adds is `python -m bench classify --isolated`'s figure);
- `classify_per_s`, the baseline: `classify_message` alone, in this process as the
  pipeline's classifier runs it (inline, default parse limits), on the very bytes appended,
  each once per pass in the same order, whole passes for at least 2 s; the faster of one
  run before and one after the pipeline. Both are warm: before either is timed, each
  distinct message is classified once (first-use costs such as compiled patterns are
  paid by neither);
- `pipeline_vs_classify` = pipeline / classify, the target (>= 0.8, issue 22): fetching,
  storing, matching and the actors add little to classifying. How fast the classifier
  itself is belongs to `python -m bench classify` (`vs_sisimai`, issue 21).

Figures, not targets: `raw_fetch_per_s`, a plain aioimaplib UID FETCH of the same
messages (bench/inbox_raw.py), the faster of one run before and one after the pipeline,
and `ratio` = pipeline / raw fetch (it was the target before issue 22; classifying a
message costs several times fetching it, so it said more about the classifier than the
pipeline).

Progress goes to stderr; the last line of stdout is one JSON object, its `targets` object
included.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from aicmo_actors.cam.classify import classify_message
from bench.classify import corpus
from bench.inbox_raw import append_many, raw_uid_fetch_all

DEFAULT_MESSAGES = 5000
DEFAULT_PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_SERVER_ENV = "AICMO_TEST_DATABASE_URL"
INBOX = "bench"
#: Seconds of pure classification per baseline run (whole passes over the messages).
CLASSIFY_SECONDS = 2.0
#: The target (issue 22): the pipeline gets through at least this share of what classifying alone does.
TARGET_PIPELINE_VS_CLASSIFY = 0.8
_MESSAGE_ID = re.compile(rb"^message-id\s*:", re.IGNORECASE)


class BenchError(Exception):
    """Something the person running the benchmark must fix: printed as one line."""


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the messages -----------------------------------------------------------------------------


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """`raw` with CRLF line ends and `message_id` instead of its own Message-ID header."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        head, body = raw, b""
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\r\n"):
        if skipping and line[:1] in (b" ", b"\t"):
            continue  # a folded Message-ID header
        skipping = bool(_MESSAGE_ID.match(line))
        if not skipping and line:
            kept.append(line)
    return b"\r\n".join([f"Message-ID: {message_id}".encode(), *kept]) + b"\r\n\r\n" + body


def make_messages(count: int) -> list[bytes]:
    """`count` messages: the classifier corpus, repeated, each with a unique Message-ID."""
    samples = corpus()
    return [with_message_id(samples[n % len(samples)], f"<bench-{n}@inbox-bench.example>") for n in range(count)]


# -- the baseline: classifying alone ------------------------------------------------------


def warm_up(raws: list[bytes]) -> None:
    """Classify each distinct message once, untimed, so that neither figure pays first uses."""
    for raw in raws[: len(corpus())]:  # make_messages cycles through the corpus
        classify_message(raw)


def classify_rate(raws: list[bytes], seconds: float = CLASSIFY_SECONDS) -> float:
    """Messages per second `classify_message` gets through `raws`: whole passes, each message
    once per pass (weighted as in the pipeline), until at least `seconds` have passed."""
    done = 0
    start = time.perf_counter()
    while True:
        for raw in raws:
            classify_message(raw)  # what the pipeline's classifier does (InlineReader, default limits)
        done += len(raws)
        elapsed = time.perf_counter() - start
        if elapsed >= max(seconds, 0.001):
            return done / elapsed


# -- the database -------------------------------------------------------------------------


@asynccontextmanager
async def database(kind: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh, migrated database URL of `kind`; removed afterwards."""
    from aicmo_actors.storage.engine import make_engine
    from aicmo_actors.storage.schema import ensure_schema

    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        engine = make_engine(url)
        try:
            await ensure_schema(engine)
        finally:
            await engine.dispose()
        yield url
        return
    from bench._pg import ScratchDatabaseError, pg_server, scratch_database

    try:
        async with scratch_database(pg_server()) as url:
            engine = make_engine(url)
            try:
                await ensure_schema(engine)  # checked as the service does
            finally:
                await engine.dispose()
            yield url
    except ScratchDatabaseError as exc:
        raise BenchError(str(exc)) from None


# -- the pipeline ---------------------------------------------------------------------------


async def run_pipeline(server: Any, url: str, expected: int, deadline_s: float) -> float:
    """The real inbox and classifier actors on `url`; seconds from first poll to last row."""
    from aicmo_actors.cam.classifier import Classifier
    from aicmo_actors.cam.inbox import Inbox
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
    from aicmo_actors.gateways.imap import ImapSource
    from aicmo_actors.runtime import ActorSystem, ChildSpec, RuntimeSettings
    from aicmo_actors.settings import Settings
    from aicmo_actors.storage.engine import make_engine
    from contracts.cam import PollInbox, ReplyClassified

    user = server.user("test")
    # The service's default fetch batch, whatever AICMO_INBOX_BATCH says in this shell.
    batch = Settings.model_fields["inbox_batch"].default
    engine = make_engine(url)
    store = CamStore(engine)

    def source() -> ImapSource:
        return ImapSource(server.host, server.port, user.username, user.password, tls="none", name=INBOX)

    children = [
        ChildSpec("cam.classifier", lambda: Classifier(store)),
        ChildSpec(
            "cam.inbox",
            lambda: Inbox(store, {INBOX: source}, batch=batch),
            intake=True,
            shutdown=2.0,
        ),
    ]
    classified = 0
    done = asyncio.Event()

    def on_event(event: Any) -> None:
        nonlocal classified
        if isinstance(event, ReplyClassified):
            classified += 1
            if classified >= expected:
                done.set()
            elif classified % 1000 == 0:
                progress(f"  ... {classified:,} classified")

    try:
        async with ActorSystem(RuntimeSettings(tick_interval_s=0, seed=1), children=children) as system:
            system.events.tap(on_event)
            inbox = system.ref("cam.inbox", PollInbox)
            started = time.perf_counter()
            await inbox.tell(system.message(PollInbox, inbox=INBOX))
            try:
                await asyncio.wait_for(done.wait(), deadline_s)
            except TimeoutError:
                raise BenchError(
                    f"the pipeline classified {classified} of {expected} messages in {deadline_s:g} s"
                ) from None
            seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            processed = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(inbound_t).where(inbound_t.c.processed_at.is_not(None))
                )
            ).scalar_one()
        if processed != expected:
            raise BenchError(f"{processed} rows processed, expected {expected}")
        return seconds
    finally:
        await engine.dispose()


# -- the whole run --------------------------------------------------------------------------


def _start_dovecot() -> Any:
    try:
        from tests.plugins.imap import dovecot_binary, start_dovecot
    except ImportError as exc:
        raise BenchError(
            f"cannot import tests.plugins.imap ({exc}): run from the repository root with "
            "the test dependencies installed (pip install -e '.[test]')"
        ) from None
    if dovecot_binary() is None:
        raise BenchError("Dovecot is not installed (run .ci/dovecot.sh install)")
    try:
        return start_dovecot()
    except (RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"cannot start Dovecot: {first}") from None


async def run(count: int, db: str, profile: str | None) -> dict[str, Any]:
    from aicmo_actors.runtime.logging import configure_logging

    raws = make_messages(count)
    size = sum(len(r) for r in raws)
    progress(f"starting a private Dovecot; {count:,} messages ({size / 1e6:.1f} MB) ...")
    server = _start_dovecot()
    try:
        # The actors log to stderr, and only what matters: stdout's last line is the result.
        configure_logging(level="warning", fmt="json", stream=sys.stderr)
        started = time.perf_counter()
        await append_many(server, raws)
        progress(f"  appended in {time.perf_counter() - started:.2f} s")
        fetched, raw_s = await raw_uid_fetch_all(server)
        if fetched != count:
            raise BenchError(f"appended {count} messages but the raw fetch got {fetched}")
        progress(f"  raw fetch: {count / raw_s:,.0f} /s")
        progress("classifier alone ...")
        warm_up(raws)
        classify = classify_rate(raws)
        progress(f"  classify: {classify:,.0f} /s")
        with tempfile.TemporaryDirectory(prefix="aicmo-bench-inbox-") as tmp:
            async with database(db, Path(tmp)) as url:
                progress(f"pipeline on {db} ...")
                profiler = cProfile.Profile() if profile else None
                if profiler is not None:
                    profiler.enable()
                pipeline_s = await run_pipeline(server, url, count, deadline_s=max(120.0, count / 20))
                if profiler is not None and profile is not None:
                    profiler.disable()
                    profiler.dump_stats(profile)
                    progress(f"  profile written to {profile}")
        progress(f"  pipeline: {count / pipeline_s:,.0f} /s")
        _, raw_again_s = await raw_uid_fetch_all(server)
        raw_s = min(raw_s, raw_again_s)
    finally:
        server.stop()
    progress("classifier alone, again ...")
    classify = max(classify, classify_rate(raws))
    pipeline = count / pipeline_s
    raw = count / raw_s
    return {
        "bench": "inbox",
        "messages": count,
        "bytes": size,
        "db": db,
        "pipeline_per_s": round(pipeline, 1),
        "classify_per_s": round(classify, 1),
        "pipeline_vs_classify": round(pipeline / classify, 3),
        "raw_fetch_per_s": round(raw, 1),
        "ratio": round(pipeline / raw, 3),
        "targets": {"pipeline_vs_classify": TARGET_PIPELINE_VS_CLASSIFY},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench inbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES, help="messages to append (default 5000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite", help="database (default sqlite)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the pipeline phase to FILE")
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    try:
        result = asyncio.run(run(args.messages, args.db, args.profile))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for key, value in result.items():
        if isinstance(value, float):
            progress(f"  {key:<22} {value:>12,.3f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
