"""A pure function of untrusted input, run in a child process with a time limit per call.

Python's `re` holds the GIL while it matches, so a thread cannot bound a slow match: only
another process can be stopped. `IsolatedWorker` keeps one child process (spawned, never
forked: the service has threads), hands it one call at a time over a pipe and waits for the
answer without blocking the event loop. A call that runs past its time limit kills the
child (`IsolatedTimeout`); a child that dies (a segfault, a MemoryError under its memory
limit) gives `IsolatedCrash`. Either way the next call starts a fresh child, so one input
only ever costs its own time. Starting a child takes a few hundred milliseconds: it is
started once, by `start()` or the first call, and reused.

    async with IsolatedWorker("aicmo_actors.cam.classify:classify_to_json", timeout_s=5) as worker:
        text = await worker.call(raw)

The target is named, not passed, because the child imports it: `module:function`, called as
`function(arg: bytes, **kwargs)` and returning something picklable. An exception it raises
is raised again by `call`, the child's traceback as its cause; the child lives on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pickle
import resource
import signal
import traceback
from collections.abc import Callable
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

__all__ = ["IsolatedCrash", "IsolatedError", "IsolatedTimeout", "IsolatedWorker"]

#: How long a child may take to start and import its target.
START_TIMEOUT_S = 30.0
#: How long a child asked to stop may take before it is killed.
STOP_TIMEOUT_S = 2.0
#: Requests up to this size are written on the event loop: a pipe's buffer holds them whole
#: (Linux: 64 KiB and more), so the write never waits. Larger ones are written from a thread.
DIRECT_SEND_BYTES = 32 * 1024


class IsolatedError(Exception):
    """A call could not be answered by the child process."""


class IsolatedTimeout(IsolatedError):
    """The call ran past its time limit: the child was killed (the next call starts another)."""


class IsolatedCrash(IsolatedError):
    """The child died during the call or could not start (the next call starts another)."""


class _RemoteTraceback(Exception):
    """The child's traceback of an exception the target raised."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# -- the child ----------------------------------------------------------------------------------
def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    if not callable(function):
        raise TypeError(f"{target} is not callable")
    return function  # type: ignore[no-any-return]


def _address_space() -> int:
    """The bytes of address space this process uses now (Linux; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _serve(conn: Connection, target: str, memory_headroom_bytes: int | None) -> None:
    """The child's loop: import the target, then answer one request after another until
    told to stop (None) or the parent is gone."""
    # Ctrl-C reaches the whole process group: the parent stops cleanly, then stops us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        function = _resolve(target)
        if memory_headroom_bytes is not None:
            # On top of what the interpreter and the target's imports take (which varies).
            limit = _address_space() + memory_headroom_bytes
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard != resource.RLIM_INFINITY:
                limit = min(limit, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except BaseException as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if request is None:
            return
        arg, kwargs = request
        try:
            reply: tuple[Any, ...] = ("ok", function(arg, **kwargs))
        except MemoryError:
            # What failed to allocate is freed by now, but the heap may be in pieces: start over.
            with contextlib.suppress(Exception):
                conn.send(("crashed", "MemoryError: the call ran out of memory"))
            os._exit(70)
        except Exception as exc:
            reply = ("raised", _sendable(exc), traceback.format_exc())
        try:
            conn.send(reply)
        except Exception as exc:  # a result that cannot be pickled
            conn.send(
                (
                    "raised",
                    TypeError(f"{target} returned something that cannot be sent back: {exc}"),
                    "",
                )
            )


def _sendable(exc: Exception) -> Exception:
    """`exc` if it survives pickling both ways (the parent raises it again), else a RuntimeError
    that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


# -- the parent ---------------------------------------------------------------------------------
class IsolatedWorker:
    """Runs `module:function(arg: bytes, **kwargs) -> picklable` in one child process, one
    call at a time, with a time limit per call."""

    def __init__(
        self,
        target: str,
        *,
        timeout_s: float,
        memory_headroom_bytes: int | None = None,
        name: str = "isolated",
    ) -> None:
        """`memory_headroom_bytes` caps the child's address space (RLIMIT_AS) at what it uses
        once its target is imported plus this much."""
        module, sep, function = target.partition(":")
        if not (module and sep and function):
            raise ValueError(f"target must be 'module:function', not {target!r}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s!r}")
        self.target = target
        self.timeout_s = timeout_s
        self.memory_headroom_bytes = memory_headroom_bytes
        self.name = name
        self._context = get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The child's process id, None while there is none."""
        return self._process.pid if self._process is not None else None

    async def __aenter__(self) -> IsolatedWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the child now rather than on the first call (raises IsolatedCrash if it cannot)."""
        async with self._lock:
            await self._ensure_child()

    async def call(self, arg: bytes, **kwargs: Any) -> Any:
        """`function(arg, **kwargs)` in the child, within `timeout_s` (sending and answering
        included, starting the child not). Calls wait for each other, first come first served."""
        async with self._lock:
            conn = await self._ensure_child()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            try:
                if len(arg) <= DIRECT_SEND_BYTES:
                    conn.send((arg, kwargs))  # the idle child's empty pipe takes it whole, at once
                else:
                    await asyncio.wait_for(asyncio.to_thread(conn.send, (arg, kwargs)), self.timeout_s)
                answer = await self._receive(conn, deadline - loop.time())
            except TimeoutError:
                await self._discard()
                raise IsolatedTimeout(
                    f"{self.name}: {self.target} took longer than {self.timeout_s:g} s; the child was stopped"
                ) from None
            except (EOFError, OSError) as exc:
                raise IsolatedCrash(await self._crashed(f"the child died ({type(exc).__name__})")) from None
            except BaseException:
                # Cancelled, or worse, mid-call: the child's answer would go to the next caller.
                self._kill()
                raise
            if answer[0] == "crashed":
                raise IsolatedCrash(await self._crashed(str(answer[1])))
        if answer[0] == "raised":
            error: BaseException = answer[1]
            if answer[2]:
                error.__cause__ = _RemoteTraceback(answer[2])
            raise error
        return answer[1]

    async def close(self) -> None:
        """Stop the child (after the call in progress, if any); later calls raise RuntimeError."""
        self._closed = True
        async with self._lock:
            await self._discard(politely=True)

    # -- internals --------------------------------------------------------------------------------
    async def _ensure_child(self) -> Connection:
        if self._closed:
            raise RuntimeError(f"{self.name}: the worker is closed")
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        await self._discard()
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_serve,
            args=(child_end, self.target, self.memory_headroom_bytes),
            name=self.name,
            daemon=True,
        )
        process.start()  # a fork and exec, a millisecond or so: the slow part is the child's imports
        child_end.close()  # so that the child's death reads as the end of the pipe
        self._process, self._conn = process, parent_end
        try:
            hello = await self._receive(parent_end, START_TIMEOUT_S)
        except (TimeoutError, EOFError, OSError) as exc:
            raise IsolatedCrash(await self._crashed(f"the child did not start ({type(exc).__name__})")) from None
        except BaseException:
            self._kill()  # cancelled while it started: its hello must not answer a call
            raise
        if hello[0] != "ready":
            raise IsolatedCrash(await self._crashed(f"could not start {self.target}: {hello[1]}"))
        return parent_end

    @staticmethod
    async def _receive(conn: Connection, timeout: float) -> Any:
        """The next message from the child, waiting on the event loop (TimeoutError past `timeout`)."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        fd = conn.fileno()
        loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(readable, max(timeout, 0.0))
        finally:
            loop.remove_reader(fd)
        # Readable: the child has written, or died (EOFError). A large answer is read while
        # the child is still writing it, which it does at once.
        return conn.recv()

    def _kill(self) -> None:
        """Kill the child at once, without waiting: the next `_discard` reaps it."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # the child is not to be used again

    async def _discard(self, *, politely: bool = False, dying: bool = False) -> int | None:
        """Stop the child, if any, and forget it: asked to when `politely`, given a moment to
        finish exiting when `dying`, killed otherwise. Returns its exit code (negative: the
        signal that ended it)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return None
        if politely and conn is not None and process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        if (politely or dying) and process.is_alive():
            await asyncio.to_thread(process.join, STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join)
        code = process.exitcode
        process.close()
        if conn is not None:
            conn.close()
        return code

    async def _crashed(self, what: str) -> str:
        """Reap the dead (or dying) child and say what happened to it."""
        code = await self._discard(dying=True)
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                what += f"; ended by {signal.Signals(-code).name}"
        elif code:
            what += f"; exit code {code}"
        return f"{self.name}: {self.target}: {what}"
