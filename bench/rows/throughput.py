"""Row 1: end-to-end throughput of trivial WasmJobs (submit → completed) vs trivial plain Celery tasks."""

from __future__ import annotations

import time

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, interleaved, median
from ..fleet import FleetHarness
from ..tasks import NOOP

MIN_RATIO = 0.9
WORKERS = 2


ROW = "1"
TARGET = "≥ 0.9× plain Celery"

def run(ctx: Context) -> list[Result]:
    what = f"throughput, trivial jobs, {WORKERS} workers"
    target = f"≥ {MIN_RATIO}× plain Celery"
    try:
        return [_measure(ctx, what, target)]
    except Exception as exc:  # noqa: BLE001
        return [failed("1", what, target, exc)]


def _measure(ctx: Context, what: str, target: str) -> Result:
    jobs, rounds = ctx.pick(100, 300), ctx.pick(3, 5)
    submit_times: list[float] = []
    send_times: list[float] = []
    with FleetHarness(ctx.services()) as fh:
        fh.workers(WORKERS)
        fh.register(modules.trivial_module(), modules.manifest("trivial"))
        fh.wait_jobs(fh.submit("trivial", "main", None, 4 * WORKERS), 120)  # every process compiles once
        fh.wait_tasks(fh.send(NOOP, [], 4 * WORKERS), 60)

        def wasm() -> None:
            t0 = time.perf_counter()
            ids = fh.submit("trivial", "main", None, jobs)
            submit_times.append(time.perf_counter() - t0)
            fh.wait_jobs(ids, 300)

        def plain() -> None:
            t0 = time.perf_counter()
            ids = fh.send(NOOP, [], jobs)
            send_times.append(time.perf_counter() - t0)
            fh.wait_tasks(ids, 300)

        a, b = interleaved(wasm, plain, rounds)
    wasm_rate, plain_rate = jobs / median(a), jobs / median(b)
    ratio = wasm_rate / plain_rate
    return Result(
        "1",
        what,
        value=f"{wasm_rate:,.0f} jobs/s",
        baseline=f"{plain_rate:,.0f} tasks/s",
        ratio=fmt_ratio(ratio),
        target=target,
        meets=ratio >= MIN_RATIO,
        note=(
            f"batches of {jobs} submitted at once, timed from the first submit to the last completion, medians of "
            f"{rounds} interleaved batches; {WORKERS} `celery worker` processes (prefork, concurrency 1, prefetch 1, "
            f"late acks) serve both kinds from the same queue, both tasks with the same options (late acks, no "
            f"STARTED state stored); WasmJobs via Client.submit (send_task, then one script creates the job record), "
            f"plain tasks via send_task; submitting took {median(submit_times) / jobs * 1e3:.2f} ms per "
            f"WasmJob vs {median(send_times) / jobs * 1e3:.2f} ms per plain task, on the cores the workers use too; "
            f"a WasmJob's worker side also claims a fenced lease, runs the module (warm) and writes the result with "
            f"one Lua script each"
        ),
    )
