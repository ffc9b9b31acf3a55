"""structlog set-up: JSON lines when not on a terminal, readable console otherwise.

Records from stdlib loggers (uvicorn, asyncio, libraries) are rendered the same way.

Every line logged from inside an actor carries the actor's name, the type of the message
it is processing and that message's correlation id, with no per-message cost: a processor
reads them from the task's current cell.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from aicmo_actors.runtime.activity import current_holder


def _add_actor_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    cell = current_holder.get()
    if cell is not None:
        event.setdefault("actor", getattr(cell, "name", None))
        current = getattr(cell, "current", None)
        if current is not None:
            event.setdefault("message_type", type(current).__name__)
            event.setdefault("correlation_id", str(current.correlation))
    return event


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger to write one format to one stream.

    Lines from stdlib loggers (uvicorn, asyncio, libraries) go through the same
    processors and renderer as structlog's own, so with "json" every line is a JSON object.
    """
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if getattr(stream, "isatty", lambda: False)() else "json"
    numeric = getattr(logging, level.upper(), logging.INFO)
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _add_actor_context,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
