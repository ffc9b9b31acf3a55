"""cam: client acquisition. Prospects by email, reads every reply, follows up, stops.

What the module exports (docs/modules.md): its actors, its store, and `cam_supervisor`,
the one function that builds its supervision tree from settings and gateways; the service,
the simulation, the benchmarks and the tests all start cam through it.

The names load on first use (PEP 562), so `import aicmo_actors.cam.classify` (the `classify`
command) does not pay for the actors, the database layer and the HTTP server.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.cam.alerts import Alerts
    from aicmo_actors.cam.classifier import Classifier
    from aicmo_actors.cam.decision import Decision
    from aicmo_actors.cam.followup import Followup
    from aicmo_actors.cam.inbox import Inbox
    from aicmo_actors.cam.repos import CamStore
    from aicmo_actors.cam.scheduler import Scheduler
    from aicmo_actors.cam.sender import Sender
    from aicmo_actors.cam.web import Web
    from aicmo_actors.cam.wiring import cam_supervisor

_EXPORTS = {
    "Alerts": "aicmo_actors.cam.alerts",
    "Classifier": "aicmo_actors.cam.classifier",
    "Decision": "aicmo_actors.cam.decision",
    "Followup": "aicmo_actors.cam.followup",
    "Inbox": "aicmo_actors.cam.inbox",
    "CamStore": "aicmo_actors.cam.repos",
    "Scheduler": "aicmo_actors.cam.scheduler",
    "Sender": "aicmo_actors.cam.sender",
    "Web": "aicmo_actors.cam.web",
    "cam_supervisor": "aicmo_actors.cam.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "Alerts",
    "CamStore",
    "Classifier",
    "Decision",
    "Followup",
    "Inbox",
    "Scheduler",
    "Sender",
    "Web",
    "cam_supervisor",
]
