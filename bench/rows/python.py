"""Row 9: Python extensions (components): cold compile, disk-cache load, warm start, host calls, CPython vs sandbox.

The bench component is a small project built with ``wasmjob build`` (componentize-py);
it is kept in the user's cache by source digest, so only the first run pays the build.
"""

from __future__ import annotations

import hashlib
import tempfile
import textwrap
import time
from importlib.metadata import version
from pathlib import Path

import platformdirs

from wasmjob.cache import digest_of
from wasmjob.job import JobSpec, Limits, Status
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime, RuntimeConfig

from ..core import Context, Result, failed, fmt_ratio, fmt_time, median, spread, timed

ROW = "9"
TARGET = "warm start ≤ 10 ms; disk load ≤ 1 s; sandbox ≤ 3× CPython"
LIMITS = Limits(timeout_seconds=600, max_memory_mb=256)

LOOP = '''
def loop(n):
    """A pure-Python loop: arithmetic, a dict and string work, as jobs do."""
    seen = {}
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
        key = str(i % 97)
        seen[key] = seen.get(key, 0) + 1
    return total + len(seen)
'''

APP = '''
"""Bench jobs: host-call costs and a pure-Python loop."""
from wasmjob_sdk import Context, job
''' + LOOP + '''

@job
def calls(ctx: Context, state: dict) -> dict:
    for _ in range(int(state.get("n", 0))):
        ctx.check()
    for i in range(int(state.get("k", 0))):
        ctx.checkpoint({"i": i})
    return {"n": state.get("n", 0), "k": state.get("k", 0)}


@job(name="loop")
def loop_job(ctx: Context, state: dict) -> dict:
    return {"result": loop(int(state["n"]))}
'''

PYPROJECT = '[project]\nname = "pybench"\nversion = "0.1.0"\n\n[tool.wasmjob]\nmodule = "app"\n'
MANIFEST = '{"id": "pybench", "name": "Python bench", "version": "0.1.0", "wasm_file": "pybench.wasm"}\n'


def _component() -> tuple[bytes, float | None]:
    """The bench component and, when it was built now, how long componentize took."""
    from wasmjob.builder_python import SDK_PYTHON_DIR, WIT_DIR, build_python

    h = hashlib.sha256((APP + PYPROJECT + version("componentize-py")).encode())
    for path in sorted([*SDK_PYTHON_DIR.rglob("*.py"), *WIT_DIR.glob("*.wit")]):
        h.update(path.read_bytes())
    cached = Path(platformdirs.user_cache_dir("wasmjob")) / "bench" / f"pybench-{h.hexdigest()[:16]}.wasm"
    if cached.is_file():
        return cached.read_bytes(), None
    with tempfile.TemporaryDirectory(prefix="wasmjob-pybench-") as tmp:
        src = Path(tmp)
        (src / "app.py").write_text(textwrap.dedent(APP))
        (src / "pyproject.toml").write_text(PYPROJECT)
        (src / "manifest.json").write_text(MANIFEST)
        started = time.perf_counter()
        build_python(src, cached)
        return cached.read_bytes(), time.perf_counter() - started


def _run(rt: Runtime, ext: object, job: str, params: dict) -> object:
    out = rt.run(ext, JobSpec(job_name=job, params=params), None, 0, None, LIMITS)
    if out.status is not Status.COMPLETED:
        raise RuntimeError(f"bench job {job} did not complete: {out.reason}")
    return out


def _per_call(rt: Runtime, ext: object, params: dict, base: dict, rounds: int, calls: int) -> list[float]:
    """Seconds per call: a run with ``calls`` calls minus a run without, ``rounds`` times."""
    return [(timed(lambda: _run(rt, ext, "calls", params)) - timed(lambda: _run(rt, ext, "calls", base))) / calls
            for _ in range(rounds)]


def run(ctx: Context) -> list[Result]:
    what = "Python component"
    try:
        wasm, built = _component()
    except Exception as exc:  # noqa: BLE001 - a row that fails is reported, not fatal
        return [failed("9", what, TARGET, exc)]
    manifest = Manifest.from_json(MANIFEST)
    digest = digest_of(wasm)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="wasmjob-bench-pycache-") as tmp:
        cache = Path(tmp)
        rt = Runtime(RuntimeConfig(cache_dir=cache))
        try:
            compile_s = timed(lambda: rt.load(wasm, manifest, digest=digest, metered=False))
            artifact = sum(p.stat().st_size for p in cache.glob("*.cwasm"))
        finally:
            rt.close()
        loads = []
        for _ in range(ctx.pick(3, 7)):
            fresh = Runtime(RuntimeConfig(cache_dir=cache))
            try:
                loads.append(timed(lambda: fresh.load(wasm, manifest, digest=digest, metered=False)))
            finally:
                fresh.close()
    size_note = f"component {len(wasm) / 1e6:.1f} MB, serialized code {artifact / 1e6:.1f} MB"
    if built is not None:
        size_note += f"; wasmjob build (componentize-py) took {built:.1f} s"
    results.append(Result("9a", f"cold compile of a Python component ({len(wasm) / 1e6:.1f} MB)", fmt_time(compile_s),
                          "—", "—", "once per digest per worker", None,
                          note=f"{size_note}; fresh runtime: compile (parallel Cranelift), then instantiate and jobs()"))
    disk = median(loads)
    results.append(Result("9b", "load from the signed disk cache", fmt_time(disk), f"cold {fmt_time(compile_s)}",
                          f"{fmt_ratio(compile_s / disk)} faster", "≤ 1 s", disk <= 1.0,
                          note="fresh runtime: read + HMAC-check the artifact, deserialize, instantiate, call jobs()",
                          details=[f"disk {spread(loads)}"]))

    rt = Runtime(RuntimeConfig(cache_dir=None))
    try:
        ext = rt.load(wasm, manifest, digest=digest, metered=False)
        for _ in range(5):
            _run(rt, ext, "calls", {})
        warm = [timed(lambda: _run(rt, ext, "calls", {})) for _ in range(ctx.pick(30, 200))]
        results.append(Result("9c", "warm start of a Python job", fmt_time(median(warm)), "—", "—", "≤ 10 ms",
                              median(warm) <= 0.010,
                              note="loaded component: new Store + WASI context, instantiate, execute (decode state, "
                                   "call the job, checkpoint the result), post-return",
                              details=[f"warm {spread(warm)}"]))
        n = ctx.pick(100_000, 500_000)
        check = _per_call(rt, ext, {"n": n}, {}, ctx.pick(3, 5), n)
        results.append(Result("9d", "ctx.check() from Python (check-interrupt)", f"{fmt_time(median(check))}/call",
                              "—", "—", "—", None, note=f"{n} calls per run, minus a run without; includes the "
                              "Python loop in the sandbox", details=[spread(check)]))
        k = ctx.pick(2_000, 10_000)
        ckpt = _per_call(rt, ext, {"k": k}, {}, ctx.pick(3, 5), k)
        results.append(Result("9e", "ctx.checkpoint({...}) from Python", f"{fmt_time(median(ckpt))}/call", "—", "—",
                              "—", None, note=f"{k} small checkpoints per run, no store (JSON encode in the guest, "
                              "list<u8> across the boundary, the host's limits and bookkeeping)", details=[spread(ckpt)]))
        m = ctx.pick(300_000, 2_000_000)
        namespace: dict = {}
        exec(LOOP, namespace)  # noqa: S102 - the same source as the job's
        native = [timed(lambda: namespace["loop"](m)) for _ in range(3)]
        sandbox = [timed(lambda: _run(rt, ext, "loop", {"n": m})) for _ in range(3)]
        expected = namespace["loop"](m)
        got = _run(rt, ext, "loop", {"n": m}).result["result"]
        if got != expected:
            raise RuntimeError(f"the sandbox computed {got}, CPython {expected}")
        ratio = median(sandbox) / median(native)
        results.append(Result("9f", f"pure-Python loop ({m:,} steps), sandbox vs CPython", fmt_time(median(sandbox)),
                              f"CPython {fmt_time(median(native))}", f"{fmt_ratio(ratio)} slower", "≤ 3×", ratio <= 3.0,
                              note="the same function: natively in this CPython, and as a job in the component "
                                   "(no fuel; includes the warm start)",
                              details=[f"sandbox {spread(sandbox)}", f"cpython {spread(native)}"]))
    except Exception as exc:  # noqa: BLE001
        results.append(failed("9", what, TARGET, exc))
    finally:
        rt.close()
    return results
