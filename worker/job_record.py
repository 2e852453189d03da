"""What a job record is: its fields as Python reads them from the record's hash, and what
the scripts that change a record answer (``Claim``, ``Finished``); ``records.py`` changes them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import msgpack

from .store.redis import as_text

STATUSES = ("queued", "running", "paused", "cancelled", "completed", "failed")
TERMINAL = frozenset({"completed", "failed", "cancelled"})
FinishKind = Literal["completed", "failed", "interrupted", "retry"]

_INTS = (
    "dispatch", "attempts", "checkpoints", "stalls", "recoveries", "items", "bytes",
    "fuel", "peak_memory", "refused_writes", "priority", "fence", "concurrent", "result_bytes",
)
_FLOATS = ("progress", "ckpt_progress", "wall_seconds", "cpu_seconds")
_TIMES = (
    "created_at", "queued_at", "started_at", "run_started_at", "finished_at", "paused_at", "updated_at",
    "checkpoint_at", "expires_at",
)


@dataclass
class JobRecord:
    """Everything stored about one job; times are unix seconds.

    ``expires_at`` is when a finished job's keys expire; ``result_bytes`` is set when the
    result is kept beside the record (``Records.get`` reads it, a page of records does not).
    """

    id: str
    status: str
    extension: str = ""
    ext_id: str = ""
    task_id: str = ""  # the Celery task id its submitter holds; the job's outcome is that task's result
    ext_version: str = ""
    digest: str = ""
    job: str = ""
    params: Any = None
    tenant: str | None = None
    tenant_proof: str = ""
    queue: str | None = None
    priority: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    effective_limits: dict[str, Any] = field(default_factory=dict)
    limit_notes: str = ""
    concurrent: int = 0
    dispatch: int = 0
    attempts: int = 0
    recoveries: int = 0
    stalls: int = 0
    worker: str | None = None
    control: str = ""
    progress: float = 0.0
    ckpt_progress: float = 0.0
    message: str = ""
    items: int = 0
    bytes: int = 0
    checkpoints: int = 0
    result: Any = None
    result_bytes: int = 0
    error: str | None = None
    last_error: str | None = None
    fuel: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_memory: int = 0
    refused_writes: int = 0
    created_at: float | None = None
    queued_at: float | None = None
    started_at: float | None = None
    run_started_at: float | None = None
    finished_at: float | None = None  # set only when the job reached a terminal status
    paused_at: float | None = None  # set only while the job is paused
    updated_at: float | None = None
    checkpoint_at: float | None = None
    expires_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_hash(cls, raw: dict[Any, Any]) -> JobRecord:
        # decoded inline (a record has ~40 fields; a call per field showed in the worker's profile)
        h = {(k.decode() if type(k) is bytes else as_text(k)): v for k, v in raw.items()}
        text = {
            k: (v.decode("utf-8", "replace") if type(v) is bytes else as_text(v)) for k, v in h.items() if k != "params"
        }
        out: dict[str, Any] = {
            "id": text.get("id", ""),
            "status": text.get("status", "queued"),
            "params": unpack(h.get("params")),
            "limits": json.loads(text["limits"]) if text.get("limits") else {},
            "effective_limits": json.loads(text["effective_limits"]) if text.get("effective_limits") else {},
            "result": json.loads(text["result"]) if text.get("result") else None,
        }
        for name in (
            "extension", "ext_id", "ext_version", "digest", "job", "message", "control", "tenant_proof", "limit_notes", "task_id",
        ):
            out[name] = text.get(name, "")
        for name in ("tenant", "queue", "worker", "error", "last_error"):
            out[name] = text.get(name) or None
        for name in _INTS:
            if name in text and name in cls.__dataclass_fields__:
                out[name] = int(float(text[name] or 0))
        out["priority"] = int(text["priority"]) if text.get("priority") else None
        for name in _FLOATS:
            out[name] = float(text.get(name) or 0)
        for name in _TIMES:
            out[name] = int(text[name]) / 1000 if text.get(name) else None
        return cls(**out)


@dataclass(frozen=True)
class Claim:
    """What ``claim`` decided: ``ok`` (with the lease's :class:`Fence` (token and owner), the record
    and the last checkpoint), ``skip``, ``held``, ``wait``, or ``ext`` (the job belongs to another
    extension id, named in ``detail``: claim again with it)."""

    outcome: Literal["ok", "skip", "held", "wait", "ext"]
    token: int = 0
    checkpoints: int = 0
    attempts: int = 0
    detail: str = ""
    record: JobRecord | None = None
    state: bytes | None = None


@dataclass(frozen=True)
class Finished:
    """The status a run left its job in, the dispatch to send (if queued), a woken waiter and,
    for a failed job, its recorded error."""

    status: str
    dispatch: int
    woken: str | None = None
    error: str = ""


@dataclass(frozen=True)
class Page:
    """One page of jobs, newest first; ``cursor`` fetches the next one (None: no more)."""

    records: list[JobRecord]
    cursor: str | None


@dataclass(frozen=True)
class UsageRow:
    """Accumulated usage of one extension by one tenant."""

    extension: str
    tenant: str
    runs: int
    fuel: int
    wall_seconds: float
    cpu_seconds: float
    completed: int
    failed: int
    cancelled: int
    abandoned: int


def to_json(value: Any) -> str:
    """JSON for a decoded state; bytes become ``{"$bytes": "<hex>"}`` rather than failing."""
    return json.dumps(value, default=_jsonable, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)


def unpack(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
