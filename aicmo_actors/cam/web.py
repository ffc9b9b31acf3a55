"""`cam.web`: the public HTTP endpoints, served from inside the actor system.

`GET|POST /u/{token}` (RFC 8058 one-click unsubscribe, signed token), `/healthz` and
`/metrics` (Prometheus text), and whatever routes the service adds (the control API, its
readiness probe). An intake actor: it is stopped first on shutdown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.routing import BaseRoute

from aicmo_actors.cam.repos import CamStore
from aicmo_actors.cam.unsubscribe import build_app, render_prometheus
from aicmo_actors.gateways.http import HttpServer
from aicmo_actors.runtime import Actor, ActorSystem
from contracts.runtime import Tick


class Web(Actor[Tick]):
    """Owns the HTTP server for as long as it lives."""

    def __init__(
        self,
        store: CamStore,
        *,
        secret: Callable[[], bytes],
        host: str,
        port: int,
        header_timeout_s: float = 10.0,
        max_connections: int = 100,
        routes: Callable[[ActorSystem], Sequence[BaseRoute]] | None = None,
    ) -> None:
        self.routes = routes
        self.store = store
        self.header_timeout_s = header_timeout_s
        self.max_connections = max_connections
        self.secret = secret
        self.host = host
        self.port = port
        self.server: HttpServer | None = None

    async def on_start(self) -> None:
        app = build_app(
            secret=self.secret(),
            on_unsubscribe=self._unsubscribe,
            health=self._health,
            metrics=self._metrics,
            routes=self.routes(self.ctx.system) if self.routes is not None else (),
        )
        self.server = HttpServer(
            app,
            host=self.host,
            port=self.port,
            shutdown_timeout=2.0,
            header_timeout_s=self.header_timeout_s,
            max_connections=self.max_connections,
        )
        await self.server.start()
        self.ctx.log.info("http server listening", url=self.server.url)

    async def on_stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def receive(self, message: Tick) -> None:
        return None

    async def _unsubscribe(self, lead_id: int) -> bool:
        changed = await self.store.leads.unsubscribe(lead_id, self.ctx.clock.now())
        self.ctx.log.info("unsubscribed by link", lead_id=lead_id, known=changed)
        return changed

    async def _health(self) -> dict[str, Any]:
        snap = self.ctx.system.snapshot()
        failing = [a.name for a in snap.actors if a.status in ("failed", "restarting")]
        health: dict[str, Any] = {
            "ok": snap.failure is None and not snap.stopping and not failing,
            "actors": len(snap.actors),
            "restarting": failing,
            "dead_letters": snap.dead_letters,
        }
        return health

    async def _metrics(self) -> str:
        snap = self.ctx.system.snapshot()
        actors = snap.actors
        metrics: dict[str, tuple[str, str, list[tuple[dict[str, str], float]]]] = {
            "aicmo_actor_processed_total": (
                "counter",
                "Messages processed",
                [({"actor": a.name}, a.processed) for a in actors],
            ),
            "aicmo_actor_failed_total": (
                "counter",
                "Messages that crashed their actor",
                [({"actor": a.name}, a.failed) for a in actors],
            ),
            "aicmo_actor_restarts_total": (
                "counter",
                "Actor restarts",
                [({"actor": a.name}, a.restarts) for a in actors],
            ),
            "aicmo_actor_mailbox_depth": (
                "gauge",
                "Messages waiting",
                [({"actor": a.name}, a.mailbox_depth) for a in actors],
            ),
            "aicmo_actor_latency_p99_seconds": (
                "gauge",
                "Processing latency p99 (recent)",
                [({"actor": a.name}, a.latency_p99_ms / 1000) for a in actors],
            ),
            "aicmo_dead_letters_total": ("counter", "Dead letters", [({}, snap.dead_letters)]),
        }
        emails: list[tuple[dict[str, str], float]] = []
        leads: list[tuple[dict[str, str], float]] = []
        figures: list[tuple[dict[str, str], float]] = []
        for name in await self.store.campaigns.all():
            funnel = await self.store.metrics.funnel(name)
            emails += [({"campaign": name, "status": k}, v) for k, v in funnel["emails"].items()]
            leads += [({"campaign": name, "state": k}, v) for k, v in funnel["leads"].items()]
            # The same figures as `campaign status` and the auto-pause (one definition each).
            figures += [({"campaign": name, "figure": k}, v) for k, v in funnel["figures"].items()]
        metrics["aicmo_emails"] = ("gauge", "Outbound emails by status", emails)
        metrics["aicmo_leads"] = ("gauge", "Leads by state", leads)
        metrics["aicmo_campaign_emails"] = (
            "gauge",
            "Emails by figure since the campaign began: attempted, sent, unconfirmed, refused, "
            "hard_bounces, soft_bounces, complaints, delayed (definitions in the README)",
            figures,
        )
        return render_prometheus(metrics)
