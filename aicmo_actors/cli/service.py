"""`python run.py`: the service. Wires the modules into one ActorSystem; handles the worker
lease (standby until it can be taken), signals, the status file and the exit code."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from aicmo_actors.cam.alerts import Alerts
from aicmo_actors.cam.classifier import Classifier, Reader, make_reader
from aicmo_actors.cam.decision import Decision, PausePolicy
from aicmo_actors.cam.followup import Followup
from aicmo_actors.cam.inbox import Inbox
from aicmo_actors.cam.lead_rules import LeadRules
from aicmo_actors.cam.scheduler import Scheduler
from aicmo_actors.cam.sender import Sender
from aicmo_actors.cam.store import CamStore
from aicmo_actors.cam.unsubscribe import generate_secret
from aicmo_actors.cam.web import Web
from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.status_file import write_status
from aicmo_actors.gateways.inbox_source import InboxSource
from aicmo_actors.gateways.transport import MailTransport
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, Clock, RealClock, SupervisorSpec
from aicmo_actors.runtime.logging import configure_logging
from aicmo_actors.settings import InboxProfile, Settings, TransportProfile, public_url_problem
from aicmo_actors.storage.dead_letters import store_dead_letters
from aicmo_actors.storage.engine import DatabaseUnavailable, make_engine
from aicmo_actors.storage.lease import WorkerLease, default_holder_id
from aicmo_actors.storage.runtime_tables import runtime_secrets
from aicmo_actors.storage.schema import SchemaError, ensure_schema
from contracts.runtime import DeadLetter, Tick

SECRET_NAME = "unsubscribe_hmac_key"
INSTALLATION_NAME = "installation_id"
#: The alerts' From when nothing better is known (no AICMO_ALERT_FROM, no campaign yet).
DEFAULT_ALERT_FROM = "aicmo-alerts@localhost"


def make_transport(profile: TransportProfile, mailbox: str) -> MailTransport:
    """The transport of one sending mailbox (one reused SMTP connection each)."""
    if profile.kind == "smtp":
        from aicmo_actors.gateways.smtp import SmtpTransport

        return SmtpTransport(
            profile.host or "",
            profile.port,
            username=profile.username,
            password=profile.password.get_secret_value() if profile.password else None,
            tls=profile.tls,
            timeout=profile.timeout_s,
            ca_file=profile.ca_file,
            validate_certs=profile.validate_certs,
            local_hostname=profile.helo_name,
        )
    from aicmo_actors.gateways.maildir_outbox import MaildirOutbox

    return MaildirOutbox(profile.path)


def make_inbox(name: str, profile: InboxProfile) -> Callable[[], InboxSource]:
    if profile.kind == "imap":
        from aicmo_actors.gateways.imap import ImapSource

        def imap() -> InboxSource:
            return ImapSource(
                profile.host,
                profile.port,
                profile.username or "",
                profile.password.get_secret_value() if profile.password else "",
                folder=profile.folder,
                tls=profile.tls,
                timeout=profile.timeout_s,
                name=name,
            )

        return imap
    from aicmo_actors.gateways.maildir_inbox import MaildirInbox

    return lambda: MaildirInbox(profile.path, name)


async def load_or_create_secret(engine: AsyncEngine, settings: Settings, now: datetime) -> bytes:
    """The unsubscribe HMAC key: from settings, else generated once and kept in the database."""
    if settings.unsubscribe_secret is not None:
        value = settings.unsubscribe_secret.get_secret_value().encode()
        if len(value) < 16:
            raise UserError("AICMO_UNSUBSCRIBE_SECRET must be at least 16 characters")
        return value
    stored = await _stored_once(engine, SECRET_NAME, base64.b64encode(generate_secret(os.urandom)).decode(), now)
    return base64.b64decode(stored)


async def load_or_create_installation(engine: AsyncEngine, now: datetime) -> str:
    """A random value made at this database's first start and kept: mixed into Message-IDs,
    so two databases never send the same one, whatever seed each runs with."""
    return await _stored_once(engine, INSTALLATION_NAME, os.urandom(16).hex(), now)


async def _stored_once(engine: AsyncEngine, name: str, fresh: str, now: datetime) -> str:
    from aicmo_actors.storage.insert import insert_ignore

    async with engine.begin() as conn:
        await insert_ignore(conn, runtime_secrets, [{"name": name, "value": fresh, "created_at": now}], conflict_columns=["name"])
        stored = (await conn.execute(sa.select(runtime_secrets.c.value).where(runtime_secrets.c.name == name))).scalar_one()
    return str(stored)


async def default_alert_from(store: CamStore, settings: Settings) -> str:
    """aicmo-alerts@ + the domain of the first campaign's first mailbox (a real sending
    domain a relay accepts), else of the first alert recipient, else the machine's name."""
    for row in (await store.campaigns()).values():
        for box in row.spec.mailboxes:
            return f"aicmo-alerts@{box.address.rpartition('@')[2]}"
    for address in settings.alert_emails:
        return f"aicmo-alerts@{address.rpartition('@')[2]}"
    return f"aicmo-alerts@{socket.getfqdn() or 'localhost'}"


def warn_about_settings(settings: Settings, log: Any) -> None:
    """What a real deployment gets wrong most: said once, at start."""
    if not settings.alert_emails and not settings.alert_webhook_url:
        log.warning("alerts have nowhere to go: set AICMO_ALERT_EMAILS or AICMO_ALERT_WEBHOOK_URL (they are kept until then)")
    if any(p.kind == "smtp" for p in settings.transports.values()):
        problem = public_url_problem(settings.public_url)
        if problem:
            log.warning(f"unsubscribe links: {problem}", public_url=settings.public_url)


class LeaseKeeper(Actor[Tick]):
    """Renews the worker lease three times per lease period; losing it stops this worker.

    Effects are fenced anyway (a stale holder's claim of an outbound row matches nothing),
    so between losing the lease and noticing it no email can leave twice.
    """

    def __init__(self, lease: WorkerLease, on_lost: Callable[[], None]) -> None:
        self.lease = lease
        self.on_lost = on_lost
        self.period = lease.ttl.total_seconds() / 3
        self.seq = 0

    async def on_start(self) -> None:
        self._next()

    def _next(self) -> None:
        self.seq += 1
        self.ctx.schedule(self.period, Tick(seq=self.seq, at=self.ctx.clock.now(), interval_s=self.period))

    async def receive(self, message: Tick) -> None:
        if not await self.lease.renew(self.ctx.clock.now()):
            self.ctx.log.error("worker lease lost: stopping effects")
            self.on_lost()
            return
        self._next()


@dataclass
class CamWiring:
    """Everything the CAM actors need from outside."""

    settings: Settings
    store: CamStore
    secret: bytes
    http: bool = True
    pause_policy: PausePolicy | None = None
    transport_factory: Callable[[str, str], MailTransport] | None = None
    inbox_factories: dict[str, Callable[[], InboxSource]] | None = None
    #: Mixed into Message-IDs (unique per database; the simulation makes its own).
    installation: str = ""
    #: The From of alert emails when AICMO_ALERT_FROM is not set (decided at start).
    alert_from: str | None = None
    #: How replies are read: None means as `settings.classify_isolation` says.
    reader: Reader | None = None


def cam_children(w: CamWiring, snapshot: Callable[[], Any]) -> list[ChildSpec | SupervisorSpec]:
    """The acquisition cycle as a supervision tree (one_for_one: each actor rebuilds its own
    state from the database, so one restarting never needs the others to)."""
    s = w.settings
    transports = s.transports

    def transport_for(name: str, mailbox: str) -> MailTransport:
        profile = transports.get(name)
        if profile is None:
            raise UserError(f"campaign mailbox {mailbox} names transport {name!r}, which AICMO_TRANSPORTS does not define")
        return make_transport(profile, mailbox)

    make = w.transport_factory or transport_for
    inboxes = (
        w.inbox_factories
        if w.inbox_factories is not None
        else {name: make_inbox(name, profile) for name, profile in s.inboxes.items()}
    )
    secret = w.secret
    policy = w.pause_policy or PausePolicy(
        hard_bounce_rate=s.pause_hard_bounce_rate,
        complaint_rate=s.pause_complaint_rate,
        min_sends=s.pause_min_sends,
        mailbox_rejections=s.pause_mailbox_rejections,
        mailbox_window_s=s.pause_mailbox_window_s,
    )
    rules = LeadRules(
        soft_bounce_retry=timedelta(seconds=s.soft_bounce_retry_s),
        auto_reply_pause=timedelta(seconds=s.auto_reply_pause_s),
        soft_bounces_as_hard=s.soft_bounces_as_hard,
    )
    alert_from = s.alert_from or w.alert_from or DEFAULT_ALERT_FROM
    reader = w.reader or make_reader(s)
    verp = frozenset(name for name, profile in transports.items() if profile.kind == "smtp" and profile.verp)

    children: list[ChildSpec | SupervisorSpec] = [
        ChildSpec("cam.alerts", lambda: Alerts(
            w.store,
            recipients=list(s.alert_emails),
            webhook_url=s.alert_webhook_url,
            from_address=alert_from,
            transport=lambda: make(s.alert_transport, alert_from),
        )),
        ChildSpec("cam.followup", lambda: Followup(w.store, rules=rules)),
        ChildSpec("cam.decision", lambda: Decision(w.store, policy)),
        ChildSpec("cam.classifier", lambda: Classifier(w.store, read=reader, secret=lambda: secret)),
        ChildSpec("cam.sender", lambda: Sender(
            w.store, make, secret=lambda: secret, public_url=s.public_url,
            max_attempts=s.send_max_attempts, retry_base_s=s.send_retry_base_s,
            rules=rules, pause_after_errors=s.send_error_pause_after, return_paths=verp.__contains__,
            transport_known=(lambda name: name in transports) if w.transport_factory is None else None,
        )),
        ChildSpec("cam.scheduler", lambda: Scheduler(w.store, batch=s.scheduler_batch, installation=w.installation), intake=True),
        ChildSpec(
            "cam.inbox",
            lambda: Inbox(w.store, inboxes, batch=s.inbox_batch, offset_s=s.inbox_poll_offset_s, max_bytes=s.inbound_max_bytes),
            intake=True,
            shutdown=2.0,
        ),
    ]
    if w.http:
        children.append(
            ChildSpec(
                "cam.web",
                lambda: Web(
                    w.store, secret=lambda: secret, host=s.http_host, port=s.http_port, snapshot=snapshot,
                    header_timeout_s=s.http_header_timeout_s, max_connections=s.http_max_connections,
                ),
                intake=True,
            )
        )
    return [SupervisorSpec("cam", children=children, strategy="one_for_one", max_restarts=10, period=60)]


def persist_dead_letters(system: ActorSystem, engine: AsyncEngine) -> None:
    """Dead letters go to `runtime_dead_letters` as well as memory (`python run.py dead-letters`)."""

    def on_letter(letter: DeadLetter) -> None:
        system.background(_store_letter(engine, letter), "dead-letter")

    system.dead_letters.listen(on_letter)


async def _store_letter(engine: AsyncEngine, letter: DeadLetter) -> None:
    try:
        await store_dead_letters(engine, [letter])
    except Exception:
        structlog.get_logger("aicmo").warning("could not persist a dead letter", exc_info=True)


async def open_database(settings: Settings) -> AsyncEngine:
    try:
        engine = make_engine(settings.database_url)
    except (DatabaseUnavailable, ValueError) as exc:
        raise UserError(str(exc)) from exc
    try:
        await ensure_schema(engine)
    except (SchemaError, DatabaseUnavailable) as exc:
        await engine.dispose()
        raise UserError(str(exc)) from exc
    return engine


async def serve(settings: Settings, *, clock: Clock | None = None) -> int:
    """Run until SIGINT/SIGTERM or until the root supervisor gives up.

    The first SIGINT or SIGTERM starts a clean stop (drain, stop actors, release the lease,
    exit 0); a repeat while stopping is logged and changes nothing. Repeats are common:
    `timeout` signals the process and then its process group, a supervisor may signal
    again. Falling back to the default handlers there turned a clean stop into exit 130
    (a KeyboardInterrupt surfacing after the drain) or, for SIGTERM, into a kill mid-send.
    After a signalled stop both signals stay ignored: the process is on its way out.
    SIGKILL still stops it at once.
    """
    configure_logging(settings.log_level, settings.log_format)
    log = structlog.get_logger("aicmo")
    clock = clock or RealClock()
    engine = await open_database(settings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("signal received while stopping: already stopping", signal=name, drain_timeout_s=settings.drain_timeout_s)
            return
        log.info("signal received: stopping", signal=name)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    lease = WorkerLease(engine, holder=default_holder_id(), ttl=settings.lease_ttl_s)
    try:
        while not stop.is_set():
            if not await lease.acquire(clock.now()):
                log.info("standby: another worker holds the lease", retry_in_s=settings.lease_ttl_s / 3)
                try:
                    await asyncio.wait_for(stop.wait(), settings.lease_ttl_s / 3)
                except TimeoutError:
                    pass
                continue
            code = await _active(settings, engine, lease, clock, stop)
            if code is not None:
                return code
        return 0
    finally:
        await lease.release()
        await engine.dispose()
        for sig in signals:
            loop.remove_signal_handler(sig)
            if stop.is_set():
                signal.signal(sig, signal.SIG_IGN)


async def _active(settings: Settings, engine: AsyncEngine, lease: WorkerLease, clock: Clock, stop: asyncio.Event) -> int | None:
    """Run as the active worker. Returns an exit code, or None when the lease was lost."""
    log = structlog.get_logger("aicmo")
    secret = await load_or_create_secret(engine, settings, clock.now())
    installation = await load_or_create_installation(engine, clock.now())
    store = CamStore(engine, fence=lease.fence)
    alert_from = await default_alert_from(store, settings)
    warn_about_settings(settings, log)
    lost = asyncio.Event()
    system: ActorSystem | None = None

    def snapshot() -> Any:
        assert system is not None
        return system.snapshot()

    children: Sequence[ChildSpec | SupervisorSpec] = [
        ChildSpec("runtime.lease", lambda: LeaseKeeper(lease, lost.set)),
        *cam_children(CamWiring(settings, store, secret, installation=installation, alert_from=alert_from), snapshot),
    ]
    system = ActorSystem(settings, clock=clock, children=children)
    persist_dead_letters(system, engine)
    try:
        await system.start()
    except UserError:
        raise
    except Exception as exc:
        await system.stop()
        raise UserError(f"the service could not start: {exc}", exit_code=1) from exc
    log.info("active: this worker holds the lease", token=lease.token)
    if settings.tick_interval_s > 0:
        log.info(
            f"the first acquisition cycle runs in {settings.tick_interval_s:g} s, then every {settings.tick_interval_s:g} s",
            tick_interval_s=settings.tick_interval_s,
        )
    pid = os.getpid()
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait()), asyncio.ensure_future(system.wait())]
    try:
        while not any(w.done() for w in waiters):
            write_status(settings.state_dir, system.snapshot(), pid)
            await asyncio.wait(waiters, timeout=settings.status_interval_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await system.stop()
        write_status(settings.state_dir, system.snapshot(), pid)
    if system.failure is not None:
        print(f"error: {system.failure}", file=sys.stderr)
        return 1
    if lost.is_set() and not stop.is_set():
        log.warning("back to standby after losing the lease")
        return None
    return 0
