"""The control plane around the real acquisition tree, on SQLite and PostgreSQL.

- A module switched off keeps its work and does it when switched on again, across a restart
  too: every lead gets its email exactly once, none before the switch is back on.
- The worker paused: no email leaves, replies are still read, classified and stored.
- Health turns `failing` when the SMTP server refuses our login, and `ok` once it accepts
  it again (a real aiosmtpd with STARTTLS and AUTH).
- Usage equals what the sink received and the tables say.

Time is a `FakeClock` moved timer by timer with the system settled in between, as in
`test_inbound_pipeline.py`; assertions are on outcomes only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.api.plane import ControlPlane
from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.campaign import CampaignSpec, Limits, MailboxSpec, SendWindow, StepSpec
from aicmo_actors.cam.decision import PausePolicy
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.tables import cam_inbound_emails as inbound_t
from aicmo_actors.cam.tables import cam_outbound_emails as outbound_t
from aicmo_actors.gateways.maildir_inbox import MaildirInbox
from aicmo_actors.gateways.smtp import SmtpTransport
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.orchestration.health import module_health
from aicmo_actors.orchestration.switchboard import SWITCHBOARD
from aicmo_actors.runtime import ActorSystem, FakeClock
from aicmo_actors.settings import Settings
from contracts.orchestration import ApplySwitches
from tests.plugins.mail import SmtpSink

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

START = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)  # a Monday
TICK_S = 3600.0
MAILBOX = "alex@outreach.example.com"
LEADS = 12
GAP_S = 300  # twelve sends spread over an hour: some are still waiting when the switch goes off
NO_PAUSE = PausePolicy(hard_bounce_rate=1.0, complaint_rate=1.0, min_sends=10**6, mailbox_rejections=10**6)


def campaign() -> CampaignSpec:
    return CampaignSpec(
        name="control",
        timezone="UTC",
        postal_address="AICMO Agency GmbH, Beispielstrasse 1, 10115 Berlin, Germany",
        window=SendWindow(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), start="00:00", end="24:00"),
        limits=Limits(daily_cap=1000, min_gap_seconds=GAP_S, jitter_seconds=0),
        mailboxes=(MailboxSpec(address=MAILBOX, display_name="Alex Berger"),),
        steps=(StepSpec(delay_days=0, subject="Hello {{ company }}", body="Hi {{ first_name }},\n\nAlex"),),
    )


def leads() -> list[dict[str, Any]]:
    return [
        {"email": f"p{n}@prospect{n}.example.org", "first_name": f"P{n}", "company": f"Co{n}", "timezone": "UTC"}
        for n in range(LEADS)
    ]


@dataclass
class Service:
    engine: AsyncEngine
    clock: FakeClock
    settings: Settings
    transport: Any
    inbox_dir: Path
    system: ActorSystem | None = None

    async def start(self) -> ActorSystem:
        store = CamStore(self.engine)
        plane = ControlPlane(self.engine)
        cam = cam_supervisor(
            self.settings,
            store,
            secret=b"control-plane-secret-0123456789",
            http=False,
            pause_policy=NO_PAUSE,
            transports=self.transport,
            inboxes={"replies": lambda: MaildirInbox(self.inbox_dir, "replies", initial_uidvalidity=1)},
        )
        self.system = ActorSystem(self.settings, clock=self.clock, children=[*plane.supervisors(), cam])
        await self.system.start()
        await self.system.settle()
        return self.system

    async def stop(self) -> None:
        if self.system is not None and not self.system.stopped:
            await self.system.stop()
        assert self.system is None or self.system.failure is None, self.system.failure

    async def run_for(self, seconds: float) -> None:
        assert self.system is not None
        clock = self.clock
        target = clock.monotonic() + seconds
        while True:
            await self.system.settle()
            deadline = clock.next_deadline()
            if deadline is None or deadline > target:
                break
            clock.advance(max(0.0, deadline - clock.monotonic()))
        clock.advance(target - clock.monotonic())
        await self.system.settle()
        assert self.system.failure is None, self.system.failure

    async def switch(self, name: str, enabled: bool) -> None:
        """As the API does it: keep the switch, then tell the switchboard to apply it now."""
        await ControlPlane(self.engine).switches.set(name, enabled, by="test", reason="testing", now=self.clock.now())
        if self.system is not None:
            await self.system.ref(SWITCHBOARD, ApplySwitches).tell(self.system.message(ApplySwitches))
            await self.system.settle()

    async def usage(self) -> dict[str, int]:
        totals = await ControlPlane(self.engine).usage.totals(by=["kind"])
        return {str(t.group["kind"]): t.quantity for t in totals}

    async def scalar(self, query: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).scalar()


def _settings(engine: AsyncEngine, tmp_path: Path) -> Settings:
    return Settings(
        database_url=str(engine.url.render_as_string(hide_password=False)),
        seed=11,
        tick_interval_s=TICK_S,
        inbox_poll_offset_s=600.0,
        public_url="https://agency.example",
        state_dir=tmp_path / ".aicmo",
        log_level="warning",
        classify_isolation="inline",
        allow_test_domains=True,
    )


async def _service(engine: AsyncEngine, tmp_path: Path, transport: Any) -> Service:
    inbox_dir = tmp_path / "inbox"
    for part in ("new", "cur", "tmp"):
        (inbox_dir / part).mkdir(parents=True, exist_ok=True)
    service = Service(engine, FakeClock(START, autojump=False), _settings(engine, tmp_path), transport, inbox_dir)
    store = CamStore(engine)
    await store.campaigns.create_or_update(campaign(), service.clock.now())
    new, _, _ = await store.leads.import_rows("control", leads(), service.clock.now())
    assert new == LEADS
    return service


def _sink_transport(sink: SmtpSink) -> Any:
    def transport(profile: str, mailbox: str) -> MailTransport:
        return SmtpTransport(sink.host, sink.port, tls="none", timeout=10)

    return transport


async def test_a_disabled_module_keeps_its_work_and_does_it_once_after_enabling(
    engine: AsyncEngine, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    service = await _service(engine, tmp_path, _sink_transport(smtp_sink))
    await service.start()
    try:
        await service.run_for(TICK_S + 2 * GAP_S + 60)  # the first tick, then three sends
        sent_before = len(smtp_sink.messages)
        assert 0 < sent_before < LEADS
        await service.switch("cam", False)
        health = module_health(
            ControlPlane(engine).registry.get("cam"),
            service.system.snapshot(),  # type: ignore[union-attr]
            await ControlPlane(engine).switches.state(),
            ControlPlane(engine).registry,
        )
        assert health["status"] == "disabled"
        await service.run_for(3 * TICK_S)
        assert len(smtp_sink.messages) == sent_before, "a switched-off module sent"
        # The planned sends wait, in the database (QUEUED rows) and in the sender's mailbox.
        queued = await service.scalar(
            sa.select(sa.func.count()).select_from(outbound_t).where(outbound_t.c.status == "QUEUED")
        )
        assert queued == LEADS - sent_before
        sender = next(a for a in service.system.snapshot().actors if a.name == "cam.sender")  # type: ignore[union-attr]
        assert sender.status == "suspended"
        assert service.system.dead_letters.total == 0  # type: ignore[union-attr]

        # A restart while switched off: the new process starts with the module off.
        await service.stop()
        await service.start()
        await service.run_for(2 * TICK_S)
        assert len(smtp_sink.messages) == sent_before

        await service.switch("cam", True)
        await service.run_for(2 * TICK_S)
        assert len(smtp_sink.messages) == LEADS
        copies = Counter(str(m.message["Message-ID"]) for m in smtp_sink.messages)
        assert max(copies.values()) == 1
        assert {r for m in smtp_sink.messages for r in m.rcpt_tos} == {lead["email"] for lead in leads()}
    finally:
        await service.stop()
    assert (await service.usage()).get("email_sent") == LEADS


async def test_with_the_worker_paused_nothing_is_sent_and_replies_are_still_read(
    engine: AsyncEngine, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    service = await _service(engine, tmp_path, _sink_transport(smtp_sink))
    await service.switch("worker", False)
    await service.start()
    try:
        reply = EmailMessage()
        reply["From"] = "someone@elsewhere.example.org"
        reply["To"] = MAILBOX
        reply["Subject"] = "Interested in your services"
        reply["Message-ID"] = "<reply-1@elsewhere.example.org>"
        reply.set_content("Hello, we would like to talk. Can you call me?")
        (service.inbox_dir / "new" / "1.reply").write_bytes(bytes(reply))
        await service.run_for(2 * TICK_S)
        assert smtp_sink.messages == []
        stored = await service.scalar(
            sa.select(sa.func.count()).select_from(inbound_t).where(inbound_t.c.processed_at.is_not(None))
        )
        assert stored == 1
        await service.switch("worker", True)
        await service.run_for(2 * TICK_S)
        assert len(smtp_sink.messages) == LEADS
    finally:
        await service.stop()
    usage = await service.usage()
    assert (usage.get("email_sent"), usage.get("message_read"), usage.get("message_classified")) == (LEADS, 1, 1)


async def test_health_fails_while_the_smtp_server_refuses_our_login_and_recovers(
    engine: AsyncEngine, smtp_tls_server: Any, tmp_path: Path
) -> None:
    server = smtp_tls_server("starttls", users={"alex": "the-right-password"}, auth_required=True)

    def transport(profile: str, mailbox: str) -> MailTransport:
        return SmtpTransport(
            server.host,
            server.port,
            username="alex",
            password="what-we-were-given",
            tls="starttls",
            timeout=10,
            ca_file=server.certificate.cert_path,
        )

    service = await _service(engine, tmp_path, transport)
    system = await service.start()
    plane = ControlPlane(engine)
    spec = plane.registry.get("cam")
    try:
        await service.run_for(TICK_S + 60)  # the first send: the login is refused
        health = module_health(spec, system.snapshot(), await plane.switches.state(), plane.registry)
        assert health["status"] == "failing", health
        assert any("smtp:" in reason and "535" in reason for reason in health["reasons"]), health["reasons"]
        assert server.messages == []

        server.handler.users["alex"] = "what-we-were-given"  # the password is fixed on the server
        await service.run_for(GAP_S + 60)
        assert len(server.messages) == 1
        health = module_health(spec, system.snapshot(), await plane.switches.state(), plane.registry)
        assert health["status"] in ("ok", "degraded"), health
        assert not any("smtp:" in reason for reason in health["reasons"]), health["reasons"]
    finally:
        await service.stop()


async def test_usage_is_counted_once_across_a_kill(engine: AsyncEngine, smtp_sink: SmtpSink, tmp_path: Path) -> None:
    service = await _service(engine, tmp_path, _sink_transport(smtp_sink))
    system = await service.start()
    try:
        # Every send happens after the first tick, so the meter still holds them in memory.
        await service.run_for(TICK_S + (LEADS - 1) * GAP_S + 60)
        assert len(smtp_sink.messages) == LEADS
        assert (await service.usage()).get("email_sent") is None
        await system.kill()  # the buffer dies with the process
        await service.start()  # the new meter counts what the tables say
        assert (await service.usage()).get("email_sent") == LEADS
        await service.run_for(3 * TICK_S)  # and its own events after that add nothing twice
        assert (await service.usage()).get("email_sent") == LEADS
    finally:
        await service.stop()
