"""A plain ``pip install`` (no dev extras), made exactly as broker_config/Dockerfile makes the image,
gives a working client, worker, Celery CLI and Flower: a job runs end to end from that venv alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "target", ".venv")


def dockerfile_sources() -> list[str]:
    """What the Dockerfile copies before its ``pip install .``: the package's whole source."""
    sources: list[str] = []
    for line in (ROOT / "broker_config" / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["RUN"] and "pip install" in line:
            return sources
        if words[:1] == ["COPY"]:
            sources += words[1:-1]
    raise AssertionError("the Dockerfile has no `RUN pip install` step")


@pytest.fixture(scope="module")
def clean_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install <copy of the image's sources>``; the pip cache makes it quick."""
    base = tmp_path_factory.mktemp("clean-install")
    src = base / "src"
    src.mkdir()
    for name in dockerfile_sources():
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=IGNORED)
        else:
            shutil.copy2(path, src / name)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(src)],
        capture_output=True, text=True, env=env, cwd=base, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def venv_env(fleet_env: dict[str, str], tmp: Path, name: str) -> dict[str, str]:
    """The environment of a process of the clean venv: its own prefix and queue, no repo on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({k: v for k, v in fleet_env.items() if k != "PYTHONPATH"})
    env.update({"WASMJOB_PREFIX": name, "WASMJOB_QUEUE": name, "WASMJOB_CACHE_DIR": str(tmp / "cache")})
    return env


@pytest.mark.timeout(300)
def test_a_plain_install_runs_a_worker_a_job_the_celery_cli_and_flower(
    clean_venv: Path, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    bin_ = clean_venv / "bin"
    env = venv_env(fleet_env, tmp_path, "cleaninstall")
    # nothing of the repository may leak in: the venv imports its own installed copy
    where = subprocess.run(
        [str(bin_ / "python"), "-c", "import wasmjob, kombu.transport.redis, flower; print(wasmjob.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert str(clean_venv) in where.stdout, where.stdout

    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [str(bin_ / "wasmjob"), "worker", "-c", "1", "-n", "clean@%h"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    flower_port = free_port()
    flower = subprocess.Popen(
        [str(bin_ / "wasmjob"), "flower", f"--port={flower_port}"],
        env={**env, "FLOWER_UNAUTHENTICATED_API": "true"}, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        def run(*args: str) -> str:
            done = subprocess.run([str(bin_ / "wasmjob"), *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
            assert done.returncode == 0, f"wasmjob {' '.join(args)}: {done.stderr}\n{(tmp_path / 'worker.log').read_text()[-3000:]}"
            return done.stdout

        run("extensions", "add", str(ROOT / "extensions" / "counter"))
        result = json.loads(run("submit", "counter", "counter", "--params", '{"target": 30}', "--wait", "--quiet", "--timeout", "90"))
        assert result["current"] == 30, result

        ping = subprocess.run(
            [str(bin_ / "celery"), "-A", "wasmjob.fleet.app", "inspect", "ping", "-d", "clean@" + os.uname().nodename],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
        )
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr

        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{flower_port}/healthcheck", timeout=2) as response:
                    assert response.read() == b"OK"
                    break
            except OSError:
                assert flower.poll() is None and time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
                time.sleep(0.3)
        assert "Traceback" not in (tmp_path / "worker.log").read_text()
    finally:
        for proc in (worker, flower):
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait(10)
        log.close()
