"""The local runner as a user meets it: results on stdout, one-line errors, Ctrl-C then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wasmjob.cli import main

from .wat import COUNTING_MANIFEST, counting_module, wat_module

TARGET = 1_500_000


@pytest.fixture(scope="module")
def counting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("counting")
    (d / "counting.wasm").write_bytes(counting_module(TARGET))
    (d / "manifest.json").write_text(json.dumps(COUNTING_MANIFEST))
    return d / "counting.wasm"


def _wasmjob(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "wasmjob", *args], cwd=cwd, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def test_run_prints_the_result_as_json(counting: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(counting), "main", "--state-dir", str(tmp_path), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out) == TARGET


def test_ctrl_c_checkpoints_and_rerun_resumes_to_the_same_result(counting: Path, tmp_path: Path) -> None:
    proc = _wasmjob("run", str(counting), "main", "--state-dir", "state", "--quiet", cwd=tmp_path)
    deadline = time.monotonic() + 30
    db = tmp_path / "state" / "wasmjob.sqlite3"
    while not _has_checkpoint(db):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"no checkpoint while the job ran: the resume would prove nothing\n{proc.communicate()[1]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    assert out == ""
    again = _wasmjob("run", str(counting), "main", "--state-dir", "state", "--quiet", cwd=tmp_path)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "resuming job" in err
    assert json.loads(out) == TARGET


def _has_checkpoint(db: Path) -> bool:
    import sqlite3

    if not db.exists():
        return False
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT checkpoints FROM jobs").fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0] > 0)


def test_rerun_of_a_completed_job_prints_the_stored_result(counting: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", str(counting), "main", "--state-dir", str(tmp_path), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == TARGET and "already completed" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "/nonexistent.wasm", "main"], "cannot read module /nonexistent.wasm"),
        (["run", "{mod}", "main", "--params", "{bad"], "--params is not valid JSON"),
        (["run", "{mod}", "nope"], "has no job 'nope'"),
        (["run", "{garbage}", "main"], "not a WebAssembly module"),
        (["run", "{mod}", "main", "--fuel", "1000"], "out of fuel"),
        (["inspect", "{garbage}"], "not a WebAssembly module"),
    ],
)
def test_errors_are_one_line_and_exit_nonzero(counting: Path, tmp_path: Path, argv: list[str], message: str) -> None:
    garbage = tmp_path / "garbage.wasm"
    garbage.write_bytes(b"MZ not wasm")
    argv = [a.replace("{mod}", str(counting)).replace("{garbage}", str(garbage)) for a in argv]
    proc = subprocess.run(
        [sys.executable, "-m", "wasmjob", *argv, "--state-dir", str(tmp_path)] if argv[0] == "run" else [sys.executable, "-m", "wasmjob", *argv],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wasmjob: error:"), proc.stderr
    assert message in lines[0]


def test_inspect_json_describes_the_module(counting: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(counting), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["id"] == "counting" and info["state_encoding"] == "msgpack"
    assert info["jobs"] == [{"name": "main", "export": "execute_main", "resumable": True}]
    assert info["digest"].startswith("sha256:") and info["size"] == counting.stat().st_size
    assert "job_check_interrupt" in info["imports"]


def test_inspect_table_for_humans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.wasm"
    path.write_bytes(wat_module("(i32.const 0)"))
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "plain" in out and "execute_main" in out
