"""Row 10: what a checkpoint costs when it must reach a replica first (``WASMJOB_CHECKPOINT_REPLICAS=1``).

A master and one replica on loopback (both private ``redis-server`` processes of this run);
the same ``RedisStore.save_checkpoint`` with and without ``WAIT 1``, interleaved. On one
machine the replica is a local socket away, so this is the floor of the cost: across
machines add one network round trip from master to replica per checkpoint.
"""

from __future__ import annotations

import os
import time
import uuid

from harness.procs import LocalRedis
from wasmjob.keys import Keys
from wasmjob.store.redis import RedisStore, connect

from ..core import Context, Result, failed, fmt_ratio, fmt_time, interleaved, median

ROW = "10"
TARGET = "informational (durability across a failover)"
SIZES = (("1 KB", 1024), ("64 KB", 64 * 1024))


def run(ctx: Context) -> list[Result]:
    try:
        tmp = ctx.services().tmp / "replicas"
        master = LocalRedis(tmp / "master").start()
    except Exception as exc:  # noqa: BLE001
        return [failed("10", "checkpoint acknowledged by a replica", TARGET, exc)]
    replica = LocalRedis(tmp / "replica", extra_args=["--replicaof", "127.0.0.1", str(master.port)])
    results: list[Result] = []
    try:
        replica.start()
        plain = RedisStore(connect(master.url), Keys("bench-replicas"))
        waiting = RedisStore(connect(master.url), Keys("bench-replicas"), replicas=1, replica_wait_ms=5000)
        _until_replica_online(plain)
        for i, (label, size) in enumerate(SIZES):
            key, what = f"10{'ab'[i]}", f"checkpoint {label}, WAIT for 1 replica"
            try:
                results.append(_measure(ctx, key, what, plain, waiting, size))
            except Exception as exc:  # noqa: BLE001
                results.append(failed(key, what, TARGET, exc))
        plain.client.close()
        waiting.client.close()
    except Exception as exc:  # noqa: BLE001
        results.append(failed("10", "checkpoint acknowledged by a replica", TARGET, exc))
    finally:
        replica.stop()
        master.stop()
    return results


def _until_replica_online(store: RedisStore, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while store.client.info("replication").get("connected_slaves") != 1:
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not connect")
        time.sleep(0.05)


def _measure(ctx: Context, key: str, what: str, plain: RedisStore, waiting: RedisStore, size: int) -> Result:
    payload = os.urandom(size)
    calls = ctx.pick(200, 1000)
    job_a, job_b = str(uuid.uuid4()), str(uuid.uuid4())
    token_a, token_b = plain.acquire(job_a, "bench", 600), waiting.acquire(job_b, "bench", 600)
    with_wait, without = interleaved(
        lambda: waiting.save_checkpoint(job_b, token_b, payload), lambda: plain.save_checkpoint(job_a, token_a, payload),
        calls,
    )
    w, p = median(with_wait), median(without)
    return Result(
        key,
        what,
        value=fmt_time(w),
        baseline=f"master only {fmt_time(p)}",
        ratio=fmt_ratio(w / p),
        target=TARGET,
        meets=None,
        note=(
            f"RedisStore.save_checkpoint of {size} bytes, medians of {calls} interleaved calls; with "
            "WASMJOB_CHECKPOINT_REPLICAS=1 the WAIT goes in the same write as the commit, so the extra is the "
            "replica's acknowledgement, not another client round trip"
        ),
    )
