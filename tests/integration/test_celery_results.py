"""Celery's own view of a WasmJob: ``AsyncResult(task_id).get()`` is the job's outcome however many
runs it took, and ``revoke`` (with or without terminate, of the first task id or a slice's) cancels
the job through the fenced path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import TaskRevokedError

from modules import ENDLESS, SPIN, TICKER_WAT, TRAP_WAT, ticker_params, ticker_result



@pytest.fixture(scope="module")
def plain(_fleet) -> Iterator[Celery]:
    """A Celery app with defaults only: what any Celery user holds."""
    app = Celery("plain", broker=_fleet.redis.url, backend=_fleet.redis.url)
    yield app
    app.close()


@pytest.fixture(scope="module")
def exts(_fleet) -> None:
    _fleet.register("resticker", TICKER_WAT)
    _fleet.register("restrap", TRAP_WAT)


@pytest.mark.timeout(60)
def test_the_submitters_task_id_resolves_when_the_job_ends_after_many_slices_and_a_pause(fleet, exts, plain) -> None:
    job = fleet.client.submit("resticker", "tick", ticker_params(800, SPIN), limits={"slice_seconds": 0.4})
    result = plain.AsyncResult(job.id)
    fleet.wait_running(job, min_checkpoints=3)
    job.pause()
    job.wait(10, until=("paused",))
    assert result.state == "PENDING" and not result.ready()
    job.resume()
    assert result.get(timeout=40) == ticker_result(800, SPIN)
    assert job.async_result().get(timeout=1) == ticker_result(800, SPIN)
    rec = job.record()
    assert rec.attempts >= 3 and rec.task_id == job.id
    assert result.date_done is not None and abs(result.date_done.timestamp() - rec.finished_at) < 5


@pytest.mark.timeout(60)
def test_a_failed_job_raises_its_reason_and_a_cancelled_one_raises_revoked(fleet, exts, plain) -> None:
    failed = fleet.client.submit("restrap", "tick")
    with pytest.raises(Exception, match="trap: unreachable") as info:
        plain.AsyncResult(failed.id).get(timeout=30)
    assert type(info.value).__name__ == "JobFailed" and failed.id in str(info.value)
    assert plain.AsyncResult(failed.id).state == "FAILURE"

    cancelled = fleet.client.submit("resticker", "tick", ticker_params(ENDLESS, SPIN))
    fleet.wait_running(cancelled)
    cancelled.cancel()
    with pytest.raises(TaskRevokedError, match="cancelled"):
        plain.AsyncResult(cancelled.id).get(timeout=30)


def _cancelled_and_kept(fleet: Any, job: Any, checkpoints_before: int) -> Any:
    rec = job.wait(20)
    assert rec.status == "cancelled", rec
    assert rec.checkpoints >= checkpoints_before and rec.progress > 0  # the last checkpoint is kept
    return rec


@pytest.mark.timeout(90)
def test_revoke_cancels_the_job_with_or_without_terminate_and_never_kills_a_run(fleet, exts, plain) -> None:
    pids = {n: w.proc.pid for n, w in fleet.workers.items()}
    usage_before = {(u.extension, u.tenant): u for u in fleet.client.usage()}

    first = fleet.client.submit("resticker", "tick", ticker_params(ENDLESS, SPIN))
    rec = fleet.wait_running(first, min_checkpoints=3)
    plain.control.revoke(first.id)  # the first task id, no terminate
    _cancelled_and_kept(fleet, first, rec.checkpoints)

    sliced = fleet.client.submit("resticker", "tick", ticker_params(ENDLESS, SPIN), limits={"slice_seconds": 0.3})
    deadline = time.monotonic() + 20
    while (rec := sliced.record()).dispatch < 3 or rec.status != "running" or not rec.checkpoints:
        assert time.monotonic() < deadline, rec
        time.sleep(0.05)
    plain.control.revoke(f"{sliced.id}.{rec.dispatch}", terminate=True, signal="SIGKILL")  # a slice's id
    _cancelled_and_kept(fleet, sliced, rec.checkpoints)
    with pytest.raises(TaskRevokedError):
        plain.AsyncResult(sliced.id).get(timeout=10)

    queued = fleet.client.submit("resticker", "tick", ticker_params(10), queue="nobody-reads-this")
    plain.control.revoke(queued.id)
    assert queued.wait(10).status == "cancelled"

    # the runs were billed, no worker was killed, and the sweep never brings the jobs back
    usage = {(u.extension, u.tenant): u for u in fleet.client.usage()}
    key = next(k for k in usage if k[0] == "resticker")
    before = usage_before.get(key)
    assert usage[key].cancelled - (before.cancelled if before else 0) >= 2
    assert usage[key].wall_seconds > (before.wall_seconds if before else 0)
    time.sleep(fleet.settings.lease_ttl + 2 * fleet.settings.sweep_interval)
    assert {first.status(), sliced.status(), queued.status()} == {"cancelled"}
    assert {n: w.proc.pid for n, w in fleet.workers.items()} == pids and all(w.alive for w in fleet.workers.values())
