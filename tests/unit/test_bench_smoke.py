"""The benchmark suite's pieces import and run on tiny inputs (no timing is asserted)."""

from __future__ import annotations

from bench import machine, report
from bench import wasm as modules
from bench.core import Result, failed
from bench.rows import ROWS, TARGETS, hostcalls, startup
from wasmjob.job import JobSpec, Status
from wasmjob.runtime import Runtime, RuntimeConfig


def test_every_row_of_the_issue_has_an_entry_point_and_a_target() -> None:
    assert list(ROWS) == list(TARGETS)
    assert {"1", "2", "3", "4", "5", "6", "7"} <= set(ROWS)


def test_bench_modules_run_to_completion() -> None:
    rt = Runtime(RuntimeConfig(cache_dir=None))
    try:
        for wasm in (
            modules.trivial_module(),
            modules.large_module(functions=4, statements=4),
            modules.checkpoint_module(16, 0),
            *(modules.loop_module(10, step) for pair in modules.STEPS.values() for step in pair),
        ):
            out = rt.run(rt.load(wasm, modules.manifest("smoke")), JobSpec(job_name="main"), None)
            assert out.status is Status.COMPLETED, out.reason
    finally:
        rt.close()


def test_runtime_rows_measure_on_tiny_inputs() -> None:
    cost, loop, empty = hostcalls.per_call(True, "job_check_interrupt", 100, 1)
    assert loop > 0 and empty > 0 and isinstance(cost, float)
    times = startup.measure("smoke", modules.trivial_module(), 1, 1)
    assert set(times) == {"cold", "disk", "warm"}


def test_report_marks_misses_and_errors() -> None:
    rows = [
        Result("9a", "a row that meets", "1 ms", "2 ms", "2.00×", "≥ 1×", True, note="how"),
        Result("9b", "a row that misses", "3 ms", "1 ms", "3.00×", "≤ 2×", False, note="why"),
        failed("9c", "a row that broke", "≤ 2×", RuntimeError("no redis")),
    ]
    text = report.markdown(rows, machine.describe(), quick=True, seconds=1.0)
    assert "| 9a |" in text and "**MISSES**" in text and "**ERROR**" in text
    assert "could not run: RuntimeError: no redis" in text
    assert "9b" in report.text_table(rows)
