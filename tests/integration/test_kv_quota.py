"""Key-value quotas per (tenant, extension), enforced atomically in Redis by kv_set.lua."""

from __future__ import annotations

import uuid

import pytest

from wasmjob.errors import QuotaExceeded
from wasmjob.store.redis import RedisStore

pytestmark = pytest.mark.timeout(30)


def test_a_scope_cannot_pass_its_key_or_byte_quota_and_overwrites_are_counted_once(redis_fleet) -> None:
    store = RedisStore(redis_fleet.client, redis_fleet.keys, max_kv_bytes=100, max_kv_keys=3)
    scope, other = f"{uuid.uuid4()}:ext", f"{uuid.uuid4()}:ext"
    for key in ("a", "b", "c"):
        store.kv_set(scope, key, "x" * 10)
    with pytest.raises(QuotaExceeded, match="quota of 3 keys"):
        store.kv_set(scope, "d", "x")
    store.kv_set(scope, "a", "y" * 60)  # an overwrite: same key count, bytes replaced
    with pytest.raises(QuotaExceeded, match="quota of 100 bytes"):
        store.kv_set(scope, "b", "z" * 60)
    store.kv_set(scope, "b", "")  # shrinking is always allowed
    usage = redis_fleet.client.hgetall(redis_fleet.keys.kv_usage(scope))
    assert int(usage[b"keys"]) == 3 and int(usage[b"bytes"]) == (1 + 60) + (1 + 0) + (1 + 10)
    store.kv_set(other, "d", "x")  # another tenant's scope has its own quota
    assert store.kv_get(scope, "a") == "y" * 60 and store.kv_get(scope, "d") is None


def test_writes_are_refused_while_the_store_is_low_on_memory(redis_fleet) -> None:
    store = RedisStore(redis_fleet.client, redis_fleet.keys)
    store.low_memory = "Redis is at 95% of its maxmemory"
    with pytest.raises(QuotaExceeded, match="95%"):
        store.kv_set(f"{uuid.uuid4()}:ext", "k", "v")
    token = store.acquire(job := str(uuid.uuid4()), "a", 5)
    with pytest.raises(QuotaExceeded, match="95%"):
        store.save_checkpoint(job, token, b"state")
