"""What this process wrote, table by table, so that a tick's "anything to do?" read can be
answered from memory until one of the tables it read is written again.

Most ticks of most modules find nothing to do, and each "nothing" was a read: about twenty per
tick of the clock, most of a simulated quarter's reads and two thirds of the after-deal tests'
time on PostgreSQL. A `ReadCache` keeps the answer of such a read (one whose answer depends on
the tables only, never on the time: "any verdict not announced?", not "any reminder due by
now?") with the tables it read, and reads again only after one of them was written.

- **Which tables a read read** is taken from the statements it ran (`sql.util.find_tables`
  over each compiled statement, subqueries and joins included). A read that ran text SQL is
  not kept.
- **Which tables were written** is taken from every statement run through the engine
  (`after_cursor_execute`, INSERT/UPDATE/DELETE and their table; any other statement that is
  not a SELECT counts as writing everything) and counted only once its transaction committed
  (`storage.work` reports a unit of work's tables after its commit returned, so a read that
  started before the commit is never kept as if it had seen it).
- **Only where this process is the database's only writer** (`sole_writer`): the simulation, and
  the tests. The service does not keep answers, because another process (`python run.py pay`,
  `kpi import`, `deal won` ...) may write to the database it reads, and this process cannot see
  those writes; there a tick reads every time, as before.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables

__all__ = ["ReadCache", "as_sole_writer", "committed", "written_in"]

T = TypeVar("T")
R = TypeVar("R")

#: A table name that stands for every table (a statement whose table is not known).
EVERYTHING = "*"
#: `Connection.info` keys: tables written in the open transaction; tables a kept read read.
WRITTEN = "aicmo_written"
READ = "aicmo_read"
_UNKNOWN = object()

_WRITE = re.compile(r'\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?([A-Za-z_][A-Za-z0-9_]*)', re.I)
_HARMLESS = ("SELECT", "PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SHOW", "SET")

_lock = threading.Lock()
_seq = 0
_written_at: dict[str, int] = {}
_sole_writer = False
_installed = False


def _note(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
    """After each statement: the table a write wrote (kept on the connection until its commit),
    and, inside a kept read, the tables the statement read."""
    read = conn.info.get(READ)
    if read is not None:
        read.update(_tables_read(getattr(context, "compiled", None)))
    if statement.startswith("SELECT"):
        return
    head = statement.lstrip()[:9].upper()
    if head.startswith(_HARMLESS):
        return
    found = _WRITE.match(statement)
    written_table = found.group(1).lower() if found else EVERYTHING
    written = conn.info.get(WRITTEN)
    if written is None:
        conn.info[WRITTEN] = {written_table}
    else:
        written.add(written_table)


#: The tables each compiled statement reads. SQLAlchemy compiles a statement once and hands the
#: same compiled object to every execution of it (its compiled cache), so the walk of the
#: statement's tree is made once; weak keys, so a compiled statement the cache lets go of is
#: forgotten here too (an id could be taken by another statement).
_READS: weakref.WeakKeyDictionary[Any, frozenset[object]] = weakref.WeakKeyDictionary()


def _tables_read(compiled: Any) -> frozenset[object]:
    """The lower-cased names of the tables `compiled` reads (`_UNKNOWN` among them for text or
    something without a name)."""
    if compiled is None:
        return frozenset((_UNKNOWN,))
    with _lock:
        found = _READS.get(compiled)
    if found is not None:
        return found
    clause = getattr(compiled, "statement", None)
    if not isinstance(clause, ClauseElement) or clause.__visit_name__ == "textclause":
        found = frozenset((_UNKNOWN,))
    else:
        names: set[object] = set()
        for from_ in find_tables(clause, include_joins=True, include_aliases=True, include_crud=True):
            name = getattr(from_, "name", None)
            names.add(name.lower() if isinstance(name, str) else _UNKNOWN)
        found = frozenset(names)
    with _lock:
        _READS[compiled] = found
    return found


def _on_commit(conn: Connection) -> None:
    # Said again (after the commit returned) by `storage.work` for its units of work; this covers
    # the few writes made outside them (leases, dead letters, migrations).
    committed(set(conn.info.get(WRITTEN, ())))


def _on_rollback(conn: Connection) -> None:
    conn.info.pop(WRITTEN, None)


def _install() -> None:
    """Follow every engine's statements and commits (once, on entering `as_sole_writer`: a
    process that keeps no reads pays nothing for this)."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "after_cursor_execute", _note)
    event.listen(Engine, "commit", _on_commit)
    event.listen(Engine, "rollback", _on_rollback)
    _installed = True


def written_in(conn: Connection) -> set[str]:
    """The tables the connection's statements wrote since this was last asked (and forget them)."""
    found: set[str] | None = conn.info.pop(WRITTEN, None)
    return found or set()


def committed(tables: set[str]) -> None:
    """`tables` were written by a transaction that has committed."""
    global _seq
    if not tables:
        return
    with _lock:
        _seq += 1
        for table in tables:
            _written_at[table] = _seq


@contextmanager
def as_sole_writer() -> Iterator[None]:
    """Within the block this process is the only one writing to its databases: reads may be
    kept (the simulation, the tests)."""
    global _sole_writer
    _install()
    before = _sole_writer
    _sole_writer = True
    try:
        yield
    finally:
        _sole_writer = before


def _unchanged(tables: frozenset[str], since: int) -> bool:
    if _written_at.get(EVERYTHING, 0) > since:
        return False
    return all(_written_at.get(table, 0) <= since for table in tables)


class ReadCache:
    """Answers of reads that depend only on tables, each kept until one of its tables is written
    (only where this process is the only writer, see the module)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._kept: dict[Hashable, tuple[int, frozenset[str], Any]] = {}

    async def read(self, key: Hashable, work: Callable[[Connection], T]) -> T:
        """`work`'s answer, read now or kept from an earlier read under `key` (the same `key`
        must always mean the same `work`)."""
        from aicmo_actors.storage.work import run_read

        if not _sole_writer:
            return await run_read(self.engine, work)
        kept = self._kept.get(key)
        if kept is not None and _unchanged(kept[1], kept[0]):
            answer: T = kept[2]
            return answer
        seen = _seq  # before the read: a write committed after this makes the answer old

        def reading(conn: Connection) -> tuple[T, set[Any]]:
            tables: set[Any] = set()
            conn.info[READ] = tables
            try:
                return work(conn), tables
            finally:
                conn.info.pop(READ, None)

        answer, tables = await run_read(self.engine, reading)
        if _UNKNOWN in tables or not tables:
            self._kept.pop(key, None)
        else:
            self._kept[key] = (seen, frozenset(tables), answer)
        return answer

    async def write_if(
        self,
        key: Hashable,
        read: Callable[[Connection], R],
        due: Callable[[R], bool],
        work: Callable[[Connection], T],
        nothing: T,
    ) -> T:
        """`storage.work.run_write_if` with its check kept: `work` in a write transaction only
        when `due` finds something to do in `read`'s answer (kept under `key`, see `read`), else
        `nothing`. `due` is where the clock comes in; `work` must check again what it found."""
        from aicmo_actors.storage.work import run_write

        if not due(await self.read(key, read)):
            return nothing
        return await run_write(self.engine, work)

    async def read_if(
        self,
        key: Hashable,
        read: Callable[[Connection], R],
        due: Callable[[R], bool],
        work: Callable[[Connection], T],
        nothing: T,
    ) -> T:
        """`write_if` for a read: `work`'s answer, read only when `due` finds something in
        `read`'s kept answer, else `nothing`. The usual `read` is the earliest time something
        becomes due (`earliest`), kept until its table is written; `due` compares it with the
        clock, so an idle tick asks the database nothing."""
        from aicmo_actors.storage.work import run_read

        if not due(await self.read(key, read)):
            return nothing
        return await run_read(self.engine, work)


def earliest(column: Any, *where: Any) -> Callable[[Connection], Any]:
    """A read of the smallest value of `column` among the rows `where` selects (None when
    none): for `ReadCache.read_if`, the first moment something becomes due."""
    from sqlalchemy import func, select

    query = select(func.min(column)).where(*where)
    return lambda conn: conn.execute(query).scalar()


def come(now: Any) -> Callable[[Any], bool]:
    """`due` for `earliest`: the first due moment exists and is not after `now`."""
    return lambda first: first is not None and first <= now
