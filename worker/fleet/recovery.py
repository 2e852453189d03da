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
of the take, instead of after Celery's visibility timeout; and (5) dispatches again a
queued job whose message vanished (a broker that lost data, a deleted queue, a message
removed by hand). For (5) it reads the oldest entries of the queued index, at most
``max_lost_checks`` a round, of jobs queued over ``lost_after`` ago, and re-sends one only when
its message provably is not coming: no outbox entry will send it, its dispatch is not in
kombu's unacked hash, and the queue it went to is empty. A backlog therefore never causes a
duplicate; a dropped message is caught once its queue drains. A job that checks out is
looked at again ``lost_after`` later, so a round costs O(max_lost_checks), never O(jobs).
On RabbitMQ (4) is the broker's own doing: a consumer's unacked messages come back the
moment its connection drops. (5) works there too: a passive declare counts a queue's ready
messages and Celery's ``inspect`` names those workers hold, asked only in a round with a
suspect whose queue is empty (see ``deliveries.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import StoreUnavailable
from ..job_record import TERMINAL
from .context import Fleet
from .deliveries import BrokerDeliveries, Delivery
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
    a Dispatcher, this worker's name (the lock's owner), the broker's view of deliveries
    (see ``deliveries.py``), how long a taken message may stay unclaimed, and how long a queued job
    may wait before the sweep checks that its message still exists (at most ``max_lost_checks`` a round)."""

    def __init__(
        self,
        fleet: Fleet,
        dispatcher: Dispatcher,
        owner: str,
        interval: float,
        *,
        deliveries: BrokerDeliveries | None = None,
        claim_grace: float = 10.0,
        lost_after: float = 30.0,
        max_lost_checks: int = 100,
    ) -> None:
        self.fleet = fleet
        self.dispatcher = dispatcher
        self.owner = owner
        self.interval = interval
        self.deliveries = deliveries
        self.claim_grace = claim_grace
        self.lost_after = lost_after
        self.max_lost_checks = max_lost_checks
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
            # queue lengths before the unacked hash: a message moves from a queue to the hash, so
            # one seen in neither after reading them in this order was in neither in between
            suspects = self._queued_suspects()
            if self.deliveries.redelivers_dead_consumers:
                # asking who holds what is a broadcast: only when a job may be lost
                taken = self.deliveries.held() if any(empty for _, _, empty in suspects) else []
            else:
                taken = self.deliveries.held()
                self._redispatch_unclaimed(report, taken)
            self._redispatch_lost(report, suspects, taken)
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

    def _redispatch_unclaimed(self, report: SweepReport, unacked: list[Delivery]) -> None:
        """Queued jobs whose message was taken over ``claim_grace`` ago and never claimed go out again;
        parked messages of jobs that moved on are dropped from the unacked hash."""
        assert self.deliveries is not None
        records = self.fleet.records
        ceiling = time.time() - self.claim_grace
        taken = [d for d in unacked if d.taken_at <= ceiling]
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

    def _queued_suspects(self) -> list[tuple[str, int, bool]]:
        """(job, dispatch, whether its queue is empty) of queued jobs waiting over ``lost_after``
        whose message no outbox entry will send; entries no longer queued leave the index."""
        assert self.deliveries is not None
        records = self.fleet.records
        ids = records.queued_unseen(self.lost_after, self.max_lost_checks)
        if not ids:
            return []
        default = self.fleet.settings.queue
        gone, checked, rows = [], [], []
        for job_id, (status, dispatch, queue, in_outbox) in zip(ids, records.queued_states(ids)):
            if status != "queued":
                gone.append(job_id)
                continue
            checked.append(job_id)
            if not in_outbox:
                rows.append((job_id, dispatch, queue or default))
        # looked at now: next time after the others (a backlog keeps its jobs, each looked at once a period)
        records.seen_queued(checked, gone)
        waiting = self.deliveries.waiting(sorted({queue for _, _, queue in rows}))
        return [(job_id, dispatch, waiting[queue] == 0) for job_id, dispatch, queue in rows]

    def _redispatch_lost(self, report: SweepReport, suspects: list[tuple[str, int, bool]], unacked: list[Delivery]) -> None:
        """Suspects whose queue is empty and whose dispatch no worker holds go out again (event ``redispatched``)."""
        held = {(d.job_id, d.dispatch) for d in unacked}
        for job_id, dispatch, queue_empty in suspects:
            if not queue_empty or (job_id, dispatch) in held or job_id in report.redispatched:
                continue
            new = self.fleet.records.redispatch(job_id, dispatch, "is in no queue and taken by no worker (lost by the broker)")
            if not new:
                continue
            log.warning("job %s: the message of dispatch %d is gone from the broker; sent as %d", job_id, dispatch, new)
            report.redispatched[job_id] = new
            if self.dispatcher.send(job_id):
                report.sent += 1
