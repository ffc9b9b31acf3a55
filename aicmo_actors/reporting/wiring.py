"""`reporting_supervisor`: the reporting module's supervision tree.

The one way to start reporting: the service, the simulation and the tests all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aicmo_actors.gateways.transport import LazyTransport, MailTransport
from aicmo_actors.reporting.reporter import REPORTER, Reporter, Setup
from aicmo_actors.reporting.repos import ReportingStore
from aicmo_actors.reporting.rules import parse_formats
from aicmo_actors.runtime import ChildSpec, SupervisorSpec


def reporting_supervisor(
    store: ReportingStore,
    *,
    transport: Callable[[], MailTransport],
    mail_from: str,
    agency_name: str,
    hour: int = 8,
    formats: Sequence[str] = ("html", "pdf"),
    catch_up: int = 12,
    in_thread: bool = True,
) -> SupervisorSpec:
    """Reporting as a supervision tree: its one actor, `reporting.reporter`.

    `transport` makes the connection report emails go through (made for a batch, closed after
    it); `mail_from` is their From, `agency_name` its display name and the report's signature.
    A new client's reports go out at `hour` o'clock (0-23) in the client's timezone, in
    `formats` ("html": the email's body is the HTML report, else plain text; "pdf": the PDF with
    the charts attached); `python run.py reporting schedule` changes one client's. `catch_up`:
    the most reports one client gets in one tick after a long stop (the rest follow tick by tick).
    `in_thread`: a report is drawn (matplotlib, fpdf2: about 0.2 s) in a worker thread, so the
    event loop goes on meanwhile (the service); off, in the event loop (the simulation: a replay
    must not depend on a thread's timing).
    """
    if not 0 <= hour <= 23:
        raise ValueError("hour must be 0 to 23")
    if catch_up < 1:
        raise ValueError("catch_up must be at least 1")
    setup = Setup(
        mail_from=mail_from,
        agency_name=agency_name,
        hour=hour,
        formats=parse_formats(",".join(formats)),
        catch_up=catch_up,
        in_thread=in_thread,
    )

    def make() -> Reporter:
        return Reporter(store, transport=LazyTransport(transport), setup=setup)

    children: list[ChildSpec | SupervisorSpec] = [ChildSpec(REPORTER, make)]
    return SupervisorSpec("reporting", children=children, strategy="one_for_one", max_restarts=10, period=60)
