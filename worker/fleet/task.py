"""The Celery task ``wasmjob.run``: a thin adapter from a delivery to a :class:`JobExecution`, and
from how the run ended to what Celery and Flower say about the task.

The task writes no result of its own (``ignore_result``): the job's outcome becomes the result
of the task id its submitter holds when the job ends (the finish script writes it). What the
task reports is its events, for Flower: a completed job succeeds, a failed one fails with the
reason (``JobFailed``), a cancelled one is revoked; a run that ends without ending the job
(paused, continued in a next slice, waiting for a slot, a dropped duplicate) sends an event named
after that (``task-paused`` → Flower shows ``PAUSED``; ``CONTINUED``, ``WAITING``, ``SKIPPED``) and
raises ``Ignore``, so it is never a success.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from celery.exceptions import Ignore

from ..errors import ConfigError, JobFailed, StoreUnavailable
from .execution import JobExecution
from .limits import backoff
from .context import Fleet
from .messages import JobMessage, job_id_of

if TYPE_CHECKING:
    from celery import Task

    from .dispatch import Dispatcher
    from .process import WorkerProcess

log = logging.getLogger(__name__)
# what the task raises on purpose: Celery logs them in one line, without a traceback
EXPECTED_ERRORS = (JobFailed, ConfigError)
# a run's summary status -> its task event (Flower shows the upper-cased name as the state)
EVENT_NAMES = {"queued": "continued"}


class FleetApp(Protocol):
    """What the tasks need of their Celery app (``factory.FleetApp`` is one); the factory imports
    the tasks, so they name the app by what it does, not by importing it."""

    conf: Any
    events: Any

    def worker_process(self) -> WorkerProcess: ...

    def dispatcher(self) -> Dispatcher: ...


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
        reject_message(proc.fleet, kwargs, req.id, exc)
        # the sender holds this task id and no job will ever end for it
        task.backend.mark_as_failure(req.id, exc, request=req)
        raise
    queue = (req.delivery_info or {}).get("routing_key")
    events = TaskEvents(app, req.hostname, req.id) if app.conf.worker_send_task_events else None
    execution = JobExecution(
        proc, msg, req.hostname or "worker", app.dispatcher(), queue=queue, on_progress=events, task_id=req.id
    )
    try:
        summary = execution.run()
    except StoreUnavailable as exc:
        # Redis went away between delivery and claim: deliver again later, same dispatch
        log.warning("job %s: store unavailable before it ran (%s); retrying", msg.job_id, exc.reason)
        raise task.retry(countdown=backoff(req.retries + 1), max_retries=None) from exc
    return conclude(summary, events)


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


def conclude(summary: dict[str, Any], events: TaskEvents | None) -> dict[str, Any]:
    """The task's end for a run that ended with ``summary``: return, raise, or an event and Ignore."""
    status = summary["status"]
    if status == "completed":
        return summary
    if status == "failed":
        reason = summary.get("error") or "failed"
        if events is not None:  # replace the last progress Flower shows (Celery's task-failed has none)
            events.send("task-started", timestamp=events.started, result=f"failed: {reason}")
        raise JobFailed(reason, job_id=summary["job_id"])
    if events is not None:
        if status == "cancelled":
            events.send("task-revoked", terminated=False, signum=None, expired=False, result=describe(summary))
        else:
            events.send(f"task-{EVENT_NAMES.get(status, status)}", result=describe(summary))
    raise Ignore()


def describe(summary: dict[str, Any]) -> str:
    """What Flower shows as the result of a run that did not end its job."""
    status = summary["status"]
    if status == "queued":
        return f"continues as {summary['job_id']}.{summary['dispatch'] + 1}"
    if status == "waiting":
        return "waits for a free slot of its extension"
    return status + (f": {summary['detail']}" if summary.get("detail") else "")


class TaskEvents:
    """Task events for Flower beyond Celery's own: progress while running, and how a run ended.

    Progress goes out as another ``task-started`` event with the run's start time, so the
    task stays ``STARTED`` (Flower's Started tab, its Terminate button) and shows ``result``
    (``42% ticking``), ``progress`` and ``message``.
    """

    def __init__(self, app: FleetApp, hostname: str | None, task_id: str | None) -> None:
        self.app = app
        self.hostname = hostname
        self.task_id = task_id
        self.started = time.time()

    def __call__(self, progress: float, message: str) -> None:
        text = f"{progress * 100:.0f}%" + (f" {message}" if message else "")
        self.send("task-started", timestamp=self.started, result=text, progress=round(progress, 4), message=message)

    def send(self, type_: str, **fields: Any) -> None:
        try:
            with self.app.events.default_dispatcher(hostname=self.hostname) as dispatcher:
                dispatcher.send(type_, uuid=self.task_id, retry=False, **fields)
        except Exception:  # monitoring must never change a job's outcome
            log.debug("cannot send %s for %s", type_, self.task_id, exc_info=True)
