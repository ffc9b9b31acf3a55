"""production: every planned piece of a period drafted, checked, reviewed by the client and
delivered, each item followed from plan to delivery. See docs/production.md.

What the module exports (docs/modules.md): its actor, its store, `production_supervisor` and
`make_generator`. The names load on first use (PEP 562).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.production.generator import Generator, TemplateGenerator, make_generator
    from aicmo_actors.production.repos import ProductionStore
    from aicmo_actors.production.studio import STUDIO, Studio
    from aicmo_actors.production.wiring import production_supervisor

_EXPORTS = {
    "STUDIO": "aicmo_actors.production.studio",
    "Studio": "aicmo_actors.production.studio",
    "ProductionStore": "aicmo_actors.production.repos",
    "Generator": "aicmo_actors.production.generator",
    "TemplateGenerator": "aicmo_actors.production.generator",
    "make_generator": "aicmo_actors.production.generator",
    "production_supervisor": "aicmo_actors.production.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "STUDIO",
    "Generator",
    "ProductionStore",
    "Studio",
    "TemplateGenerator",
    "make_generator",
    "production_supervisor",
]
