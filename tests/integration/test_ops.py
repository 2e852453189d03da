"""What an operator sets up: a Redis password with URL-special characters given apart from the URL,
JSON log lines carrying the job's fields, and the compose healthcheck's ``celery inspect ping``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from modules import TICKER_WAT, ticker_params
from harness.procs import LocalRedis, LocalWorker

PASSWORD = "p@ss:w/rd"


@pytest.mark.timeout(90)
def test_a_special_password_apart_from_the_url_and_json_logs_with_the_jobs_fields(tmp_path) -> None:
    import modules
    from wasmjob.broker_config import Settings
    from wasmjob.client import Client

    redis = LocalRedis(tmp_path / "redis", password=PASSWORD).start()
    env = {
        "WASMJOB_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",  # no password in the URL at all
        "WASMJOB_REDIS_PASSWORD": PASSWORD,
        "WASMJOB_LOG_FORMAT": "json",
        "WASMJOB_CACHE_DIR": str(tmp_path / "cache"),
    }
    worker = LocalWorker("ops", env, tmp_path / "ops.log").start()
    client = Client(settings=Settings.from_env(env))
    try:
        worker.wait_ready()
        client.add_extension(modules.write_extension(tmp_path / "ext", "opsticker", TICKER_WAT))
        job = client.submit("opsticker", "tick", ticker_params(50))
        assert job.wait(30).status == "completed"

        # the compose healthcheck: Celery's own CLI, configured from the same environment
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "wasmjob.fleet.app", "inspect", "ping", "-d",
             f"ops@{socket.gethostname()}", "--timeout", "10"],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
        )
        assert ping.returncode == 0 and "pong" in ping.stdout, ping.stdout + ping.stderr
    finally:
        client.close()
        worker.stop(timeout=10)
        redis.stop()

    lines = [json.loads(line) for line in worker.log_since_start().splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    ended = [line for line in lines if line.get("job_id") == job.id and line.get("outcome")]
    assert ended, lines[-5:]
    assert ended[-1]["outcome"] == "completed" and ended[-1]["extension"] == "opsticker"
    assert ended[-1]["job"] == "tick" and ended[-1]["dispatch"] == 1 and ended[-1]["attempt"] == 1
    assert isinstance(ended[-1]["fuel"], int) and ended[-1]["task_id"] == job.id
    assert any(line.get("task_name") == "opsticker/tick" or line.get("job_id") == job.id for line in lines)
