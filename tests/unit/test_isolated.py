"""`IsolatedWorker`: a function run in a child process, one call at a time, each within its
time limit; a call past it or a child that dies costs that call only, and `close` leaves no
process behind. The targets below run in the child (it imports this module)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import signal
import time
from typing import Any

import pytest

from aicmo_actors.gateways.isolated import IsolatedCrash, IsolatedTimeout, IsolatedWorker

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]
HERE = __name__


# -- targets (run in the child) ------------------------------------------------------------------
def echo(arg: bytes, **kwargs: Any) -> dict[str, Any]:
    return {"arg": arg, "kwargs": kwargs, "pid": os.getpid()}


def sleep_then_echo(arg: bytes, *, seconds: float) -> bytes:
    time.sleep(seconds)
    return arg


def catastrophic_regex(arg: bytes) -> bool:
    """Holds the GIL for minutes: only killing the process stops it."""
    return re.match(rb"(a+)+$", arg) is not None


def exit_at_once(arg: bytes) -> None:
    os._exit(3)


def segfault(arg: bytes) -> None:
    import ctypes

    ctypes.string_at(0)


def allocate(arg: bytes, *, size: int) -> int:
    return len(bytearray(size))


def refuse(arg: bytes) -> None:
    raise ValueError(f"cannot read {arg!r}")


# -- helpers ---------------------------------------------------------------------------------------
def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def worker(function: str = "echo", **options: Any) -> IsolatedWorker:
    options.setdefault("timeout_s", 10)
    return IsolatedWorker(f"{HERE}:{function}", **options)


# -- tests ------------------------------------------------------------------------------------------
async def test_a_call_runs_in_the_child_and_the_child_is_reused() -> None:
    async with worker() as w:
        first = await w.call(b"one", flag=True)
        second = await w.call(b"two")
    assert first == {"arg": b"one", "kwargs": {"flag": True}, "pid": first["pid"]}
    assert first["pid"] == second["pid"] != os.getpid()


async def test_a_call_past_its_limit_is_stopped_and_the_next_call_gets_a_new_child() -> None:
    async with IsolatedWorker(f"{HERE}:sleep_then_echo", timeout_s=0.5) as w:
        first_pid = w.pid
        with pytest.raises(IsolatedTimeout, match=r"took longer than 0\.5 s"):
            await w.call(b"slow", seconds=30)
        assert not alive(first_pid)
        assert await w.call(b"quick", seconds=0) == b"quick"
        assert w.pid != first_pid


async def test_a_regex_that_holds_the_gil_neither_blocks_the_loop_nor_outlives_its_limit() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async with IsolatedWorker(f"{HERE}:catastrophic_regex", timeout_s=1) as w:
        ticker = asyncio.create_task(tick())
        try:
            with pytest.raises(IsolatedTimeout):
                await w.call(b"a" * 64 + b"b")
        finally:
            ticker.cancel()
        assert ticks > 10  # the event loop kept running while the child matched
        assert await w.call(b"aaa") is True


@pytest.mark.parametrize(
    ("function", "said"),
    [("exit_at_once", "exit code 3"), ("segfault", "SIGSEGV")],
)
async def test_a_child_that_dies_is_a_crash_and_the_next_call_works(function: str, said: str) -> None:
    async with worker(function) as w:
        with pytest.raises(IsolatedCrash, match=said):
            await w.call(b"x")
        with pytest.raises(IsolatedCrash):
            await w.call(b"x")  # a fresh child, which dies again
    async with worker(function) as w:
        pid = w.pid
        with pytest.raises(IsolatedCrash):
            await w.call(b"x")
        assert not alive(pid)


async def test_running_out_of_memory_is_a_crash_under_the_memory_limit() -> None:
    # 256 MB on top of what the child uses once started.
    async with worker("allocate", memory_headroom_bytes=256 * 2**20) as w:
        assert await w.call(b"", size=16 * 2**20) == 16 * 2**20
        with pytest.raises(IsolatedCrash, match="MemoryError"):
            await w.call(b"", size=1024 * 2**20)
        assert await w.call(b"", size=2**20) == 2**20


async def test_an_exception_of_the_target_is_raised_again_and_the_child_lives_on() -> None:
    async with worker("refuse") as w:
        pid = w.pid
        with pytest.raises(ValueError, match="cannot read b'x'") as raised:
            await w.call(b"x")
        assert "Traceback" in str(raised.value.__cause__)
        with pytest.raises(ValueError):
            await w.call(b"y")
        assert w.pid == pid


async def test_concurrent_callers_are_served_one_after_the_other() -> None:
    done: list[bytes] = []
    async with IsolatedWorker(f"{HERE}:sleep_then_echo", timeout_s=10) as w:

        async def one(arg: bytes, seconds: float) -> bytes:
            result: bytes = await w.call(arg, seconds=seconds)
            done.append(result)
            return result

        first = asyncio.create_task(one(b"first", 0.3))
        await asyncio.sleep(0)  # the first caller holds the child
        results = await asyncio.gather(one(b"second", 0), one(b"third", 0), first)
    assert results == [b"second", b"third", b"first"]
    assert done == [b"first", b"second", b"third"]


async def test_a_cancelled_call_costs_its_child_and_the_next_call_works() -> None:
    async with IsolatedWorker(f"{HERE}:sleep_then_echo", timeout_s=10) as w:
        pid = w.pid
        call = asyncio.create_task(w.call(b"slow", seconds=30))
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert await w.call(b"next", seconds=0) == b"next"
        assert w.pid != pid
        assert not alive(pid)


async def test_the_child_ignores_ctrl_c() -> None:
    async with worker() as w:
        pid = w.pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        await asyncio.sleep(0.1)
        assert (await w.call(b"still here"))["pid"] == pid


async def test_close_leaves_no_process_behind() -> None:
    w = worker()
    await w.call(b"x")
    pid = w.pid
    await w.close()
    assert not alive(pid)
    assert multiprocessing.active_children() == []
    with pytest.raises(RuntimeError, match="closed"):
        await w.call(b"x")
    await w.close()  # twice is fine


async def test_close_after_a_timeout_leaves_no_process_behind() -> None:
    w = IsolatedWorker(f"{HERE}:sleep_then_echo", timeout_s=0.3)
    with pytest.raises(IsolatedTimeout):
        await w.call(b"slow", seconds=30)
    await w.close()
    assert w.pid is None
    assert multiprocessing.active_children() == []


async def test_a_target_that_cannot_be_imported_is_a_crash_at_start() -> None:
    w = IsolatedWorker("no_such_module_here:f", timeout_s=1)
    with pytest.raises(IsolatedCrash, match="could not start no_such_module_here:f: ModuleNotFoundError"):
        await w.start()
    await w.close()
    assert multiprocessing.active_children() == []


def test_the_target_and_the_limit_are_checked_at_once() -> None:
    with pytest.raises(ValueError, match="module:function"):
        IsolatedWorker("no_colon", timeout_s=1)
    with pytest.raises(ValueError, match="timeout_s"):
        IsolatedWorker(f"{HERE}:echo", timeout_s=0)


async def test_the_classifier_runs_isolated() -> None:
    from contracts.cam import Classification, ReplyCategory

    raw = b"From: pat@prospect.example\nSubject: Re: hi\nContent-Type: text/plain\n\nSounds great, tell me more!"
    async with IsolatedWorker("aicmo_actors.cam.classify:classify_to_json", timeout_s=10) as w:
        c = Classification.model_validate_json(await w.call(raw))
    assert c.category is ReplyCategory.INTERESTED


class _Unpicklable(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} and {second}")


def refuse_oddly(arg: bytes) -> None:
    raise _Unpicklable("one", "two")


async def test_an_exception_that_cannot_travel_is_named_in_a_runtime_error() -> None:
    async with worker("refuse_oddly") as w:
        pid = w.pid
        with pytest.raises(RuntimeError, match="_Unpicklable: one and two"):
            await w.call(b"x")
        assert w.pid == pid


async def test_a_start_cancelled_halfway_leaves_nothing_to_confuse_the_next_call() -> None:
    w = worker()
    starting = asyncio.create_task(w.start())
    await asyncio.sleep(0.05)
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert (await w.call(b"after"))["arg"] == b"after"
    await w.close()
    assert multiprocessing.active_children() == []


async def test_a_large_argument_and_answer_travel_whole() -> None:
    big = os.urandom(3 * 2**20)
    async with worker() as w:
        assert (await w.call(big))["arg"] == big
        assert (await w.call(b"small"))["arg"] == b"small"
