"""Row 6: SIGKILL a busy worker; time until its job runs again on another worker, against the lease TTL."""

from __future__ import annotations

import time

from wasmjob.manifest import Manifest

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, fmt_time, median
from ..fleet import FleetHarness
from ..services import wait_until

MAX_TTLS = 2.0
LONG_LIMIT = 10**11  # minutes of sieving: still running whenever it is killed


ROW = "6"
TARGET = "≤ 2× lease TTL"

def run(ctx: Context) -> list[Result]:
    ttl = float(ctx.pick(3, 10))
    what = "recovery after SIGKILL of a busy worker"
    target = f"≤ {MAX_TTLS:.0f}× lease TTL"
    built = modules.primes_module()
    if built is None:
        return [failed("6", what, target, RuntimeError("extensions/primes/primes.wasm is not built yet"))]
    try:
        return [_measure(ctx, what, target, ttl, *built)]
    except Exception as exc:  # noqa: BLE001
        return [failed("6", what, target, exc)]


def _measure(ctx: Context, what: str, target: str, ttl: float, wasm: bytes, manifest: Manifest) -> Result:
    trials = ctx.pick(2, 5)
    env = {"WASMJOB_LEASE_TTL": str(ttl), "WASMJOB_SWEEP_INTERVAL": "1"}
    times: list[float] = []
    resumed_from: list[int] = []
    with FleetHarness(ctx.services(), env) as fh:
        workers = fh.workers(2)
        fh.register(wasm, manifest)
        spare = 3
        for _ in range(trials):
            [job_id] = fh.submit("primes", "count_primes", {"limit": LONG_LIMIT}, 1)
            rec = wait_until(
                lambda job_id=job_id: (r := fh.record(job_id)).status == "running" and r.checkpoints >= 1 and r,
                60, "the job to run and checkpoint", interval=0.02,
            )  # fmt: skip
            victim = next(w for w in workers if rec.worker and rec.worker.startswith(w.name))
            checkpoints = rec.checkpoints
            victim.kill()
            killed_at = time.time()
            rec = wait_until(
                lambda job_id=job_id, gone=victim.name: (r := fh.record(job_id)).status == "running" and r.worker
                and not r.worker.startswith(gone) and r,
                10 * ttl + 30, "the job to run again on another worker", interval=0.01,
            )  # fmt: skip
            times.append(rec.run_started_at - killed_at)
            resumed_from.append(rec.checkpoints)
            if rec.checkpoints < checkpoints:
                raise RuntimeError(f"job resumed from checkpoint {rec.checkpoints}, before {checkpoints}")
            fh.client.job(job_id).cancel()
            fh.services.workers.remove(victim) if victim in fh.services.workers else None
            workers.remove(victim)
            workers += fh.workers(1, prefix=f"w{spare}-")
            spare += 1
            wait_until(lambda job_id=job_id: fh.record(job_id).status == "cancelled", 30, "the job to be cancelled")
    m = median(times)
    return Result(
        "6",
        what,
        value=fmt_time(m),
        baseline=f"lease TTL {ttl:.0f} s",
        ratio=f"{fmt_ratio(m / ttl)} TTL",
        target=target,
        meets=m <= MAX_TTLS * ttl,
        note=(
            f"median of {trials} trials, 2 workers: a primes job runs and has checkpointed, the worker running it "
            f"and its pool are SIGKILLed together, and the time is taken from the kill to the job's claim by the "
            f"other worker (its record's run_started_at); the lease expires within one TTL, a worker's recovery "
            f"sweep (every 1 s) re-enqueues it from its last checkpoint; each time "
            + ", ".join(fmt_time(t) for t in times)
        ),
    )
