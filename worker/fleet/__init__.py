"""The fleet: wasmjob jobs on Celery workers, with state, leases and recovery in Redis.

Importing this package starts nothing. ``wasmjob.fleet.app`` holds the Celery
app that ``celery -A wasmjob.fleet.app worker`` runs; everything else is built
from :class:`wasmjob.broker_config.Settings` when a process starts.
"""

from .context import Fleet
from .messages import TASK_NAME, JobMessage

CELERY_APP = "wasmjob.fleet.app"
"""What ``celery -A`` takes to run the fleet's worker or Flower."""

__all__ = ["CELERY_APP", "Fleet", "JobMessage", "TASK_NAME"]
