"""Host operations reachable through ``spacedrive_call``: a registry operators can extend.

Every call is checked against the manifest's method prefixes and libraries and
rate-limited by its requests per minute before the operation runs. Payloads
and results are JSON values.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import CallDenied, RateLimited, UnknownOperation, WasmJobError
from .manifest import Permissions
from .store.base import CheckpointStore

MAX_KV_KEY = 256
MAX_KV_VALUE = 64 * 1024


@dataclass
class OpContext:
    """What an operation may know about the call: the job, its tenant, extension and store."""

    job_id: str
    job_name: str
    library_id: str
    extension_id: str
    extension_version: str
    digest: str
    permissions: Permissions
    store: CheckpointStore | None
    info: Callable[[], dict[str, Any]] = field(default=lambda: {})
    config: Any = None

    @property
    def namespace(self) -> str:
        """The key-value scope: one per (tenant, extension)."""
        return f"{self.library_id}:{self.extension_id}"


class Operation(Protocol):
    def __call__(self, ctx: OpContext, payload: Any) -> Any: ...


class RateLimiter:
    """A token bucket per extension, refilled at ``requests_per_minute``; per process."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, per_minute: int) -> bool:
        if per_minute <= 0:
            return True
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True


class Operations:
    """The method name → operation registry, with permission and rate checks."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}
        self.limiter = RateLimiter()

    def register(self, method: str, op: Operation) -> None:
        """Add or replace an operation, e.g. ``ops.register("query:weather.v1", fn)``."""
        if ":" not in method:
            raise ValueError(f"method {method!r} must look like 'query:name.v1' or 'action:name.v1'")
        self._ops[method] = op

    def methods(self) -> list[str]:
        return sorted(self._ops)

    def dispatch(self, method: str, library_id: str, payload: Any, ctx: OpContext) -> Any:
        """Check permissions and rate, then run the operation; errors are WasmJobErrors."""
        if not ctx.permissions.allows_method(method):
            raise CallDenied(f"method {method} is not permitted by the manifest", job_id=ctx.job_id)
        zero = "00000000-0000-0000-0000-000000000000"
        if library_id not in (ctx.library_id, zero) or not ctx.permissions.allows_library(ctx.library_id):
            raise CallDenied(f"library {library_id} is not accessible to this job", job_id=ctx.job_id)
        if not self.limiter.allow(ctx.extension_id, ctx.permissions.rate_limits.requests_per_minute):
            raise RateLimited(
                f"rate limit of {ctx.permissions.rate_limits.requests_per_minute} calls per minute exceeded",
                job_id=ctx.job_id,
            )
        op = self._ops.get(method)
        if op is None:
            raise UnknownOperation(f"no host operation named {method}", job_id=ctx.job_id)
        return op(ctx, payload)


def _key(payload: Any, ctx: OpContext) -> str:
    if not isinstance(payload, dict) or not isinstance(payload.get("key"), str):
        raise WasmJobError('payload must be {"key": "<string>", ...}', job_id=ctx.job_id)
    key: str = payload["key"]
    if not key or len(key) > MAX_KV_KEY:
        raise WasmJobError(f"key must be 1..{MAX_KV_KEY} characters", job_id=ctx.job_id)
    return key


def kv_get(ctx: OpContext, payload: Any) -> Any:
    """``query:kv.get.v1`` {"key"} → {"value": string | null}."""
    key = _key(payload, ctx)
    if ctx.store is None:
        raise WasmJobError("no store for key-value operations", job_id=ctx.job_id)
    return {"value": ctx.store.kv_get(ctx.namespace, key)}


def kv_set(ctx: OpContext, payload: Any) -> Any:
    """``action:kv.set.v1`` {"key", "value": string} → {"ok": true}."""
    key = _key(payload, ctx)
    value = payload.get("value")
    if not isinstance(value, str):
        raise WasmJobError("value must be a string", job_id=ctx.job_id)
    if len(value.encode()) > MAX_KV_VALUE:
        raise WasmJobError(f"value over {MAX_KV_VALUE} bytes", job_id=ctx.job_id)
    if ctx.store is None:
        raise WasmJobError("no store for key-value operations", job_id=ctx.job_id)
    ctx.store.kv_set(ctx.namespace, key, value)
    return {"ok": True}


def job_info(ctx: OpContext, payload: Any) -> Any:
    """``query:job.info.v1`` → facts about the running job (read-only)."""
    return {
        "job_id": ctx.job_id,
        "job": ctx.job_name,
        "library_id": ctx.library_id,
        "extension": {"id": ctx.extension_id, "version": ctx.extension_version, "digest": ctx.digest},
        **ctx.info(),
    }


def config_get(ctx: OpContext, payload: Any) -> Any:
    """``query:config.get.v1`` → {"config": the manifest's ``wasmjob.config`` object, or null}."""
    return {"config": ctx.config}


def default_operations() -> Operations:
    """The built-in operations: key-value get/set, the running job's info and the extension's config."""
    ops = Operations()
    ops.register("query:kv.get.v1", kv_get)
    ops.register("action:kv.set.v1", kv_set)
    ops.register("query:job.info.v1", job_info)
    ops.register("query:config.get.v1", config_get)
    return ops


def load_plugins(specs: list[str], ops: Operations) -> Operations:
    """Let operators add operations: each spec ``package.module:function`` gets ``ops`` to register into.

    Workers read the specs from ``WASMJOB_OPERATIONS`` (comma-separated) when they start.
    """
    import importlib

    for spec in filter(None, (s.strip() for s in specs)):
        module_name, _, attr = spec.partition(":")
        try:
            register = getattr(importlib.import_module(module_name), attr or "register")
        except (ImportError, AttributeError) as exc:
            raise WasmJobError(f"cannot load host operations {spec!r}: {exc}") from exc
        register(ops)
    return ops
