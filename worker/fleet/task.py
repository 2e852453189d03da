"""The Celery task ``wasmjob.run``: a thin adapter from a delivery to a :class:`JobExecution`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, StoreUnavailable
from .execution import JobExecution
from .limits import backoff
from .context import Fleet
from .messages import JobMessage, job_id_of

if TYPE_CHECKING:
    from celery import Task

    from .factory import FleetApp

log = logging.getLogger(__name__)


def run(task: Task, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one delivered job message (see ``messages.py`` for its fields)."""
    app: FleetApp = task.app  # type: ignore[assignment]
    req = task.request
    proc = app.worker_process()
    try:
        msg = JobMessage.from_kwargs(
            kwargs, task_id=req.id, args=args, max_params_bytes=proc.fleet.policy.max_params_bytes
        )
    except ConfigError as exc:
        return reject_message(proc.fleet, kwargs, req.id, exc)
    queue = (req.delivery_info or {}).get("routing_key")
    progress = ProgressEvents(app, req.hostname, req.id) if app.conf.worker_send_task_events else None
    execution = JobExecution(
        proc, msg, req.hostname or "worker", app.dispatcher(), queue=queue, on_progress=progress
    )
    try:
        return execution.run()
    except StoreUnavailable as exc:
        # Redis went away between delivery and claim: deliver again later, same dispatch
        log.warning("job %s: store unavailable before it ran (%s); retrying", msg.job_id, exc.reason)
        raise task.retry(countdown=backoff(req.retries + 1), max_retries=None) from exc


def reject_message(fleet: Fleet, kwargs: dict[str, Any], task_id: str | None, exc: ConfigError) -> dict[str, Any]:
    """A message that cannot run fails its job once, with the reason; never retried."""
    log.error("rejected a wasmjob.run message: %s", exc)
    job_id = job_id_of(kwargs, task_id)
    out = {"status": "rejected", "error": str(exc)}
    if job_id is None:
        return out
    shown = {name: str(kwargs.get(name))[:200] for name in ("extension", "job") if isinstance(kwargs.get(name), str)}
    try:
        out["status"] = fleet.records.reject(job_id, exc.reason, fields=shown)
    except StoreUnavailable as err:
        log.warning("job %s: cannot record the rejection: %s", job_id, err.reason)
    return out


class ProgressEvents:
    """Sends ``task-progress`` events so Flower shows a running job's progress and message.

    Flower keeps the fields of an unknown task event and shows the event's state
    (``PROGRESS``); ``result`` carries the readable progress until the task ends.
    """

    def __init__(self, app: FleetApp, hostname: str | None, task_id: str | None) -> None:
        self.app = app
        self.hostname = hostname
        self.task_id = task_id

    def __call__(self, progress: float, message: str) -> None:
        text = f"{progress * 100:.0f}%" + (f" {message}" if message else "")
        with self.app.events.default_dispatcher(hostname=self.hostname) as dispatcher:
            dispatcher.send(
                "task-progress", uuid=self.task_id, result=text, progress=round(progress, 4), message=message,
                retry=False,
            )
