"""Row 3: cost per host call from a tight loop inside WASM, against the same loop without the call."""

from __future__ import annotations

from collections.abc import Callable

from wasmjob.job import JobSpec, Limits, Status
from wasmjob.runtime import Extension, Runtime, RuntimeConfig

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, fmt_time, interleaved, median

LIMIT_PER_CALL = 2e-6
LIMITS = Limits(timeout_seconds=120)


def _runner(rt: Runtime, ext: Extension) -> Callable[[], None]:
    def run() -> None:
        out = rt.run(ext, JobSpec(job_name="main"), None, 0, None, LIMITS)
        if out.status is not Status.COMPLETED:
            raise RuntimeError(f"loop job did not complete: {out.reason}")

    return run


def per_call(fast: bool, name: str, iterations: int, rounds: int) -> tuple[float, float, float]:
    """(seconds per call, loop with calls, loop without) for one import on one linking path."""
    call_step, empty_step = modules.STEPS[name]
    rt = Runtime(RuntimeConfig(cache_dir=None, fast_host_calls=fast))
    try:
        with_calls = rt.load(modules.loop_module(iterations, call_step), modules.manifest(f"loop-{name}"))
        without = rt.load(modules.loop_module(iterations, empty_step), modules.manifest(f"empty-{name}"))
        subject, baseline = _runner(rt, with_calls), _runner(rt, without)
        subject()
        baseline()
        a, b = interleaved(subject, baseline, rounds)
    finally:
        rt.close()
    loop, empty = median(a), median(b)
    return (loop - empty) / iterations, loop, empty


def _floor(done: list[Result], name: str) -> str:
    """For calls after the first: the bare crossing into Python is 3a's cost (it touches no memory)."""
    if not done or done[0].error or name == "job_check_interrupt":
        return ""
    return (
        f"; of this, crossing from WASM into Python and back is what job_check_interrupt costs "
        f"({done[0].value}), the rest is copying the message out of guest memory and Python bookkeeping"
    )


ROW = "3"
TARGET = "≤ 2 µs/call"

def run(ctx: Context) -> list[Result]:
    iterations = ctx.pick(100_000, 200_000)
    rounds = ctx.pick(7, 11)
    results: list[Result] = []
    for key, name in (("3a", "job_check_interrupt"), ("3b", "job_report_progress")):
        what = f"host call `{name}`"
        target = f"≤ {fmt_time(LIMIT_PER_CALL)}/call"
        try:
            cost, loop, empty = per_call(True, name, iterations, rounds)
            plain, _, _ = per_call(False, name, iterations // 5, max(3, rounds // 2))
        except Exception as exc:  # noqa: BLE001
            results.append(failed(key, what, target, exc))
            continue
        results.append(
            Result(
                key,
                what,
                value=f"{fmt_time(cost)}/call",
                baseline=f"empty loop {fmt_time(empty / iterations)}/iter",
                ratio=f"{fmt_ratio(loop / empty)} loop time",
                target=target,
                meets=cost <= LIMIT_PER_CALL,
                note=(
                    f"(loop with {iterations:,} calls − same loop without them) / {iterations:,}, medians of {rounds} "
                    f"interleaved runs, fuel on; wasmtime-py's plain define_func path: {fmt_time(plain)}/call "
                    f"({fmt_ratio(plain / cost)} the fast path)" + _floor(results, name)
                ),
                details=[f"loop {fmt_time(loop)}", f"empty {fmt_time(empty)}"],
            )
        )
    return results
