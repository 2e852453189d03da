"""The limits one run gets, and the fleet-wide concurrency of an extension.

A job's limits are the lowest of the operator's policy, its manifest and the
message's own (a submitter can only lower them), then the fleet's: every run
ends before the fleet's run timeout (itself below Celery's visibility timeout)
and is sliced so long jobs share the fleet.
"""

from __future__ import annotations

import random
from typing import Any

from wasmjob.broker_config import Settings

from ..job import Limits
from ..manifest import Manifest
from ..policy import Policy

# A job over its extension's concurrent_jobs waits until a run of that extension ends (finish
# and the recovery sweep wake the longest waiter); this is only the safety net's period, so a
# waiting job is not delivered over and over.
WAIT_SECONDS = 30.0


def run_limits(manifest: Manifest, requested: dict[str, Any], settings: Settings, policy: Policy) -> tuple[Limits, list[str]]:
    """The limits of one run of a job of ``manifest`` asking for ``requested``: min(policy,
    manifest, submitter, fleet), and a note for each requested value that was clamped."""
    limits, notes = policy.effective_limits(
        manifest,
        requested,
        run_timeout=settings.run_timeout,
        slice_seconds=settings.slice_seconds,
        store_checkpoint_bytes=settings.max_checkpoint_bytes,
    )
    return limits.merged(snapshot_seconds=settings.snapshot_seconds), notes


def limits_summary(limits: Limits) -> dict[str, Any]:
    """The effective limits as the job record shows them."""
    return {
        "fuel": limits.fuel,
        "timeout_seconds": limits.timeout_seconds,
        "slice_seconds": limits.slice_seconds,
        "max_memory_mb": limits.max_memory_mb,
        "max_checkpoint_bytes": limits.max_checkpoint_bytes,
        "max_log_bytes": limits.max_log_bytes,
    }


def backoff(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before retry number ``attempt`` after an infrastructure failure (with jitter)."""
    delay = min(cap, base * 2 ** max(0, min(attempt - 1, 10)))
    return delay * random.uniform(0.75, 1.25)


def wait_seconds() -> float:
    return WAIT_SECONDS * random.uniform(0.75, 1.25)
