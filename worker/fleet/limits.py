"""The limits one run gets, and the fleet-wide concurrency of an extension.

A job's limits start from its manifest, then the message's own (which may
lower memory but not raise it above the manifest), then the fleet's: every run
ends before the fleet's run timeout (itself below Celery's visibility timeout)
and is sliced so long jobs share the fleet.
"""

from __future__ import annotations

import random
from typing import Any

from wasmjob.broker_config import Settings

from ..job import Limits
from ..manifest import Manifest

# how long a job over its extension's concurrent_jobs waits before it asks again
WAIT_SECONDS = 2.0


def run_limits(manifest: Manifest, requested: dict[str, Any], settings: Settings) -> Limits:
    """The limits of one run of a job of ``manifest`` asking for ``requested``."""
    base = manifest.limits
    memory = min(int(requested.get("max_memory_mb") or base.max_memory_mb), base.max_memory_mb)
    timeout = min(float(requested.get("timeout_seconds") or base.timeout_seconds), settings.run_timeout)
    slice_seconds = float(requested.get("slice_seconds") or settings.slice_seconds)
    return base.merged(
        max_memory_mb=memory,
        fuel=requested.get("fuel"),
        timeout_seconds=timeout,
        slice_seconds=min(slice_seconds, timeout),
        max_checkpoint_bytes=min(
            int(requested.get("max_checkpoint_bytes") or base.max_checkpoint_bytes), settings.max_checkpoint_bytes
        ),
    )


def concurrent_limit(manifest: Manifest) -> int:
    """The extension's fleet-wide concurrent_jobs (0 = unlimited)."""
    return manifest.permissions.rate_limits.concurrent_jobs


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before retry number ``attempt`` after an infrastructure failure (with jitter)."""
    delay = min(cap, base * 2 ** max(0, min(attempt - 1, 10)))
    return delay * random.uniform(0.75, 1.25)


def wait_seconds() -> float:
    return WAIT_SECONDS * random.uniform(0.75, 1.25)
