"""Spacedrive's test extension, ported with its own error handling (checkpoint, then
``Err(Error::OperationFailed("Interrupted"))``), pauses and resumes on real workers."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def expected(target: int) -> dict[str, object]:
    return {"current": target, "target": target, "processed": [f"item_{i}" for i in range(1, target + 1)]}


@pytest.mark.timeout(90)
def test_spacedrive_port_is_sliced_paused_and_resumed_without_failing(fleet) -> None:
    fleet.client.add_extension(ROOT / "extensions" / "counter-rs")
    target = 4000
    # Short slices: every slice ends with the port's "Interrupted" error, which must read as
    # an interrupt (the job continues) and never as "failed: Operation failed: Interrupted".
    job = fleet.client.submit("counter-rs", "counter", {"target": target}, limits={"slice_seconds": 0.02})
    deadline = time.monotonic() + 30
    while not any(e["event"] == "claimed" and e.get("from_checkpoint") for e in job.events()):
        rec = job.record()
        assert rec.status != "failed", rec.error
        assert not rec.done, "finished before its first slice ended: raise the target"
        assert time.monotonic() < deadline, f"never continued from a checkpoint: {rec}"
        time.sleep(0.02)
    job.pause()
    rec = job.wait(20, until=("paused",))
    assert rec.status == "paused" and 0 < rec.progress < 1, (rec.status, rec.error)
    job.resume()
    rec = job.wait(60)
    assert rec.status == "completed", rec.error
    assert job.result() == expected(target)
