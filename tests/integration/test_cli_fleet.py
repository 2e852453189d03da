"""The fleet CLI as scripts use it: ids and results on stdout, one JSON object for status, one-line errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from wasmjob.client import JobHandle
from modules import ENDLESS, SPIN, TICKER_WAT, ticker_params, ticker_result, write_extension

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
    result = wasmjob(fleet, "submit", "cliticker", "tick", "--params", json.dumps(ticker_params(300, SPIN)), "--wait")
    assert json.loads(result.stdout) == ticker_result(300, SPIN)
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
        (["submit", "cliticker", "tick", "--limits", '{"fuel": -5}'], "limit fuel"),
        (["submit", "cliticker", "tick", "--limits", '{"timeout_seconds": 0}'], "limit timeout_seconds"),
    ],
)
def test_errors_are_one_line_and_a_non_zero_exit(fleet, args, message) -> None:
    fleet.register("cliticker", TICKER_WAT)
    result = wasmjob(fleet, *args, ok=False)
    assert result.returncode != 0 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


# conventions: id prefixes, 80 columns, pause --wait, logs, exit codes, Ctrl-C ----------


def test_ids_are_accepted_by_unique_prefix_and_an_ambiguous_one_is_refused(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    a = fleet.client.submit("cliticker", "tick", ticker_params(5), job_id="abcdef01-0000-4000-8000-000000000001")
    b = fleet.client.submit("cliticker", "tick", ticker_params(5), job_id="abcdef02-0000-4000-8000-000000000002")
    a.wait(30)
    b.wait(30)  # both records exist before the prefix is looked up
    status = json.loads(wasmjob(fleet, "status", "abcdef01", "--json").stdout)
    assert status["id"] == a.id
    ambiguous = wasmjob(fleet, "result", "abcdef0", ok=False)
    assert ambiguous.returncode == 2 and "ambiguous" in ambiguous.stderr and "abcdef01-000" in ambiguous.stderr
    missing = wasmjob(fleet, "status", "fedcba98", ok=False)
    assert missing.returncode == 3 and "no job fedcba98" in missing.stderr


def test_list_fits_80_columns_with_ids_that_commands_accept(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    job = fleet.client.submit("cliticker", "tick", ticker_params(5))
    job.wait(30)
    env_80 = {"COLUMNS": "80"}
    for command in (["usage"], ["extensions", "list"]):
        other = subprocess.run(
            [sys.executable, "-m", "wasmjob.cli", *command],
            capture_output=True, text=True, env={**os.environ, **fleet.env, **env_80}, check=True,
        ).stdout
        assert other and all(len(line) <= 80 for line in other.splitlines()), other
    out = subprocess.run(
        [sys.executable, "-m", "wasmjob.cli", "list", "--limit", "5"],
        capture_output=True, text=True, env={**os.environ, **fleet.env, **env_80}, check=True,
    ).stdout
    lines = out.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), out
    short = job.id[:12]
    assert any(line.startswith(short) for line in lines), out
    assert json.loads(wasmjob(fleet, "status", short, "--json").stdout)["id"] == job.id


def test_pause_says_what_was_requested_and_wait_reports_it_landed(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    job = fleet.client.submit("cliticker", "tick", ticker_params(ENDLESS, SPIN))
    fleet.wait_running(job)
    out = wasmjob(fleet, "pause", job.id, "--wait", "--timeout", "20").stdout
    assert f"pause requested: job {job.id} is running" in out
    assert f"job {job.id} is paused at" in out
    status = wasmjob(fleet, "status", job.id[:8]).stdout
    assert "paused" in status
    assert re.search(r"finished\s+-", status), status  # a paused job has not finished
    assert re.search(r"paused\s+\d{4}-\d\d-\d\d", status), status  # but says since when it is paused
    assert json.loads(wasmjob(fleet, "status", job.id, "--json").stdout)["finished_at"] is None
    wasmjob(fleet, "cancel", job.id)


def test_a_first_run_shows_no_measurement_instead_of_zeros(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    job = fleet.client.submit("cliticker", "tick", ticker_params(ENDLESS, SPIN))
    fleet.wait_running(job)
    status = wasmjob(fleet, "status", job.id).stdout
    assert "measured when a run ends" in status and "0 / 0.00s" not in status
    wasmjob(fleet, "cancel", job.id, "--wait", "--timeout", "20")


def test_logs_json_and_follow_until_the_job_is_done(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    job = fleet.client.submit("cliticker", "tick", ticker_params(600, SPIN))
    fleet.wait_running(job)  # its record exists
    follow = wasmjob(fleet, "logs", job.id, "--follow", "--json")  # returns once the job is done
    assert fleet.client.job(job.id).record().done
    lines = [json.loads(line) for line in follow.stdout.splitlines()]
    assert all({"ts", "level", "msg"} <= set(line) for line in lines if "warning" not in line)


def test_an_unreachable_redis_exits_4(fleet) -> None:
    result = wasmjob(fleet, "list", "--redis-url", "redis://127.0.0.1:9", ok=False)
    assert result.returncode == 4, result.stderr


def test_ctrl_c_during_submit_wait_says_the_job_goes_on_and_how_to_pause_it(fleet) -> None:
    fleet.register("cliticker", TICKER_WAT)
    env = {**os.environ, **fleet.env, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "wasmjob.cli", "submit", "cliticker", "tick", "--params",
         json.dumps(ticker_params(ENDLESS, SPIN)), "--wait"],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a terminal's Ctrl-C: a suite started in the background (`cmd &`) passes SIGINT on ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "job <id>"
    job_id = first.split()[-1]
    handle = JobHandle(fleet.client, job_id, submitted=True)  # its record may not exist yet
    deadline = time.monotonic() + 30
    while handle.record().status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert f"job {job_id} goes on running on the fleet" in err and f"wasmjob pause {job_id}" in err
    assert "wasmjob: interrupted" not in err and out == ""
    assert handle.record().status == "running"
    handle.cancel()
