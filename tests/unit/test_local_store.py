"""The embedded store keeps the lease-and-fencing protocol of the Redis one."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmjob.errors import LeaseHeld, LeaseLost
from wasmjob.store import LocalStore, LogLine, ProgressUpdate


def test_tokens_increase_and_stale_writes_are_refused(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    first = store.acquire("j", "a", ttl=0.0)
    second = store.acquire("j", "b", ttl=30)
    assert second > first
    with pytest.raises(LeaseLost):
        store.save_checkpoint("j", first, b"old")
    store.save_checkpoint("j", second, b"new")
    assert store.load_checkpoint("j") == b"new"


def test_a_live_lease_cannot_be_taken_by_another_owner(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.acquire("j", "a", ttl=30)
    with pytest.raises(LeaseHeld):
        store.acquire("j", "b", ttl=30)


def test_released_lease_can_be_taken(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    token = store.acquire("j", "a", ttl=30)
    store.release("j", token)
    assert store.acquire("j", "b", ttl=30) == token + 1
    assert not store.renew("j", token, 30)


def test_progress_updates_accumulate(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    token = store.acquire("j", "a", ttl=30)
    store.record_progress("j", token, ProgressUpdate(progress=0.5, message="half", items=2, logs=[LogLine(1.0, 1, "x")]))
    store.save_checkpoint("j", token, b"s", ProgressUpdate(items=3, warnings=["w"]))
    job = store.job("j")
    assert (job["progress"], job["message"], job["items"], job["checkpoints"]) == (0.5, "half", 5, 1)
    assert job["warnings"] == ["w"] and job["logs"][0].message == "x"


def test_state_survives_reopening(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.save_checkpoint("j", store.acquire("j", "a", 30), b"\x00\xffbinary")
    store.close()
    assert LocalStore(tmp_path).load_checkpoint("j") == b"\x00\xffbinary"


def test_kv_is_scoped_by_namespace(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.kv_set("t1:ext", "k", "one")
    store.kv_set("t2:ext", "k", "two")
    store.kv_set("t1:ext", "k", "uno")
    assert (store.kv_get("t1:ext", "k"), store.kv_get("t2:ext", "k"), store.kv_get("t3:ext", "k")) == ("uno", "two", None)
