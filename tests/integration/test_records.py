"""Job records: every status change is one Lua script, fenced and checked against the dispatch number."""

from __future__ import annotations

import time
import uuid

import pytest

from wasmjob.errors import InvalidTransition, LeaseLost

pytestmark = pytest.mark.timeout(30)
TENANT = "00000000-0000-0000-0000-000000000000"


def make_job(records, ext_id: str = "ext", dispatch: int = 1, concurrent: int = 0) -> str:
    job = str(uuid.uuid4())
    records.create(
        job, extension=ext_id, digest="sha256:" + "0" * 64, ext_id=ext_id, ext_version="1", job="main",
        params={"n": 1}, tenant=None, queue=None, priority=None, limits={}, dispatch=dispatch, enqueue=True,
        concurrent=concurrent,
    )
    return job


def claim(records, job: str, dispatch: int = 1, owner: str = "w/1/a", ttl: float = 5, ext_id: str = "ext"):
    return records.claim(job, ext_id, owner, ttl, dispatch, 1.0)


def finish(records, job: str, token: int, kind: str = "completed", ext_id: str = "ext", **kw):
    return records.finish(job, ext_id=ext_id, tenant=TENANT, token=token, kind=kind, **kw)


def test_a_new_job_is_queued_with_its_params_and_in_the_outbox(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    rec = records.get(job)
    assert (rec.status, rec.dispatch, rec.params, rec.attempts) == ("queued", 1, {"n": 1}, 0)
    assert redis_fleet.client.zscore(redis_fleet.keys.outbox, job) is not None
    assert not records.create(job, extension="x", digest="", ext_id="x", ext_version="", job="j", params=None,
                              tenant=None, queue=None, priority=None, limits=None, dispatch=1, enqueue=False)


def test_an_outbox_ack_drops_the_entry_only_for_the_dispatch_it_sent(redis_fleet) -> None:
    records, outbox = redis_fleet.records, redis_fleet.keys.outbox
    job = make_job(records)
    records.control(job, "pause")
    _, dispatch, _ = records.control(job, "resume")  # a newer message (dispatch 2) is due now
    assert dispatch == 2
    records.outbox_ack(job, 1)  # the late ack of the first message
    assert redis_fleet.client.zscore(outbox, job) is not None, "a stale ack dropped the newer message"
    records.outbox_ack(job, 2)
    assert redis_fleet.client.zscore(outbox, job) is None


def test_claiming_takes_the_lease_marks_running_and_leaves_the_outbox(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    c = claim(records, job)
    assert c.outcome == "ok" and c.token == 1 and c.attempts == 1
    assert c.record is not None and c.record.params == {"n": 1} and c.state is None
    rec = records.get(job)
    assert rec.status == "running" and rec.worker == "w/1/a"
    assert redis_fleet.client.zscore(redis_fleet.keys.outbox, job) is None
    assert job in records.active_ids()
    assert claim(records, job, owner="other/2/b").outcome == "held"
    assert claim(records, job).token == c.token  # the same claim retried gets the same answer


def test_a_stale_delivery_is_skipped(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records, dispatch=3)
    assert claim(records, job, dispatch=2).outcome == "skip"
    assert claim(records, job, dispatch=3).outcome == "ok"


def test_a_job_completes_exactly_once(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    token = claim(records, job).token
    done = finish(records, job, token, result={"answer": 42}, fuel=10, wall_seconds=0.5)
    assert done.status == "completed"
    rec = records.get(job)
    assert rec.result == {"answer": 42} and rec.progress == 1.0 and rec.fuel == 10
    with pytest.raises(LeaseLost):
        finish(records, job, token, result={"answer": 0})
    assert claim(records, job).outcome == "skip"
    assert records.get(job).result == {"answer": 42}
    assert [e["event"] for e in records.events(job)].count("completed") == 1


def test_pause_resume_and_cancel_of_queued_jobs(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    assert records.control(job, "pause") == ("paused", 1, False)
    assert claim(records, job).outcome == "skip"
    assert records.control(job, "resume") == ("queued", 2, True)
    assert claim(records, job, dispatch=1).outcome == "skip"  # the message sent before the pause is stale
    other = make_job(records)
    assert records.control(other, "cancel")[0] == "cancelled"
    with pytest.raises(InvalidTransition):
        records.control(other, "resume")


def test_a_running_job_learns_of_pause_and_cancel_through_its_control_field(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    token = claim(records, job).token
    assert records.control(job, "pause")[0] == "running"
    assert records.watch_fields(job, "nobody")[0] == "pause"
    assert finish(records, job, token, kind="interrupted", detail="pause").status == "paused"
    status, dispatch, send = records.control(job, "resume")
    assert (status, send) == ("queued", True)
    token = claim(records, job, dispatch=dispatch).token
    records.control(job, "cancel")
    assert finish(records, job, token, kind="interrupted", detail="cancel").status == "cancelled"
    assert claim(records, job, dispatch=dispatch + 1).outcome == "skip"


def test_resume_withdraws_a_pause_the_running_job_has_not_seen_yet(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    token = claim(records, job).token
    records.control(job, "pause")
    records.control(job, "resume")
    done = finish(records, job, token, kind="interrupted", detail="pause")
    assert done.status == "queued" and done.dispatch == 2


def test_only_a_terminal_job_has_a_finished_at_and_only_a_paused_one_a_paused_at(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    token = claim(records, job).token
    records.control(job, "pause")
    assert finish(records, job, token, kind="interrupted", detail="pause").status == "paused"
    rec = records.get(job)
    assert rec.finished_at is None and rec.paused_at is not None  # paused by its worker's finish
    _, dispatch, _ = records.control(job, "resume")
    rec = records.get(job)
    assert (rec.status, rec.finished_at, rec.paused_at) == ("queued", None, None)
    token = claim(records, job, dispatch=dispatch, ttl=0.2).token
    records.control(job, "pause")  # the worker dies before it sees the pause: the sweep pauses it
    deadline = time.monotonic() + 10
    while (done := records.recover(job)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert done is not None and done.status == "paused"
    rec = records.get(job)
    assert rec.finished_at is None and rec.paused_at is not None
    _, dispatch, _ = records.control(job, "resume")
    assert records.control(job, "pause")[0] == "paused"  # paused while queued, by the client
    rec = records.get(job)
    assert rec.finished_at is None and rec.paused_at is not None
    _, dispatch, _ = records.control(job, "resume")
    token = claim(records, job, dispatch=dispatch).token
    assert records.get(job).finished_at is None  # running again: not finished
    finish(records, job, token, kind="completed", result={})
    rec = records.get(job)
    assert rec.status == "completed" and rec.finished_at is not None and rec.paused_at is None
    other = make_job(records)
    records.control(other, "pause")
    records.control(other, "cancel")  # cancelled while paused: finished now, no longer paused
    rec = records.get(other)
    assert rec.status == "cancelled" and rec.finished_at is not None and rec.paused_at is None


def test_a_job_without_new_checkpoints_across_attempts_fails(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    dispatch = 1
    for attempt in range(1, 4):
        token = claim(records, job, dispatch=dispatch).token
        done = finish(records, job, token, kind="retry", error="timed out", detail="timed out")
        dispatch = done.dispatch
    assert done.status == "failed"
    assert "no progress across 3 attempts" in records.get(job).error


def test_an_attempt_that_checkpointed_resets_the_stall_count(redis_fleet) -> None:
    records, store = redis_fleet.records, redis_fleet.store
    job = make_job(records)
    dispatch = 1
    for attempt in range(6):
        token = claim(records, job, dispatch=dispatch).token
        store.save_checkpoint(job, token, str(attempt).encode())
        dispatch = finish(records, job, token, kind="retry", detail="timed out").dispatch
    assert records.get(job).status == "queued"


def test_the_sweep_script_requeues_a_job_whose_lease_expired(redis_fleet) -> None:
    records, store = redis_fleet.records, redis_fleet.store
    job = make_job(records)
    token = claim(records, job, ttl=0.1).token
    store.save_checkpoint(job, token, b"state")
    assert records.recover(job) is None  # alive
    time.sleep(0.15)
    done = records.recover(job)
    assert done is not None and (done.status, done.dispatch) == ("queued", 2)
    rec = records.get(job)
    assert rec.recoveries == 1 and rec.worker is None and "lost" in rec.last_error
    resumed = claim(records, job, dispatch=2, owner="w2/1/b")
    assert resumed.checkpoints == 1 and resumed.state == b"state"
    assert claim(records, job, dispatch=2, ext_id="other").outcome == "ext"


def test_concurrent_jobs_over_the_limit_wait_and_the_next_is_woken_when_a_slot_frees(redis_fleet) -> None:
    records = redis_fleet.records
    ext = f"limited-{uuid.uuid4().hex[:6]}"
    a, b = make_job(records, ext, concurrent=1), make_job(records, ext, concurrent=1)
    token = claim(records, a, ext_id=ext).token
    waiting = claim(records, b, ext_id=ext, owner="w2/1/b")
    assert waiting.outcome == "wait"
    assert "waiting for a free slot" in records.get(b).message
    done = finish(records, a, token, ext_id=ext)
    assert done.woken == b
    assert claim(records, b, ext_id=ext, owner="w2/1/b").outcome == "ok"


def test_a_lost_run_frees_its_slot_and_wakes_the_longest_waiter(redis_fleet) -> None:
    records, keys, client = redis_fleet.records, redis_fleet.keys, redis_fleet.client
    ext = f"limited-{uuid.uuid4().hex[:6]}"
    a, b, c = (make_job(records, ext, concurrent=1) for _ in range(3))
    claim(records, a, ext_id=ext, ttl=0.1)
    assert claim(records, b, ext_id=ext, owner="w2/1/b").outcome == "wait"
    assert claim(records, c, ext_id=ext, owner="w2/1/c").outcome == "wait"
    time.sleep(0.15)
    done = records.recover(a)
    assert done is not None and done.woken in (b, c)  # the earliest arrival (b and c may share a millisecond)
    still = c if done.woken == b else b
    assert client.zrange(keys.ext_waiting(ext), 0, -1) == [still.encode()]
    assert claim(records, b, ext_id=ext, owner="w2/1/b").outcome == "ok"


def test_redispatch_moves_only_a_job_still_queued_at_that_dispatch(redis_fleet) -> None:
    records = redis_fleet.records
    job = make_job(records)
    assert records.redispatch(job, 1) == 0  # its outbox entry sends it: nothing is lost
    records.outbox_ack(job, 1)  # sent
    assert records.redispatch(job, 0) == 0  # an older dispatch: nothing to do
    assert records.redispatch(job, 1) == 2
    assert records.redispatch(job, 1) == 0  # done already
    assert claim(records, job, dispatch=1).detail == "stale"
    token = claim(records, job, dispatch=2).token
    assert records.redispatch(job, 2) == 0  # claimed: its run owns it
    assert records.dispatch_states([job, "no-such-job"]) == [("running", 2), ("", -1)]
    assert [e["event"] for e in records.events(job)].count("redispatched") == 1
    finish(records, job, token)


def test_usage_accumulates_per_extension_and_tenant(redis_fleet) -> None:
    records = redis_fleet.records
    ext = f"billed-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        job = make_job(records, ext)
        finish(records, job, claim(records, job, ext_id=ext).token, ext_id=ext, fuel=100, wall_seconds=0.25)
    records.add_abandoned_usage(ext, TENANT, 5, 0.1)
    row = next(r for r in records.usage() if r.extension == ext)
    assert (row.runs, row.fuel, row.completed, row.abandoned) == (3, 205, 2, 1)
    assert row.wall_seconds == pytest.approx(0.6)


def test_a_run_whose_token_number_a_failover_issued_again_cannot_write(redis_fleet) -> None:
    """A claim the old master never replicated is lost with it: the new master issues the same token
    number to another run. The scripts compare the whole lease value, so the older run is refused."""
    records, store, client, keys = redis_fleet.records, redis_fleet.store, redis_fleet.client, redis_fleet.keys
    job = make_job(records)
    old = claim(records, job, owner="w1/7/aaaa").token
    store.save_checkpoint(job, old, b"old run, before the failover")
    # the new master never saw the claim: the fence counter is back, the job queued, no lease
    client.hset(keys.job(job), mapping={"fence": int(old) - 1, "status": "queued"})
    client.delete(keys.lease(job))
    client.srem(keys.active, job)
    new = claim(records, job, owner="w2/9/bbbb").token
    assert int(new) == int(old), "the forged failover did not issue the same token number again"
    with pytest.raises(LeaseLost):
        store.save_checkpoint(job, old, b"stale")
    with pytest.raises(LeaseLost):
        finish(records, job, old, result={"by": "old"})
    assert not store.renew(job, old, 5)
    store.release(job, old)  # a no-op for a run that does not hold the lease
    assert records.get(job).refused_writes == 2
    assert store.lease_holder(job) == (int(new), "w2/9/bbbb")
    store.save_checkpoint(job, new, b"new run")
    assert finish(records, job, new, result={"by": "new"}).status == "completed"
    assert (store.load_checkpoint(job), records.get(job).result) == (b"new run", {"by": "new"})
    assert [e["event"] for e in records.events(job)].count("completed") == 1


def test_the_queued_index_holds_exactly_the_queued_jobs_through_every_script(redis_fleet) -> None:
    """The sweep's lost-message check reads only this index: every script that makes a job queued
    adds it, every one that moves it on removes it."""
    records, client, keys = redis_fleet.records, redis_fleet.client, redis_fleet.keys

    def indexed(job: str) -> bool:
        return client.zscore(keys.queued, job) is not None

    job = make_job(records)
    assert indexed(job)
    token = claim(records, job).token
    assert not indexed(job)
    assert finish(records, job, token, kind="interrupted", detail="slice").status == "queued"
    assert indexed(job)
    assert records.control(job, "pause")[0] == "paused" and not indexed(job)
    assert records.control(job, "resume")[0] == "queued" and indexed(job)
    token = claim(records, job, dispatch=3, ttl=0.05).token
    assert not indexed(job)
    time.sleep(0.1)  # the lease expires
    assert records.recover(job).status == "queued" and indexed(job)
    assert records.control(job, "cancel")[0] == "cancelled" and not indexed(job)
    other = make_job(records)
    records.reject(other, "bad message")
    assert not indexed(other)
    assert job not in records.queued_unseen(0, 1000) and other not in records.queued_unseen(0, 1000)
