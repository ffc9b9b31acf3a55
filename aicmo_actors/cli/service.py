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
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute, Mount, Route

from aicmo_actors.after_deal import AfterDeal, client_mail_from
from aicmo_actors.api.plane import ControlPlane
from aicmo_actors.cam import cam_supervisor
from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.unsubscribe import generate_secret
from aicmo_actors.cli.errors import UserError
from aicmo_actors.cli.status_file import write_status
from aicmo_actors.runtime import Actor, ActorSystem, ChildSpec, Clock, RealClock, SupervisorSpec
from aicmo_actors.runtime.logging import configure_logging
from aicmo_actors.settings import Settings, public_url_problem
from aicmo_actors.storage.dead_letters import store_dead_letters
from aicmo_actors.storage.engine import DatabaseUnavailable, make_engine
from aicmo_actors.storage.lease import WorkerLease, default_holder_id
from aicmo_actors.storage.runtime_tables import runtime_secrets
from aicmo_actors.storage.schema import SchemaError, ensure_schema
from contracts.runtime import DeadLetter, Tick

SECRET_NAME = "unsubscribe_hmac_key"
INSTALLATION_NAME = "installation_id"


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
        await insert_ignore(
            conn, runtime_secrets, [{"name": name, "value": fresh, "created_at": now}], conflict_columns=["name"]
        )
        stored = (
            await conn.execute(sa.select(runtime_secrets.c.value).where(runtime_secrets.c.name == name))
        ).scalar_one()
    return str(stored)


async def default_alert_from(store: CamStore, settings: Settings) -> str:
    """aicmo-alerts@ + the domain of the first campaign's first mailbox (a real sending
    domain a relay accepts), else of the first alert recipient, else the machine's name."""
    for row in (await store.campaigns.all()).values():
        for box in row.spec.mailboxes:
            return f"aicmo-alerts@{box.address.rpartition('@')[2]}"
    for address in settings.alert_emails:
        return f"aicmo-alerts@{address.rpartition('@')[2]}"
    return f"aicmo-alerts@{socket.getfqdn() or 'localhost'}"


def warn_about_settings(settings: Settings, log: Any) -> None:
    """What a real deployment gets wrong most: said once, at start."""
    if not settings.alert_emails and not settings.alert_webhook_url:
        log.warning(
            "alerts have nowhere to go: set AICMO_ALERT_EMAILS or AICMO_ALERT_WEBHOOK_URL (they are kept until then)"
        )
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
            log.warning(
                "signal received while stopping: already stopping",
                signal=name,
                drain_timeout_s=settings.drain_timeout_s,
            )
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


def control_routes(
    plane: ControlPlane, store: CamStore, settings: Settings, clock: Clock, secret: bytes
) -> Callable[[ActorSystem], list[BaseRoute]]:
    """The control API under /api/v1, /readyz and the web app under /app, for the HTTP
    server to serve. `secret` (the installation's key) is the root of the web app's CSRF key."""

    def routes(system: ActorSystem) -> list[BaseRoute]:
        import hashlib
        import hmac

        from aicmo_actors.api.app import API_PREFIX, Api, build_api
        from aicmo_actors.api.probes import readiness_route
        from aicmo_actors.identity.repos import IdentityStore
        from aicmo_actors.webapp.app import build_webapp, root_redirect
        from aicmo_actors.webapp.web import PREFIX

        api = Api(plane, store, IdentityStore(plane.engine), system, settings, clock.now)
        web_key = hmac.new(secret, b"aicmo webapp", hashlib.sha256).digest()
        return [
            Mount(API_PREFIX, app=build_api(api)),
            Route("/readyz", readiness_route(api), methods=["GET"]),
            Mount(PREFIX, app=build_webapp(api, web_key)),
            root_redirect(),
        ]

    return routes


async def _active(
    settings: Settings, engine: AsyncEngine, lease: WorkerLease, clock: Clock, stop: asyncio.Event
) -> int | None:
    """Run as the active worker. Returns an exit code, or None when the lease was lost."""
    log = structlog.get_logger("aicmo")
    secret = await load_or_create_secret(engine, settings, clock.now())
    installation = await load_or_create_installation(engine, clock.now())
    store = CamStore(engine, fence=lease.fence)
    alert_from = await default_alert_from(store, settings)
    warn_about_settings(settings, log)
    lost = asyncio.Event()
    plane = ControlPlane(engine, lease_held=lambda: not lost.is_set())
    after = AfterDeal(engine)
    control = control_routes(plane, store, settings, clock, secret)

    def routes(system: ActorSystem) -> list[BaseRoute]:
        return [*after.routes(clock.now, settings.agency_name), *control(system)]

    children: Sequence[ChildSpec | SupervisorSpec] = [
        ChildSpec("runtime.lease", lambda: LeaseKeeper(lease, lost.set)),
        # Before the modules: their actors start already switched off when they are, and
        # the meter hears their first events.
        *plane.supervisors(),
        cam_supervisor(
            settings,
            store,
            secret=secret,
            installation=installation,
            alert_from=alert_from,
            routes=routes,
        ),
        # After the deal: onboarding, strategy, production, QC, client review, delivery, then
        # the project sagas (they ask the modules again what was in flight when they start).
        *after.supervisors(settings, secret=secret, mail_from=client_mail_from(settings, alert_from)),
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
            f"the first acquisition cycle runs in {settings.tick_interval_s:g} s, "
            f"then every {settings.tick_interval_s:g} s",
            tick_interval_s=settings.tick_interval_s,
        )
    pid = os.getpid()
    waiters = [
        asyncio.ensure_future(stop.wait()),
        asyncio.ensure_future(lost.wait()),
        asyncio.ensure_future(system.wait()),
    ]
    try:
        while not any(w.done() for w in waiters):
            write_status(settings.state_dir, system.snapshot(), pid)
            await asyncio.wait(waiters, timeout=settings.status_interval_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await system.stop()
        await after.close()
        write_status(settings.state_dir, system.snapshot(), pid)
    if system.failure is not None:
        print(f"error: {system.failure}", file=sys.stderr)
        return 1
    if lost.is_set() and not stop.is_set():
        log.warning("back to standby after losing the lease")
        return None
    return 0
