"""The fleet CLI as scripts use it: ids and results on stdout, one JSON object for status, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from modules import TICKER_WAT, ticker_params, ticker_result, write_extension

pytestmark = pytest.mark.timeout(60)


def wasmjob(fleet, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **fleet.env}
    result = subprocess.run([sys.executable, "-m", "wasmjob.cli", *args], capture_output=True, text=True, env=env)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def test_extensions_add_and_list(fleet) -> None:
    path = write_extension(fleet.tmp / "cli-ext", "cliticker", TICKER_WAT)
    out = wasmjob(fleet, "extensions", "add", str(path)).stdout
    assert out.startswith("cliticker@1.0.0  sha256:") and "jobs: tick" in out
    listed = [json.loads(line) for line in wasmjob(fleet, "extensions", "list", "--json").stdout.splitlines()]
    assert any(e["id"] == "cliticker" and e["jobs"] == ["tick"] for e in listed)


def test_submit_prints_the_id_and_status_json_is_one_object(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    job_id = wasmjob(fleet, "submit", "cliticker", "tick", "--params", json.dumps(ticker_params(20))).stdout.strip()
    assert len(job_id) == 36
    fleet.client.job(job_id).wait(30)
    status = json.loads(wasmjob(fleet, "status", job_id, "--json").stdout)
    assert {"id", "status", "progress", "attempts", "worker", "result", "error"} <= set(status)
    assert status["status"] == "completed" and status["result"] == ticker_result(20)
    assert json.loads(wasmjob(fleet, "result", job_id).stdout) == ticker_result(20)
    assert "completed" in wasmjob(fleet, "logs", job_id, "--events").stdout


def test_submit_wait_prints_the_result_json_and_shows_progress_on_stderr(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    result = wasmjob(fleet, "submit", "cliticker", "tick", "--params", json.dumps(ticker_params(300, 2_000_000)), "--wait")
    assert json.loads(result.stdout) == ticker_result(300, 2_000_000)
    assert "100%" in result.stderr


def test_usage_lists_extension_and_tenant(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    tenant = "22222222-2222-2222-2222-222222222222"
    wasmjob(fleet, "submit", "cliticker", "tick", "--params", json.dumps(ticker_params(10)), "--tenant", tenant, "--wait")
    rows = [json.loads(line) for line in wasmjob(fleet, "usage", "--json").stdout.splitlines()]
    row = next(r for r in rows if r["extension"] == "cliticker" and r["tenant"] == tenant)
    assert row["runs"] == 1 and row["completed"] == 1 and row["cpu_seconds"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["status", "00000000-0000-0000-0000-00000000dead"], "no job"),
        (["submit", "nope", "job"], "no extension 'nope'"),
        (["submit", "cliticker", "tick", "--params", "{bad"], "--params is not valid JSON"),
        (["submit", "cliticker", "tick", "--tenant", "acme"], "tenant must be a UUID"),
        (["list", "--redis-url", "http://nowhere"], "must start with redis://"),
    ],
)
def test_errors_are_one_line_and_a_non_zero_exit(fleet, args, message) -> None:
    fleet.register("cliticker", TICKER_WAT)
    result = wasmjob(fleet, *args, ok=False)
    assert result.returncode != 0 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
