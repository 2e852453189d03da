"""Jobs on real workers: submit, pause, resume, cancel, slices, plain Celery clients, bad modules, limits."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from modules import ENDLESS, SPIN, BOMB_WAT, SPIN_WAT, TICKER_WAT, TRAP_WAT, ticker_params, ticker_result, unique
from wasmjob.errors import InvalidTransition, UnknownJob



@pytest.fixture(scope="module")
def ticker(_fleet):
    return _fleet.register("ticker", TICKER_WAT)


@pytest.mark.timeout(60)
def test_a_submitted_job_completes_with_the_uninterrupted_result(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(300, SPIN))
    seen: list[float] = []
    rec = job.wait(30, on_progress=lambda r: seen.append(r.progress))
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(300, SPIN)
    assert rec.attempts == 1 and rec.checkpoints >= 30 and rec.finished_at
    assert rec.fuel == 0 and rec.cpu_seconds > 0  # no fuel budget: the engine without fuel metering ran it
    assert seen[-1] == 1.0


@pytest.mark.timeout(60)
def test_a_job_with_a_fuel_budget_runs_metered(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(30, SPIN), limits={"fuel": 10**12})
    rec = job.wait(30)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(30, SPIN) and rec.fuel > 0


def _assert_nothing_will_run_it(fleet, job) -> None:
    """No lease held, no message pending in the outbox, not among the active jobs: no worker will run it."""
    redis, keys = fleet.client.fleet.client, fleet.client.fleet.keys
    assert not redis.exists(keys.lease(job.id)), "a stopped job still holds a lease"
    assert redis.zscore(keys.outbox, job.id) is None, "a stopped job still has a message to send"
    assert not redis.sismember(keys.active, job.id)


@pytest.mark.timeout(60)
def test_a_finished_job_expires_after_its_retention_and_the_sweep_prunes_it_from_the_list(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(10, SPIN), limits={"retention_seconds": 1})
    assert job.wait(30).status == "completed"
    records, client, keys = fleet.client.fleet.records, fleet.client.fleet.client, fleet.client.fleet.keys
    deadline = time.monotonic() + 30
    while records.exists(job.id) or client.zscore(keys.jobs, job.id) is not None:
        assert time.monotonic() < deadline, "the record expired and a worker's sweep pruned its index entry"
        time.sleep(0.1)
    assert not client.exists(keys.events(job.id), keys.state(job.id), keys.logs(job.id))


@pytest.mark.timeout(60)
def test_a_paused_job_checkpoints_stops_and_resumes_from_its_checkpoint(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(1500, SPIN))
    asked_at = fleet.wait_running(job, min_checkpoints=5).progress
    job.pause()
    rec = job.wait(20, until=("paused",))
    # the job itself is the clock (a loaded machine slows it and the watcher alike): the pause must
    # land within a few hundred of its 1500 steps, not when the run ends
    assert 0 < rec.progress < 1 and rec.progress - asked_at < 0.5, "a pause must reach the running job quickly"
    assert rec.worker is None
    paused_at = rec.checkpoints
    _assert_nothing_will_run_it(fleet, job)
    job.resume()
    rec = job.wait(30)
    assert rec.status == "completed" and job.result() == ticker_result(1500, SPIN)
    claims = [e for e in job.events() if e["event"] == "claimed"]
    assert claims[-1]["from_checkpoint"] == paused_at, "the job ran while it was paused"


@pytest.mark.timeout(60)
def test_a_cancelled_job_stops_and_never_runs_again(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(ENDLESS, SPIN))
    fleet.wait_running(job)
    job.cancel()
    rec = job.wait(10)
    assert rec.status == "cancelled"
    stopped = rec.checkpoints
    with pytest.raises(InvalidTransition, match="cancelled"):
        job.resume()
    _assert_nothing_will_run_it(fleet, job)
    assert job.record().checkpoints == stopped
    paused = fleet.client.submit("ticker", "tick", ticker_params(ENDLESS, SPIN))
    paused.pause()
    paused.wait(10, until=("paused",))
    assert paused.cancel() == "cancelled"
    assert paused.record().status == "cancelled"


@pytest.mark.timeout(60)
def test_a_long_job_runs_in_slices_and_each_continues_from_the_last_checkpoint(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(1200, SPIN), limits={"slice_seconds": 0.5})
    rec = job.wait(40)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(1200, SPIN)
    events = [e["event"] for e in job.events()]
    assert events.count("continued") >= 2 and rec.attempts == events.count("claimed")


@pytest.mark.timeout(60)
def test_a_plain_celery_client_sends_a_job_by_name_and_the_worker_creates_its_record(fleet, ticker) -> None:
    from celery import Celery

    plain = Celery("any-client", broker=fleet.redis.url, backend=fleet.redis.url)
    job_id = str(uuid.uuid4())
    try:
        result = plain.send_task(
            "wasmjob.run",
            kwargs={"job_id": job_id, "extension": "ticker@1.0.0", "job": "tick", "params": ticker_params(50, SPIN)},
            queue="wasmjob",
            serializer="json",
        )
        value = result.get(timeout=30)
    finally:
        plain.close()
    assert value == ticker_result(50, SPIN)  # the job's result, written when the job ended
    rec = fleet.client.job(job_id).record()
    assert rec.status == "completed" and rec.ext_id == "ticker" and rec.digest == ticker.digest


@pytest.mark.timeout(90)
def test_malformed_and_malicious_modules_fail_with_their_reason_and_workers_serve_the_next_job(fleet, ticker) -> None:
    client = fleet.client
    fleet.register("trapper", TRAP_WAT)
    fleet.register("bomber", BOMB_WAT)
    fleet.register("spinner", SPIN_WAT)
    garbage = fleet.register("garbage", unique(TICKER_WAT, uuid.uuid4().hex), version="6.6.6")
    fleet.client.fleet.client.set(fleet.client.fleet.keys.module(garbage.hex), b"this is not wasm")
    pids = {n: w.proc.pid for n, w in fleet.workers.items()}

    trap = client.submit("trapper", "tick")
    bomb = client.submit("bomber", "tick", limits={"max_memory_mb": 512})  # more than its manifest allows
    spin = client.submit("spinner", "tick", limits={"timeout_seconds": 0.3})
    bad = client.submit("garbage@6.6.6", "tick", ticker_params(10))
    assert trap.wait(20).error.startswith("trap: unreachable")
    assert "memory limit of 16 MiB" in bomb.wait(20).error
    assert "refusing to run them" in bad.wait(20).error
    rec = spin.wait(40)
    assert rec.status == "failed" and "no progress across 3 attempts" in rec.error and "timed out" in rec.error
    assert rec.attempts == 3
    ok = client.submit("ticker", "tick", ticker_params(100, SPIN))
    assert ok.wait(20).status == "completed"
    assert {n: w.proc.pid for n, w in fleet.workers.items()} == pids and all(w.alive for w in fleet.workers.values())
    with pytest.raises(UnknownJob):
        client.submit("ticker", "no-such-job")


@pytest.mark.timeout(60)
def test_concurrent_jobs_is_enforced_across_the_fleet_and_waiting_jobs_are_not_failed(fleet) -> None:
    ext = f"solo-{uuid.uuid4().hex[:6]}"
    fleet.register(ext, TICKER_WAT, concurrent_jobs=1)
    jobs = [fleet.client.submit(ext, "tick", ticker_params(150, SPIN)) for _ in range(3)]
    most = 0
    done = threading.Event()

    redis, keys = fleet.client.fleet.client, fleet.client.fleet.keys

    def sample() -> None:
        nonlocal most
        while not done.is_set():
            pipe = redis.pipeline(transaction=True)  # one atomic snapshot of all three
            for j in jobs:
                pipe.hget(keys.job(j.id), "status")
            most = max(most, sum(1 for s in pipe.execute() if s == b"running"))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        records = [j.wait(40) for j in jobs]
    finally:
        done.set()
        sampler.join()
    assert [r.status for r in records] == ["completed"] * 3
    assert most == 1
    windows = sorted((r.started_at, r.finished_at) for r in records)
    for (_, end), (start, _) in zip(windows, windows[1:]):
        assert start >= end, "two jobs of the extension ran at the same time"  # both times from Redis's clock
