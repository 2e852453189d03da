"""A queued job whose message vanished from the broker (lost data, a deleted queue, a message
removed by hand) goes out again within a few lease TTLs; a backlog never looks lost."""

from __future__ import annotations

import time

import pytest

from modules import ENDLESS, SPIN, TICKER_WAT, ticker_params, ticker_result

UNREAD = "reliability-unread"  # a queue no worker reads


@pytest.fixture(scope="module")
def ticker(_fleet):
    return _fleet.register("ticker-lost", TICKER_WAT)


def _lost_after(fleet) -> float:
    from wasmjob.fleet.factory import LOST_AFTER_TTLS

    return LOST_AFTER_TTLS * fleet.settings.lease_ttl


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.timeout(60)
def test_a_queued_job_whose_message_was_removed_is_sent_again_and_completes_once(fleet, ticker) -> None:
    client, redis = fleet.client, fleet.client.fleet.client
    job = client.submit("ticker-lost", "tick", ticker_params(30, SPIN), queue=UNREAD)
    _wait(lambda: redis.llen(UNREAD) == 1, 10, "the message never reached its queue")
    assert redis.delete(UNREAD) == 1  # the broker lost it
    removed_at = time.time()
    queued_at = job.record().queued_at

    def redispatched() -> list[dict]:
        return [e for e in job.events() if e["event"] == "redispatched"]

    lost_after = _lost_after(fleet)
    _wait(lambda: bool(redispatched()), lost_after + 4 * fleet.settings.lease_ttl, "the lost message was never sent again")
    event = redispatched()[0]
    assert (event["from_dispatch"], event["dispatch"]) == (1, 2)
    assert event["ts"] - queued_at >= lost_after - 0.1, "a job was re-sent before it waited the bound"
    print(f"\nsent again {event['ts'] - removed_at:.2f}s after its message was removed (bound {lost_after:g}s)")
    # the new message went where the record says, the unread queue: hand it to the workers' queue
    _wait(lambda: redis.llen(UNREAD) == 1, 10, "the new dispatch was not published")
    assert redis.rpoplpush(UNREAD, fleet.settings.queue)
    final = job.wait(30)
    assert final.status == "completed", final.error
    assert job.result() == ticker_result(30, SPIN)
    events = [e["event"] for e in job.events()]
    assert events.count("completed") == 1 and events.count("redispatched") == 1, events


@pytest.mark.timeout(90)
def test_a_backlog_waiting_past_the_bound_is_never_sent_again(fleet, ticker) -> None:
    client, records, redis = fleet.client, fleet.client.fleet.records, fleet.client.fleet.client
    blockers = [client.submit("ticker-lost", "tick", ticker_params(ENDLESS, SPIN)) for _ in fleet.workers]
    for b in blockers:
        fleet.wait_running(b)
    backlog = [client.submit("ticker-lost", "tick", ticker_params(20, SPIN)) for _ in range(6)]
    lost_after_ms = _lost_after(fleet) * 1000
    created = {h.id: redis.zscore(fleet.client.fleet.keys.queued, h.id) for h in backlog}
    assert all(created.values()), "the backlog is not in the queued index"

    def all_looked_at() -> bool:
        scores = [redis.zscore(fleet.client.fleet.keys.queued, job_id) for job_id in created]
        return all(s is not None and s >= created[j] + lost_after_ms for j, s in zip(created, scores))

    # the sweep looked at every backlogged job once it waited past the bound, and left it alone
    _wait(all_looked_at, _lost_after(fleet) + 10, "the sweep never looked at the backlog")
    assert redis.llen(fleet.settings.queue) > 0
    for b in blockers:
        b.cancel()
    for h in backlog:
        assert h.wait(60).status == "completed"
        assert h.result() == ticker_result(20, SPIN)
    for h in backlog:
        events = [e["event"] for e in h.events()]
        assert "redispatched" not in events, events
        assert events.count("completed") == 1, events
    assert records.get(backlog[0].id).dispatch == 1
