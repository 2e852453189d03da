"""Row 1: end-to-end throughput of trivial WasmJobs (submit → completed) vs trivial plain Celery tasks."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

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


def _ticks(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 once it is gone."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuLedger:
    """CPU seconds per job, by who spent them: this producer, the worker processes, Redis."""

    jobs: int = 0
    spent: dict[str, float] = field(default_factory=lambda: {"producer": 0.0, "workers": 0.0, "redis": 0.0})

    def per_job_ms(self) -> str:
        n = max(1, self.jobs)
        total = sum(self.spent.values()) / n * 1e3
        parts = ", ".join(f"{k} {v / n * 1e3:.2f}" for k, v in self.spent.items())
        return f"{total:.2f} ms ({parts})"


def _snapshot(fh: FleetHarness) -> dict[str, float]:
    pids = [pid for w in fh.services.workers for pid in (w.pid, *w.children())]
    info: Any = fh.redis.info("cpu")
    return {
        "producer": time.thread_time(),
        "workers": sum(_ticks(pid) for pid in pids),
        "redis": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
    }


def _batch(ledger: CpuLedger, fh: FleetHarness, jobs: int, submit: Any, wait: Any) -> float:
    """Submit a batch and wait for it; the producer's CPU counts the submits, the workers' and
    Redis's count until the batch ended. Returns the submit phase's seconds."""
    before = _snapshot(fh)
    t0 = time.perf_counter()
    ids = submit()
    submitted, producer = time.perf_counter() - t0, time.thread_time()
    wait(ids)
    after = _snapshot(fh)
    after["producer"] = producer
    ledger.jobs += jobs
    for k in ledger.spent:
        ledger.spent[k] += after[k] - before[k]
    return submitted


def _measure(ctx: Context, what: str, target: str) -> Result:
    jobs, rounds = ctx.pick(100, 300), ctx.pick(3, 5)
    submit_times: list[float] = []
    send_times: list[float] = []
    cpu_wasm, cpu_plain = CpuLedger(), CpuLedger()
    with FleetHarness(ctx.services()) as fh:
        fh.workers(WORKERS)
        fh.register(modules.trivial_module(), modules.manifest("trivial"))
        fh.wait_jobs(fh.submit("trivial", "main", None, 4 * WORKERS), 120)  # every process compiles once
        fh.wait_tasks(fh.send(NOOP, [], 4 * WORKERS), 60)

        def wasm() -> None:
            submit_times.append(
                _batch(cpu_wasm, fh, jobs, lambda: fh.submit("trivial", "main", None, jobs), lambda ids: fh.wait_jobs(ids, 300))
            )

        def plain() -> None:
            send_times.append(
                _batch(cpu_plain, fh, jobs, lambda: fh.send(NOOP, [], jobs), lambda ids: fh.wait_tasks(ids, 300))
            )

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
            f"STARTED state stored); Celery's backend stores the plain task's result, the script that finishes a "
            f"WasmJob stores its result in the same format (wasmjob.run stores none itself); WasmJobs via Client.submit (send_task, then one script creates the job record), "
            f"plain tasks via send_task; submitting took {median(submit_times) / jobs * 1e3:.2f} ms per "
            f"WasmJob vs {median(send_times) / jobs * 1e3:.2f} ms per plain task, on the cores the workers use too; "
            f"a WasmJob's worker side also claims a fenced lease, runs the module (warm, on the engine without fuel) "
            f"and ends the run with one Lua script each, a round trip apiece; CPU per job (this producer's submit, the worker processes and Redis, measured "
            f"over whole batches until every job of the batch ended): WasmJob {cpu_wasm.per_job_ms()}, plain task "
            f"{cpu_plain.per_job_ms()}"
        ),
    )
