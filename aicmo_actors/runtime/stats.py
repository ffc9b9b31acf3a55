"""Per-actor counters, kept on the actor's cell so they survive restarts."""

from __future__ import annotations

from array import array
from collections import deque
from datetime import datetime, timedelta

from contracts.runtime import ActorStats

_WINDOW = 1024
#: Restart times kept per actor: enough for any supervisor's intensity window we configure.
_RESTARTS_KEPT = 16


class ActorCounters:
    """Processed/failed/restarts, a window of recent processing latencies, and the moments
    health is judged by (last success, last error, recent restarts, dead letters)."""

    __slots__ = (
        "_latencies",
        "_next",
        "dead_letters",
        "failed",
        "last_dead_letter_at",
        "last_error",
        "last_error_at",
        "last_ok",
        "latency_max",
        "latency_sum",
        "processed",
        "restart_times",
        "restarts",
    )

    def __init__(self) -> None:
        self.processed = 0
        self.failed = 0
        self.restarts = 0
        self.latency_sum = 0.0
        self.latency_max = 0.0
        self._latencies: array[float] | None = None
        self._next = 0
        #: The clock's monotonic reading at the last success (cheap on the hot path; turned
        #: into a time when a snapshot is taken), or None.
        self.last_ok: float | None = None
        self.last_error_at: datetime | None = None
        self.last_error: str | None = None
        self.restart_times: deque[datetime] | None = None
        self.dead_letters = 0
        self.last_dead_letter_at: datetime | None = None

    def record(self, seconds: float) -> None:
        self.processed += 1
        self.latency_sum += seconds
        if seconds > self.latency_max:
            self.latency_max = seconds
        window = self._latencies
        if window is None:
            # Allocated on first use so that idle actors stay small.
            window = self._latencies = array("d", bytes(8 * _WINDOW))
        window[self._next % _WINDOW] = seconds
        self._next += 1

    def record_error(self, at: datetime, error: BaseException) -> None:
        self.failed += 1
        self.last_error_at = at
        self.last_error = f"{type(error).__name__}: {error}"[:300]

    def record_restart(self, at: datetime) -> None:
        self.restarts += 1
        if self.restart_times is None:
            self.restart_times = deque(maxlen=_RESTARTS_KEPT)
        self.restart_times.append(at)

    def record_dead_letter(self, at: datetime) -> None:
        self.dead_letters += 1
        self.last_dead_letter_at = at

    def snapshot(
        self,
        name: str,
        status: str,
        depth: int,
        high_water: int,
        capacity: int,
        *,
        now: datetime | None = None,
        monotonic: float | None = None,
    ) -> ActorStats:
        recent = sorted(self._latencies[: min(self._next, _WINDOW)]) if self._latencies else []

        def pct(p: float) -> float:
            if not recent:
                return 0.0
            return recent[min(len(recent) - 1, int(p * len(recent)))] * 1000

        last_ok_at = None
        if self.last_ok is not None and now is not None and monotonic is not None:
            last_ok_at = now - timedelta(seconds=max(0.0, monotonic - self.last_ok))
        return ActorStats(
            name=name,
            status=status,  # type: ignore[arg-type,unused-ignore]
            processed=self.processed,
            failed=self.failed,
            restarts=self.restarts,
            mailbox_depth=depth,
            mailbox_high_water=high_water,
            mailbox_capacity=capacity,
            latency_mean_ms=(self.latency_sum / self.processed * 1000) if self.processed else 0.0,
            latency_p50_ms=pct(0.5),
            latency_p99_ms=pct(0.99),
            latency_max_ms=self.latency_max * 1000,
            last_ok_at=last_ok_at,
            last_error_at=self.last_error_at,
            last_error=self.last_error,
            recent_restarts=tuple(self.restart_times or ()),
            dead_letters=self.dead_letters,
            last_dead_letter_at=self.last_dead_letter_at,
        )
