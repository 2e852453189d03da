"""The lease keeper: a thread that keeps one running job's lease alive, or stops the job.

A lease expires ``ttl`` seconds after its last renewal. The keeper renews it
every ``ttl / 3``; when a renewal is refused (another worker took over), when
Redis has been unreachable for longer than the TTL (the lease is gone by then),
or when this process should no longer hold leases (its parent worker died),
it asks the job to checkpoint and stop. The job's own writes are fenced anyway;
stopping early just saves the work.
"""

from __future__ import annotations

import logging
import threading
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
        self.lost_reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"wasmjob-lease-{job_id[:8]}", daemon=True)

    @property
    def lost(self) -> bool:
        return self.lost_reason is not None

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.ttl)

    def _run(self) -> None:
        interval = max(0.05, self.ttl / 3)
        last_ok = time.monotonic()
        while not self._stop.wait(interval):
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
                last_ok = time.monotonic()
            except StoreUnavailable as exc:
                if time.monotonic() - last_ok > self.ttl:
                    self._lose(f"lease expired while Redis was unreachable ({exc.reason})")
                    return
                log.warning("job %s: cannot renew its lease yet: %s", self.job_id, exc.reason)

    def _lose(self, reason: str) -> None:
        self.lost_reason = reason
        log.warning("job %s: %s", self.job_id, reason)
        if self.interrupts is not None:
            self.interrupts.request(InterruptReason.SHUTDOWN)
