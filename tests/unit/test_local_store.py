"""The embedded store keeps the lease-and-fencing protocol of the Redis one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from wasmjob.errors import LeaseHeld, LeaseLost
from wasmjob.owners import local_owner, owner_gone, process_start
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


def _owner_of_a_dead_process() -> str:
    """The owner string a local run in another process had, once that process was SIGKILLed."""
    with subprocess.Popen(
        [sys.executable, "-c", "from wasmjob.owners import local_owner; print(local_owner(), flush=True); "
         "import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    ) as proc:
        assert proc.stdout is not None
        owner = proc.stdout.readline().strip()
        assert not owner_gone(owner), "a running process must not be declared gone"
        proc.kill()
        proc.wait()
    assert owner_gone(owner)
    return owner


def test_a_lease_of_a_dead_local_process_is_taken_over_at_once(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    dead = _owner_of_a_dead_process()
    token = store.acquire("j", dead, ttl=3600)
    assert store.acquire("j", local_owner(), ttl=30) == token + 1


def test_a_reused_pid_is_not_mistaken_for_the_owner(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    host, pid, start = local_owner().rsplit(":", 2)
    store.acquire("j", f"{host}:{pid}:{int(start) - 1}", ttl=3600)  # same pid, started at another time
    store.acquire("j", local_owner(), ttl=30)


def test_live_and_remote_owners_keep_their_leases(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    host = socket.gethostname()
    store.acquire("live", f"{host}:{os.getppid()}:{process_start(os.getppid())}", ttl=3600)
    store.acquire("remote", "another-host:1:1", ttl=3600)
    store.acquire("legacy", f"{host}:{os.getpid()}", ttl=3600)
    for job_id in ("live", "remote", "legacy"):
        with pytest.raises(LeaseHeld):
            store.acquire(job_id, "someone-else", ttl=30)
