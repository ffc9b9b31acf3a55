"""Kill points: the places where an actor awaits, at which a simulation may kill the process.

The runtime and the storage layer mark them (a unit of work about to start and just done,
a publish, a tell; the simulated world marks its gateway calls) with

    if killpoints.hook is not None:
        await killpoints.checkpoint(killpoints.TELL)

Production installs no hook: a kill point costs that one `if`. The simulation installs one
(`installed(...)`) that decides from its seed whether the whole process dies here, and if so
never returns, so nothing after the point happens until the process is killed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

#: Before a unit of work (`run_read` / `run_write`) starts.
STORE = "store"
#: Right after a write unit of work committed (its connection given back).
COMMITTED = "committed"
#: Right after a read unit of work returned (its connection given back).
READ = "read"
#: Before an event is published (`ActorContext.publish`).
PUBLISH = "publish"
#: Before a message is queued (`ActorRef.tell`).
TELL = "tell"
#: Before a gateway call: an email handed to the transport, a fetch from an inbox.
SEND = "send"
FETCH = "fetch"

KINDS = (STORE, COMMITTED, READ, PUBLISH, TELL, SEND, FETCH)

#: Called with the kind of each kill point reached; may never return (the process dies).
Hook = Callable[[str], Awaitable[None]]

hook: Hook | None = None


async def checkpoint(kind: str) -> None:
    """A kill point of `kind`: hand it to the installed hook, if any."""
    current = hook
    if current is not None:
        await current(kind)


@contextmanager
def installed(new: Hook | None) -> Iterator[None]:
    """Install `new` as the hook for the duration of the block (None: no kill points)."""
    global hook
    previous, hook = hook, new
    try:
        yield
    finally:
        hook = previous
