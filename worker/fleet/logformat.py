"""JSON log lines for operators (``WASMJOB_LOG_FORMAT=json``): one object per line, searchable by field.

Every line has ``ts``, ``level``, ``logger`` and ``message``; a line about a job also carries
the fields the fleet attaches (``job_id``, ``extension``, ``job``, ``dispatch``, ``attempt``,
``outcome``, ``fuel``, ``wall_seconds``, ``task_id``), and inside a Celery task Celery's own
``task_id`` and ``task_name``. Installed on the worker's handlers when Celery sets up logging.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

JOB_FIELDS = ("job_id", "extension", "job", "dispatch", "attempt", "outcome", "fuel", "wall_seconds", "error", "task_id")
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (exceptions as a ``traceback`` string field)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JOB_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if "task_id" not in out:
            task = _current_task()
            if task is not None:
                out["task_id"], out["task_name"] = task
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def _current_task() -> tuple[str, str] | None:
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or not task.request.id:
        return None
    return task.request.id, getattr(task.request, "shadow", None) or task.name


def use_json(logger: logging.Logger) -> None:
    """Give each handler of ``logger`` the JSON formatter."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())


def install(log_format: str) -> None:
    """Make the worker's (and Flower's) log lines JSON when ``log_format`` is ``json``."""
    if log_format != "json":
        return
    from celery import signals

    def setup(logger: logging.Logger | None = None, **_: object) -> None:
        if logger is not None:
            use_json(logger)

    signals.after_setup_logger.connect(setup, weak=False, dispatch_uid="wasmjob-json-logs")
    signals.after_setup_task_logger.connect(setup, weak=False, dispatch_uid="wasmjob-json-task-logs")
