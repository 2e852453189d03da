"""The processes the fleet rows need, started privately and always stopped.

A :class:`Services` owns one temporary directory, one ``redis-server`` on a
free loopback port inside it (the fleet's own :class:`LocalRedis`, as the demo
and the integration tests use), and any number of real ``celery worker``
processes of our app. Every process runs in its own session, so stopping one
stops its pool children too; :meth:`Services.close` stops everything it
started, and ``python -m bench`` calls it on errors and Ctrl-C as well.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import redis

from harness.procs import LocalRedis
from wasmjob.fleet import CELERY_APP

ROOT = Path(__file__).resolve().parent.parent
BENCH_TASKS = "bench.tasks"


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Signal a process's whole session, wait ``grace``, then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # pool children left behind, if any
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


@dataclass
class Worker:
    """One ``celery worker`` process we started."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    pool: str
    concurrency: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def children(self) -> list[int]:
        """Pids of the pool processes (prefork) of this worker."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once (a lost machine)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Services:
    """A private Redis and the workers started on it; takes extra environment for the workers."""

    worker_env: dict[str, str] = field(default_factory=dict)
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wasmjob-bench-")))
    redis_server: LocalRedis | None = None
    workers: list[Worker] = field(default_factory=list)
    _app: Any = None

    @property
    def url(self) -> str:
        if self.redis_server is None:
            raise RuntimeError("start_redis() first")
        return self.redis_server.url

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def producer(self) -> Any:
        """A Celery client app on this Redis, with the fleet's settings (made once)."""
        if self._app is None:
            from .tasks import producer_app

            self._app = producer_app(self.url)
        return self._app

    # redis -------------------------------------------------------------------

    def start_redis(self) -> None:
        """A private redis-server (AOF on, noeviction) in this run's temporary directory."""
        self.redis_server = LocalRedis(self.tmp / "redis").start()

    # workers -----------------------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WASMJOB_")}
        env.update(
            {
                "WASMJOB_REDIS_URL": self.url,
                "WASMJOB_CACHE_DIR": str(self.tmp / "module-cache"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.worker_env)
        env.update(extra or {})
        return env

    def start_worker(
        self,
        name: str,
        *,
        pool: str = "prefork",
        concurrency: int = 1,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Worker:
        """A real ``celery -A wasmjob.fleet.app worker`` that also knows the bench's plain tasks."""
        host = f"{name}@bench"
        log = self.tmp / f"{name}.log"
        cmd = [
            sys.executable, "-m", "celery", "-A", CELERY_APP, "worker", "--include", BENCH_TASKS,
            "-n", host, "-P", pool, "-c", str(concurrency), "-l", "WARNING",
            "--without-gossip", "--without-mingle", "-O", "fair",
        ]  # fmt: skip
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        worker = Worker(host, proc, log, pool, concurrency)
        self.workers.append(worker)
        if wait:
            self.wait_ready([worker])
        return worker

    def wait_ready(self, workers: list[Worker], timeout: float = 60) -> None:
        """Until every worker answers a Celery ping (its pool is up and consuming)."""
        app = self.producer()
        pending = {w.name for w in workers}

        def check() -> bool:
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"worker {w.name} exited:\n{w.tail()}")
            replies = app.control.ping(destination=sorted(pending), timeout=0.5) or []
            for reply in replies:
                pending.difference_update(reply)
            return not pending

        wait_until(check, timeout, f"workers {sorted(pending)} to answer a ping", interval=0.1)

    def stop_worker(self, worker: Worker) -> None:
        _stop(worker.proc)
        if worker in self.workers:
            self.workers.remove(worker)

    def stop_workers(self) -> None:
        for worker in list(self.workers):
            self.stop_worker(worker)

    def flush(self) -> None:
        """Empty Redis between rows (queues, job records, results)."""
        client = self.client()
        client.flushall()
        client.close()

    # lifetime ----------------------------------------------------------------

    def close(self) -> None:
        """Stop every process we started and remove the temporary directory."""
        try:
            self.stop_workers()
            if self._app is not None:
                self._app.close()
        finally:
            if self.redis_server is not None:
                self.redis_server.stop(timeout=5)
                self.redis_server = None
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start_redis()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
