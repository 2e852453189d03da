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


# conventions: version, completion, help, exit codes, JSON from files --------------------


def _run(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wasmjob", *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_version_and_help_document_the_exit_codes(tmp_path: Path) -> None:
    version = _run("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("wasmjob ")
    helptext = _run("--help", cwd=tmp_path).stdout
    for code in ("3    not found", "4    unreachable", "124  timeout", "2    usage"):
        assert code in helptext


def test_every_option_of_every_command_has_help_text() -> None:
    import argparse

    from wasmjob.cli import build_parser

    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif not action.help and not isinstance(action, argparse._HelpAction):
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "wasmjob")
    assert missing == []


def test_bash_completion_completes_commands_and_their_options(tmp_path: Path) -> None:
    script = _run("completion", "bash", cwd=tmp_path).stdout
    probe = (
        script + '\nCOMP_WORDS=(wasmjob sub); COMP_CWORD=1; _wasmjob; echo "${COMPREPLY[*]}"'
        '\nCOMP_WORDS=(wasmjob logs abc --f); COMP_CWORD=3; _wasmjob; echo "${COMPREPLY[*]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["submit", "--follow"]


def test_params_come_from_a_file_or_stdin(counting: Path, tmp_path: Path) -> None:
    module = wat_module("(call $checkpoint (i32.const 128) (local.get $st) (local.get $st_len)) (drop) (i32.const 0)")
    (tmp_path / "echo.wasm").write_bytes(module)
    (tmp_path / "params.json").write_text('{"n": [1, 2]}')
    from_file = _run("run", "echo.wasm", "main", "--params", "@params.json", "--quiet", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    assert json.loads(from_file.stdout) == {"n": [1, 2]}
    from_stdin = _run("run", "echo.wasm", "main", "--params", "-", "--fresh", "--quiet", cwd=tmp_path, stdin='{"n": 3}')
    assert json.loads(from_stdin.stdout) == {"n": 3}
    missing = _run("run", "echo.wasm", "main", "--params", "@nope.json", cwd=tmp_path)
    assert missing.returncode == 3 and "cannot read nope.json" in missing.stderr


@pytest.mark.parametrize(("flag", "value"), [("--fuel", "-5"), ("--timeout", "0"), ("--memory", "0")])
def test_limits_that_mean_nothing_are_refused_as_usage_errors(counting: Path, tmp_path: Path, flag: str, value: str) -> None:
    proc = _run("run", str(counting), "main", flag, value, "--quiet", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("wasmjob: error:") and len(proc.stderr.strip().splitlines()) == 1


def test_a_missing_module_exits_not_found(tmp_path: Path) -> None:
    proc = _run("run", "nope.wasm", "main", cwd=tmp_path)
    assert proc.returncode == 3 and "cannot read module nope.wasm" in proc.stderr


def test_a_run_at_its_time_limit_stops_and_the_same_command_continues(counting: Path, tmp_path: Path) -> None:
    args = ("run", str(counting), "main", "--state-dir", "state", "--quiet")
    first = _run(*args, "--timeout", "0.2", cwd=tmp_path)
    assert first.returncode == 124, first.stderr
    assert "stopped at its time limit (0.2 s)" in first.stderr and "continue from its last checkpoint" in first.stderr
    again = _run(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == TARGET


def test_a_failed_local_job_stays_failed_as_on_the_fleet(tmp_path: Path) -> None:
    (tmp_path / "trap.wasm").write_bytes(wat_module("(unreachable)"))
    first = _run("run", "trap.wasm", "main", cwd=tmp_path)
    assert first.returncode == 1 and "failed:" in first.stderr
    again = _run("run", "trap.wasm", "main", cwd=tmp_path)
    assert again.returncode == 1 and "failed earlier" in again.stderr and "--fresh starts it over" in again.stderr
