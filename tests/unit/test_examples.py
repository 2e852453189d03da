"""The example extensions through the runtime: results checked independently, and a run
interrupted at random points then resumed gives exactly the uninterrupted result."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from wasmjob.job import InterruptFlag, JobSpec, Limits, Status
from wasmjob.manifest import find_manifest
from wasmjob.runtime import Extension, Runtime
from wasmjob.store import LocalStore

from .conftest import StopAfter

ROOT = Path(__file__).resolve().parents[2]


def load_example(rt: Runtime, name: str) -> Extension:
    from wasmjob.manifest import Manifest

    manifest = Manifest.from_file(ROOT / "extensions" / name / "manifest.json")
    wasm_path = ROOT / "extensions" / name / manifest.wasm_file
    if not wasm_path.exists():
        pytest.fail(f"{wasm_path} is missing: run python extensions/build.py")
    return rt.load(wasm_path.read_bytes(), find_manifest(wasm_path))


def run_to_end(rt: Runtime, ext: Extension, job: str, params: Any, store: LocalStore, rng: random.Random | None, max_gap: int) -> tuple[Any, int]:
    """Run until completed, interrupting after a random number of polls when ``rng`` is given."""
    spec = JobSpec(job_name=job, params=params)
    runs = 0
    while True:
        runs += 1
        flag = StopAfter(rng.randint(1, max_gap)) if rng else InterruptFlag()
        token = store.acquire(spec.job_id, "test", 60)
        out = rt.run(ext, spec, store, token, flag, Limits(timeout_seconds=120))
        store.release(spec.job_id, token)
        assert out.status is not Status.FAILED, out.reason
        if out.status is Status.COMPLETED:
            return out.result, runs
        assert runs < 10_000


def test_counter_counts_to_its_target(fast_runtime: Runtime, store: LocalStore) -> None:
    ext = load_example(fast_runtime, "counter")
    assert list(ext.jobs) == ["counter"] and ext.id == "counter"
    result, _ = run_to_end(fast_runtime, ext, "counter", {"target": 25}, store, None, 0)
    assert result["current"] == 25 and result["target"] == 25
    assert result["processed"] == [f"item_{i}" for i in range(1, 26)]


@pytest.mark.parametrize("seed", range(5))
def test_counter_interrupted_at_random_points_gives_the_same_result(fast_runtime: Runtime, tmp_path: Path, seed: int) -> None:
    ext = load_example(fast_runtime, "counter")
    whole, _ = run_to_end(fast_runtime, ext, "counter", {"target": 47}, LocalStore(tmp_path / "a"), None, 0)
    pieces, runs = run_to_end(fast_runtime, ext, "counter", {"target": 47}, LocalStore(tmp_path / "b"), random.Random(seed), 12)
    assert runs > 3
    assert pieces == whole


def test_primes_counts_match_known_values(fast_runtime: Runtime, store: LocalStore) -> None:
    ext = load_example(fast_runtime, "primes")
    for limit, count in [(1, 0), (2, 1), (10, 4), (100, 25), (1_000_000, 78_498), (10_000_000, 664_579)]:
        result, _ = run_to_end(fast_runtime, ext, "count_primes", {"limit": limit}, store, None, 0)
        assert (result["limit"], result["count"]) == (limit, count)


def test_primes_agrees_with_an_independent_python_sieve(fast_runtime: Runtime, store: LocalStore) -> None:
    ext = load_example(fast_runtime, "primes")
    limit = 123_457
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\0\0"
    for i in range(2, int(limit**0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = bytes(len(range(i * i, limit + 1, i)))
    result, _ = run_to_end(fast_runtime, ext, "count_primes", {"limit": limit}, store, None, 0)
    assert result["count"] == sum(sieve)


@pytest.mark.parametrize("seed", range(3))
def test_primes_interrupted_at_random_points_gives_the_same_result(fast_runtime: Runtime, tmp_path: Path, seed: int) -> None:
    ext = load_example(fast_runtime, "primes")
    params = {"limit": 20_000_000, "poll_segments": 1}
    whole, _ = run_to_end(fast_runtime, ext, "count_primes", params, LocalStore(tmp_path / "a"), None, 0)
    pieces, runs = run_to_end(fast_runtime, ext, "count_primes", params, LocalStore(tmp_path / "b"), random.Random(seed), 40)
    assert runs > 2
    assert pieces == whole and whole["count"] == 1_270_607
