"""A Celery client with nothing but Celery's defaults, in a process that never imports wasmjob,
sends jobs at any priority, pings, inspects and revokes: the fleet serves all of it, no worker traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from modules import ENDLESS, SPIN, TICKER_WAT, ticker_params, ticker_result


# Runs in a fresh interpreter: only celery, configured by its defaults plus broker and backend.
CLIENT = textwrap.dedent(
    """
    import json, sys
    from celery import Celery

    url, queue, params, long_params, revoked_id = sys.argv[1:6]
    app = Celery(broker=url, backend=url)
    out = {}
    results = {
        pri: app.send_task("wasmjob.run", queue=queue, priority=pri,
                           kwargs={"extension": "plainticker", "job": "tick", "params": json.loads(params)})
        for pri in (0, 5, 9)
    }
    long_job = app.send_task("wasmjob.run", queue=queue, task_id=revoked_id,
                             kwargs={"extension": "plainticker", "job": "tick", "params": json.loads(long_params)})
    out["ping"] = app.control.ping(timeout=3)
    inspect = app.control.inspect(timeout=3)
    out["registered"] = inspect.registered()
    out["active_queues"] = inspect.active_queues()
    out["revoke"] = app.control.revoke(long_job.id, reply=True, timeout=3)
    out["results"] = {str(pri): r.get(timeout=60) for pri, r in results.items()}
    out["imports_wasmjob"] = any(name.split(".")[0] == "wasmjob" for name in sys.modules)
    app.close()
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def plainticker(_fleet):
    return _fleet.register("plainticker", TICKER_WAT)


@pytest.mark.timeout(90)
def test_a_default_celery_client_submits_at_any_priority_pings_inspects_and_revokes(fleet, plainticker) -> None:
    offsets = {n: _size(w.log_path) for n, w in fleet.workers.items()}
    revoked_id = str(uuid.uuid4())
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASMJOB_")}
    done = subprocess.run(
        [
            sys.executable, "-c", CLIENT, fleet.redis.url, fleet.settings.queue,
            json.dumps(ticker_params(40, SPIN)), json.dumps(ticker_params(ENDLESS, SPIN)), revoked_id,
        ],
        capture_output=True, text=True, env=env, timeout=80, cwd=fleet.tmp,
    )
    assert done.returncode == 0, done.stderr[-3000:] + fleet.logs()
    out = json.loads(done.stdout)
    assert out["imports_wasmjob"] is False
    # the revoked job was cancelled (or, revoked before any worker made its record, never ran)
    if fleet.client.fleet.records.exists(revoked_id):
        assert fleet.client.job(revoked_id).wait(20).status == "cancelled"

    nodes = {w.hostname for w in fleet.workers.values()}
    assert {node for reply in out["ping"] for node in reply} >= nodes, out["ping"]
    assert all(next(iter(reply.values())) == {"ok": "pong"} for reply in out["ping"])
    assert all("wasmjob.run" in " ".join(tasks) for tasks in out["registered"].values()), out["registered"]
    assert set(out["registered"]) >= nodes
    for queues in out["active_queues"].values():
        assert [q["name"] for q in queues] == [fleet.settings.queue]
    assert {node for reply in out["revoke"] for node in reply} >= nodes, out["revoke"]

    for pri in ("0", "5", "9"):
        assert out["results"][pri] == ticker_result(40, SPIN), pri

    for name, worker in fleet.workers.items():
        new = _read_from(worker.log_path, offsets[name])
        assert "Traceback" not in new and "ValueError" not in new, new[-3000:]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_from(path: Path, offset: int) -> str:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
