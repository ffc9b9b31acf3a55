"""Per-actor counters, kept on the actor's cell so they survive restarts."""

from __future__ import annotations

from array import array

from contracts.runtime import ActorStats

_WINDOW = 1024


class ActorCounters:
    """Processed/failed/restarts and a window of recent processing latencies."""

    __slots__ = (
        "_latencies",
        "_next",
        "failed",
        "latency_max",
        "latency_sum",
        "processed",
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

    def snapshot(self, name: str, status: str, depth: int, high_water: int, capacity: int) -> ActorStats:
        recent = sorted(self._latencies[: min(self._next, _WINDOW)]) if self._latencies else []

        def pct(p: float) -> float:
            if not recent:
                return 0.0
            return recent[min(len(recent) - 1, int(p * len(recent)))] * 1000

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
        )
