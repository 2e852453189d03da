"""Who may do what: producer and worker Redis users, publishing through a worker, tenant tokens.

One private redis-server with the fleet's ACL users (``broker_config/acl.py``) and one real
worker that logs in as ``worker`` and knows the tenant secret; the test acts as a producer
(the ``producer`` user) and as the operator (``default``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from wasmjob.broker_config import Settings
from wasmjob.broker_config.acl import fleet_users, server_args
from wasmjob.client import Client
from wasmjob.errors import PermissionDenied, PublishRefused
from wasmjob.publishers import PublisherKey
from wasmjob.tenants import token_for

ROOT = Path(__file__).resolve().parents[2]
COUNTER = ROOT / "extensions" / "counter"
SECRET = "tenant-secret-for-tests-0123456789"
pytestmark = pytest.mark.timeout(120)


@dataclass
class AclFleet:
    server: Any
    admin: Client
    producer: Client
    producer_url: str
    tmp: Path


@pytest.fixture(scope="module")
def acl_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclFleet]:
    from harness.procs import LocalRedis, LocalWorker

    tmp = tmp_path_factory.mktemp("acl")
    users = fleet_users(Settings(), producer_password="producer-pw", worker_password="worker-pw")
    server = LocalRedis(tmp / "redis", password="admin-pw", extra_args=server_args(users)).start()
    env = {
        "WASMJOB_REDIS_URL": server.url_as("worker", "worker-pw"),
        "WASMJOB_TENANT_SECRET": SECRET,
        "WASMJOB_CACHE_DIR": str(tmp / "cache"),
        "WASMJOB_LEASE_TTL": "2",
        "WASMJOB_SWEEP_INTERVAL": "0.5",
    }
    worker = LocalWorker("acl1", env, tmp / "acl1.log").start()
    producer_url = server.url_as("producer", "producer-pw")
    admin = Client(settings=Settings.from_env({}, redis_url=server.url))
    producer = Client(settings=Settings.from_env({}, redis_url=producer_url))
    try:
        worker.wait_ready()
        admin.add_extension(_release(tmp, "1.0.0"), key=PublisherKey.generate())
        yield AclFleet(server, admin, producer, producer_url, tmp)
    finally:
        worker.stop(timeout=5)
        admin.close()
        producer.close()
        server.stop()


def _release(tmp: Path, version: str) -> Path:
    """The counter extension under another version (same bytes, its own manifest)."""
    out = tmp / f"counter-{version}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(COUNTER, out, ignore=shutil.ignore_patterns("*.c"))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_producer_credentials_cannot_rewrite_a_release_a_record_or_an_owner(acl_fleet: AclFleet) -> None:
    job = acl_fleet.admin.submit("counter", "counter", {"target": 3}, tenant_token=token_for(SECRET, None))
    assert job.wait(timeout=60).status == "completed"

    keys = acl_fleet.admin.fleet.keys
    raw = redis.Redis.from_url(acl_fleet.producer_url)
    try:
        assert raw.hget(keys.job(job.id), "status") == b"completed"  # producers read records
        attempts = [
            lambda: raw.hset(keys.ext_release("counter", "1.0.0"), "digest", "sha256:" + "0" * 64),
            lambda: raw.hset(keys.ext_versions("counter"), "9.9.9", "sha256:" + "0" * 64),
            lambda: raw.sadd(keys.ext_owners("counter"), PublisherKey.generate().public),
            lambda: raw.hset(keys.job(job.id), "status", "queued"),
            lambda: raw.set(keys.state(job.id), b"forged"),
            lambda: raw.hset(keys.kv(f"{uuid.uuid4()}:counter"), "k", "v"),
            lambda: raw.delete(keys.job(job.id)),
            lambda: raw.rpop("wasmjob"),  # nor take (and read) other producers' messages
            lambda: raw.lrange("wasmjob", 0, -1),
            lambda: raw.delete("wasmjob"),
        ]
        for attempt in attempts:
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
    finally:
        raw.close()
    with pytest.raises(PermissionDenied):
        acl_fleet.producer.fleet.registry.set_owners("counter", [PublisherKey.generate().public])


def test_a_producer_publishes_through_a_worker_that_enforces_ownership(acl_fleet: AclFleet) -> None:
    owner, attacker = PublisherKey.generate(), PublisherKey.generate()
    ext_dir = _release(acl_fleet.tmp, "1.0.0")
    manifest = json.loads((ext_dir / "manifest.json").read_text())
    manifest["id"] = ext_id = f"owned-{uuid.uuid4().hex[:6]}"
    (ext_dir / "manifest.json").write_text(json.dumps(manifest))

    ref = acl_fleet.producer.add_extension(ext_dir, key=owner)
    assert (ref.id, ref.version, ref.jobs) == (ext_id, "1.0.0", ("counter",))
    assert acl_fleet.producer.publishing_policy()[1] == ""  # the producer user reads the workers' policy
    assert acl_fleet.admin.fleet.registry.owners(ext_id) == [owner.public]

    manifest["version"] = "9.9.9"
    (ext_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PublishRefused, match="belongs to other publishers"):
        acl_fleet.producer.add_extension(ext_dir, key=attacker)
    assert acl_fleet.admin.fleet.registry.resolve(ext_id).version == "1.0.0"


def test_a_producer_submits_and_follows_a_job_whose_record_the_worker_creates(acl_fleet: AclFleet) -> None:
    tenant = str(uuid.uuid4())
    job = acl_fleet.producer.submit("counter", "counter", {"target": 4}, tenant=tenant,
                                    tenant_token=token_for(SECRET, tenant))
    rec = job.wait(timeout=60)
    assert (rec.status, rec.result["current"], rec.tenant) == ("completed", 4, tenant)


@pytest.mark.parametrize("token", [None, "not-the-token", "victim"])
def test_a_job_for_a_tenant_without_its_token_fails_before_it_runs(acl_fleet: AclFleet, token: str | None) -> None:
    victim = str(uuid.uuid4())
    if token == "victim":
        token = token_for(SECRET, str(uuid.uuid4()))  # a real token, of another tenant
    kwargs: dict[str, Any] = {"extension": "counter", "job": "counter", "params": {"target": 3}, "tenant": victim}
    if token:
        kwargs["tenant_token"] = token
    job_id = _plain_celery_send(acl_fleet.producer_url, kwargs)
    assert _wait_record(acl_fleet, job_id), "no worker created the job's record"
    rec = acl_fleet.admin.job(job_id).wait(timeout=60, poll=0.1)
    assert rec.status == "failed"
    assert rec.error and f"tenant {victim} is not authenticated" in rec.error
    assert rec.attempts == 1 and rec.checkpoints == 0  # refused before the guest ran


def _wait_record(acl_fleet: AclFleet, job_id: str, timeout: float = 60.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if acl_fleet.admin.fleet.records.exists(job_id):
            return True
        time.sleep(0.05)
    return False


def _plain_celery_send(broker_url: str, kwargs: dict[str, Any]) -> str:
    """Send wasmjob.run from a process that never imports wasmjob, with Celery's defaults."""
    code = (
        "import json, sys\n"
        "from celery import Celery\n"
        "app = Celery(broker=sys.argv[1], backend=sys.argv[1])\n"
        "res = app.send_task('wasmjob.run', queue='wasmjob', kwargs=json.loads(sys.argv[2]))\n"
        "print(res.id)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code, broker_url, json.dumps(kwargs)],
        capture_output=True, text=True, timeout=60, cwd="/", env=env, check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_the_acl_file_the_cli_prints_is_one_redis_server_loads(tmp_path: Path) -> None:
    from harness.procs import LocalRedis

    env = {**os.environ, "REDIS_PRODUCER_PASSWORD": "producer-pw-123", "REDIS_WORKER_PASSWORD": "worker-pw-1234",
           "REDIS_PASSWORD": "admin-pw-12345"}
    out = subprocess.run([sys.executable, "-m", "wasmjob", "acl"], env=env, capture_output=True, text=True, check=True)
    (tmp_path / "users.acl").write_text(out.stdout)
    server = LocalRedis(tmp_path / "redis", password="admin-pw-12345",
                        extra_args=["--aclfile", str(tmp_path / "users.acl")]).start()
    try:
        producer = redis.Redis.from_url(server.url_as("producer", "producer-pw-123"))
        worker = redis.Redis.from_url(server.url_as("worker", "worker-pw-1234"))
        assert producer.lpush("wasmjob", b"message") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            producer.hset("wasmjob:job:x", "status", "completed")
        assert worker.hset("wasmjob:job:x", "status", "queued") == 1
        with pytest.raises(redis.exceptions.NoPermissionError):
            worker.flushall()
        producer.close()
        worker.close()
    finally:
        server.stop()


def test_flower_works_with_the_producer_user_and_its_revoke_cancels_the_job(acl_fleet: AclFleet, tmp_path: Path) -> None:
    """Compose runs Flower as the producer: it must list workers and tasks, and its revoke must act."""
    import time

    from harness.procs import LocalFlower

    flower = LocalFlower({"WASMJOB_REDIS_URL": acl_fleet.producer_url}, tmp_path / "flower.log")
    with flower.start(workers=("acl1",)):
        job = acl_fleet.producer.submit("counter", "counter", {"target": 10**9}, tenant_token=token_for(SECRET, None))
        deadline = time.monotonic() + 60
        while job.record().status != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        flower.api(f"/api/task/revoke/{job.id}", data=b"")
        assert job.wait(timeout=60).status == "cancelled"
    assert "NOPERM" not in flower.log()
