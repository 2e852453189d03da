"""The Redis checkpoint store: leases with fencing tokens, atomic checkpoints, errors at the edge."""

from __future__ import annotations

import uuid

import pytest

from wasmjob.errors import CheckpointTooLarge, LeaseHeld, LeaseLost, StoreUnavailable
from wasmjob.store.base import LogLine, ProgressUpdate
from wasmjob.store.redis import RedisStore, connect, redact, translated

pytestmark = pytest.mark.timeout(30)


def new_id() -> str:
    return str(uuid.uuid4())


def test_tokens_grow_on_every_acquire_and_a_held_lease_is_refused(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    first = store.acquire(job, "a", 5)
    with pytest.raises(LeaseHeld, match="already running in a"):
        store.acquire(job, "b", 5)
    store.release(job, first)
    second = store.acquire(job, "b", 5)
    assert second > first
    assert store.lease_holder(job) == (second, "b")


def test_a_checkpoint_writes_state_progress_logs_and_warnings_in_one_fenced_call(redis_fleet) -> None:
    store, records, job = redis_fleet.store, redis_fleet.records, new_id()
    token = store.acquire(job, "a", 5)
    update = ProgressUpdate(progress=0.5, message="half", items=3, bytes=7,
                            logs=[LogLine(1.5, 1, "hello")], warnings=["careful"])
    store.save_checkpoint(job, token, b'{"n":5}', update)
    assert store.load_checkpoint(job) == b'{"n":5}'
    raw = store.client.hgetall(store.keys.job(job))
    assert raw[b"progress"] == b"0.5" and raw[b"message"] == b"half"
    assert raw[b"items"] == b"3" and raw[b"bytes"] == b"7" and raw[b"checkpoints"] == b"1"
    assert raw[b"ckpt_progress"] == b"0.5"
    assert records.logs(job) == [{"ts": 1.5, "level": 1, "msg": "hello"}]
    assert records.warnings(job) == ["careful"]


def test_a_stale_token_cannot_write_after_another_worker_took_over(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    old = store.acquire(job, "a", 0.05)
    store.save_checkpoint(job, old, b"1")
    import time

    time.sleep(0.1)  # the lease expires
    new = store.acquire(job, "b", 5)
    store.save_checkpoint(job, new, b"2")
    with pytest.raises(LeaseLost):
        store.save_checkpoint(job, old, b"stale")
    with pytest.raises(LeaseLost):
        store.record_progress(job, old, ProgressUpdate(progress=0.9))
    assert not store.renew(job, old, 5)
    assert store.load_checkpoint(job) == b"2"
    assert store.client.hget(store.keys.job(job), "refused_writes") == b"2"


def test_an_expired_lease_refuses_writes_even_before_anyone_else_takes_it(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    token = store.acquire(job, "a", 0.05)
    import time

    time.sleep(0.1)
    with pytest.raises(LeaseLost):
        store.save_checkpoint(job, token, b"late")
    assert store.load_checkpoint(job) is None


def test_checkpoints_over_the_size_limit_are_refused(redis_fleet) -> None:
    store = RedisStore(redis_fleet.client, redis_fleet.keys, max_checkpoint_bytes=100)
    job = new_id()
    token = store.acquire(job, "a", 5)
    store.save_checkpoint(job, token, b"y" * 100)  # exactly at the limit
    with pytest.raises(CheckpointTooLarge):
        store.save_checkpoint(job, token, b"x" * 101)
    assert store.load_checkpoint(job) == b"y" * 100
    assert store.client.hget(store.keys.job(job), "checkpoints") == b"1"


def test_key_value_pairs_are_scoped_by_namespace(redis_fleet) -> None:
    store = redis_fleet.store
    store.kv_set("tenant-a:ext", "k", "1")
    assert store.kv_get("tenant-a:ext", "k") == "1"
    assert store.kv_get("tenant-b:ext", "k") is None


def test_an_unreachable_redis_is_store_unavailable_with_the_password_hidden() -> None:
    from harness.procs import free_port

    store = RedisStore.from_url(f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable) as err:
        store.load_checkpoint("x")
    assert "hunter2" not in str(err.value)
    assert redact("redis://:hunter2@h:1/0") == "redis://:***@h:1/0"


def test_a_wrong_password_is_store_unavailable(redis_server) -> None:
    store = RedisStore.from_url(f"redis://:wrong@127.0.0.1:{redis_server.port}/0")
    with pytest.raises(StoreUnavailable, match="credentials|password|WRONGPASS|auth"):
        store.ping()


def test_a_checkpoint_leaves_no_staged_bytes_behind_whether_committed_or_refused(redis_fleet) -> None:
    store = redis_fleet.store
    client, keys, job = store.client, store.keys, new_id()
    token = store.acquire(job, "a", 5)
    store.save_checkpoint(job, token, b"x" * 10)
    assert client.ttl(keys.state(job)) == -1  # the committed state never expires
    with pytest.raises(LeaseLost):
        store.save_checkpoint(job, token + 1, b"stale")
    assert store.load_checkpoint(job) == b"x" * 10
    assert client.keys(f"{keys.state(job)}:staging:*") == []


def test_a_checkpoint_survives_a_flushed_script_cache(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    token = store.acquire(job, "a", 5)
    store.client.script_flush()
    store.save_checkpoint(job, token, b"after the flush")
    assert store.load_checkpoint(job) == b"after the flush"
    assert store.client.hget(store.keys.job(job), "checkpoints") == b"1"


def test_a_failed_checkpoint_returns_no_connection_with_unread_replies(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    token = store.acquire(job, "a", 5)
    with pytest.raises(LeaseLost):
        store.save_checkpoint(job, token + 1, b"stale")
    for _ in range(3):  # every pooled connection still answers in order
        assert store.client.ping() is True
        assert store.client.get(store.keys.lease(job)).startswith(f"{token}|".encode())


def test_an_unreachable_redis_during_a_checkpoint_is_store_unavailable() -> None:
    from harness.procs import free_port

    store = RedisStore(connect(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.save_checkpoint("x", 1, b"state")
    assert store.client.connection_pool._in_use_connections == set()


def test_a_script_called_by_position_fails_loudly_instead_of_misreading_its_arguments(redis_fleet) -> None:
    store, job = redis_fleet.store, new_id()
    token = store.acquire(job, "a", 5)
    release = store.scripts._scripts["release"]
    with pytest.raises(StoreUnavailable, match="CONTRACT"):
        with translated(job):
            release(keys=[store.keys.lease(job)], args=[int(token), job])  # the old positional ARGV
    with pytest.raises(StoreUnavailable, match="CONTRACT"):
        with translated(job):
            release(keys=[store.keys.lease(job), "extra", "more"], args=[b"\x80"])
    assert store.lease_holder(job) == (token, "a")
