"""Python extensions on real workers: pause, resume and SIGKILL, hostile Python, like any module."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEXTSTATS = ROOT / "extensions" / "textstats"
SDK = str(ROOT / "extensions" / "sdk" / "python")


def _textstats_modules() -> tuple[object, object]:
    """extensions/textstats/app.py and its tests' text sampler, imported from the example itself."""
    for path in (SDK, str(TEXTSTATS), str(TEXTSTATS / "tests")):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module("app"), importlib.import_module("test_app")


def _native_textstats(params: dict) -> dict:
    """The same job in plain CPython, against the SDK's test double."""
    _textstats_modules()
    from wasmjob_sdk.testing import run

    out = run("textstats", params)
    assert out.completed, out.reason
    return out.result


def _sample(n_lines: int) -> str:
    return _textstats_modules()[1].sample(n_lines)


@pytest.fixture(scope="module")
def py_fleet(_fleet, py_scaffold: Path, py_textstats: Path):
    """Both Python extensions registered (the client compiles each once into the workers' cache)."""
    _fleet.client.add_extension(py_scaffold)
    _fleet.client.add_extension(py_textstats)
    return _fleet


def _claims(job) -> list[dict]:
    return [e for e in job.events() if e["event"] == "claimed"]


@pytest.mark.timeout(180)
def test_the_python_scaffold_pauses_and_resumes_on_the_fleet(fleet, py_fleet) -> None:
    target = 150_000
    job = fleet.client.submit("pyscaffold", "count", {"target": target})
    fleet.wait_running(job, min_checkpoints=2, timeout=90)
    job.pause()
    rec = job.wait(60, until=("paused",))
    assert rec.worker is None and 0 < rec.progress < 1
    paused_at = rec.checkpoints
    job.resume()
    rec = job.wait(90)
    assert rec.status == "completed", rec.error
    assert job.result() == {"target": target, "current": target, "sum": target * (target + 1) // 2}
    assert _claims(job)[-1]["from_checkpoint"] == paused_at
    assert any("sum of 1..=150000 is" in line["msg"] for line in job.logs())


@pytest.mark.timeout(240)
def test_textstats_pauses_resumes_survives_sigkill_and_matches_plain_cpython(fleet, py_fleet) -> None:
    params = {"text": _sample(20_000), "label": f"fleet-{time.time_ns()}", "checkpoint_lines": 10}
    job = fleet.client.submit("textstats", "textstats", params)
    fleet.wait_running(job, min_checkpoints=5, timeout=90)
    job.pause()
    assert job.wait(60, until=("paused",)).status == "paused"
    job.resume()
    rec = fleet.wait_running(job, min_checkpoints=job.record().checkpoints + 5, timeout=90)
    victim = fleet.worker_of(rec)
    victim.kill()
    rec = job.wait(120)
    assert rec.status == "completed", rec.error
    assert rec.recoveries >= 1
    assert job.result() == _native_textstats(params)
    workers = {c["worker"].split("@", 1)[0] for c in _claims(job)}
    assert len(_claims(job)) >= 3 and len(workers) == 2, _claims(job)


@pytest.mark.timeout(180)
def test_hostile_python_fails_with_its_reason_and_workers_take_the_next_job(fleet, py_fleet) -> None:
    hostile = {
        "spin": ({"timeout_seconds": 3}, "timed out"),
        "membomb": ({"max_memory_mb": 96}, "out of memory"),
        "deep": ({}, "stack overflow"),
        "crash": ({}, "ValueError: boom at start"),
    }
    jobs = {name: fleet.client.submit("pyscaffold", name, {}, limits=limits) for name, (limits, _) in hostile.items()}
    for name, job in jobs.items():
        rec = job.wait(120)
        assert rec.status == "failed", (name, rec.status)
        assert hostile[name][1] in rec.error, (name, rec.error)
    after = [fleet.client.submit("pyscaffold", "count", {"target": 100}) for _ in range(2)]
    for job in after:
        rec = job.wait(60)
        assert rec.status == "completed", rec.error
        assert job.result()["sum"] == 5050
