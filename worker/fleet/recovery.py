"""The recovery sweep: jobs of dead workers go back to the queue within seconds.

Every worker runs a :class:`Sweeper` thread in its main process; each round,
the one that takes a short Redis lock (1) re-enqueues running jobs whose lease
expired (their worker died, was stopped past its TTL, or lost Redis), from
their last checkpoint, and (2) sends outbox messages that are due: delayed
retries, jobs waiting for a concurrency slot, and messages whose sender died
between the state change and the publish; (3) prunes finished jobs whose retention
ran out from the jobs index. A dead worker's job is therefore
running again within about ``lease_ttl + sweep_interval`` seconds. With a Redis
broker it also (4) dispatches again queued jobs whose message a worker took and
never claimed (see ``deliveries.py``), within about ``lease_ttl + sweep_interval``
of the take, instead of after Celery's visibility timeout.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import StoreUnavailable
from ..records import TERMINAL
from .context import Fleet
from .deliveries import UnackedDeliveries
from .dispatch import Dispatcher
from .metrics import add_counter
from .results import store_outcome

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did: jobs recovered (id -> new status), messages sent, expired jobs pruned."""

    ran: bool = False
    recovered: dict[str, str] = field(default_factory=dict)
    redispatched: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    pruned: int = 0


class Sweeper:
    """Runs :meth:`sweep` every ``interval`` seconds in a daemon thread; takes the Fleet,
    a Dispatcher, this worker's name (the lock's owner), and with a Redis broker its
    unacked deliveries and how long a taken message may stay unclaimed."""

    def __init__(
        self,
        fleet: Fleet,
        dispatcher: Dispatcher,
        owner: str,
        interval: float,
        *,
        deliveries: UnackedDeliveries | None = None,
        claim_grace: float = 10.0,
    ) -> None:
        self.fleet = fleet
        self.dispatcher = dispatcher
        self.owner = owner
        self.interval = interval
        self.deliveries = deliveries
        self.claim_grace = claim_grace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wasmjob-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 2)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except StoreUnavailable as exc:
                log.debug("sweep skipped: %s", exc.reason)
            except Exception:
                log.exception("recovery sweep failed")

    def sweep(self) -> SweepReport:
        """One round, if this worker gets the lock."""
        report = SweepReport()
        client, keys, records = self.fleet.client, self.fleet.keys, self.fleet.records
        lock_ms = max(50, int(self.interval * 900))
        from ..store.redis import translated

        with translated():
            if not client.set(keys.sweep_lock, self.owner, nx=True, px=lock_ms):
                return report
        report.ran = True
        active = records.active_ids()
        for job_id, alive in zip(active, records.leases_alive(active)):
            if not alive:
                self._one(job_id, report, self._recover)
        if self.deliveries is not None:
            self._redispatch_unclaimed(report)
        for job_id in records.outbox_take():
            self._one(job_id, report, self._send)
        report.pruned = records.prune_expired()
        return report

    def _one(self, job_id: str, report: SweepReport, step: Callable[[str, SweepReport], None]) -> None:
        """One job's part of a round: its failure is logged and never stops the round."""
        try:
            step(job_id, report)
        except StoreUnavailable:
            raise
        except Exception as exc:
            log.exception("sweep: job %s could not be handled; it fails, the round goes on", job_id)
            try:
                self.fleet.records.reject(job_id, f"the fleet cannot handle this job: {type(exc).__name__}: {exc}")
            except Exception:
                log.exception("sweep: cannot record the failure of job %s", job_id)

    def _recover(self, job_id: str, report: SweepReport) -> None:
        done = self.fleet.records.recover(job_id)
        if done is None:
            return
        report.recovered[job_id] = done.status
        add_counter(self.fleet, "recoveries")
        log.warning("job %s: its worker's lease expired; now %s", job_id, done.status)
        if done.status == "queued" and self.dispatcher.send(job_id):
            report.sent += 1
        if done.woken and self.dispatcher.send(done.woken):
            report.sent += 1
        if done.status in ("failed", "cancelled") and not self.fleet.records.celery_results:
            rec = self.fleet.records.get(job_id)
            store_outcome(self.dispatcher.app, rec.task_id or job_id, job_id, done.status, error=rec.error or "")

    def _send(self, job_id: str, report: SweepReport) -> None:
        if self.dispatcher.send(job_id):
            report.sent += 1

    def _redispatch_unclaimed(self, report: SweepReport) -> None:
        """Queued jobs whose message was taken over ``claim_grace`` ago and never claimed go out again;
        parked messages of jobs that moved on are dropped from the unacked hash."""
        assert self.deliveries is not None
        records = self.fleet.records
        taken = self.deliveries.older_than(self.claim_grace)
        if not taken:
            return
        done: list[str] = []
        for d, (status, dispatch) in zip(taken, records.dispatch_states([d.job_id for d in taken])):
            if status == "queued" and dispatch == d.dispatch:
                new = records.redispatch(d.job_id, d.dispatch)
                if not new:
                    continue
                log.warning(
                    "job %s: dispatch %d was taken %.1fs ago and never claimed (its worker is gone); sent as %d",
                    d.job_id, d.dispatch, max(0.0, time.time() - d.taken_at), new,
                )
                report.redispatched[d.job_id] = new
                done.append(d.tag)
                if self.dispatcher.send(d.job_id):
                    report.sent += 1
            elif dispatch > d.dispatch or status in TERMINAL:
                done.append(d.tag)
        self.deliveries.forget(done)
