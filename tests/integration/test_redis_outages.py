"""Workers live through Redis restarts, an outage longer than the lease TTL and a connection reset,
and keep consuming.

kombu's reconnect path crashed a worker (``'NoneType' object has no attribute 'hostname'``
in ``_connparams``) when Redis went away while the worker was both waiting for messages
(a free pool slot) and holding an unacknowledged one (a running job): the ``wide`` worker
here, two slots and one job, is in exactly that state at every restart.
"""

from __future__ import annotations

import pytest

from modules import SPIN, TICKER_WAT, ticker_params, ticker_result

STEPS = 600
WIDE = "outage-wide"


@pytest.fixture(scope="module")
def ticker(_fleet):
    return _fleet.register("ticker-outage", TICKER_WAT)


@pytest.fixture(scope="module")
def wide(_fleet):
    """A worker with two pool slots that reads its own queue."""
    from harness.procs import LocalWorker

    worker = LocalWorker("wide", _fleet.env, _fleet.tmp / "wide.log", concurrency=2, queues=WIDE).start().wait_ready()
    yield worker
    worker.stop(timeout=5)


def _claims(job) -> list[dict]:
    return [e for e in job.events() if e["event"] == "claimed"]


@pytest.mark.timeout(150)
def test_workers_survive_three_redis_restarts_and_a_long_outage_and_jobs_resume_from_checkpoints(fleet, ticker, wide) -> None:
    workers = {**fleet.workers, "wide": wide}
    mains = {name: w.proc.pid for name, w in workers.items()}
    ttl = fleet.settings.lease_ttl
    submit = fleet.client.submit
    jobs = [submit("ticker-outage", "tick", ticker_params(STEPS * 2, SPIN), queue=WIDE)]
    jobs += [submit("ticker-outage", "tick", ticker_params(STEPS, SPIN)) for _ in range(2)]
    for downtime in (0.2, 0.2, 1.5 * ttl):  # the last one outlives every lease
        fleet.wait_running(jobs[0], min_checkpoints=1, timeout=60)
        fleet.redis.restart(downtime=downtime)
    # and a connection reset: Redis drops every client's connection at once
    fleet.wait_running(jobs[0], min_checkpoints=1, timeout=60)
    fleet.client.fleet.client.client_kill_filter(_type="normal", skipme=False)
    records = [j.wait(90) for j in jobs]
    assert [r.status for r in records] == ["completed"] * len(jobs), [r.error or r.last_error for r in records]
    for job, steps in zip(jobs, (STEPS * 2, STEPS, STEPS)):
        assert job.result() == ticker_result(steps, SPIN)
        assert [e["event"] for e in job.events()].count("completed") == 1
    resumed = [c for c in _claims(jobs[0])[1:]]
    assert resumed, "the long outage did not move the job: the test proved nothing"
    assert all(c["from_checkpoint"] >= 1 for c in resumed), f"a resumed run started over: {jobs[0].events()}"

    for name, w in workers.items():
        log = w.log_since_start()
        assert w.alive and w.proc.pid == mains[name], f"worker {name} died: {log[-2000:]}"
        assert "Unrecoverable error" not in log, log[-3000:]
    assert "Connection to broker lost" in wide.log_since_start(), "the restarts never reached the worker"
    # every worker still consumes: two jobs at once on two single-slot workers run on both, and the wide one
    after = [submit("ticker-outage", "tick", ticker_params(STEPS, SPIN)) for _ in range(2)]
    after.append(submit("ticker-outage", "tick", ticker_params(10, SPIN), queue=WIDE))
    assert all(j.wait(60).status == "completed" for j in after)
    ran_on = {_claims(j)[0]["worker"].split("@", 1)[0] for j in after}
    assert ran_on == set(workers), f"only {ran_on} took jobs after the restarts"
