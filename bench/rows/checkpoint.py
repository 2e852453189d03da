"""Row 5: a checkpoint through the Redis store vs a raw Redis ``SET`` of the same bytes."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from wasmjob.job import JobSpec, Limits, MiB, Status
from wasmjob.runtime import Runtime, RuntimeConfig
from wasmjob.store.base import ProgressUpdate
from wasmjob.store.redis import RedisStore, connect

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, fmt_time, interleaved, median

MAX_RATIO = 1.5
SIZES = (("1 KB", 1024), ("64 KB", 64 * 1024), ("1 MB", MiB))


def _mb_per_s(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e6:,.0f} MB/s"


ROW = "5"
TARGET = "≤ 1.5× raw SET"

def run(ctx: Context) -> list[Result]:
    results = []
    try:
        services = ctx.services()
        client = connect(services.url)
        store = RedisStore(client)
        rt = Runtime(RuntimeConfig(cache_dir=None))
    except Exception as exc:  # noqa: BLE001
        return [failed("5", "checkpoint", f"≤ {MAX_RATIO}× raw SET", exc)]
    try:
        for i, (label, size) in enumerate(SIZES):
            key = f"5{'abc'[i]}"
            what = f"checkpoint {label} from the guest"
            target = f"≤ {MAX_RATIO}× raw SET"
            try:
                results.append(_measure(ctx, key, what, target, rt, store, size))
            except Exception as exc:  # noqa: BLE001
                results.append(failed(key, what, target, exc))
    finally:
        rt.close()
        client.close()
    return results


def _measure(ctx: Context, key: str, what: str, target: str, rt: Runtime, store: RedisStore, size: int) -> Result:
    client = store.client
    payload = os.urandom(size)
    per_run = ctx.pick(100, 300) if size < MiB else ctx.pick(20, 60)
    rounds = ctx.pick(5, 11)
    limits = Limits(timeout_seconds=120, max_checkpoint_bytes=2 * MiB)
    ext = rt.load(modules.checkpoint_module(size, per_run), modules.manifest(f"ckpt-{size}"))

    def guest() -> None:
        spec = JobSpec(job_name="main", job_id=str(uuid.uuid4()))
        token = store.acquire(spec.job_id, "bench", 600)
        out = rt.run(ext, spec, store, token, None, limits)
        if out.status is not Status.COMPLETED or out.checkpoints != per_run:
            raise RuntimeError(f"checkpoint job: {out.status.value}: {out.reason}")

    raw_key = f"bench:raw:{size}"

    def raw() -> None:
        for _ in range(per_run):
            client.set(raw_key, payload)

    guest()
    raw()
    g, r = interleaved(guest, raw, rounds)
    per_guest, per_raw = median(g) / per_run, median(r) / per_run

    # single-call latency, the store's own call against one SET, interleaved call by call
    job_id = str(uuid.uuid4())
    token = store.acquire(job_id, "bench", 600)
    one_store, one_raw = interleaved(
        lambda: store.save_checkpoint(job_id, token, payload), lambda: client.set(raw_key, payload), per_run * 2
    )
    lat_store, lat_raw = median(one_store), median(one_raw)
    # diagnostic: the guest side alone (host call, bounds check, copy out of guest memory), no Redis
    null = _NullStore()
    guest_only = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        rt.run(ext, JobSpec(job_name="main"), null, 0, None, limits)  # type: ignore[arg-type]
        guest_only.append((time.perf_counter() - t0) / per_run)
    split = _where_it_goes(client, guest, raw, per_run)
    client.delete(raw_key)
    ratio = per_guest / per_raw
    return Result(
        key,
        what,
        value=f"{fmt_time(per_guest)} ({_mb_per_s(size, per_guest)})",
        baseline=f"SET {fmt_time(per_raw)} ({_mb_per_s(size, per_raw)})",
        ratio=fmt_ratio(ratio),
        target=target,
        meets=ratio <= MAX_RATIO,
        note=(
            f"per checkpoint in a loop of {per_run} `job_checkpoint` calls from WASM (bounds check, copy out of guest "
            f"memory, then one write: a plain SET of the bytes to a staging key and the fenced Lua commit that "
            f"RENAMEs it onto the state and updates the counters, one round trip) vs {per_run} raw SETs on the same "
            f"connection, medians of {rounds} interleaved rounds; one call alone: "
            f"RedisStore.save_checkpoint {fmt_time(lat_store)} vs SET {fmt_time(lat_raw)} ({fmt_ratio(lat_store / lat_raw)}); "
            f"the guest side alone (same loop, a store that writes nothing) {fmt_time(median(guest_only))} per checkpoint; "
            f"where the time goes, per call: {split}"
        ),
    )


def _where_it_goes(client: Any, guest: Callable[[], None], raw: Callable[[], None], per_run: int) -> str:
    """CPU of this process and time inside Redis (its command statistics) per checkpoint and per SET."""
    spent = {}
    for name, fn in (("checkpoint", guest), ("SET", raw)):
        client.config_resetstat()
        c0 = time.thread_time()
        fn()
        cpu = (time.thread_time() - c0) / per_run
        stats = client.info("commandstats")
        inside = sum(v["usec"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_set")) / per_run
        spent[name] = (cpu, inside * 1e-6)
    (gc, gr), (rc, rr) = spent["checkpoint"], spent["SET"]
    return (
        f"this process's CPU {fmt_time(gc)} vs {fmt_time(rc)}, Redis {fmt_time(gr)} vs {fmt_time(rr)} "
        f"(the staging SET and the commit script: lease check, RENAME, PERSIST, counters, one HSET)"
    )


class _NullStore:
    """A checkpoint store that keeps nothing: what the guest side of a checkpoint costs alone."""

    def load_checkpoint(self, job_id: str) -> bytes | None:
        return None

    def save_checkpoint(self, job_id: str, token: int, state: bytes, update: ProgressUpdate | None = None) -> None:
        pass

    def record_progress(self, job_id: str, token: int, update: ProgressUpdate) -> None:
        pass
