"""Per-module session factories that only let a module write its own tables.

`module_sessions(engine, "cam")` returns an `async_sessionmaker` whose sessions refuse, with
`ForeignTableWrite`, any INSERT/UPDATE/DELETE (Core statement, ORM flush or textual SQL that
starts with one) aimed at a table whose name does not start with ``cam_``. Reading any table
is allowed. The guard covers sessions only: code holding a bare connection is on its honour.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from sqlalchemy.sql import TextClause
from sqlalchemy.sql.dml import UpdateBase

_MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TEXT_DML = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|replace\s+into)\s+"
    r"(?:\"([^\"]+)\"|`([^`]+)`|([\w.]+))",
    re.IGNORECASE,
)


class ForeignTableWrite(Exception):
    """A module tried to write a table it does not own (rule 2: ask the owner by message)."""


def owns(module: str, table_name: str) -> bool:
    """Whether `module` owns `table_name` (its name starts with ``<module>_``)."""
    bare = table_name.rsplit(".", 1)[-1]
    return bare.startswith(f"{module}_")


def _dml_target(statement: Any) -> str | None:
    if isinstance(statement, UpdateBase):
        table = statement.table
        name = getattr(table, "name", None)
        if name is None and hasattr(table, "entity_namespace"):
            name = getattr(getattr(table, "__table__", None), "name", None)
        return str(name) if name is not None else "<unknown table>"
    if isinstance(statement, TextClause):
        match = _TEXT_DML.match(statement.text)
        if match:
            return next(group for group in match.groups() if group)
    return None


def _refuse(module: str, table: str, how: str) -> ForeignTableWrite:
    return ForeignTableWrite(
        f"module {module!r} may not {how} table {table!r}: only tables named "
        f"'{module}_*' are its own; ask the owning module by message"
    )


def module_sessions(engine: AsyncEngine, module: str) -> async_sessionmaker[AsyncSession]:
    """A session factory for `module` that refuses writes to other modules' tables."""
    if not _MODULE_NAME.match(module):
        raise ValueError(f"module name {module!r} must be lower-case letters, digits and _")

    # A Session subclass per factory, so the guard listens to this module's sessions only.
    guarded = type(f"{module.title().replace('_', '')}Session", (Session,), {})

    @event.listens_for(guarded, "do_orm_execute")
    def _check_statement(state: ORMExecuteState) -> None:
        target = _dml_target(state.statement)
        if target is not None and not owns(module, target):
            raise _refuse(module, target, "write")

    @event.listens_for(guarded, "before_flush")
    def _check_flush(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
        for how, objects in (
            ("insert into", session.new),
            ("update", session.dirty),
            ("delete from", session.deleted),
        ):
            for obj in objects:
                table = getattr(type(obj), "__table__", None)
                name = table.name if isinstance(table, Table) else type(obj).__name__
                if not owns(module, name):
                    raise _refuse(module, name, how)

    return async_sessionmaker(engine, sync_session_class=guarded, expire_on_commit=False)
