"""Fleet fixtures: a private redis-server on a free port and real ``celery worker`` processes.

Started once per session and shared (each test uses its own extension ids and
jobs); a test that kills or stops a worker leaves it to ``fleet`` to bring the
fleet back before the next test. Leases are short (2 s) so recovery is quick.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEASE_TTL = 2.0
SWEEP_INTERVAL = 0.5
PASSWORD = "test-pass-1"
KV_QUOTA = 4 * 1024 * 1024
MAX_FUNCTIONS = 10_000


def pytest_configure(config: pytest.Config) -> None:
    """Tests publish with a key of their own, never the user's (subprocesses inherit it)."""
    import tempfile

    if "WASMJOB_PUBLISHER_KEY" not in os.environ:
        os.environ["WASMJOB_PUBLISHER_KEY"] = str(Path(tempfile.mkdtemp(prefix="wasmjob-keys-")) / "publisher.pem")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@dataclass
class FleetUnderTest:
    """The running fleet: Redis, its settings and env, a client, and the workers by name."""

    redis: Any
    env: dict[str, str]
    settings: Any
    client: Any
    tmp: Path
    workers: dict[str, Any] = field(default_factory=dict)

    def add_worker(self, name: str, *, concurrency: int = 1, wait: bool = True) -> Any:
        from harness.procs import LocalWorker

        w = LocalWorker(name, self.env, self.tmp / f"{name}.log", concurrency=concurrency).start()
        self.workers[name] = w
        if wait:
            w.wait_ready()
        return w

    def ensure_workers(self) -> None:
        """Bring every worker back: continue stopped ones, restart dead ones."""
        starting = []
        for w in self.workers.values():
            w.signal(signal.SIGCONT)
            if not w.alive:
                w.signal(signal.SIGKILL)  # any orphaned pool children
                starting.append(w.start())
        for w in starting:
            w.wait_ready()

    def worker_of(self, rec: Any) -> Any:
        """The LocalWorker whose process holds ``rec``'s lease."""
        assert rec.worker, f"job {rec.id} is not running ({rec.status})"
        return self.workers[rec.worker.split("@", 1)[0]]

    def wait_running(self, handle: Any, *, min_checkpoints: int = 1, timeout: float = 20.0) -> Any:
        """Wait until the job runs and has checkpointed; return its record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = handle.record()
            if rec.status == "running" and rec.checkpoints >= min_checkpoints and rec.worker:
                return rec
            assert not rec.done, f"job ended early: {rec.status} {rec.error}"
            time.sleep(0.02)
        raise AssertionError(f"job {handle.id} did not start running: {handle.record()}")

    def register(self, ext_id: str, wat: str, version: str = "1.0.0", **rate_limits: int) -> Any:
        import modules

        return self.client.add_extension(
            modules.write_extension(self.tmp / "ext" / f"{ext_id}-{version}", ext_id, wat, version, **rate_limits)
        )

    @contextmanager
    def lax_publisher(self, **policy: Any) -> Iterator[None]:
        """The client checks releases against its own policy with ``policy`` changed, as a producer
        does before any worker published the fleet's policy; both are restored afterwards."""
        from dataclasses import replace

        fleet = self.client.fleet
        published = fleet.client.get(fleet.keys.policy)
        assert published, "the workers published no policy"
        own, fleet.policy = fleet.policy, replace(fleet.policy, **policy)
        fleet.client.delete(fleet.keys.policy)
        try:
            yield
        finally:
            fleet.policy = own
            fleet.client.set(fleet.keys.policy, published)

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{w.log_since_start()[-3000:]}" for n, w in self.workers.items())

    def diagnosis(self) -> str:
        """What a stalled fleet is doing: each worker's processes and stacks, Redis's clients
        (a consumer's connection shows its last command and how long it has been idle) and
        the queue lengths."""
        parts = [w.describe() for w in self.workers.values()]
        try:  # answered from each worker's event loop: silence means the loop itself is stuck
            inspect = self.client.app.control.inspect(timeout=2)
            for name in ("stats", "active", "reserved", "scheduled", "active_queues"):
                parts.append(f"inspect {name}: {getattr(inspect, name)()}")
        except Exception as exc:
            parts.append(f"cannot inspect: {exc}")
        try:
            redis = self.client.fleet.client
            parts += [f"client {c.get('name') or '-'} age {c['age']} idle {c['idle']} cmd {c['cmd']}" for c in redis.client_list()]
            parts += [f"queue {k!r}: {redis.llen(k)}" for k in redis.scan_iter(match=f"{self.settings.queue}*", _type="list")]
        except Exception as exc:
            parts.append(f"cannot read Redis: {exc}")
        return "\n".join(parts)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private redis-server (AOF on, password set) on a free port, for the whole session."""
    from harness.procs import LocalRedis

    server = LocalRedis(tmp_path_factory.mktemp("redis"), password=PASSWORD).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fleet_env(redis_server: Any) -> dict[str, str]:
    return {
        "WASMJOB_REDIS_URL": redis_server.url,
        "WASMJOB_LEASE_TTL": str(LEASE_TTL),
        "WASMJOB_SWEEP_INTERVAL": str(SWEEP_INTERVAL),
        "WASMJOB_MAX_KV_BYTES": str(KV_QUOTA),  # small, so the KV flood test fills it quickly
        "WASMJOB_MAX_FUNCTIONS": str(MAX_FUNCTIONS),  # small, so the compile bomb test builds one quickly
        "WASMJOB_CACHE_DIR": str(redis_server.data_dir.parent / "module-cache"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }


@pytest.fixture(scope="session")
def fleet_settings(fleet_env: dict[str, str]) -> Any:
    from wasmjob.broker_config import Settings

    return Settings.from_env(fleet_env)


@pytest.fixture(scope="session")
def _fleet(
    redis_server: Any, fleet_env: dict[str, str], fleet_settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FleetUnderTest]:
    from wasmjob.client import Client

    client = Client(settings=fleet_settings)
    fut = FleetUnderTest(redis_server, fleet_env, fleet_settings, client, tmp_path_factory.mktemp("fleet"))
    for name in ("w1", "w2"):
        fut.add_worker(name, wait=False)
    for w in fut.workers.values():
        w.wait_ready()
    yield fut
    for w in fut.workers.values():
        w.stop(timeout=5)
    client.close()


@pytest.fixture
def fleet(_fleet: FleetUnderTest, request: pytest.FixtureRequest) -> Iterator[FleetUnderTest]:
    """The shared fleet with every worker up; worker logs are printed when a test fails."""
    _fleet.ensure_workers()
    yield _fleet
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(_fleet.logs())
        print(_fleet.diagnosis())


@pytest.fixture
def redis_fleet(redis_server: Any, fleet_settings: Any) -> Iterator[Any]:
    """Store, records and registry on the test Redis, without workers.

    Under a key prefix of its own: the live workers' sweep (every SWEEP_INTERVAL) must
    not recover or resend a job a test drives by hand.
    """
    from dataclasses import replace

    from wasmjob.fleet.context import Fleet

    fleet = Fleet(replace(fleet_settings, prefix="wasmjob-direct"))
    yield fleet
    fleet.close()


@pytest.fixture(scope="session")
def module_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compile cache the fleet's workers use: runtimes in tests share it (a component compiles once)."""
    return tmp_path_factory.getbasetemp() / "module-cache"


@pytest.fixture(scope="session")
def py_scaffold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python scaffold (plus tests/pyext/hostile.py), built once per source digest."""
    from tests.pyext import build_scaffold

    return build_scaffold(tmp_path_factory.getbasetemp().parent / "wasmjob-pycomponents")


@pytest.fixture(scope="session")
def py_textstats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """extensions/textstats, built once per source digest."""
    from tests.pyext import build_example

    return build_example(tmp_path_factory.getbasetemp().parent / "wasmjob-pycomponents")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
