"""broker_config: one explicit config object from the environment, read when the app is made."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import pytest

from wasmjob.broker_config import Settings, celery_config
from wasmjob.errors import ConfigError


def test_defaults_and_celery_settings_that_make_jobs_durable() -> None:
    settings = Settings.from_env({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    conf = celery_config(settings).as_dict()
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 3600
    assert conf["result_backend_transport_options"]["visibility_timeout"] == 3600
    assert conf["worker_send_task_events"] and conf["task_send_sent_event"] and conf["task_track_started"]
    # a default Celery client must read control replies (json) and publish where workers read
    assert conf["task_serializer"] == "json" and set(conf["accept_content"]) == {"msgpack", "json"}
    assert not {"sep", "priority_steps"} & set(conf["broker_transport_options"])
    assert conf["result_backend"] == settings.redis_url and conf["task_default_queue"] == "wasmjob"


def test_password_and_tls_urls_configure_broker_and_backend() -> None:
    settings = Settings.from_env({"WASMJOB_REDIS_URL": "rediss://:s3cret@redis.example:6380/1", "WASMJOB_REDIS_CA_CERTS": "/ca.pem"})
    conf = celery_config(settings).as_dict()
    assert conf["broker_url"] == "rediss://:s3cret@redis.example:6380/1"
    assert conf["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.pem"}
    assert conf["redis_backend_use_ssl"] == conf["broker_use_ssl"]
    plain = celery_config(Settings.from_env({"WASMJOB_REDIS_URL": "redis://:pw@h:1/0"})).as_dict()
    assert plain["broker_use_ssl"] is None and plain["broker_url"] == "redis://:pw@h:1/0"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WASMJOB_REDIS_URL": "http://x"}, "must start with redis://"),
        ({"WASMJOB_LEASE_TTL": "soon"}, "is not a number"),
        ({"WASMJOB_RUN_TIMEOUT": "3500"}, "below 90% of the visibility timeout"),
        ({"WASMJOB_MAX_STALLS": "0"}, "at least 1"),
    ],
)
def test_bad_settings_are_one_line_config_errors(env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_the_celery_app_module_reads_the_environment_when_a_worker_imports_it() -> None:
    code = "from wasmjob.fleet.app import app; import json; print(json.dumps([app.conf.broker_url, app.conf.task_default_queue, sorted(t for t in app.tasks if t.startswith('wasmjob'))]))"
    env = {**os.environ, "WASMJOB_REDIS_URL": "redis://:pw@10.0.0.9:6390/2", "WASMJOB_QUEUE": "jobs"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["redis://:pw@10.0.0.9:6390/2", "jobs", ["wasmjob.publish", "wasmjob.run"]]


def test_importing_the_client_and_fleet_packages_starts_nothing() -> None:
    code = "import threading, wasmjob.client, wasmjob.fleet, wasmjob.fleet.factory; print(threading.active_count())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def test_wasmjob_run_keeps_its_message_until_the_run_ends_and_stores_only_its_final_result() -> None:
    from wasmjob.fleet.factory import FleetApp
    from wasmjob.fleet.messages import TASK_NAME

    task = FleetApp(Settings.from_env({})).tasks[TASK_NAME]
    assert task.acks_late and task.reject_on_worker_lost
    assert not task.track_started  # the job record (and Flower's events) say when it started


def test_operators_add_host_operations_through_the_environment(tmp_path, monkeypatch) -> None:
    from wasmjob.errors import WasmJobError
    from wasmjob.fleet.process import WorkerProcess

    (tmp_path / "site_ops.py").write_text("def register(ops):\n    ops.register('query:site.v1', lambda ctx, p: {'ok': 1})\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.from_env({"WASMJOB_OPERATIONS": "site_ops:register", "WASMJOB_CACHE_DIR": str(tmp_path / "c")})
    proc = WorkerProcess(settings)
    assert "query:site.v1" in proc.runtime.operations.methods()
    proc.runtime.close()
    with pytest.raises(WasmJobError, match="cannot load host operations 'nope:register'"):
        WorkerProcess(Settings.from_env({"WASMJOB_OPERATIONS": "nope:register", "WASMJOB_CACHE_DIR": str(tmp_path / "c")}))
