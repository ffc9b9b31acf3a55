"""`cam.alerts` delivers an alert once even when recording the delivery fails on both sides
of a restart: the commit after the send, then the one its `on_stop` tries. Both databases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.alerts import Alerts, Unrecorded
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_alerts as alerts_t
from aicmo_actors.gateways.transport import SendResult
from aicmo_actors.runtime import ActorSystem, ChildSpec, FakeClock, RuntimeSettings
from contracts.cam import AlertRequested

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALERT_TO = "owner@agency.example"


class Sink:
    """The alerts' mail transport: takes every email."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: Sequence[str]) -> SendResult:
        self.sent.append(message)
        return SendResult(outcome="accepted", smtp_code=250, smtp_text="2.0.0 Ok: queued", stage="data")

    async def close(self) -> None:
        return None


async def test_a_delivery_whose_commit_fails_twice_around_a_restart_is_not_sent_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CamStore(engine)
    finish = store.alerts.finish
    failures = 2  # the commit after the send, then the one on_stop tries before the restart

    async def failing_finish(*args: Any) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise OperationalError("COMMIT", None, RuntimeError("disk full"))
        await finish(*args)

    monkeypatch.setattr(store.alerts, "finish", failing_finish)
    sink = Sink()
    unrecorded: Unrecorded = []
    alerts = ChildSpec(
        "cam.alerts",
        lambda: Alerts(
            store,
            recipients=[ALERT_TO],
            webhook_url=None,
            from_address="alerts@agency.example",
            transport=lambda: sink,
            unrecorded=unrecorded,
        ),
    )
    settings = RuntimeSettings(tick_interval_s=0, seed=7)
    async with ActorSystem(settings, clock=FakeClock(NOW), children=[alerts]) as system:
        await system.settle()
        request = system.message(AlertRequested, idempotency_key="reply:1:interested", kind="interested", summary="hi")
        await system.ref("cam.alerts", AlertRequested).tell(request)
        await system.settle()
        (stats,) = [a for a in system.snapshot().actors if a.name == "cam.alerts"]
        assert stats.restarts == 1

    assert len(sink.sent) == 1
    async with engine.connect() as conn:
        (row,) = (await conn.execute(sa.select(alerts_t))).mappings()
    assert row["state"] == "delivered"
    assert unrecorded == []
