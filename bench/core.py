"""What a benchmark row is, and the timing helpers every row shares.

Machines here are noisy, so a row never reports one absolute time: it takes
several samples of the thing and of its baseline, interleaved in the same run,
and reports medians and their ratio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .services import Services


class Context:
    """What every row gets: how hard to push, and the private services (started on first use).

    ``quick`` trades precision for a run under two minutes.
    """

    def __init__(self, quick: bool = False) -> None:
        self.quick = quick
        self._services: Services | None = None

    def pick(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    def services(self) -> Services:
        """The private Redis (and a place for workers), started once for the whole run."""
        if self._services is None:
            from .services import Services

            services = Services()
            try:
                services.start_redis()
            except BaseException:
                services.close()
                raise
            self._services = services
        return self._services

    def close(self) -> None:
        if self._services is not None:
            services, self._services = self._services, None
            services.close()


@dataclass
class Result:
    """One line of the table: a measured value, its baseline, their ratio and the target.

    ``meets`` is None when the row has no pass/fail target (or could not run);
    ``error`` is set when the row could not be measured at all.
    """

    key: str
    what: str
    value: str
    baseline: str
    ratio: str
    target: str
    meets: bool | None
    note: str = ""
    details: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.error:
            return "ERROR"
        if self.meets is None:
            return "—"
        return "meets" if self.meets else "MISSES"


class Row(Protocol):
    """A row module's entry point: takes the context, returns its results."""

    def __call__(self, ctx: Context) -> list[Result]: ...


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def spread(samples: list[float]) -> str:
    """min..max of samples, for the notes (shows how noisy a row was)."""
    return f"{fmt_time(min(samples))}..{fmt_time(max(samples))}"


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` took."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(
    subject: Callable[[], object], baseline: Callable[[], object], rounds: int
) -> tuple[list[float], list[float]]:
    """Time ``subject`` and ``baseline`` alternately, so drift hits both alike."""
    a: list[float] = []
    b: list[float] = []
    for i in range(rounds):
        if i % 2:
            b.append(timed(baseline))
            a.append(timed(subject))
        else:
            a.append(timed(subject))
            b.append(timed(baseline))
    return a, b


def fmt_time(seconds: float) -> str:
    """A duration with a unit that keeps 2–4 significant digits."""
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    return f"{x:.2f}×"


def failed(key: str, what: str, target: str, exc: BaseException) -> Result:
    """A row that could not be measured: shown as ERROR with the reason, never as a pass."""
    reason = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
    return Result(key, what, "—", "—", "—", target, None, note=f"could not run: {reason}", error=reason)
