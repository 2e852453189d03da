"""Row 2: warm start (cached module → instantiate → ``plugin_init`` → first export call) vs cold compile."""

from __future__ import annotations

import tempfile
from pathlib import Path

from wasmjob.wasmbin import digest_of
from wasmjob.job import JobSpec, Limits, Status
from wasmjob.runtime import Runtime, RuntimeConfig

from .. import wasm as modules
from ..core import Context, Result, failed, fmt_ratio, fmt_time, median, spread, timed

WARM_LIMIT = 1e-3
MIN_SPEEDUP = 50.0
LIMITS = Limits(timeout_seconds=60)


def _start(rt: Runtime, wasm: bytes, digest: str, name: str) -> None:
    """One start of a job as a worker does it: look the extension up (or compile it), run it."""
    ext = rt.load(wasm, modules.manifest(name), digest=digest)
    out = rt.run(ext, JobSpec(job_name="main"), None, 0, None, LIMITS)
    if out.status is not Status.COMPLETED:
        raise RuntimeError(f"{name}: the job did not complete: {out.reason}")


def _cold(wasm: bytes, digest: str, name: str, cache_dir: Path | None) -> float:
    """A fresh runtime (its engine made untimed): compile or deserialize, then the first run."""
    rt = Runtime(RuntimeConfig(cache_dir=cache_dir))
    try:
        return timed(lambda: _start(rt, wasm, digest, name))
    finally:
        rt.close()


def measure(name: str, wasm: bytes, cold_rounds: int, warm_rounds: int) -> dict[str, list[float]]:
    digest = digest_of(wasm)
    with tempfile.TemporaryDirectory(prefix="wasmjob-bench-cache-") as tmp:
        disk = Path(tmp) / "modules"
        _cold(wasm, digest, name, disk)  # writes the artifact the disk rounds read back
        cold = [_cold(wasm, digest, name, None) for _ in range(cold_rounds)]
        from_disk = [_cold(wasm, digest, name, disk) for _ in range(cold_rounds)]
    rt = Runtime(RuntimeConfig(cache_dir=None))
    try:
        _start(rt, wasm, digest, name)
        for _ in range(20):
            _start(rt, wasm, digest, name)
        warm = [timed(lambda: _start(rt, wasm, digest, name)) for _ in range(warm_rounds)]
    finally:
        rt.close()
    return {"cold": cold, "disk": from_disk, "warm": warm}


ROW = "2"
TARGET = "warm ≤ 1 ms, ≥ 50× cold (large)"

def run(ctx: Context) -> list[Result]:
    cases = [
        ("2a", "small", modules.trivial_module, ctx.pick(5, 15)),
        ("2b", "large", modules.large_module, ctx.pick(2, 5)),
    ]
    results = []
    for key, label, build, cold_rounds in cases:
        target = f"warm ≤ {fmt_time(WARM_LIMIT)}" + (f", ≥ {MIN_SPEEDUP:.0f}× cold" if label == "large" else "")
        what = f"warm start, {label} module"
        try:
            wasm = build()
            t = measure(f"bench-{label}", wasm, cold_rounds, ctx.pick(200, 1000))
        except Exception as exc:  # noqa: BLE001 - a row that fails is reported, not fatal
            results.append(failed(key, what, target, exc))
            continue
        warm, cold, disk = median(t["warm"]), median(t["cold"]), median(t["disk"])
        speedup = cold / warm
        meets = warm <= WARM_LIMIT and (label != "large" or speedup >= MIN_SPEEDUP)
        results.append(
            Result(
                key,
                f"{what} ({len(wasm) / 1e6:.2f} MB)" if len(wasm) > 1e6 else f"{what} ({len(wasm)} B)",
                value=fmt_time(warm),
                baseline=f"cold {fmt_time(cold)}",
                ratio=f"{fmt_ratio(speedup)} faster",
                target=target,
                meets=meets,
                note=(
                    f"median of {len(t['warm'])} warm starts (load by digest from the in-memory cache, "
                    f"instantiate from the InstancePre, plugin_init, execute_main) vs {len(t['cold'])} cold ones "
                    f"(fresh runtime: validate, compile, link, plugin_init, execute_main); "
                    f"from the disk cache in a fresh runtime: {fmt_time(disk)} ({fmt_ratio(cold / disk)} faster than cold)"
                ),
                details=[f"warm {spread(t['warm'])}", f"cold {spread(t['cold'])}", f"disk {spread(t['disk'])}"],
            )
        )
    return results
