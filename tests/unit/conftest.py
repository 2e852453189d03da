"""Fixtures for runtime unit tests: a Runtime per host-call path and a local store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wasmjob import wasmtime_internals
from wasmjob.job import InterruptFlag, InterruptReason, JobSpec, Limits, Outcome
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime, RuntimeConfig
from wasmjob.store import LocalStore


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/unit/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="module", params=["fast", "plain", "fallback"])
def runtime(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A Runtime on each host-call path: all must behave the same.

    ``fallback`` asks for the fast path on a wasmtime the fast path was not written for
    (the version check is forced to fail): every host call then takes the public API.
    """
    if request.param == "fallback":
        assert not wasmtime_internals.select("51.0.0")
    try:
        rt = Runtime(RuntimeConfig(cache_dir=tmp_path_factory.mktemp("cache"), fast_host_calls=request.param != "plain"))
        yield rt
        rt.close()
    finally:
        wasmtime_internals.select()


@pytest.fixture(scope="module")
def fast_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path_factory.mktemp("cache")))
    yield rt
    rt.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    st = LocalStore(tmp_path / "state")
    yield st
    st.close()


def run_job(
    rt: Runtime,
    store: LocalStore | None,
    wasm: bytes,
    *,
    job: str = "main",
    params: Any = None,
    limits: Limits | None = None,
    manifest: Manifest | None = None,
    interrupts: InterruptFlag | None = None,
    job_id: str | None = None,
) -> Outcome:
    """Load ``wasm`` and run one job under a fresh lease."""
    ext = rt.load(wasm, manifest or Manifest.default("test"))
    spec = JobSpec(job_name=job, params=params) if job_id is None else JobSpec(job_name=job, params=params, job_id=job_id)
    token = store.acquire(spec.job_id, "test", 60) if store is not None else 0
    return rt.run(ext, spec, store, token, interrupts, limits or Limits(timeout_seconds=10))


class StopAfter(InterruptFlag):
    """An interrupt flag that asks the job to pause once the guest has polled it ``n`` times."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.remaining = n

    @property  # type: ignore[override]
    def reason(self) -> InterruptReason | None:
        if self.remaining <= 0:
            return InterruptReason.PAUSE
        self.remaining -= 1
        return self._reason

    @reason.setter
    def reason(self, value: InterruptReason | None) -> None:
        self._reason = value
