"""Flower, started for real, shows wasmjob jobs with a readable name, args and live progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from modules import TICKER_WAT, ticker_params
from wasmjob.fleet.procs import free_port

SPIN = 2_000_000


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2) as response:
        return json.loads(response.read())


@pytest.fixture
def flower(fleet, tmp_path):
    port = free_port()
    env = {**os.environ, **fleet.env, "FLOWER_UNAUTHENTICATED_API": "true"}
    log = open(tmp_path / "flower.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmjob.cli", "flower", f"--port={port}", "--address=127.0.0.1"],  # `wasmjob flower`
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if get_json(f"{base}/api/workers?refresh=1"):
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "flower.log").read_text()[-2000:]
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.timeout(60)
def test_flower_api_shows_the_job_with_readable_args_and_its_progress(fleet, flower) -> None:
    fleet.register("ticker", TICKER_WAT)
    job = fleet.client.submit("ticker", "tick", ticker_params(1500, SPIN), tenant="11111111-2222-3333-4444-555555555555")
    task_id = f"{job.id}.1"
    states: set[str] = set()
    progress_texts: list[str] = []
    deadline = time.monotonic() + 30
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = get_json(f"{flower}/api/tasks").get(task_id, {})
        if task:
            states.add(task["state"])
            if task["state"] == "PROGRESS":
                progress_texts.append(task["result"])
            if task["state"] == "SUCCESS":
                break
        time.sleep(0.1)
    assert task.get("state") == "SUCCESS", task
    assert task["name"] == "wasmjob.run"
    assert task["args"] == "('ticker', 'tick')"
    assert job.id in task["kwargs"] and "11111111-2222-3333-4444-555555555555" in task["kwargs"]
    assert "'status': 'completed'" in task["result"]
    assert task["worker"].split("@")[0] in fleet.workers
    assert "PROGRESS" in states and any("%" in text and "ticking" in text for text in progress_texts), states
