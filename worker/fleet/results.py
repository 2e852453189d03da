"""Celery's result of a submitter's task id, written from Python when the result backend is another
Redis than the job store (else the scripts that end a job write it: ``store/lua/_lib.lua``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import states
from celery.exceptions import TaskRevokedError

from ..errors import JobFailed

if TYPE_CHECKING:
    from celery import Celery


def store_outcome(app: Celery, task_id: str, job_id: str, status: str, result: Any = None, error: str = "") -> None:
    """Store a job's end as the result of ``task_id``: SUCCESS with its result, FAILURE with
    ``JobFailed`` or REVOKED with ``TaskRevokedError``, as the scripts do."""
    backend = app.backend
    if status == "completed":
        backend.store_result(task_id, result, states.SUCCESS)
    elif status == "failed":
        backend.store_result(task_id, JobFailed(f"job {job_id} failed: {error}"), states.FAILURE)
    elif status == "cancelled":
        backend.store_result(task_id, TaskRevokedError(f"job {job_id} cancelled"), states.REVOKED)
