"""reporting: each client's results report, once per period (deliverables planned and delivered on
time, review rounds, the package's KPIs against their targets, the CAM funnel), as an HTML email
with a PDF attached. See docs/reporting.md.

What the module exports (docs/modules.md): its actor, its store and `reporting_supervisor`. The
names load on first use (PEP 562): importing a pure file (`periods`, `rules`) loads nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aicmo_actors.reporting.reporter import REPORTER, Reporter
    from aicmo_actors.reporting.repos import ReportingStore
    from aicmo_actors.reporting.wiring import reporting_supervisor

_EXPORTS = {
    "REPORTER": "aicmo_actors.reporting.reporter",
    "Reporter": "aicmo_actors.reporting.reporter",
    "ReportingStore": "aicmo_actors.reporting.repos",
    "reporting_supervisor": "aicmo_actors.reporting.wiring",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = ["REPORTER", "Reporter", "ReportingStore", "reporting_supervisor"]
