"""delivery: approved work handed over the way the package says (an email with the files
attached, a signed webhook, a folder export), once per item, version and method.

What the module exports (docs/modules.md): its actor, its store and `delivery_supervisor`
(the one function that builds its supervision tree). See docs/delivery.md.

The names load on first use (PEP 562): importing one pure file (`names`, `rules`, `texts`,
`documents`) does not load the actor and the database layer.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.delivery.courier import COURIER, Courier
    from aicmo_actors.delivery.repos import DeliveryStore
    from aicmo_actors.delivery.wiring import delivery_supervisor

_EXPORTS = {
    "COURIER": "aicmo_actors.delivery.courier",
    "Courier": "aicmo_actors.delivery.courier",
    "DeliveryStore": "aicmo_actors.delivery.repos",
    "delivery_supervisor": "aicmo_actors.delivery.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["COURIER", "Courier", "DeliveryStore", "delivery_supervisor"]
