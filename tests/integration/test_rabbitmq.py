"""RabbitMQ as the broker, Redis as the job store: priorities, pause/resume/cancel, slices,
recovery and chaos. Skipped when no RabbitMQ listens on 127.0.0.1:5672."""

from __future__ import annotations

import os
import time

import pytest

from chaos import ChaosRun, drop_rabbitmq_vhost, rabbitmq_vhost, start_fleet, stop_fleet
from modules import TICKER_WAT, ticker_params, ticker_result
from test_chaos import check

SPIN = 2_000_000
LONG = 2000  # steps: seconds of work, so the backlog forms behind it


@pytest.fixture(scope="module")
def rabbit(_fleet):
    vhost = rabbitmq_vhost(f"wasmjob-test-{os.getpid()}")
    if vhost is None:
        pytest.skip("no RabbitMQ on 127.0.0.1:5672")
    url = f"amqp://guest:guest@127.0.0.1:5672/{'' if vhost == '/' else vhost}"
    fleet = start_fleet(_fleet, f"rabbit{os.getpid()}", {"WASMJOB_BROKER_URL": url}, workers=3)
    fleet.register("rabbit-ticker", TICKER_WAT)
    yield fleet
    stop_fleet(fleet)
    drop_rabbitmq_vhost(vhost)


def _first_claim(job) -> float:
    return next(e["ts"] for e in job.events() if e["event"] == "claimed")


def _wait_status(job, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while job.status() != status:
        assert time.monotonic() < deadline, job.record()
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_rabbitmq_runs_priorities_pause_resume_cancel_and_slices(rabbit) -> None:
    submit = rabbit.client.submit
    assert rabbit.settings.broker.startswith("amqp://") and rabbit.client.app.conf.broker_url.startswith("amqp://")
    # three long jobs fill the three workers; then a backlog where the last, urgent job goes first
    busy = [submit("rabbit-ticker", "tick", ticker_params(LONG, SPIN)) for _ in range(3)]
    for job in busy:
        rabbit.wait_running(job, min_checkpoints=1, timeout=60)
    low = [submit("rabbit-ticker", "tick", ticker_params(20, SPIN), priority=1) for _ in range(3)]
    urgent = submit("rabbit-ticker", "tick", ticker_params(20, SPIN), priority=9)
    busy[0].pause()
    _wait_status(busy[0], "paused")
    paused_at = busy[0].record().checkpoints
    busy[1].cancel()
    busy[2].cancel()
    assert all(j.wait(60).status == "completed" for j in [*low, urgent])
    assert _first_claim(urgent) < min(_first_claim(j) for j in low), "priority 9 did not overtake priority 1"
    assert busy[1].wait(30).status == "cancelled"
    busy[0].resume()
    assert busy[0].wait(60).status == "completed" and busy[0].result() == ticker_result(LONG, SPIN)
    resumed = [e for e in busy[0].events() if e["event"] == "claimed"][-1]
    assert resumed["from_checkpoint"] >= paused_at >= 1
    # a job cut in slices continues in new messages through RabbitMQ
    sliced = submit("rabbit-ticker", "tick", ticker_params(300, SPIN), limits={"slice_seconds": 0.3})
    assert sliced.wait(60).status == "completed" and sliced.result() == ticker_result(300, SPIN)
    assert "continued" in [e["event"] for e in sliced.events()]
    assert busy[2].wait(30).status == "cancelled"


@pytest.mark.timeout(90)
def test_flower_sees_the_rabbitmq_fleet_and_its_jobs(rabbit, tmp_path) -> None:
    from harness.procs import LocalFlower

    flower = LocalFlower(rabbit.env, tmp_path / "flower.log")
    with flower.start(workers=tuple(rabbit.workers), timeout=30):
        job = rabbit.client.submit("rabbit-ticker", "tick", ticker_params(20, SPIN))
        assert job.wait(30).status == "completed"
        deadline = time.monotonic() + 20
        while True:
            tasks = flower.api("/api/tasks")
            if any(t.get("state") == "SUCCESS" and job.id in str(t.get("kwargs", "")) for t in tasks.values()):
                break
            assert time.monotonic() < deadline, tasks
            time.sleep(0.2)


@pytest.mark.timeout(240)
def test_chaos_on_rabbitmq_as_broker(rabbit) -> None:
    run = ChaosRun(rabbit, "rabbit-ticker")
    run.run()
    check(run, "rabbitmq")
