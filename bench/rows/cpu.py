"""Row 4: the primes job in WASM vs pure Python as a Celery task, and vs native C (gcc -O2) with and without fuel."""

from __future__ import annotations

import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import wasmtime

from wasmjob.job import JobSpec, Limits, Status
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime, RuntimeConfig

from .. import wasm as modules
from ..core import (
    Context,
    Result,
    failed,
    fmt_ratio,
    fmt_time,
    interleaved,
    median,
    timed,
)
from ..fleet import FleetHarness
from ..tasks import PRIMES_PY

MIN_VS_PYTHON = 20.0
MAX_LIGHT_VS_NATIVE = 1.25
MAX_METERED_VS_NATIVE = 1.6
NATIVE_SOURCE = modules.ROOT / "bench" / "native" / "primes_native.c"
FUEL = 10**13  # a real budget: metering is on in every build, this makes it bite


def _power(n: int) -> str:
    """10^9, 2·10^8: the limits as people write them."""
    exp = len(str(n)) - 1
    lead = n // 10**exp
    return f"10^{exp}" if n == 10**exp else f"{lead}·10^{exp}"


def build_native(out_dir: Path) -> Path:
    """``gcc -O2`` of the native baseline, sharing the extension's sieve (primes_core.h)."""
    exe = out_dir / "primes_native"
    cmd = ["gcc", "-O2", "-I", str(modules.PRIMES_DIR), "-o", str(exe), str(NATIVE_SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"gcc failed: {proc.stderr.strip()[:300]}")
    return exe


def bare_seconds(wasm: bytes, limit: int, *, fuel: bool, epoch: bool) -> float:
    """Diagnostic: the same module on a bare engine with the chosen instrumentation, host calls stubbed.

    Shows what fuel metering and epoch checks cost the sieve, apart from the runtime.
    """
    config = wasmtime.Config()
    config.consume_fuel = fuel
    config.epoch_interruption = epoch
    config.cranelift_opt_level = "speed"
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, wasm)
    store = wasmtime.Store(engine)
    if fuel:
        store.set_fuel(FUEL)
    if epoch:
        store.set_epoch_deadline(2**40)
    linker = wasmtime.Linker(engine)
    for imp in module.imports:
        ty = imp.type
        assert isinstance(ty, wasmtime.FuncType)
        zero = 0 if list(ty.results) else None
        linker.define_func(imp.module, imp.name or "", ty, lambda *args, _z=zero: _z)
    exports = linker.instantiate(store, module).exports(store)
    memory, alloc, init = exports["memory"], exports["wasm_alloc"], exports["plugin_init"]
    assert isinstance(memory, wasmtime.Memory) and isinstance(alloc, wasmtime.Func) and isinstance(init, wasmtime.Func)
    init(store)
    ctx = json.dumps({"job_id": "00000000-0000-0000-0000-000000000000", "library_id": "00000000-0000-0000-0000-000000000000"}).encode()
    state = json.dumps({"limit": limit}).encode()
    ctx_ptr, state_ptr = alloc(store, len(ctx)), alloc(store, len(state))
    memory.write(store, ctx, ctx_ptr)
    memory.write(store, state, state_ptr)
    job = exports["execute_count_primes"]
    assert isinstance(job, wasmtime.Func)
    t0 = time.perf_counter()
    rc = job(store, ctx_ptr, len(ctx), state_ptr, len(state))
    seconds = time.perf_counter() - t0
    if rc != 0:
        raise RuntimeError(f"bare count_primes returned {rc}")
    return seconds


ROW = "4"
TARGET = "≥ 20× Python, ≤ 1.25× native without fuel, ≤ 1.6× with"

def run(ctx: Context) -> list[Result]:
    built = modules.primes_module()
    if built is None:
        exc = RuntimeError("extensions/primes/primes.wasm is not built yet")
        return [failed("4a", "primes vs Python", f"≥ {MIN_VS_PYTHON:.0f}×", exc),
                failed("4b", "primes vs native", f"≤ {MAX_LIGHT_VS_NATIVE}× native", exc)]  # fmt: skip
    wasm, manifest = built
    results = []
    try:
        results.extend(_vs_python(ctx, wasm, manifest))
    except Exception as exc:  # noqa: BLE001
        results.append(failed("4a", "primes in WASM vs pure Python task", f"≥ {MIN_VS_PYTHON:.0f}× faster", exc))
    try:
        results.extend(_vs_native(ctx, wasm, manifest))
    except Exception as exc:  # noqa: BLE001
        results.append(failed("4b", "primes in WASM vs native C", f"≤ {MAX_LIGHT_VS_NATIVE}× native", exc))
    return sorted(results, key=lambda r: r.key)  # 4a, 4b, the informational 4c, 4d


def _vs_python(ctx: Context, wasm: bytes, manifest: Manifest) -> list[Result]:
    """Both as jobs on the same real worker, end to end (submit → result): 4a against the
    literal port (the issue's baseline), 4c against the slice-marking Python (no target)."""
    rounds = ctx.pick(3, 5)
    with FleetHarness(ctx.services()) as fh:
        fh.workers(1)
        fh.register(wasm, manifest)
        fh.wait_jobs(fh.submit("primes", "count_primes", {"limit": 1000}, 1), 120)
        fh.wait_tasks(fh.send(PRIMES_PY, [1000, True], 1), 60)
        literal = _pair(fh, ctx.pick(2 * 10**7, 10**8), rounds, literal=True)
        sliced = _pair(fh, ctx.pick(2 * 10**8, 10**9), rounds, literal=False)
    limit, w, p, compute, count = literal
    speedup = p / w
    first = Result(
        "4a",
        f"primes ≤ {_power(limit)} in WASM (fuel on) vs pure-Python Celery task",
        value=fmt_time(w),
        baseline=f"Python {fmt_time(p)}",
        ratio=f"{fmt_ratio(speedup)} faster",
        target=f"≥ {MIN_VS_PYTHON:.0f}× faster",
        meets=speedup >= MIN_VS_PYTHON,
        note=(
            f"both submitted to the same worker and timed submit → result, medians of {rounds} interleaved runs; "
            f"the WasmJob runs with a fuel budget and checkpoints as it goes; the Python task runs "
            f"count_primes_loop in bench/native/primes.py, a line-for-line port of primes_core.h whose marking "
            f"and counting loops are Python loops (compute alone {fmt_time(compute)}); both found {count:,} primes"
        ),
    )
    limit, w, p, compute, count = sliced
    second = Result(
        "4c",
        f"primes ≤ {_power(limit)} in WASM (fuel on) vs slice-optimized Python task (informational)",
        value=fmt_time(w),
        baseline=f"Python {fmt_time(p)}",
        ratio=f"{fmt_ratio(p / w)} faster",
        target="none (informational)",
        meets=None,
        note=(
            f"as 4a, at a larger limit, against count_primes in bench/native/primes.py: the same segmented sieve "
            f"but it marks each segment with bytearray slice assignment and counts with bytearray.count, so its "
            f"inner loops run in C inside CPython (compute alone {fmt_time(compute)}); shown so the gap to the "
            f"fastest Python is visible too; both found {count:,} primes"
        ),
    )
    return [first, second]


def _pair(fh: FleetHarness, limit: int, rounds: int, *, literal: bool) -> tuple[int, float, float, float, int]:
    """(limit, WASM median, Python median, Python compute median, count), interleaved."""
    counts: set[int] = set()
    python_compute: list[float] = []

    def in_wasm() -> None:
        [job_id] = fh.submit("primes", "count_primes", {"limit": limit}, 1, limits={"fuel": FUEL})
        fh.wait_jobs([job_id], 600)
        counts.add(int(fh.record(job_id).result["count"]))

    def in_python() -> None:
        [res] = fh.wait_tasks(fh.send(PRIMES_PY, [limit, literal], 1), 1200)
        counts.add(int(res["count"]))
        python_compute.append(float(res["seconds"]))

    a, b = interleaved(in_wasm, in_python, rounds)
    if len(counts) != 1:
        raise RuntimeError(f"WASM and Python disagree on the count at {limit}: {sorted(counts)}")
    return limit, median(a), median(b), median(python_compute), counts.pop()


def _vs_native(ctx: Context, wasm: bytes, manifest: Manifest) -> list[Result]:
    """The job's compute in-process, on the engine without fuel and on the metered one, vs the native
    executable, same limit, in rotating order."""
    limit, rounds = ctx.pick(3 * 10**8, 10**9), ctx.pick(3, 7)
    rt = Runtime(RuntimeConfig(cache_dir=None))
    counts: set[int] = set()
    cpu: dict[str, list[float]] = {"light": [], "metered": [], "native": []}
    wall: dict[str, list[float]] = {"light": [], "metered": [], "native": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="wasmjob-bench-native-") as tmp:
        exe = build_native(Path(tmp))
        try:
            exts = {"light": rt.load(wasm, manifest, metered=False), "metered": rt.load(wasm, manifest, metered=True)}
            limits = {"light": Limits(timeout_seconds=600), "metered": Limits(fuel=FUEL, timeout_seconds=600)}

            def in_wasm(kind: str) -> None:
                spec = JobSpec(job_name="count_primes", params={"limit": limit})
                c0 = time.thread_time()
                out = rt.run(exts[kind], spec, None, 0, None, limits[kind])
                cpu[kind].append(time.thread_time() - c0)
                if out.status is not Status.COMPLETED:
                    raise RuntimeError(f"primes job {out.status.value}: {out.reason}")
                counts.add(int(out.result["count"]))

            def native() -> None:
                r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                proc = subprocess.run([str(exe), str(limit)], capture_output=True, text=True, check=True)
                r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu["native"].append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                counts.add(int(proc.stdout.strip()))

            steps = {
                "light": lambda: in_wasm("light"),
                "metered": lambda: in_wasm("metered"),
                "native": native,
                "bare": lambda: bare_seconds(wasm, limit, fuel=False, epoch=False),
            }
            for fn in steps.values():  # warm-up
                fn()
            for series in cpu.values():
                series.clear()
            order = list(steps)
            for r in range(rounds):  # rotating order, so drift hits each alike
                for name in order[r % 4 :] + order[: r % 4]:
                    if name == "bare":
                        wall[name].append(steps[name]())  # type: ignore[arg-type]
                    else:
                        wall[name].append(timed(steps[name]))
        finally:
            rt.close()
    if len(counts) != 1:
        raise RuntimeError(f"WASM and native disagree on the count: {sorted(counts)}")
    count = counts.pop()
    n, bare = median(wall["native"]), median(wall["bare"])
    out = []
    for key, kind, bound, engine in (
        ("4b", "light", MAX_LIGHT_VS_NATIVE, "no fuel budget: the engine without fuel metering, epoch deadline on"),
        ("4d", "metered", MAX_METERED_VS_NATIVE, "a fuel budget: fuel metering and epoch interruption compiled in"),
    ):
        w = median(wall[kind])
        ratio = w / n
        out.append(
            Result(
                key,
                f"primes ≤ {_power(limit)} in WASM ({'fuel off' if kind == 'light' else 'fuel on'}) vs native C",
                value=fmt_time(w),
                baseline=f"gcc -O2 {fmt_time(n)}",
                ratio=f"{fmt_ratio(ratio)} native",
                target=f"≤ {bound}× native",
                meets=ratio <= bound,
                note=(
                    f"Runtime.run of count_primes with {engine} (instantiate, plugin_init, the sieve, host calls every "
                    f"16 segments) vs the native executable built from the same primes_core.h with gcc -O2 (process "
                    f"start included), medians of {rounds} runs rotating through fuel off, fuel on, native and a bare "
                    f"engine; all found {count:,} primes; in CPU time {fmt_ratio(median(cpu[kind]) / median(cpu['native']))}"
                    f" native; diagnostic: the same module on a bare wasmtime engine without fuel or epoch "
                    f"instrumentation, host calls stubbed, ran at {fmt_ratio(bare / n)} native, so this run's sandbox "
                    f"costs {fmt_ratio(w / bare)} over it"
                ),
            )
        )
    return out
