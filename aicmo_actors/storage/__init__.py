"""Storage: the engine, per-module session factories, migrations, the worker lease, dead letters.

Every module declares its tables on `metadata` (prefix = its name) and writes them only
through its own `module_sessions(engine, "<module>")` factory.
"""

from aicmo_actors.storage.dead_letters import (
    StoredDeadLetter,
    list_dead_letters,
    store_dead_letters,
)
from aicmo_actors.storage.engine import (
    DEFAULT_DATABASE_URL,
    SQLITE_BEGIN,
    DatabaseUnavailable,
    backend_of,
    database_url_from_env,
    describe_url,
    make_engine,
    parse_url,
    ping,
)
from aicmo_actors.storage.insert import insert_ignore, insert_ignore_returning
from aicmo_actors.storage.lease import FencedOut, WorkerLease, default_holder_id, require_fenced
from aicmo_actors.storage.metadata import Base, Id, UtcDateTime, metadata
from aicmo_actors.storage.schema import (
    Migration,
    SchemaBehindError,
    SchemaError,
    SchemaUnknownError,
    check_drift,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    migrate,
    upgrade,
)
from aicmo_actors.storage.sessions import ForeignTableWrite, module_sessions

__all__ = [
    "DEFAULT_DATABASE_URL",
    "SQLITE_BEGIN",
    "Base",
    "DatabaseUnavailable",
    "FencedOut",
    "ForeignTableWrite",
    "Id",
    "Migration",
    "SchemaBehindError",
    "SchemaError",
    "SchemaUnknownError",
    "StoredDeadLetter",
    "UtcDateTime",
    "WorkerLease",
    "backend_of",
    "check_drift",
    "current_revision",
    "database_url_from_env",
    "default_holder_id",
    "describe_url",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "insert_ignore",
    "insert_ignore_returning",
    "list_dead_letters",
    "make_engine",
    "metadata",
    "migrate",
    "module_sessions",
    "parse_url",
    "ping",
    "require_fenced",
    "store_dead_letters",
    "upgrade",
]
