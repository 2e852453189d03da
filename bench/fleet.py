"""Driving a real fleet from the bench: register modules, submit batches, wait for them.

WasmJobs go through the producer API (``wasmjob.client.Client``), the way users
submit them; plain Celery tasks go through ``send_task`` on the same broker and
queue. Both are awaited the same way, one Redis round trip per poll for the
whole batch, so the waiting itself costs both sides alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Self

from wasmjob.client import Client
from wasmjob.manifest import Manifest

from .services import Services, Worker

POLL = 0.01
WINDOW = 32  # poll the oldest pending items only: batches finish roughly in order, and Redis stays unloaded
DONE = ("completed", "failed", "cancelled")


class FleetHarness:
    """A producer on the bench's private Redis; takes the services and the workers' environment."""

    def __init__(self, services: Services, worker_env: dict[str, str] | None = None) -> None:
        services.stop_workers()
        services.flush()
        self.services = services
        self.worker_env = worker_env or {}
        self.client = Client(services.url)
        self.app = services.producer()
        self.queue = self.client.settings.queue
        self.redis = self.client.fleet.client
        self.keys = self.client.fleet.keys

    def close(self) -> None:
        self.services.stop_workers()
        self.client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # workers -------------------------------------------------------------------

    def workers(self, count: int, *, pool: str = "prefork", concurrency: int = 1, prefix: str = "w") -> list[Worker]:
        started = [
            self.services.start_worker(f"{prefix}{i}", pool=pool, concurrency=concurrency, env=self.worker_env, wait=False)
            for i in range(1, count + 1)
        ]
        self.services.wait_ready(started)
        return started

    # WasmJobs ------------------------------------------------------------------

    def register(self, wasm: bytes, manifest: Manifest) -> str:
        ref = self.client.add_module(wasm, manifest)
        return ref.digest

    def submit(self, extension: str, job: str, params: Any, count: int, limits: dict[str, Any] | None = None) -> list[str]:
        return [self.client.submit(extension, job, params, limits=limits).id for _ in range(count)]

    def statuses(self, job_ids: list[str]) -> list[str]:
        pipe = self.redis.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hget(self.keys.job(job_id), "status")
        return [(s or b"missing").decode() for s in pipe.execute()]

    def wait_jobs(self, job_ids: list[str], timeout: float) -> None:
        """Until every job is done (polling the oldest pending ones); raise if one did not complete."""
        pending = list(job_ids)
        deadline = time.monotonic() + timeout
        while pending:
            window = pending[:WINDOW]
            states = self.statuses(window)
            bad = [(j, s) for j, s in zip(window, states) if s in ("failed", "cancelled")]
            if bad:
                job_id, status = bad[0]
                rec = self.client.job(job_id).record()
                raise RuntimeError(f"job {job_id} {status}: {rec.error}")
            done = {j for j, s in zip(window, states) if s == "completed"}
            pending = [j for j in pending if j not in done]
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(job_ids)} jobs not completed after {timeout:.0f} s")
            if pending:
                time.sleep(POLL)

    def record(self, job_id: str) -> Any:
        return self.client.job(job_id).record()

    # plain Celery tasks ---------------------------------------------------------

    def send(self, task: str, args: Iterable[Any], count: int) -> list[str]:
        args = list(args)
        return [self.app.send_task(task, args=args, queue=self.queue).id for _ in range(count)]

    def wait_tasks(self, task_ids: list[str], timeout: float) -> list[Any]:
        """Until every task has a result in the result backend; returns the results."""
        backend = self.app.backend
        results: dict[str, Any] = {}
        pending = list(task_ids)
        deadline = time.monotonic() + timeout
        while pending:
            window = pending[:WINDOW]
            raw = self.redis.mget([backend.get_key_for_task(t).decode() for t in window])
            still = []
            for task_id, value in zip(window, raw):
                meta = backend.decode_result(value) if value else None
                if meta is None or meta["status"] not in ("SUCCESS", "FAILURE"):
                    still.append(task_id)
                elif meta["status"] == "FAILURE":
                    raise RuntimeError(f"task {task_id} failed: {meta['result']}")
                else:
                    results[task_id] = meta["result"]
            pending = still + pending[WINDOW:]
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(task_ids)} tasks not done after {timeout:.0f} s")
            if pending:
                time.sleep(POLL)
        return [results[t] for t in task_ids]
