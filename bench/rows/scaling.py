"""Row 7: throughput of CPU-bound WasmJobs with 1 vs 2 worker processes (prefork), and the same with threads."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from wasmjob.manifest import Manifest

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, median
from ..fleet import FleetHarness
from .cpu import build_native

MIN_SCALING = 1.7
POOLS = ("prefork", "threads")


ROW = "7"
TARGET = "≥ 1.7×"

def run(ctx: Context) -> list[Result]:
    built = modules.primes_module()
    target = f"≥ {MIN_SCALING}×"
    if built is None:
        exc = RuntimeError("extensions/primes/primes.wasm is not built yet")
        return [failed(f"7{'ab'[i]}", f"1 → 2 {pool}", target, exc) for i, pool in enumerate(POOLS)]
    try:
        return _measure(ctx, target, *built)
    except Exception as exc:  # noqa: BLE001
        return [failed("7", "1 → 2 worker processes", target, exc)]


def _parallel(exe: Path, limit: int, n: int) -> float:
    """Seconds for ``n`` native sieves started together: the machine's own ceiling for scaling."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([str(exe), str(limit)], stdout=subprocess.DEVNULL) for _ in range(n)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - t0


def _measure(ctx: Context, target: str, wasm: bytes, manifest: Manifest) -> list[Result]:
    limit, jobs, rounds = ctx.pick(10**8, 5 * 10**8), ctx.pick(8, 16), ctx.pick(2, 3)
    ceiling: dict[int, list[float]] = {1: [], 2: []}
    configs = [(pool, c) for pool in POOLS for c in (1, 2)]
    seconds: dict[tuple[str, int], list[float]] = {cfg: [] for cfg in configs}
    with FleetHarness(ctx.services()) as fh, tempfile.TemporaryDirectory(prefix="wasmjob-bench-") as tmp:
        exe = build_native(Path(tmp))
        fh.register(wasm, manifest)
        # one worker per configuration, each on its own queue, all started once; batches interleave
        for pool, c in configs:
            fh.services.start_worker(
                f"{pool}{c}", pool=pool, concurrency=c, env={"WASMJOB_QUEUE": f"q-{pool}{c}"}, wait=False
            )
        fh.services.wait_ready(list(fh.services.workers))

        def batch(pool: str, c: int, n: int) -> float:
            t0 = time.perf_counter()
            ids = [
                fh.client.submit("primes", "count_primes", {"limit": limit}, queue=f"q-{pool}{c}").id for _ in range(n)
            ]
            fh.wait_jobs(ids, 600)
            return time.perf_counter() - t0

        for pool, c in configs:
            batch(pool, c, c)  # warm: every process compiles the module once
        for r in range(rounds):
            for cfg in configs if r % 2 == 0 else reversed(configs):
                seconds[cfg].append(batch(*cfg, jobs))
            for n in (1, 2):
                ceiling[n].append(_parallel(exe, 2 * limit, n))
    machine = 2 * median(ceiling[1]) / median(ceiling[2])
    rate = {cfg: jobs / median(s) for cfg, s in seconds.items()}
    best = max(POOLS, key=lambda p: rate[(p, 2)])
    other = next(p for p in POOLS if p != best)
    results = []
    for i, pool in enumerate(POOLS):
        scaling = rate[(pool, 2)] / rate[(pool, 1)]
        results.append(
            Result(
                f"7{'ab'[i]}",
                f"1 → 2 worker {'processes (prefork)' if pool == 'prefork' else 'threads (threads pool)'}",
                value=f"{rate[(pool, 2)]:.2f} jobs/s",
                baseline=f"1: {rate[(pool, 1)]:.2f} jobs/s",
                ratio=fmt_ratio(scaling),
                target=target,
                meets=scaling >= MIN_SCALING,
                note=(
                    f"batches of {jobs} primes jobs (limit {limit:,}, CPU-bound) on one `celery worker -P {pool}` "
                    f"with concurrency 1 and 2, timed submit → all completed, medians of {rounds} rounds interleaved "
                    f"across the four configurations (each worker on its own queue); at concurrency 2 {best} did "
                    f"{rate[(best, 2)] / rate[(other, 2)]:.2f}× the throughput of {other}; the machine's own ceiling "
                    f"in the same run: two native sieves side by side did {machine:.2f}× the work of one"
                ),
            )
        )
    return results
