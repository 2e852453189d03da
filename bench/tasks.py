"""Plain Celery tasks the fleet rows compare WasmJobs against, and the producer's Celery client.

The bench starts workers with ``--include bench.tasks``, so these run in the
same worker processes, on the same broker and queue, with the same settings
as ``wasmjob.run``: the only difference left is the sandbox.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, shared_task

from wasmjob.fleet.messages import TASK_OPTIONS

NOOP = "bench.noop"
PRIMES_PY = "bench.count_primes_py"


@shared_task(name=NOOP, **TASK_OPTIONS)
def noop() -> int:
    """A trivial task: the baseline of row 1, with the same task options as ``wasmjob.run``."""
    return 0


@shared_task(name=PRIMES_PY, **TASK_OPTIONS)
def count_primes_py(limit: int, literal: bool = False) -> dict[str, Any]:
    """The primes job's algorithm in Python, the baselines of row 4: ``literal`` runs the
    line-for-line port of primes_core.h (interpreted loops), otherwise the slice-marking one."""
    import time

    from bench.native.primes import count_primes, count_primes_loop

    t0 = time.perf_counter()
    count = (count_primes_loop if literal else count_primes)(limit)
    return {"limit": limit, "count": count, "seconds": time.perf_counter() - t0}


def producer_app(redis_url: str) -> Celery:
    """A Celery client with the fleet's own settings (broker, serializers, result backend)."""
    from wasmjob.broker_config import Settings, celery_config

    settings = Settings(redis_url=redis_url)
    app = Celery("wasmjob-bench", set_as_current=False)
    app.config_from_object(celery_config(settings).as_dict())
    return app


def queue_name(redis_url: str) -> str:
    from wasmjob.broker_config import Settings

    return Settings(redis_url=redis_url).queue
