"""The ``wasmjob.run`` message: what any Celery client sends to run a job.

Send it by name, with keyword arguments only, to the fleet's queue (``wasmjob``
unless configured), serialized as msgpack or JSON::

    celery_app.send_task("wasmjob.run", queue="wasmjob", kwargs={
        "job_id": "6c0e…-uuid",          # optional: defaults to the Celery task id (a UUID)
        "extension": "counter",          # "id", "id@version" or "sha256:<hex>" of a registered module
        "job": "counter",                # a job the extension registers
        "params": {"target": 100},       # optional: the job's parameters (JSON/msgpack values)
        "tenant": "…uuid…",              # optional: the library id the job runs for
        "tenant_token": "…",             # that tenant's token, when the operator requires one
        "limits": {"fuel": 10**9},       # optional: fuel, timeout_seconds, slice_seconds, retention_seconds,
                                         #           max_memory_mb, max_checkpoint_bytes
    })

A worker that receives a job it has no record of creates the record (so
``wasmjob status <job_id>`` works), then runs it. Messages wasmjob sends itself
also carry ``dispatch``: the number of the enqueue they belong to, so a stale
duplicate (Celery redelivering an old message) is recognised and dropped.
The task id the sender holds resolves when the job ends: ``AsyncResult(id).get()``
returns the job's result or raises its failure or cancellation (see the fleet's README).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..job import DEFAULT_LIBRARY_ID
from ..validate import LIMIT_FIELDS, check_extension_ref, check_limits, check_params

__all__ = ["TASK_NAME", "TASK_OPTIONS", "LIMIT_KEYS", "JobMessage", "check_limits", "redact", "job_id_of"]
DEFAULT_MAX_PARAMS_BYTES = 1024 * 1024

TASK_NAME = "wasmjob.run"
# Options of the task: late acks and reject on worker lost keep a message until its run ends;
# no STARTED state in the result backend (the job record says when a run starts, and Flower
# follows task-started events), so the backend is written once per task. The bench gives its
# plain baseline task these same options.
TASK_OPTIONS: dict[str, bool] = {"acks_late": True, "reject_on_worker_lost": True, "track_started": False}
LIMIT_KEYS = tuple(LIMIT_FIELDS)
_SECRET_WORDS = ("password", "secret", "token", "key", "credential", "auth")
REPR_LIMIT = 240


@dataclass(frozen=True)
class JobMessage:
    """The keyword arguments of one ``wasmjob.run`` message, validated."""

    job_id: str
    extension: str
    job: str
    params: Any = None
    tenant: str | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    dispatch: int = 0
    tenant_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_kwargs(
        cls,
        kwargs: dict[str, Any],
        *,
        task_id: str | None = None,
        args: tuple[Any, ...] = (),
        max_params_bytes: int = DEFAULT_MAX_PARAMS_BYTES,
    ) -> JobMessage:
        """Validate a received message; every problem is a ConfigError naming the field (and the
        job, once its id is known): limits and params are checked by :mod:`wasmjob.validate`."""
        job_id = job_id_of(kwargs, task_id)
        if job_id is None:
            raise ConfigError(f"job_id must be a UUID string, got {kwargs.get('job_id') or task_id!r}")
        if args:
            raise ConfigError("wasmjob.run takes keyword arguments only; got positional arguments", job_id=job_id)
        for name in ("extension", "job"):
            if not isinstance(kwargs.get(name), str) or not kwargs[name]:
                raise ConfigError(f"{name} must be a non-empty string", job_id=job_id)
        check_extension_ref(kwargs["extension"], job_id=job_id)
        tenant = kwargs.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not _is_uuid(tenant)):
            raise ConfigError(f"tenant must be a UUID string or null, got {tenant!r}", job_id=job_id)
        dispatch = kwargs.get("dispatch", 0)
        if isinstance(dispatch, bool) or not isinstance(dispatch, int) or not 0 <= dispatch < 2**53:
            raise ConfigError(f"dispatch must be a non-negative integer, got {dispatch!r}", job_id=job_id)
        token = kwargs.get("tenant_token")
        if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 128):
            raise ConfigError("tenant_token must be a non-empty string of at most 128 characters", job_id=job_id)
        unknown = set(kwargs) - {"job_id", "extension", "job", "params", "tenant", "tenant_token", "limits", "dispatch"}
        if unknown:
            raise ConfigError(f"unknown message fields: {', '.join(sorted(unknown))}", job_id=job_id)
        return cls(
            job_id=str(uuid.UUID(job_id)),
            extension=kwargs["extension"],
            job=kwargs["job"],
            params=check_params(kwargs.get("params"), max_params_bytes, job_id=job_id),
            tenant=str(uuid.UUID(tenant)) if tenant else None,
            limits=check_limits(kwargs.get("limits"), job_id=job_id),
            dispatch=dispatch,
            tenant_token=token,
        )

    def to_kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id, "extension": self.extension, "job": self.job}
        if self.params is not None:
            out["params"] = self.params
        if self.tenant:
            out["tenant"] = self.tenant
        if self.tenant_token:
            out["tenant_token"] = self.tenant_token
        if self.limits:
            out["limits"] = dict(self.limits)
        out["dispatch"] = self.dispatch
        return out

    @property
    def library_id(self) -> str:
        return self.tenant or DEFAULT_LIBRARY_ID

    @property
    def task_id(self) -> str:
        """The Celery task id of this dispatch: the job id and the dispatch number."""
        return f"{self.job_id}.{self.dispatch}"

    def argsrepr(self) -> str:
        return f"({self.extension!r}, {self.job!r})"

    def kwargsrepr(self) -> str:
        """What Flower shows: ids, dispatch and redacted, truncated params; never module bytes."""
        parts = [f"'job_id': {self.job_id!r}", f"'dispatch': {self.dispatch}"]
        if self.params is not None:
            parts.append(f"'params': {_short(redact(self.params))}")
        if self.tenant:
            parts.append(f"'tenant': {self.tenant!r}")
        if self.limits:
            parts.append(f"'limits': {self.limits!r}")
        return "{" + ", ".join(parts) + "}"


def redact(value: Any, depth: int = 0) -> Any:
    """``value`` with anything under a secret-looking key replaced by ``'***'``."""
    if depth > 4:
        return "…"
    if isinstance(value, dict):
        return {
            k: "***" if isinstance(k, str) and any(w in k.lower() for w in _SECRET_WORDS) else redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, depth + 1) for v in value[:20]]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 1] + "…"


def job_id_of(kwargs: Any, task_id: str | None = None) -> str | None:
    """The job id a message names (its ``job_id``, else the Celery task id) when it is a UUID."""
    job_id = kwargs.get("job_id") if isinstance(kwargs, dict) else None
    job_id = job_id or task_id
    return str(uuid.UUID(job_id)) if isinstance(job_id, str) and _is_uuid(job_id) else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
