"""RabbitMQ as the broker, Redis as the job store: priorities, pause/resume/cancel, slices,
recovery and chaos. Skipped when no RabbitMQ listens on 127.0.0.1:5672."""

from __future__ import annotations

import os
import time

import pytest

from chaos import ChaosRun, drop_rabbitmq_vhost, rabbitmq_vhost, record_figures, start_fleet, stop_fleet
from modules import ENDLESS, SPIN, TICKER_WAT, ticker_params, ticker_result
from test_chaos import check

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


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


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


def _ready(app, queue: str) -> int:
    """Messages ready in a RabbitMQ queue (a passive declare)."""
    with app.connection_for_write() as conn, conn.channel() as channel:
        return channel.queue_declare(queue=queue, passive=True).message_count


@pytest.mark.timeout(120)
def test_a_queued_job_whose_message_rabbitmq_lost_is_sent_again_and_completes_once(rabbit) -> None:
    from wasmjob.fleet.factory import LOST_AFTER_TTLS

    app, unread = rabbit.client.app, f"unread-{os.getpid()}"  # a queue no worker reads, yet
    job = rabbit.client.submit("rabbit-ticker", "tick", ticker_params(30, SPIN), queue=unread)
    try:
        _until(lambda: _ready(app, unread) == 1, 10, "the message never reached its queue")
        with app.connection_for_write() as conn, conn.channel() as channel:
            assert channel.queue_purge(unread) == 1  # the broker lost it
        removed_at = time.time()

        def redispatched() -> list[dict]:
            return [e for e in job.events() if e["event"] == "redispatched"]

        ttl = rabbit.settings.lease_ttl
        _until(lambda: bool(redispatched()), (LOST_AFTER_TTLS + 4) * ttl, "the lost message was never sent again")
        event = redispatched()[0]
        assert (event["from_dispatch"], event["dispatch"]) == (1, 2)
        assert event["ts"] - job.record().queued_at >= LOST_AFTER_TTLS * ttl - 0.1, "re-sent before the bound"
        record_figures(f"rabbitmq lost message: sent again {event['ts'] - removed_at:.2f}s after its purge")
        _until(lambda: _ready(app, unread) == 1, 10, "the new dispatch was not published")
        app.control.add_consumer(unread, reply=True)  # Celery's own tool: the workers read it now
        final = job.wait(30)
        assert final.status == "completed", final.error
        assert job.result() == ticker_result(30, SPIN)
        events = [e["event"] for e in job.events()]
        assert events.count("completed") == 1 and events.count("redispatched") == 1, events
    finally:
        app.control.cancel_consumer(unread, reply=True)
        with app.connection_for_write() as conn, conn.channel() as channel:
            channel.queue_delete(unread)


@pytest.mark.timeout(60)
def test_the_sweep_sees_which_messages_rabbitmq_workers_hold(rabbit) -> None:
    from wasmjob.fleet.deliveries import AmqpDeliveries

    # it must still run when the second ask (after the first's 2 s) is answered, whatever this machine's speed
    job = rabbit.client.submit("rabbit-ticker", "tick", ticker_params(ENDLESS, SPIN))
    try:
        rabbit.wait_running(job, timeout=30)
        held = AmqpDeliveries(rabbit.client.app, timeout=2.0).held()
        seen = {(d.job_id, d.dispatch) for d in held}
        record = job.record()
    finally:
        job.cancel()
    assert (job.id, 1) in seen, (held, record)
    assert job.wait(30).status == "cancelled"


@pytest.mark.timeout(240)
def test_chaos_on_rabbitmq_as_broker(rabbit) -> None:
    run = ChaosRun(rabbit, "rabbit-ticker")
    run.run()
    check(run, "rabbitmq")
