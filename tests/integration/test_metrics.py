"""The fleet's Prometheus metrics, printed by ``wasmjob metrics`` and scraped from ``--serve``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modules import SPIN, TICKER_WAT, TRAP_WAT, ticker_params
from harness.procs import free_port

TENANT = "22222222-3333-4444-5555-666666666666"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def _loads(found: dict) -> float:
    """Module loads the workers counted: compiles plus disk and memory cache hits."""
    return sum(value(found, n, **lab) for n, lab in (
        ("wasmjob_module_compiles_total", {}), ("wasmjob_module_cache_hits_total", {"tier": "disk"}),
        ("wasmjob_module_cache_hits_total", {"tier": "memory"}),
    ))


@pytest.mark.timeout(120)
def test_metrics_count_runs_usage_and_process_counters_and_are_served(fleet, tmp_path) -> None:
    fleet.register("metricticker", TICKER_WAT)
    fleet.register("metrictrap", TRAP_WAT)
    env = {**os.environ, **fleet.env}
    before = samples(subprocess.run([sys.executable, "-m", "wasmjob.cli", "metrics"], env=env, capture_output=True, text=True, check=True).stdout)

    sliced = fleet.client.submit("metricticker", "tick", ticker_params(600, SPIN), tenant=TENANT, limits={"slice_seconds": 0.3})
    failed = fleet.client.submit("metrictrap", "tick", tenant=TENANT)
    assert sliced.wait(40).status == "completed" and failed.wait(20).status == "failed"
    rec = sliced.record()

    metrics_cmd = [sys.executable, "-m", "wasmjob.cli", "metrics"]
    done = subprocess.run(metrics_cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = samples(done.stdout)
    ext = {"extension": "metricticker", "tenant": TENANT}
    assert value(found, "wasmjob_runs_total", outcome="completed", **ext) == 1
    assert 1 <= value(found, "wasmjob_runs_total", outcome="continued", **ext) < rec.attempts
    assert value(found, "wasmjob_jobs_finished_total", status="completed", **ext) == 1
    assert value(found, "wasmjob_jobs_finished_total", status="failed", extension="metrictrap", tenant=TENANT) == 1
    assert value(found, "wasmjob_run_wall_seconds_total", **ext) == pytest.approx(rec.wall_seconds, rel=1e-6)
    assert value(found, "wasmjob_run_peak_memory_bytes", **ext) >= 2 * 65536
    assert value(found, "wasmjob_jobs", extension="metricticker", status="running") == 0
    assert ("wasmjob_queue_depth", (("queue", fleet.settings.queue),)) in found
    loads_before = _loads(before)
    # two new extensions were loaded (compiled, or found in a cache); a worker adds its counters
    # just after it recorded the run, so the client may see the job done a moment before them
    deadline = time.monotonic() + 30
    while _loads(found) < loads_before + 2:
        assert time.monotonic() < deadline, (_loads(found), loads_before)
        time.sleep(0.2)
        found = samples(subprocess.run(metrics_cmd, env=env, capture_output=True, text=True, check=True).stdout)
    for name in ("wasmjob_recoveries_total", "wasmjob_refused_writes_total", "wasmjob_module_compile_seconds_total"):
        assert (name, ()) in found, name

    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "wasmjob.cli", "metrics", "--serve", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                    scraped = samples(response.read().decode())
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        assert value(scraped, "wasmjob_runs_total", outcome="completed", **ext) == 1
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
        log.close()
