"""Snapshot mode on real workers: a job that never checkpoints pauses, resumes, and survives SIGKILL.

Two workers of their own read a queue of their own, with a snapshot every 0.2 s
of run time, so the session fleet's workers never see these jobs. N-Queens for
n=15 has 2,279,184 solutions (the count of one uninterrupted run, and OEIS A000170);
the job's whole state is its recursion.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wasmjob.snapshot.image import is_snapshot

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "snapq"
N, SOLUTIONS = 15, 2_279_184

pytestmark = pytest.mark.skipif(shutil.which("wasm-opt") is None, reason="binaryen's wasm-opt is not installed")


@pytest.fixture(scope="module")
def snap_workers(_fleet) -> Iterator[dict]:
    from harness.procs import LocalWorker

    env = {**_fleet.env, "WASMJOB_SNAPSHOT_SECONDS": "0.2", "WASMJOB_QUEUE": QUEUE}
    workers = {
        name: LocalWorker(name, env, _fleet.tmp / f"{name}.log", queues=QUEUE).start() for name in ("s1", "s2")
    }
    for w in workers.values():
        w.wait_ready()
    yield workers
    stopping = [threading.Thread(target=w.stop, kwargs={"timeout": 5}) for w in workers.values()]
    for t in stopping:
        t.start()
    for t in stopping:
        t.join()


@pytest.fixture(scope="module")
def nqueens(_fleet):
    return _fleet.client.add_extension(ROOT / "extensions" / "nqueens")


def _wait(job, predicate, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = job.record()
        if predicate(rec):
            return rec
        assert not rec.done, f"job ended early ({what}): {rec.status} {rec.error}"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {job.record()}")


def test_the_registry_keeps_the_instrumented_module_beside_the_original(_fleet, nqueens) -> None:
    registry = _fleet.client.fleet.registry
    assert nqueens.durability == "snapshot" and registry.resolve("nqueens").as_dict()["durability"] == "snapshot"
    code = registry.instrumented(nqueens.digest)
    assert code is not None and b"asyncify_start_unwind" in code
    assert registry.fetch(nqueens.digest) == (ROOT / "extensions" / "nqueens" / "nqueens.wasm").read_bytes()


@pytest.mark.timeout(150)
def test_a_job_that_never_checkpoints_pauses_resumes_moves_and_survives_sigkill(_fleet, snap_workers, nqueens) -> None:
    client = _fleet.client
    job = client.submit("nqueens", "nqueens", {"n": N}, queue=QUEUE)
    _wait(job, lambda r: r.status == "running" and r.checkpoints >= 2, "periodic snapshots")
    # pause: the job is unwound at its next safe point and its snapshot saved
    job.pause()
    rec = job.wait(15, until=("paused",))
    assert is_snapshot(client.fleet.store.load_checkpoint(job.id)), "the pause saved no snapshot"
    job.resume()
    seen = rec.checkpoints
    rec = _wait(job, lambda r: r.status == "running" and r.checkpoints >= seen + 2 and r.worker, "resumed snapshots")
    # warm shutdown of its worker: the job is snapshotted and continues on the other one
    stopped = snap_workers[rec.worker.split("@", 1)[0]]
    stopped.stop(timeout=20)
    events = [e for e in job.events() if e["event"] == "continued"]
    assert events and events[-1].get("why") == "shutdown", job.events()
    stopped.start()
    seen = job.record().checkpoints
    rec = _wait(job, lambda r: r.status == "running" and r.checkpoints >= seen + 2 and r.worker, "snapshots after the move")
    # SIGKILL: another worker takes the job over from its last snapshot
    victim = snap_workers[rec.worker.split("@", 1)[0]]
    victim.kill()
    killed_at_checkpoints = job.record().checkpoints
    try:
        rec = job.wait(90)
    finally:
        victim.start()
    assert rec.status == "completed", rec.error
    assert rec.result == {"n": N, "solutions": SOLUTIONS}
    claims = [e for e in job.events() if e["event"] == "claimed"]
    assert len(claims) >= 4  # first run, after the resume, after the shutdown, after the kill
    assert not claims[-1]["worker"].startswith(victim.name)
    assert claims[-1]["from_checkpoint"] >= killed_at_checkpoints - 1  # it went on from a snapshot, not from zero
    assert rec.recoveries >= 1


@pytest.mark.timeout(60)
def test_time_slices_end_in_snapshots_and_the_job_continues_exactly(_fleet, snap_workers, nqueens) -> None:
    job = _fleet.client.submit("nqueens", "nqueens", {"n": 14}, queue=QUEUE, limits={"slice_seconds": 0.2})
    rec = job.wait(60)
    assert rec.status == "completed", rec.error
    assert rec.result == {"n": 14, "solutions": 365_596}
    slices = [e for e in job.events() if e["event"] == "continued" and e.get("why") == "slice"]
    assert len(slices) >= 2, job.events()


def test_full_snapshots_are_fenced_and_expire_with_the_finished_job(redis_fleet) -> None:
    """The base slots go through the checkpoint's fenced commit and share the state's retention."""
    import uuid

    from wasmjob.errors import LeaseLost

    records, store, keys = redis_fleet.records, redis_fleet.store, redis_fleet.keys
    job = str(uuid.uuid4())
    records.create(
        job, extension="snap", digest="sha256:" + "0" * 64, ext_id="snap", ext_version="1", job="main",
        params=None, tenant=None, queue=None, priority=None, limits={}, dispatch=1, enqueue=True, concurrent=0,
    )
    token = records.claim(job, "snap", "w/1/a", 5, 1, 1.0).token
    store.save_snapshot_base(job, token, "a", b"full snapshot")
    assert store.load_snapshot_base(job, "a") == b"full snapshot"
    with pytest.raises(LeaseLost):
        store.save_snapshot_base(job, token - 1, "b", b"stale")
    assert store.load_snapshot_base(job, "b") is None
    records.finish(job, ext_id="snap", tenant="00000000-0000-0000-0000-000000000000", token=token, kind="completed")
    client = redis_fleet.client
    assert client.pttl(keys.snapshot_base(job, "a")) > 0  # expires with the record, like the state
    assert client.pttl(keys.snapshot_base(job, "a")) <= client.pttl(keys.job(job)) + 1000
