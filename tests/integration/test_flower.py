"""Flower, started for real, shows wasmjob jobs with a readable name, args and live progress."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from modules import ENDLESS, SPIN, TICKER_WAT, TRAP_WAT, ticker_params
from harness.procs import LocalFlower



def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


@pytest.fixture
def flower(fleet, tmp_path):
    with LocalFlower(fleet.env, tmp_path / "flower.log").start() as running:
        yield running.base


def wait_task(base: str, task_id: str, until: tuple[str, ...], timeout: float = 30) -> tuple[dict[str, Any], set[str], list[str]]:
    """Poll Flower's task API until ``task_id`` is in one of ``until``; (task, states seen, STARTED results)."""
    states: set[str] = set()
    progress: list[str] = []
    task: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = get_json(f"{base}/api/task/info/{task_id}") if _known(base, task_id) else {}
        if task:
            states.add(task["state"])
            if task["state"] == "STARTED" and task.get("result"):
                progress.append(task["result"])
            if task["state"] in until:
                return task, states, progress
        time.sleep(0.1)
    raise AssertionError(f"{task_id} not in {until} after {timeout}s: {task}")


def _known(base: str, task_id: str) -> bool:
    try:
        get_json(f"{base}/api/task/info/{task_id}")
    except urllib.error.HTTPError:
        return False
    return True


def post(url: str) -> Any:
    request = urllib.request.Request(url, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.timeout(90)
def test_flower_names_jobs_links_slices_and_shows_each_outcome_as_its_celery_state(fleet, flower) -> None:
    fleet.register("ticker", TICKER_WAT)
    fleet.register("flowertrap", TRAP_WAT)
    tenant = "11111111-2222-3333-4444-555555555555"
    done = fleet.client.submit("ticker", "tick", ticker_params(1500, SPIN), tenant=tenant, limits={"slice_seconds": 1.0})
    failed = fleet.client.submit("flowertrap", "tick")

    # running: STARTED (Flower's Started tab and Terminate button) with its progress as the result;
    # then its first slice hands over: CONTINUED, never a success
    task, states, progress = wait_task(flower, done.id, ("CONTINUED",))
    assert "STARTED" in states and any("%" in text and "ticking" in text for text in progress), (states, progress)
    assert task["name"] == "ticker/tick"  # the job, not wasmjob.run
    assert task["args"] == "('ticker', 'tick')"
    assert done.id in task["kwargs"] and tenant in task["kwargs"]
    assert task["worker"].split("@")[0] in fleet.workers
    assert task["root_id"] == done.id and f"{done.id}.2" in task["result"]
    # its slices follow each other: each names the first task as root and the previous one as parent
    rec = done.wait(30)
    assert rec.status == "completed" and rec.dispatch >= 2
    last, _, _ = wait_task(flower, f"{done.id}.{rec.dispatch}", ("SUCCESS",))
    parent = done.id if rec.dispatch == 2 else f"{done.id}.{rec.dispatch - 1}"  # the first task is the job id
    assert last["root_id"] == done.id and last["parent_id"] == parent
    assert last["name"] == "ticker/tick" and str(rec.result[-1]) in last["result"]

    task, _, _ = wait_task(flower, failed.id, ("FAILURE",))
    assert "trap: unreachable" in task["exception"] and task["state"] == "FAILURE"

    # two long jobs, one for each worker: one paused, one terminated from Flower
    paused = fleet.client.submit("ticker", "tick", ticker_params(ENDLESS, SPIN))
    cancelled = fleet.client.submit("ticker", "tick", ticker_params(ENDLESS, SPIN))

    fleet.wait_running(paused)
    paused.pause()
    task, _, _ = wait_task(flower, paused.id, ("PAUSED",))
    assert paused.record().status == "paused"
    paused.cancel()

    fleet.wait_running(cancelled, min_checkpoints=2)
    post(f"{flower}/api/task/revoke/{cancelled.id}?terminate=true")  # Flower's Terminate button
    task, _, _ = wait_task(flower, cancelled.id, ("REVOKED",))
    rec = cancelled.wait(20)
    assert rec.status == "cancelled" and rec.checkpoints >= 2
