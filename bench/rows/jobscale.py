"""Row 8: how each per-operation cost grows as the number of jobs grows, and what a job costs in Redis.

Finished jobs are seeded through the real Lua scripts (create, claim, checkpoint, finish),
pipelined, so each record, event list, state and log list has exactly the shape a worker
leaves; a fixed amount of live work (queued and running jobs) stays the same at every size.
At each size the row times ``Client.submit``, ``Records.get`` (status), the first page of
``Client.jobs`` (list, unfiltered and filtered by status), ``Client.usage`` and one recovery
sweep round. Bytes per job come from Redis's own ``used_memory`` before and after.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis

from wasmjob.broker_config import Settings
from wasmjob.client import Client
from wasmjob.fleet.dispatch import Dispatcher
from wasmjob.fleet.recovery import Sweeper
from wasmjob.store import contracts as c
from wasmjob.store.base import Fence
from wasmjob.store.redis import LOG_LINES_KEPT, STAGING_TTL_MS, WARNINGS_KEPT

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, fmt_time, median
from ..fleet import FleetHarness

ROW = "8"
TARGET = "flat: ≤ 2× from the smallest to the largest size"
MAX_GROWTH = 2.0
TENANTS = [str(uuid.UUID(int=i + 1)) for i in range(10)]
LIVE_QUEUED, LIVE_RUNNING = 100, 20
EXT = "scale"
CHUNK = 500  # jobs per pipeline while seeding
SEED_OWNER = "bench/1/seed"  # the lease owner of every seeded run (writes are fenced by token and owner)
RETENTION = 3  # seconds the short-lived real-worker jobs of row 8i are kept
SHORT_LIVED = 50


def sizes(ctx: Context) -> list[int]:
    """10^3 and 10^4 (quick), up to 10^5 (full); 10^6 with WASMJOB_BENCH_HUGE=1."""
    out = [10**3, 10**4] if ctx.quick else [10**3, 10**4, 10**5]
    if os.environ.get("WASMJOB_BENCH_HUGE") == "1":
        out.append(10**6)
    return out


def _power(n: int) -> str:
    return f"10^{len(str(n)) - 1}"


class Seeder:
    """Writes jobs through the real scripts, pipelined; takes a Client on the bench's Redis."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.fleet = client.fleet
        self.records = client.fleet.records
        self.redis: redis.Redis = client.fleet.client
        for name in ("create", "claim", "checkpoint", "finish"):
            self.fleet.scripts.load(name)

    def _send(self, pipe: Any, call: c.Contract) -> None:
        keys, argv = call.encoded()
        pipe.evalsha(self.fleet.scripts.sha(call.SCRIPT), len(keys), *keys, argv)

    def _create(self, pipe: Any, job_id: str, tenant: str, *, enqueue: bool = False, limits: Any = None) -> None:
        self._send(pipe, self.records.create_call(
            job_id, extension=EXT, digest="sha256:" + "0" * 64, ext_id=EXT, ext_version="1.0.0", job="main",
            params={"target": 1000}, tenant=tenant, queue=None, priority=None, limits=limits or {}, dispatch=1,
            enqueue=enqueue,
        ))  # fmt: skip

    def _claim(self, pipe: Any, job_id: str, ttl: float) -> None:
        self._send(pipe, self.records.claim_call(job_id, EXT, SEED_OWNER, ttl, 1, 1.0))

    def _checkpoint(self, pipe: Any, job_id: str) -> None:
        """What a worker's checkpoint with progress and one log line writes (RedisStore._write's call)."""
        k, state = self.fleet.keys, b'{"count":1000,"target":1000}'
        staging = k.staging(job_id, 1)
        pipe.set(staging, state, px=STAGING_TTL_MS)
        line = '{"ts":1.0,"level":1,"msg":"counted 1000 of 1000"}'
        self._send(pipe, c.Checkpoint(
            job=k.job(job_id), lease=k.lease(job_id), state=k.state(job_id), logs_key=k.logs(job_id),
            warnings_key=k.warnings(job_id), staging=staging, token=1, owner=SEED_OWNER, mode="state",
            max_state_bytes=self.fleet.store.max_checkpoint_bytes, progress="1.0", has_message=True,
            message="counted 1000 of 1000", items_delta=1000, bytes_delta=0, logs_kept=LOG_LINES_KEPT,
            warnings_kept=WARNINGS_KEPT, logs=[line], warnings=[],
        ))  # fmt: skip

    def _finish(self, pipe: Any, job_id: str, tenant: str) -> None:
        self._send(pipe, self.records.finish_call(
            job_id, ext_id=EXT, tenant=tenant, token=Fence(1, SEED_OWNER), kind="completed", result={"count": 1000, "target": 1000},
            wall_seconds=0.002, cpu_seconds=0.001, peak_memory=65536,
        ))  # fmt: skip

    def finished(self, count: int, *, limits: Any = None) -> list[str]:
        """``count`` completed jobs (each: created, claimed, one checkpoint with a log line, finished)."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        for start in range(0, count, CHUNK):
            pipe = self.redis.pipeline(transaction=False)
            for i, job_id in enumerate(ids[start : start + CHUNK], start):
                tenant = TENANTS[i % len(TENANTS)]
                self._create(pipe, job_id, tenant, limits=limits)
                self._claim(pipe, job_id, 60)
                self._checkpoint(pipe, job_id)
                self._finish(pipe, job_id, tenant)
            pipe.execute()
        return ids

    def live(self, queued: int, running: int) -> None:
        """Queued jobs (their message sent, as Client.submit leaves them) and running ones (an hour-long lease)."""
        pipe = self.redis.pipeline(transaction=False)
        for i in range(queued + running):
            job_id = str(uuid.uuid4())
            self._create(pipe, job_id, TENANTS[0])  # as Client.submit leaves them: no outbox entry
            if i >= queued:
                self._claim(pipe, job_id, 3600)
        pipe.execute()


def used_memory(r: redis.Redis) -> int:
    return int(r.info("memory")["used_memory"])


def latency(fn: Callable[[], object], samples: int, batches: int = 5) -> float:
    """Seconds per call of ``fn``: the lowest of ``batches`` medians of ``samples / batches`` calls each,
    so a burst of load from elsewhere on a shared machine does not pass for growth."""
    medians = []
    for _ in range(batches):
        times = []
        for _ in range(max(1, samples // batches)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        medians.append(median(times))
    return min(medians)


def run(ctx: Context) -> list[Result]:
    try:
        return _measure(ctx)
    except Exception as exc:  # noqa: BLE001
        return [failed("8", "cost as the number of jobs grows", TARGET, exc)]


def _measure(ctx: Context) -> list[Result]:
    services = ctx.services()
    services.stop_workers()
    services.flush()
    settings = Settings(redis_url=services.url, prefix="bench8")
    client = Client(settings=settings)
    try:
        return _at_sizes(ctx, client) + [_registry(ctx, client)] + _bytes(ctx, services, client)
    finally:
        client.close()


def _at_sizes(ctx: Context, client: Client) -> list[Result]:
    seeder = Seeder(client)
    r, records = seeder.redis, client.fleet.records
    seeder.live(LIVE_QUEUED, LIVE_RUNNING)
    sweeper = Sweeper(client.fleet, Dispatcher(client.app, client.fleet), "bench-sweeper", 1.0)
    cost: dict[str, dict[int, float]] = {k: {} for k in ("submit", "status", "list", "list-status", "usage", "sweep")}
    bytes_per: dict[int, float] = {}
    seeded: list[str] = []
    total = 0
    _register_scale(client)
    for size in sizes(ctx):
        before = used_memory(r)
        seeded += seeder.finished(size - total)
        bytes_per[size] = (used_memory(r) - before) / (size - total)
        total = size
        sample_ids = random.sample(seeded, 200)
        picks = iter(sample_ids * 10)
        n = ctx.pick(100, 300)
        submits = ctx.pick(100, 200)
        t0 = time.perf_counter()
        for _ in range(submits):
            client.submit(EXT, "main", {"target": 1}, queue="bench8-idle", tenant=TENANTS[1])
        cost["submit"][size] = (time.perf_counter() - t0) / submits
        cost["status"][size] = latency(lambda: records.get(next(picks)), n)
        cost["list"][size] = latency(lambda: client.jobs(limit=50), ctx.pick(30, 60))
        cost["list-status"][size] = latency(lambda: client.jobs("running", 50), ctx.pick(30, 60))
        cost["usage"][size] = latency(client.usage, ctx.pick(30, 60))

        def sweep() -> None:
            r.delete(client.fleet.keys.sweep_lock)
            report = sweeper.sweep()
            if not report.ran or report.recovered:
                raise RuntimeError(f"the sweep did not run as measured: {report}")

        cost["sweep"][size] = latency(sweep, ctx.pick(20, 40))
    names = {
        "submit": ("8a", "submit (Client.submit: publish + create)"),
        "status": ("8b", "status of one job (Records.get)"),
        "list": ("8c", "list, first page of 50 (Client.jobs)"),
        "list-status": ("8d", "list --status running, one page (≤ 10× page records read)"),
        "usage": ("8e", "usage (10 tenants)"),
        "sweep": ("8f", f"recovery sweep round ({LIVE_RUNNING} running, {LIVE_QUEUED} queued)"),
    }
    out = []
    for name, (key, what) in names.items():
        series = cost[name]
        small, large = min(series), max(series)
        growth = series[large] / series[small]
        out.append(
            Result(
                key,
                what,
                value=f"{fmt_time(series[large])} at {_power(large)} jobs",
                baseline=f"{fmt_time(series[small])} at {_power(small)}",
                ratio=fmt_ratio(growth),
                target=f"≤ {MAX_GROWTH:g}× (flat)",
                meets=growth <= MAX_GROWTH,
                note=(
                    f"{'; '.join(f'{_power(s)}: {fmt_time(v)}' for s, v in series.items())} (the lowest of 5 medians "
                    f"of consecutive calls at each size); finished jobs "
                    f"seeded through the real create/claim/checkpoint/finish scripts, pipelined (one checkpoint with "
                    f"a log line each, 10 tenants), beside a fixed {LIVE_QUEUED} queued and {LIVE_RUNNING} running "
                    f"jobs; submits go to a queue nobody consumes"
                    + ("" if os.environ.get("WASMJOB_BENCH_HUGE") == "1" else _NO_MILLION)
                ),
            )
        )
    growth_b = bytes_per[max(bytes_per)] / bytes_per[min(bytes_per)]
    out.append(
        Result(
            "8g",
            "Redis bytes per finished job (seeded)",
            value=f"{bytes_per[max(bytes_per)]:,.0f} B at {_power(max(bytes_per))}",
            baseline=f"{bytes_per[min(bytes_per)]:,.0f} B at {_power(min(bytes_per))}",
            ratio=fmt_ratio(growth_b),
            target=f"≤ {MAX_GROWTH:g}× (flat)",
            meets=growth_b <= MAX_GROWTH,
            note=(
                "used_memory added per job while seeding each step ("
                + "; ".join(f"{_power(s)}: {b:,.0f} B" for s, b in bytes_per.items())
                + "): record, state, log list, event list and the index entries (jobs, expiring); no Celery "
                "result, since seeding bypasses Celery (row 8i counts it on real workers)"
            ),
        )
    )
    return out


_NO_MILLION = (
    "; 10^6 is left out of the default run: seeding it takes minutes and about 2 GB of Redis memory and AOF "
    "on this shared 2-core machine (WASMJOB_BENCH_HUGE=1 adds it)"
)


def _register_scale(client: Client) -> None:
    """The extension the seeded jobs name, so Client.submit resolves it."""
    manifest = dataclasses.replace(modules.manifest(EXT), version="1.0.0")
    client.add_module(modules.trivial_module(), manifest)


def _registry(ctx: Context, client: Client) -> Result:
    """Lookups of id@version and of a bare id (its newest version) as one extension's releases grow."""
    from wasmjob.publishers import PublisherKey, Signature
    from wasmjob.wasmbin import digest_of

    registry = client.fleet.registry
    wasm = modules.trivial_module()
    base = modules.manifest("many")
    key = PublisherKey.generate()
    steps = [10**2, 10**3] if ctx.quick else [10**2, 10**3, 10**4]
    pinned: dict[int, float] = {}
    newest: dict[int, float] = {}
    have = 0
    for n in steps:
        for v in range(have, n):
            manifest = dataclasses.replace(base, version=f"1.{v // 1000}.{v % 1000}")
            signature = Signature.make(key, manifest.id, manifest.version, digest_of(wasm), manifest.to_dict())
            registry.add(wasm, manifest, ["main"], signature=signature)
        have = n
        picks = [f"many@1.{v // 1000}.{v % 1000}" for v in random.sample(range(n), 50)]
        pinned[n] = latency(lambda: registry.resolve(random.choice(picks)), ctx.pick(50, 100))
        newest[n] = latency(lambda: registry.resolve("many"), ctx.pick(20, 50))
    small, large = min(steps), max(steps)
    growth = max(pinned[large] / pinned[small], newest[large] / newest[small])
    return Result(
        "8h",
        f"registry lookup, one extension with {_power(large)} releases",
        value=f"id@version {fmt_time(pinned[large])}, id {fmt_time(newest[large])}",
        baseline=f"{fmt_time(pinned[small])}, {fmt_time(newest[small])} at {_power(small)}",
        ratio=fmt_ratio(growth),
        target=f"≤ {MAX_GROWTH:g}× (flat)",
        meets=growth <= MAX_GROWTH,
        note=(
            "Registry.resolve medians, releases registered through Registry.add (signed, the real register script): "
            + "; ".join(f"{_power(n)}: {fmt_time(pinned[n])} / {fmt_time(newest[n])}" for n in steps)
            + " (id@version / bare id)"
        ),
    )


def _bytes(ctx: Context, services: Any, client: Client) -> list[Result]:
    """Bytes per finished and per live job on real workers, and that retention takes them all back."""
    from tests.unit.wat import counting_module

    count = ctx.pick(150, 1000)
    with FleetHarness(services) as fh:
        r = fh.redis
        fh.register(counting_module(2000, every=500), modules.manifest("counting"))
        before, keys_before = used_memory(r), r.dbsize()
        queued = [fh.client.submit("counting", "main", None, queue="bench8-idle").id for _ in range(count)]
        live_bytes = (used_memory(r) - before) / count
        live_keys = (r.dbsize() - keys_before) / count
        fh.workers(2)
        # bytes: jobs with the default retention, so none expires while the batch still runs
        before, keys_before = used_memory(r), r.dbsize()
        done = fh.submit("counting", "main", None, count)
        fh.wait_jobs(done, 300)
        done_bytes = (used_memory(r) - before) / count
        done_keys = (r.dbsize() - keys_before) / count
        k = fh.keys
        kinds = {
            "record": k.job(done[0]), "state": k.state(done[0]), "logs": k.logs(done[0]), "events": k.events(done[0]),
            "warnings": k.warnings(done[0]), "Celery result": k.celery_result(done[0]),
        }
        present = [name for name, key in kinds.items() if r.exists(key)]
        own = _key_bytes(r, k, done[:50])
        # retention: a batch kept RETENTION seconds, awaited through the usage ledger (records may expire first)
        ids = fh.submit("counting", "main", None, SHORT_LIVED, limits={"retention_seconds": RETENTION})
        deadline = time.monotonic() + 120
        while _completed(fh.client, "counting") < count + SHORT_LIVED:
            if time.monotonic() > deadline:
                raise TimeoutError("the short-lived batch did not complete in 120 s")
            time.sleep(0.1)
        fh.services.stop_workers()
        t0 = time.monotonic()
        sweeper = Sweeper(fh.client.fleet, Dispatcher(fh.app, fh.client.fleet), "bench-sweeper", 1.0)
        expired = False
        while time.monotonic() - t0 < 60:
            r.delete(fh.keys.sweep_lock)
            sweeper.sweep()
            left = sum(1 for j in ids if r.zscore(fh.keys.jobs, j) is not None) + r.exists(
                *[fh.keys.job(j) for j in ids[:100]], *[fh.keys.events(j) for j in ids[:100]]
            )
            if not left:
                expired = True
                break
            time.sleep(0.5)
        dangling = _dangling(r, fh.keys, ids)
        del queued
    return [
        Result(
            "8i",
            "Redis bytes per finished job (real workers)",
            value=f"{done_bytes:,.0f} B, {done_keys:.1f} keys",
            baseline=f"retention {RETENTION} s",
            ratio="—",
            target="all gone after retention",
            meets=expired and not dangling,
            note=(
                f"{count} counting jobs (4 checkpoints, progress, result) run by 2 workers: used_memory and key "
                f"count added per job once all completed (one job's keys: {', '.join(present)}; MEMORY USAGE of "
                f"those keys alone {own:,.0f} B a job, the rest is index entries and allocator overhead); {SHORT_LIVED} more "
                f"submitted with retention_seconds {RETENTION}: "
                f"{'every key and index entry was gone' if expired and not dangling else 'NOT all gone: ' + ', '.join(dangling[:3])} "
                f"{time.monotonic() - t0:.1f} s after the last completed; the default retention is 3 days, so at "
                f"10^6 jobs a day a fleet holds about {3 * 10**6 * done_bytes / 2**30:.1f} GiB of finished jobs"
            ),
        ),
        Result(
            "8j",
            "Redis bytes per live (queued) job",
            value=f"{live_bytes:,.0f} B, {live_keys:.1f} keys",
            baseline="—",
            ratio="—",
            target="measured",
            meets=None,
            note=(
                f"{count} jobs submitted through Client.submit to a queue no worker reads: the record, its event "
                f"list, the jobs index entry and the broker's message"
            ),
        ),
    ]


def _key_bytes(r: redis.Redis, keys: Any, ids: Sequence[str]) -> float:
    """Average of what Redis's MEMORY USAGE reports for each job's own keys."""
    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        for key in (keys.job(job_id), keys.state(job_id), keys.logs(job_id), keys.warnings(job_id),
                    keys.events(job_id), keys.result(job_id), keys.celery_result(job_id)):  # fmt: skip
            pipe.memory_usage(key, samples=0)
    return sum(int(b or 0) for b in pipe.execute()) / max(1, len(ids))


def _completed(client: Client, ext_id: str) -> int:
    """Jobs of ``ext_id`` completed so far, by the usage ledger (it outlives the jobs)."""
    return sum(row.completed for row in client.usage() if row.extension == ext_id)


def _dangling(r: redis.Redis, keys: Any, ids: Sequence[str]) -> list[str]:
    """Keys or index entries of ``ids`` still in Redis."""
    out = []
    for job_id in ids:
        for key in (keys.job(job_id), keys.events(job_id), keys.state(job_id), keys.logs(job_id), keys.celery_result(job_id)):
            if r.exists(key):
                out.append(key)
        if r.zscore(keys.jobs, job_id) is not None or r.zscore(keys.expiring, job_id) is not None:
            out.append(f"index entry {job_id}")
    return out
