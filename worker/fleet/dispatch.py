"""Publishing a queued job's next message, built from its record (the outbox's sender)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kombu.exceptions import EncodeError, OperationalError

from ..errors import ConfigError, NotFound, StoreUnavailable
from ..job_record import JobRecord
from .context import Fleet
from ..validate import check_limits, check_params
from .messages import TASK_NAME, JobMessage

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
MAX_PRIORITY = 9


class Dispatcher:
    """Sends ``wasmjob.run`` for jobs whose record says queued; takes the Celery app and the Fleet.

    Every state change that queues a job again also puts it in the outbox; this
    sends the message and then acknowledges the entry, so a crash in between only
    delays the message until the sweep sends it. A first message is published
    before its record exists (see ``Client.submit``) and needs no outbox entry.
    """

    def __init__(self, app: Celery, fleet: Fleet) -> None:
        self.app = app
        self.fleet = fleet

    def send(self, job_id: str, *, parent_id: str | None = None) -> bool:
        """Publish the job's current dispatch if it is queued; True when a message went out."""
        try:
            rec = self.fleet.records.get(job_id)
        except NotFound:
            return False
        except (ValueError, TypeError, KeyError) as exc:  # a record that cannot be decoded
            self.fleet.records.reject(job_id, f"its record cannot be read: {type(exc).__name__}: {exc}")
            return False
        return self.publish(rec, parent_id=parent_id)

    def publish(
        self,
        rec: JobRecord,
        *,
        ack: bool = True,
        tenant_token: str | None = None,
        task_id: str | None = None,
        parent_id: str | None = None,
    ) -> bool:
        """Publish the message of ``rec``'s current dispatch; ``ack`` clears its outbox entry.
        ``tenant_token`` goes with a first message, for a worker that creates the record.

        The task id is ``task_id`` (a first message: the id the submitter holds) or
        ``<job_id>.<dispatch>``. Every message names the submitter's task as its root and
        ``parent_id`` (default: the root) as its parent, so Flower links a job's slices, and
        carries the job's name (``extension/job``) as Celery's shadow name for logs and Flower.
        """
        records, job_id = self.fleet.records, rec.id
        if rec.status != "queued":
            records.outbox_ack(job_id, rec.dispatch)
            return False
        try:
            msg = self._message(rec, tenant_token)
        except ConfigError as exc:
            return self._poison(rec, exc.reason)
        shown = JobMessage(rec.id, rec.extension or rec.digest, rec.job, rec.params, rec.tenant, rec.limits, rec.dispatch)
        options: dict[str, object] = {}
        if rec.priority is not None:
            # ours: 0..9, higher runs first, as in RabbitMQ; the Redis transport consumes lower numbers
            # first, in its default steps 0, 3, 6, 9 (so a plain Celery client's priorities land in the same queues)
            priority = max(0, min(MAX_PRIORITY, rec.priority))
            options["priority"] = MAX_PRIORITY - priority if self.fleet.settings.broker_is_redis else priority
        root = rec.task_id or rec.id
        try:
            self.app.send_task(
                TASK_NAME,
                kwargs=msg.to_kwargs(),
                task_id=task_id or msg.task_id,
                root_id=root,
                parent_id=parent_id or root,
                shadow=f"{rec.ext_id or rec.extension}/{rec.job}",
                queue=rec.queue or self.fleet.settings.queue,
                argsrepr=shown.argsrepr(),
                kwargsrepr=shown.kwargsrepr(),
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
                # compact, and carries any params a record holds; the fleet's default (json) is for
                # replies a plain Celery client must read
                serializer="msgpack",
                **options,
            )
        except (OperationalError, OSError) as exc:
            log.warning("job %s: cannot publish its message yet (the sweep will): %s", job_id, exc)
            return False
        except (EncodeError, ValueError, TypeError, OverflowError) as exc:
            return self._poison(rec, f"its message cannot be encoded: {type(exc).__name__}: {exc}")
        if not ack:
            return True
        try:
            records.outbox_ack(job_id, rec.dispatch)
        except StoreUnavailable as exc:
            log.warning("job %s: sent, but the outbox entry stays until the sweep: %s", job_id, exc.reason)
        return True

    def _message(self, rec: JobRecord, tenant_token: str | None) -> JobMessage:
        """The message of ``rec``'s current dispatch, its limits and params checked as a worker would."""
        check_limits(rec.limits, job_id=rec.id)
        if rec.dispatch <= 1:
            check_params(rec.params, self.fleet.policy.max_params_bytes, job_id=rec.id)
        return JobMessage(
            job_id=rec.id,
            # the release, so the worker knows the extension's keys before it reads the record
            extension=f"{rec.ext_id}@{rec.ext_version}" if rec.ext_id and rec.ext_version else rec.digest or rec.extension,
            job=rec.job,
            # the first message carries the params: a worker may create the record from it
            params=rec.params if rec.dispatch <= 1 else None,
            tenant=rec.tenant,
            limits=rec.limits,
            dispatch=rec.dispatch,
            tenant_token=tenant_token,
        )

    def _poison(self, rec: JobRecord, reason: str) -> bool:
        """A record whose message cannot be built or encoded fails once and leaves the outbox."""
        log.error("job %s: failed without running: %s", rec.id, reason)
        try:
            self.fleet.records.reject(rec.id, reason)
        except StoreUnavailable as exc:
            log.warning("job %s: cannot record its failure yet: %s", rec.id, exc.reason)
        return False
