"""Chaos on each broker: every job completes exactly once with the right result while workers
are SIGKILLed, one is SIGSTOPped past its lease, one is stopped with SIGTERM and Redis restarts."""

from __future__ import annotations

import pytest

from chaos import ChaosRun, record_figures, start_fleet, stop_fleet
from modules import TICKER_WAT


@pytest.fixture(scope="module")
def redis_chaos_fleet(_fleet):
    fleet = start_fleet(_fleet, "redis", {}, workers=3)
    yield fleet
    stop_fleet(fleet)


def check(run: ChaosRun, broker: str) -> None:
    record_figures(run.figures(broker))
    assert not run.lost, run.lost
    assert not run.duplicated, run.duplicated
    assert not run.wrong, run.wrong
    assert run.kills >= 3 and run.stops == 1 and run.terms == 1 and run.restarts == 1, run.figures(broker)
    ttl = run.fleet.settings.lease_ttl
    assert run.recoveries and max(run.recoveries) < 4 * ttl + 2, f"a job waited too long: {run.figures(broker)}"
    assert not run.dead_workers(), f"workers died on their own: {run.dead_workers()}"


@pytest.mark.timeout(240)
def test_chaos_on_redis_as_broker(redis_chaos_fleet) -> None:
    redis_chaos_fleet.register("chaos-ticker", TICKER_WAT)
    run = ChaosRun(redis_chaos_fleet, "chaos-ticker")
    run.run()
    check(run, "redis")
