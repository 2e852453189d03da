"""Row 11: transparent snapshots. The same job in checkpoint mode vs snapshot mode, what a
snapshot and a restore cost per MB of guest memory, and how many bytes a snapshot stores.

Every run goes through the Redis store (fenced writes, as on the fleet).
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from wasmjob.job import InterruptFlag, InterruptReason, JobSpec, Limits, MiB, Status
from wasmjob.manifest import Manifest, find_manifest
from wasmjob.runtime import Extension, Runtime, RuntimeConfig
from wasmjob.store.redis import RedisStore, connect

from ..core import Context, Result, failed, fmt_ratio, fmt_time, interleaved, median

ROW = "11"
MAX_OVERHEAD = 1.5
TARGET = f"≤ {MAX_OVERHEAD}× checkpoint mode"
EXTENSIONS = Path(__file__).resolve().parents[2] / "extensions"


def run(ctx: Context) -> list[Result]:
    if shutil.which("wasm-opt") is None:
        return [failed("11", "snapshot mode", TARGET, RuntimeError("binaryen's wasm-opt is not installed"))]
    try:
        client = connect(ctx.services().url)
        store = RedisStore(client, max_checkpoint_bytes=256 * MiB)
        rt = Runtime(RuntimeConfig(cache_dir=None))
    except Exception as exc:  # noqa: BLE001
        return [failed("11", "snapshot mode", TARGET, exc)]
    results = []
    try:
        for key, what, measure in (
            ("11a", "N-Queens (recursion), snapshot vs checkpoint mode", _overhead_nqueens),
            ("11b", "primes (loop), snapshot vs checkpoint mode", _overhead_primes),
            ("11c", "snapshot and restore per MB of guest memory", _per_mb),
            ("11d", "bytes per snapshot of the examples", _sizes),
        ):
            try:
                results.append(measure(ctx, key, what, rt, store))
            except Exception as exc:  # noqa: BLE001
                results.append(failed(key, what, TARGET if key in ("11a", "11b") else "—", exc))
    finally:
        rt.close()
        client.close()
    return results


def _pair(rt: Runtime, name: str, metered: bool = True, **wasmjob: Any) -> tuple[Extension, Extension]:
    """The example ``name`` loaded twice: as shipped (checkpoint mode) and in snapshot mode."""
    path = EXTENSIONS / name / f"{name}.wasm"
    manifest = dataclasses.replace(find_manifest(path), **wasmjob)
    plain = rt.load(path.read_bytes(), dataclasses.replace(manifest, durability="checkpoint"), metered=metered)
    snap = rt.load(path.read_bytes(), dataclasses.replace(manifest, durability="snapshot"), metered=metered)
    return plain, snap


def _once(rt: Runtime, ext: Extension, store: RedisStore, job: str, params: Any, limits: Limits,
          flag: InterruptFlag | None = None, job_id: str | None = None) -> Any:
    spec = JobSpec(job, params, job_id=job_id or str(uuid.uuid4()))
    token = store.acquire(spec.job_id, "bench", 600)
    out = rt.run(ext, spec, store, token, flag, limits)
    store.release(spec.job_id, token)
    return out


def _overhead(ctx: Context, key: str, what: str, rt: Runtime, store: RedisStore, name: str, job: str,
              params: Any, check: Any, **wasmjob: Any) -> Result:
    plain, snap = _pair(rt, name, **wasmjob)
    every = 0.1
    plain_limits = plain.manifest.limits.merged(timeout_seconds=600, max_checkpoint_bytes=64 * MiB)
    snap_limits = plain_limits.merged(snapshot_seconds=every)
    taken: list[int] = []

    def timed_run(ext: Extension, limits: Limits) -> Any:
        out = _once(rt, ext, store, job, params, limits)
        if out.status is not Status.COMPLETED or not check(out.result):
            raise RuntimeError(f"{ext.manifest.durability} mode: {out.status.value} {out.reason} {out.result}")
        return out

    def run_plain() -> None:
        timed_run(plain, plain_limits)

    def run_snap() -> None:
        taken.append(timed_run(snap, snap_limits).snapshots.taken)

    rounds = ctx.pick(3, 5)
    s, p = interleaved(run_snap, run_plain, rounds * 2)
    # instrumented but never snapshotted (what asyncify alone costs), against its own plain runs
    bare, bare_plain = interleaved(lambda: timed_run(snap, plain_limits), run_plain, rounds * 2)
    # the same pair on the engine without fuel metering (how the fleet runs jobs without a fuel budget)
    cpu_plain, cpu_snap = _pair(rt, name, metered=False, **wasmjob)
    cs, cp = interleaved(lambda: timed_run(cpu_snap, snap_limits), lambda: timed_run(cpu_plain, plain_limits), rounds * 2)
    ratio = median(s) / median(p)
    return Result(
        key, what,
        value=f"{fmt_time(median(s))}",
        baseline=f"{fmt_time(median(p))}",
        ratio=fmt_ratio(ratio),
        target=TARGET,
        meets=ratio <= MAX_OVERHEAD,
        note=(
            f"{name} {params}: the asyncify-instrumented module with a snapshot every {every:g} s of run time "
            f"({median([float(t) for t in taken]):.0f} per run, through Redis) vs the module as built; medians of "
            f"{len(s)} interleaved runs each, fuel metering on in both; instrumented without snapshots "
            f"{fmt_time(median(bare))} vs {fmt_time(median(bare_plain))} ({fmt_ratio(median(bare) / median(bare_plain))}); "
            f"without fuel metering: "
            f"{fmt_time(median(cs))} vs {fmt_time(median(cp))} ({fmt_ratio(median(cs) / median(cp))})"
        ),
    )


def _overhead_nqueens(ctx: Context, key: str, what: str, rt: Runtime, store: RedisStore) -> Result:
    n = ctx.pick(13, 14)
    want = {13: 73_712, 14: 365_596}[n]
    return _overhead(ctx, key, what, rt, store, "nqueens", "nqueens", {"n": n}, lambda r: r["solutions"] == want)


def _overhead_primes(ctx: Context, key: str, what: str, rt: Runtime, store: RedisStore) -> Result:
    limit = ctx.pick(2 * 10**7, 10**8)
    want = {2 * 10**7: 1_270_607, 10**8: 5_761_455}[limit]
    return _overhead(ctx, key, what, rt, store, "primes", "count_primes", {"limit": limit}, lambda r: r["count"] == want)


def _per_mb(ctx: Context, key: str, what: str, rt: Runtime, store: RedisStore) -> Result:
    """primes with a 16 MiB sieve segment: snapshot it at its first safe point, then restore it."""
    manifest = dataclasses.replace(
        find_manifest(EXTENSIONS / "primes" / "primes.wasm"),
        permissions=dataclasses.replace(Manifest.default("x").permissions, max_memory_mb=64),
    )
    manifest = dataclasses.replace(manifest, limits=dataclasses.replace(manifest.limits, max_memory_mb=64))
    _, snap = _pair(rt, "primes", permissions=manifest.permissions, limits=manifest.limits)
    limits = snap.manifest.limits.merged(timeout_seconds=600, max_checkpoint_bytes=256 * MiB)
    params = {"limit": 10**10, "segment": 16 * MiB, "poll_segments": 1}
    save, restore, mem, written = [], [], [], []
    for _ in range(ctx.pick(3, 7)):
        job_id = str(uuid.uuid4())
        flag = InterruptFlag()
        timer = threading.Timer(0.5, flag.request, [InterruptReason.PAUSE])  # a few segments in: dense memory
        timer.start()
        out = _once(rt, snap, store, "count_primes", params, limits, flag, job_id)
        timer.cancel()
        if out.status is not Status.INTERRUPTED:
            raise RuntimeError(f"expected a pause: {out.status.value} {out.reason}")
        save.append(out.snapshots.save_seconds)
        mem.append(out.snapshots.memory_bytes)
        written.append(out.snapshots.bytes_written)
        flag = InterruptFlag()
        flag.request(InterruptReason.PAUSE)
        out = _once(rt, snap, store, "count_primes", params, limits, flag, job_id)
        if out.status is not Status.INTERRUPTED:
            raise RuntimeError(f"expected a pause after the restore: {out.status.value} {out.reason}")
        restore.append(out.snapshots.restore_seconds)
    mb = median([float(m) for m in mem]) / 1e6
    return Result(
        key, what,
        value=f"save {fmt_time(median(save) / mb)}/MB, restore {fmt_time(median(restore) / mb)}/MB",
        baseline="—",
        ratio="—",
        target="—",
        meets=None,
        note=(
            f"primes with a 16 MiB segment, paused 0.5 s in (the segment holds sieve bytes): {mb:.1f} MB of linear memory, "
            f"{median([float(w) for w in written]) / 1e6:.2f} MB stored (zstd, non-zero 4 KiB chunks, full snapshot); "
            f"save = capture + compress + fenced Redis write ({fmt_time(median(save))}), restore = Redis read + "
            f"decompress + rebuild + copy into a fresh instance ({fmt_time(median(restore))}); medians of {len(save)}"
        ),
    )


def _sizes(ctx: Context, key: str, what: str, rt: Runtime, store: RedisStore) -> Result:
    details = []
    _, queens = _pair(rt, "nqueens")
    out = _once(rt, queens, store, "nqueens", {"n": ctx.pick(12, 13)}, queens.manifest.limits.merged(snapshot_seconds=1e-9))
    sizes = out.snapshots.sizes
    details.append(
        f"nqueens: {len(sizes)} snapshots of {out.snapshots.memory_bytes / 1e6:.2f} MB memory, "
        f"median {median([float(s) for s in sizes]):,.0f} B, max {max(sizes):,} B"
    )
    _, counter = _pair(rt, "counter-rs")
    out = _once(rt, counter, store, "counter", {"target": 200}, counter.manifest.limits.merged(snapshot_seconds=1e-9))
    csizes = out.snapshots.sizes
    details.append(
        f"counter-rs: {len(csizes)} snapshots of {out.snapshots.memory_bytes / 1e6:.2f} MB memory, "
        f"median {median([float(s) for s in csizes]):,.0f} B, max {max(csizes):,} B"
    )
    _, primes = _pair(rt, "primes")
    out = _once(rt, primes, store, "count_primes", {"limit": 2 * 10**7},
                primes.manifest.limits.merged(snapshot_seconds=1e-9, max_checkpoint_bytes=64 * MiB))
    psizes = out.snapshots.sizes
    details.append(
        f"primes (64 KiB segment): {len(psizes)} snapshots ({out.snapshots.full} full) of "
        f"{out.snapshots.memory_bytes / 1e6:.2f} MB memory, median {median([float(s) for s in psizes]):,.0f} B, "
        f"max {max(psizes):,} B"
    )
    return Result(
        key, what,
        value=f"nqueens {median([float(s) for s in sizes]):,.0f} B",
        baseline="—",
        ratio="—",
        target="—",
        meets=None,
        note="; ".join(details) + " (a snapshot at every safe point; bytes stored per snapshot, compressed)",
        details=details,
    )
