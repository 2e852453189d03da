"""The lease keeper: keeps one running job's lease alive, or stops the job.

A lease expires ``ttl`` seconds after its last renewal. The keeper renews it
every ``ttl / 3`` (it is ticked by the process's supervisor thread); when a
renewal is refused (another worker took over), when Redis has been unreachable
for longer than the TTL (the lease is gone by then), or when this process should
no longer hold leases (its parent worker died), it asks the job to checkpoint
and stop. The job's own writes are fenced anyway; stopping early saves the work.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from .errors import StoreUnavailable
from .job import InterruptFlag, InterruptReason
from .store.redis import RedisStore

log = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews ``job_id``'s lease for ``token``; takes the store, TTL, extension id, the run's
    interrupt flag and ``alive``, a check that this process may still hold leases."""

    def __init__(
        self,
        store: RedisStore,
        job_id: str,
        token: int,
        ttl: float,
        *,
        ext_id: str | None = None,
        interrupts: InterruptFlag | None = None,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self.ttl = ttl
        self.ext_id = ext_id
        self.interrupts = interrupts
        self.alive = alive or (lambda: True)
        self.interval = max(0.05, ttl / 3)
        self.lost_reason: str | None = None
        self.last_ok = time.monotonic()
        self.next_at = self.last_ok + self.interval

    def __repr__(self) -> str:
        return f"LeaseKeeper({self.job_id}, token={self.token})"

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    def tick(self, now: float) -> None:
        """Renew once; after a loss the keeper goes quiet."""
        self.next_at = now + self.interval
        if self.lost:
            self.next_at = float("inf")
            return
        if not self.alive():
            self._lose("this worker process was orphaned; giving the job up")
            try:
                self.store.release(self.job_id, self.token, ext_id=self.ext_id)
            except StoreUnavailable:
                pass
            return
        try:
            if not self.store.renew(self.job_id, self.token, self.ttl, ext_id=self.ext_id):
                self._lose("lease lost: another worker took the job over")
                return
            self.last_ok = now
        except StoreUnavailable as exc:
            if now - self.last_ok > self.ttl:
                self._lose(f"lease expired while Redis was unreachable ({exc.reason})")
            else:
                log.warning("job %s: cannot renew its lease yet: %s", self.job_id, exc.reason)
                self.next_at = now + min(self.interval, 0.25)

    def _lose(self, reason: str) -> None:
        self.lost_reason = reason
        self.next_at = float("inf")
        log.warning("job %s: %s", self.job_id, reason)
        if self.interrupts is not None:
            self.interrupts.request(InterruptReason.SHUTDOWN)
