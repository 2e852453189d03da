"""Celery's ``revoke`` means *cancel the job*: from Flower, ``celery control revoke`` or any client.

A WasmJob outlives its tasks (slices, resumes), so revoking one task id would stop nothing:
Celery only skips that one message. Each worker's remote-control ``revoke`` is wrapped here
(in the worker's main process, where control commands arrive): every revoked id that names a
job (the submitter's task id, the job id, or a slice ``<job_id>.<dispatch>``) cancels that job
through the fenced path (``control.lua``): a queued or paused job is cancelled at once, a
running one is told through its record and stops at its next interrupt check, keeps its last
checkpoint, is billed, and is never resumed. ``terminate`` is honoured for other tasks only: a
WasmJob's run is never killed (that would lose its usage and look like a crash to the sweep).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from celery.utils.functional import maybe_list
from celery.worker import control as celery_control
from celery.worker import state as worker_state

from ..errors import InvalidTransition, NotFound, StoreUnavailable
from .messages import TASK_NAME

log = logging.getLogger(__name__)
_celery_revoke = celery_control.Panel.data["revoke"]


def job_id_of(task_id: str) -> str | None:
    """The job a task id may belong to: ``<uuid>`` or ``<uuid>.<dispatch>``; None otherwise."""
    head = task_id.split(".", 1)[0]
    try:
        return str(uuid.UUID(head))
    except ValueError:
        return None


def cancel_revoked(app: Any, task_ids: set[str]) -> dict[str, str]:
    """Cancel the jobs ``task_ids`` name; returns job id -> its status now (unknown ids are left out)."""
    fleet = app.fleet()
    out: dict[str, str] = {}
    for job_id in sorted({j for j in map(job_id_of, task_ids) if j}):
        try:
            status, _, _ = fleet.records.control(job_id, "cancel")
        except NotFound:
            continue
        except InvalidTransition as exc:  # completed or failed already: nothing to cancel
            out[job_id] = exc.reason.split()[2].rstrip(";") if exc.reason.startswith("job is ") else "done"
            continue
        except StoreUnavailable as exc:
            log.warning("job %s: revoked, but cannot cancel it now: %s", job_id, exc.reason)
            continue
        log.info("job %s: revoked through Celery; cancelling (now %s)", job_id, status)
        if status == "cancelled" and not fleet.records.celery_results:
            from .results import store_outcome

            store_outcome(app, fleet.records.get(job_id).task_id or job_id, job_id, status)
        out[job_id] = status
    return out


def revoke(state: Any, task_id: Any, terminate: bool = False, signal: str | None = None, **kwargs: Any) -> Any:
    """Celery's revoke, plus: cancel the WasmJobs the ids name; never kill a WasmJob's run."""
    from .factory import FleetApp

    ids = {str(t) for t in maybe_list(task_id) or []}
    if not ids or not isinstance(state.app, FleetApp):
        return _celery_revoke(state, task_id, terminate=terminate, signal=signal, **kwargs)
    cancelled = cancel_revoked(state.app, ids)
    runs = {r.id for r in list(worker_state.active_requests) if r.id in ids and r.task.name == TASK_NAME}
    if terminate and runs:
        _celery_revoke(state, sorted(runs), terminate=False, **kwargs)
        others = ids - runs
        if others:
            _celery_revoke(state, sorted(others), terminate=True, signal=signal, **kwargs)
    else:
        _celery_revoke(state, sorted(ids), terminate=terminate, signal=signal, **kwargs)
    jobs = ", ".join(f"{j} {s}" for j, s in cancelled.items())
    return {"ok": f"tasks {', '.join(sorted(ids))} flagged as revoked" + (f"; jobs: {jobs}" if jobs else "")}


def install() -> None:
    """Put :func:`revoke` in Celery's registry of control commands (once a process)."""
    if celery_control.Panel.data.get("revoke") is revoke:
        return
    meta = celery_control.Panel.meta["revoke"]
    celery_control.Panel.register(
        name="revoke", type=meta.type, visible=meta.visible, default_timeout=meta.default_timeout,
        help=meta.help, signature=meta.signature, args=meta.args, variadic=meta.variadic,
    )(revoke)
