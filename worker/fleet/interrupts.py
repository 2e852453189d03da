"""The interrupt watcher: carries pause, cancel and worker shutdown from Redis to a running job.

The guest's ``job_check_interrupt`` only reads an in-memory flag. The watcher,
ticked by the process's supervisor thread, polls the job's ``control`` field
(and the worker's stopping marker) every ``interval`` seconds in one round trip
and raises the flag, so a pause or cancel reaches the job within a second with
no Redis call per check. The same poll reports progress to whoever wants it
(Flower, through task events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..errors import StoreUnavailable
from ..job import InterruptFlag, InterruptReason
from ..records import Records

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, str], None]
_CONTROLS = {"pause": InterruptReason.PAUSE, "cancel": InterruptReason.CANCEL}


class InterruptWatcher:
    """Polls one job's control field when ticked; takes the records, job id, the run's flag,
    the worker name, a poll interval and an optional progress callback (called at most
    every ``progress_every`` seconds, and only when progress changed)."""

    def __init__(
        self,
        records: Records,
        job_id: str,
        flag: InterruptFlag,
        worker_name: str,
        *,
        interval: float = 0.2,
        on_progress: ProgressCallback | None = None,
        progress_every: float = 1.0,
    ) -> None:
        self.records = records
        self.job_id = job_id
        self.flag = flag
        self.worker_name = worker_name
        self.interval = interval
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.next_at = time.monotonic() + interval
        self._last_sent = (-1.0, "")
        self._last_time = 0.0

    def __repr__(self) -> str:
        return f"InterruptWatcher({self.job_id})"

    def tick(self, now: float) -> None:
        self.next_at = now + self.interval
        try:
            control, progress, message, stopping = self.records.watch_fields(self.job_id, self.worker_name)
        except StoreUnavailable:
            return  # the lease keeper decides when an outage means the lease is gone
        reason = _CONTROLS.get(control)
        if reason is not None and self.flag.reason is not reason:
            log.info("job %s: %s requested", self.job_id, control)
            self.flag.request(reason)
        elif stopping and self.flag.reason is None:
            log.info("job %s: worker %s is shutting down; checkpointing", self.job_id, self.worker_name)
            self.flag.request(InterruptReason.SHUTDOWN)
        if self.on_progress and (progress, message) != self._last_sent and now - self._last_time >= self.progress_every:
            self._last_sent, self._last_time = (progress, message), now
            try:
                self.on_progress(progress, message)
            except Exception:  # a monitoring hook must never stop the job
                log.debug("progress callback failed", exc_info=True)
