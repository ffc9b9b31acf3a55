"""How the classifier reads untrusted mail: in a child process, one message can only ever
cost its own time; what it cannot read is set aside with the reason, never retried."""

from __future__ import annotations

import time

import pytest

from aicmo_actors.cam.classifier import InlineReader, IsolatedReader, make_reader
from aicmo_actors.cam.classify import ParseLimits
from aicmo_actors.settings import Settings
from contracts.cam import ReplyCategory

pytestmark = pytest.mark.anyio

HERE = "tests.unit.test_classifier_reader"
REPLY = (
    b"From: fay@prospect.example\r\nSubject: Re: hello\r\n\r\nYes, this sounds interesting, please tell me more.\r\n"
)


def slow_or_real(raw: bytes, *, limits: ParseLimits | None = None) -> str:
    """A stand-in target for the child: hangs on b"slow", else classifies as the real one."""
    from aicmo_actors.cam.classify import classify_to_json

    if raw == b"slow":
        time.sleep(3600)
    if raw == b"crash":
        import os

        os._exit(3)
    return classify_to_json(raw, limits=limits)


def test_the_settings_choose_the_reader_and_its_limits() -> None:
    inline = make_reader(Settings(classify_isolation="inline", inbound_max_parts=7))
    assert isinstance(inline, InlineReader) and inline.limits.max_parts == 7
    isolated = make_reader(Settings(classify_isolation="process", classify_timeout_s=3, inbound_max_depth=4))
    assert isinstance(isolated, IsolatedReader)
    assert (isolated.timeout_s, isolated.limits.max_depth) == (3, 4)


async def test_a_message_that_takes_too_long_is_set_aside_and_the_next_one_is_read() -> None:
    reader = IsolatedReader(ParseLimits(), timeout_s=1.0)
    reader.worker.target = f"{HERE}:slow_or_real"
    try:
        stuck = await reader(b"slow")
        assert stuck.category is ReplyCategory.OTHER and stuck.reason == "set_aside"
        assert stuck.limited and "longer than 1 s" in stuck.limited
        crashed = await reader(b"crash")
        assert crashed.reason == "set_aside" and "stopped the reader" in (crashed.limited or "")
        fine = await reader(REPLY)
        assert fine.category is ReplyCategory.INTERESTED and fine.limited is None
    finally:
        await reader.close()
