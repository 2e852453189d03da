"""The Celery task ``wasmjob.run``: a thin adapter from a delivery to a :class:`JobExecution`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, StoreUnavailable
from .execution import JobExecution
from .limits import backoff
from .messages import JobMessage

if TYPE_CHECKING:
    from celery import Task

    from .factory import FleetApp

log = logging.getLogger(__name__)


def run(task: Task, **kwargs: Any) -> dict[str, Any]:
    """Run one delivered job message (see ``messages.py`` for its fields)."""
    app: FleetApp = task.app  # type: ignore[assignment]
    req = task.request
    try:
        msg = JobMessage.from_kwargs(kwargs, task_id=req.id)
    except ConfigError as exc:
        log.error("rejected a wasmjob.run message: %s", exc)
        return {"status": "rejected", "error": str(exc)}
    queue = (req.delivery_info or {}).get("routing_key")
    progress = ProgressEvents(app, req.hostname, req.id) if app.conf.worker_send_task_events else None
    execution = JobExecution(
        app.worker_process(), msg, req.hostname or "worker", app.dispatcher(), queue=queue, on_progress=progress
    )
    try:
        return execution.run()
    except StoreUnavailable as exc:
        # Redis went away between delivery and claim: deliver again later, same dispatch
        log.warning("job %s: store unavailable before it ran (%s); retrying", msg.job_id, exc.reason)
        raise task.retry(countdown=backoff(req.retries + 1), max_retries=None) from exc


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
