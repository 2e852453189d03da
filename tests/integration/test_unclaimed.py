"""A message taken by a worker that dies before claiming its job: the job must not wait for
Celery's visibility timeout (an hour), but go out again within a few lease TTLs."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from modules import SPIN, TICKER_WAT, ticker_params, ticker_result

PARKED = "reliability-parked"

# A bare kombu consumer on the fleet's broker: takes one message of PARKED without acking
# it (kombu parks it in its unacked hash, as a Celery worker's delivery does), says so, and
# waits to be SIGKILLed: a worker dying between taking a message and claiming its job.
TAKER = f"""
import sys
from kombu import Exchange, Queue
from wasmjob.fleet.factory import create_app

app = create_app()
with app.connection_for_read() as conn:
    queue = Queue({PARKED!r}, Exchange({PARKED!r}, type="direct"), routing_key={PARKED!r})
    taken = []
    consumer = conn.Consumer(queue, callbacks=[lambda body, message: taken.append(message)],
                             accept=["json", "msgpack"], prefetch_count=1)
    consumer.consume()
    while not taken:
        conn.drain_events(timeout=30)
    print("taken", taken[0].delivery_tag, flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def ticker(_fleet):
    return _fleet.register("ticker-unclaimed", TICKER_WAT)


def _unacked_tags(fleet) -> set[bytes]:
    from wasmjob.fleet.deliveries import UnackedDeliveries

    options = dict(fleet.client.app.conf.broker_transport_options or {})
    keys = UnackedDeliveries.for_transport(fleet.client.fleet.client, options)
    return set(fleet.client.fleet.client.hkeys(keys.hash_key))


@pytest.mark.timeout(90)
def test_a_message_taken_by_a_worker_killed_before_its_claim_goes_out_again_from_the_checkpoint(fleet, ticker) -> None:
    client, records = fleet.client, fleet.client.fleet.records
    job = client.submit("ticker-unclaimed", "tick", ticker_params(1500, SPIN))
    fleet.wait_running(job, min_checkpoints=15)
    job.pause()
    deadline = time.monotonic() + 30
    while job.status() != "paused":
        assert time.monotonic() < deadline, job.record()
        time.sleep(0.05)
    checkpoints = job.record().checkpoints
    # resume by hand and publish the new dispatch to a queue no worker reads, where the taker waits
    records.control(job.id, "resume")
    rec = job.record()
    from wasmjob.fleet.dispatch import Dispatcher

    env = {**os.environ, **fleet.env}
    with subprocess.Popen([sys.executable, "-c", TAKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True) as taker:
        assert Dispatcher(client.app, client.fleet).publish(dataclasses.replace(rec, queue=PARKED))
        assert taker.stdout is not None
        line = taker.stdout.readline()
        assert line.startswith("taken"), line
        assert line.split()[1].encode() in _unacked_tags(fleet), "the message is not parked in kombu's unacked hash"
        taker.kill()
        killed_at = time.time()
    assert job.status() == "queued" and job.record().dispatch == rec.dispatch

    final = job.wait(60)
    assert final.status == "completed", final.error
    assert job.result() == ticker_result(1500, SPIN)
    events = job.events()
    redispatched = [e for e in events if e["event"] == "redispatched"]
    assert [(e["from_dispatch"], e["dispatch"]) for e in redispatched] == [(rec.dispatch, rec.dispatch + 1)]
    resumed = [e for e in events if e["event"] == "claimed"][-1]
    assert resumed["from_checkpoint"] >= checkpoints
    ttl = fleet.settings.lease_ttl
    waited = resumed["ts"] - killed_at
    print(f"\nrunning again {waited:.2f}s after its taker was killed (lease TTL {ttl:g}s)")
    assert waited < 4 * ttl + 2, "the job waited far longer than a few lease TTLs"
    assert [e["event"] for e in events].count("completed") == 1
    assert line.split()[1].encode() not in _unacked_tags(fleet), "the stale parked message was left behind"
