"""One delivery of ``wasmjob.run``: claim the job, run it under a lease, record how it ended.

The steps, each small:
  record  – the job's record (created from the message when a plain Celery client sent it)
  claim   – status, dispatch and concurrency checks, then a fenced lease (or skip / wait)
  run     – lease keeper + interrupt watcher around ``Runtime.run``
  verdict – what the outcome means: completed, failed, interrupted, or retry (with a delay)
  finish  – one fenced write of the verdict; then the next message (continuation, waiter)
A run whose lease was lost writes nothing: its finish is refused by Redis.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    LeaseLost,
    ManifestError,
    ModuleError,
    NotFound,
    StoreUnavailable,
    UnknownJob,
)
from ..job import DEFAULT_LIBRARY_ID, InterruptFlag, JobSpec, Limits, Outcome, Status, Usage, needs_fuel
from ..leases import LeaseKeeper
from ..manifest import Manifest
from ..job_record import TERMINAL, Claim, FinishKind, JobRecord
from ..store.base import ProgressUpdate
from ..store.redis import RedisStore
from ..tenants import authenticated, proof_of
from .dispatch import Dispatcher
from .interrupts import InterruptWatcher, ProgressCallback
from .limits import backoff, limits_summary, run_limits, wait_seconds
from .messages import JobMessage
from .process import WorkerProcess
from .results import store_outcome

log = logging.getLogger(__name__)
RESULT_IN_SUMMARY_BYTES = 4096


@dataclass(frozen=True)
class Verdict:
    """How a run ended, as the finish script needs it."""

    kind: FinishKind
    result: Any = None
    error: str = ""
    delay: float = 0.0
    detail: str = ""
    usage: Usage = field(default_factory=Usage)


def verdict_for(outcome: Outcome, attempt: int) -> Verdict:
    """Completed → result; interrupted → paused/cancelled/continued (decided in Redis);
    timed out or infrastructure → retry from the last checkpoint; anything else → failed.
    The kind is ``Outcome.next_step``, which local runs follow too."""
    usage = outcome.usage
    step = outcome.next_step
    if step == "completed":
        return Verdict("completed", result=outcome.result, usage=usage)
    if step == "interrupted":
        reason = outcome.interrupt.value if outcome.interrupt else "interrupt"
        return Verdict("interrupted", detail=reason, usage=usage)
    reason = outcome.reason or "failed"
    if step == "retry":
        delay = 0.0 if outcome.failure == "timeout" else backoff(attempt)
        return Verdict("retry", error=reason, delay=delay, detail=reason, usage=usage)
    return Verdict("failed", error=reason, usage=usage)


class JobExecution:
    """Runs one delivered message; takes the process state, the message, the worker's name,
    the dispatcher for follow-up messages, the queue it came from and a progress callback."""

    def __init__(
        self,
        proc: WorkerProcess,
        msg: JobMessage,
        worker_name: str,
        dispatcher: Dispatcher,
        *,
        queue: str | None = None,
        on_progress: ProgressCallback | None = None,
        task_id: str | None = None,
    ) -> None:
        self.proc = proc
        self.fleet = proc.fleet
        self.settings = proc.settings
        self.msg = msg
        self.worker_name = worker_name
        self.dispatcher = dispatcher
        self.queue = queue
        self.on_progress = on_progress
        self.job_id = msg.job_id
        self.task_id = task_id or msg.task_id  # the Celery task id of this delivery
        self.refused_writes = 0  # this run's writes Redis refused (its lease was gone)

    def run(self) -> dict[str, Any]:
        try:
            return self._deliver()
        finally:
            # cache hits, compiles and refused writes of this process, when they grew (fleet/metrics.py)
            self.proc.flush_metrics(self.refused_writes)

    def _deliver(self) -> dict[str, Any]:
        claim = self._claim()
        if claim.outcome == "wait":
            log.info("job %s waits for a free slot of its extension", self.job_id)
            return self._summary("waiting")
        if claim.outcome != "ok" or claim.record is None:
            log.info("job %s: delivery %d dropped (%s %s)", self.job_id, self.msg.dispatch, claim.outcome, claim.detail)
            return self._summary("skipped", detail=f"{claim.outcome}: {claim.detail}")
        rec = claim.record
        if not authenticated(self.settings.tenant_secret, rec.tenant, rec.tenant_proof):
            tenant = rec.tenant or DEFAULT_LIBRARY_ID
            return self._finish(rec, claim, Verdict("failed", error=(
                f"tenant {tenant} is not authenticated: submit with its token (tenant_token;"
                " the operator prints it with `wasmjob tenants token TENANT`)")))
        if not rec.digest:
            return self._finish(rec, claim, Verdict("failed", error=f"no extension {rec.extension!r} is registered"))
        try:
            manifest = self.proc.manifest(rec.ext_id, rec.ext_version)
        except (NotFound, ManifestError) as exc:
            return self._finish(rec, claim, Verdict("failed", error=exc.reason))
        except StoreUnavailable as exc:
            return self._finish(rec, claim, Verdict("retry", error=exc.reason, delay=backoff(claim.attempts)))
        return self._finish(rec, claim, self._run(rec, manifest, claim))

    # steps ---------------------------------------------------------------------------

    def _claim(self) -> Claim:
        """Claim the job; a message from a plain Celery client first creates its record."""
        records, msg = self.fleet.records, self.msg
        ext_id = ext_id_of(msg.extension)
        if ext_id is None:  # named by digest: the record (or the registry) knows the extension
            try:
                ext_id = records.get(self.job_id).ext_id
            except NotFound:
                ext_id = self._create_record()
        claim = self._claim_as(ext_id)
        # a message of a later dispatch whose record is gone belongs to a job that finished and expired
        if claim.outcome == "skip" and claim.detail == "missing" and self.msg.dispatch <= 1:
            claim = self._claim_as(self._create_record())
        if claim.outcome == "ext":
            claim = self._claim_as(claim.detail)
        return claim

    def _claim_as(self, ext_id: str) -> Claim:
        claim = self.fleet.records.claim(
            self.job_id, ext_id, self.proc.owner(self.worker_name), self.settings.lease_ttl, self.msg.dispatch,
            wait_seconds(), self.proc.limits_noted.get(self._limits_key, ("", "")),
        )
        if claim.outcome == "ok" and not self.fleet.store.replicated():
            # the fencing token is on the master alone: a failover right now could issue it again
            log.warning("job %s: its claim did not reach the replicas in time", self.job_id)
        return claim

    @property
    def _limits_key(self) -> str:
        """What a run's effective limits depend on besides the fleet's settings: the release and the asked limits."""
        return f"{self.msg.extension}|{json.dumps(self.msg.limits, sort_keys=True)}"

    def _create_record(self) -> str:
        """Create the record a plain Celery message implies; returns its extension id."""
        msg = self.msg
        try:
            ref = self.fleet.registry.resolve(msg.extension)
            digest, ext_id, version, concurrent = ref.digest, ref.id, ref.version, ref.concurrent_jobs
        except NotFound as exc:
            log.warning("job %s names an unknown extension: %s", self.job_id, exc.reason)
            digest, ext_id, version, concurrent = "", msg.extension.split("@")[0], "", 0
        created = self.fleet.records.create(
            self.job_id,
            extension=msg.extension,
            digest=digest,
            ext_id=ext_id,
            ext_version=version,
            job=msg.job,
            params=msg.params,
            tenant=msg.tenant,
            queue=self.queue,
            priority=None,
            limits=msg.limits,
            dispatch=msg.dispatch,
            enqueue=False,
            concurrent=concurrent,
            tenant_proof=proof_of(msg.tenant_token),
            task_id=self.task_id,  # a plain client holds its own task id
        )
        if created:
            log.info("job %s: record created from a message (%s %s)", self.job_id, msg.extension, msg.job)
        return ext_id

    def _run(self, rec: JobRecord, manifest: Manifest, claim: Claim) -> Verdict:
        limits, notes, manifest = self._limits_of(manifest, rec.limits)
        self._note_limits(rec, limits, notes)
        flag = InterruptFlag()
        keeper = LeaseKeeper(
            self.fleet.store,
            rec.id,
            claim.token,
            self.settings.lease_ttl,
            ext_id=rec.ext_id,
            interrupts=flag,
            alive=self.proc.parent_alive,
        )
        watcher = InterruptWatcher(self.fleet.records, rec.id, flag, self.worker_name, on_progress=self.on_progress)
        self.proc.headroom.refresh()  # at most once per interval; the supervisor keeps it fresh
        # the lease is kept from here on: a slow (bounded) compile does not let it expire
        with self.proc.supervisor.watching(keeper, watcher, self.proc.headroom):
            try:
                ext = self.proc.extension(
                    rec.digest, manifest, metered=needs_fuel(limits, billing=self.settings.fuel_billing)
                )
            except (ModuleError, ManifestError, NotFound) as exc:
                return Verdict("failed", error=exc.reason)
            except StoreUnavailable as exc:
                return Verdict("retry", error=exc.reason, delay=backoff(claim.attempts), detail=exc.reason)
            if rec.job not in ext.jobs:
                known = ", ".join(sorted(ext.jobs)) or "none"
                reason = UnknownJob(f"extension {ext.id} has no job {rec.job!r} (jobs: {known})").reason
                return Verdict("failed", error=reason)
            spec = JobSpec(
                job_name=rec.job, params=rec.params, job_id=rec.id, library_id=rec.tenant or DEFAULT_LIBRARY_ID
            )
            store = PrefetchedStore(self.fleet.store, rec.id, claim.state)
            log.info(
                "job %s: running %s/%s (attempt %d, from checkpoint %d, token %d)",
                rec.id, rec.ext_id, rec.job, claim.attempts, claim.checkpoints, claim.token,
                extra=self._fields(rec, attempt=claim.attempts),
            )
            try:
                outcome = self.proc.runtime.run(ext, spec, store, claim.token, flag, limits)
            except Exception as exc:  # a bug outside the guest: retry elsewhere rather than lose the job
                log.exception("job %s: internal error while running", rec.id)
                error = f"internal error: {type(exc).__name__}: {exc}"
                return Verdict("retry", error=error, delay=backoff(claim.attempts))
            finally:
                self.refused_writes += store.refused
        if keeper.lost and outcome.status is not Status.COMPLETED:
            log.warning("job %s: %s", rec.id, keeper.lost_reason)
        return verdict_for(outcome, claim.attempts)

    def _limits_of(self, manifest: Manifest, asked: dict[str, Any]) -> tuple[Limits, list[str], Manifest]:
        """The run's limits and notes, and the manifest clamped to the policy (registered under another
        policy, maybe); the same for every run of a release asking the same, so kept per process."""
        key: tuple[Manifest, str] | None = (manifest, json.dumps(asked, sort_keys=True))
        try:
            cached = self.proc.run_limits.get(key)  # type: ignore[arg-type]
        except TypeError:  # a manifest that cannot hash: compute every time
            cached, key = None, None
        if cached is None:
            policy = self.fleet.policy
            limits, notes = run_limits(manifest, asked, self.settings, policy)
            cached = (limits, notes, policy.clamp_manifest(manifest))
            if key is not None:
                self.proc.run_limits[key] = cached
        return cached[0], list(cached[1]), cached[2]

    def _note_limits(self, rec: JobRecord, limits: Limits, notes: list[str]) -> None:
        """Show the run's effective limits in the record (written when they change, not per run)."""
        effective = limits_summary(limits)
        noted = (json.dumps(effective), "; ".join(notes))
        self.proc.limits_noted[self._limits_key] = noted  # the next claim of such a job writes them itself
        if rec.effective_limits == effective and rec.limit_notes == noted[1]:
            return
        try:
            self.fleet.records.note_limits(rec.id, effective, notes)
        except StoreUnavailable as exc:
            log.warning("job %s: cannot record its effective limits: %s", rec.id, exc.reason)

    def _finish(self, rec: JobRecord, claim: Claim, verdict: Verdict) -> dict[str, Any]:
        tenant = rec.tenant or DEFAULT_LIBRARY_ID
        try:
            done = self.fleet.records.finish(
                rec.id,
                ext_id=rec.ext_id,
                tenant=tenant,
                token=claim.token,
                kind=verdict.kind,
                result=verdict.result,
                error=verdict.error,
                delay=verdict.delay,
                fuel=verdict.usage.fuel,
                wall_seconds=verdict.usage.wall_seconds,
                cpu_seconds=verdict.usage.cpu_seconds,
                peak_memory=verdict.usage.peak_memory_bytes,
                detail=verdict.detail or verdict.error,
                task_id=rec.task_id,
            )
        except LeaseLost:
            self.refused_writes += 1
            log.warning("job %s: this run lost its lease; another worker owns the job, nothing recorded", rec.id)
            self._bill_abandoned(rec, tenant, verdict)
            return self._summary("abandoned", detail="lease lost")
        except StoreUnavailable as exc:
            log.warning("job %s: cannot record the end of the run (%s); the sweep will resume it", rec.id, exc.reason)
            return self._summary("unrecorded", detail=exc.reason)
        log.info(
            "job %s: %s -> %s%s", rec.id, verdict.kind, done.status, f" ({verdict.error})" if verdict.error else "",
            extra=self._fields(
                rec, attempt=claim.attempts, outcome=done.status, fuel=verdict.usage.fuel,
                wall_seconds=round(verdict.usage.wall_seconds, 6), error=done.error or verdict.error or None,
            ),
        )
        if done.status == "queued" and verdict.delay == 0:
            self.dispatcher.send(rec.id, parent_id=self.task_id)
        if done.woken:
            self.dispatcher.send(done.woken)
        result = verdict.result if done.status == "completed" else None
        if done.status in TERMINAL and not self.fleet.records.celery_results:
            store_outcome(self.dispatcher.app, rec.task_id or rec.id, rec.id, done.status, result, done.error)
        return self._summary(done.status, result=result, error=done.error or verdict.error or None)

    def _fields(self, rec: JobRecord, **more: Any) -> dict[str, Any]:
        """The fields a JSON log line about this run carries (fleet/logformat.py)."""
        return {
            "job_id": rec.id, "extension": rec.ext_id, "job": rec.job, "dispatch": self.msg.dispatch,
            "task_id": self.task_id, **more,
        }

    def _bill_abandoned(self, rec: JobRecord, tenant: str, verdict: Verdict) -> None:
        try:
            self.fleet.records.add_abandoned_usage(
                rec.ext_id, tenant, verdict.usage.fuel, verdict.usage.wall_seconds, verdict.usage.cpu_seconds
            )
        except StoreUnavailable:
            pass

    def _summary(self, status: str, *, result: Any = None, error: str | None = None, detail: str = "") -> dict[str, Any]:
        """The Celery task's return value: small, readable in Flower; the record has the rest."""
        out: dict[str, Any] = {"job_id": self.job_id, "dispatch": self.msg.dispatch, "status": status}
        if result is not None:
            from ..job_record import to_json

            text = to_json(result)
            small = len(text) <= RESULT_IN_SUMMARY_BYTES
            out["result"] = json.loads(text) if small else f"<{len(text)} bytes: see the job record>"
        if error:
            out["error"] = error
        if detail:
            out["detail"] = detail
        return out


def ext_id_of(extension: str) -> str | None:
    """The extension id in a message's ``id`` / ``id@version``; None for ``sha256:<hex>``."""
    return None if extension.startswith("sha256:") else extension.split("@", 1)[0]


class PrefetchedStore:
    """The Redis store, except that the first ``load_checkpoint`` of the claimed job is
    answered with the state the claim already returned (one round trip fewer per run)."""

    def __init__(self, store: RedisStore, job_id: str, state: bytes | None) -> None:
        self.store = store
        self._job_id = job_id
        self._state: bytes | None = state
        self._fresh = True
        self.refused = 0  # checkpoint and progress writes refused for a stale lease

    def acquire(self, job_id: str, owner: str, ttl: float) -> int:
        return self.store.acquire(job_id, owner, ttl)

    def renew(self, job_id: str, token: int, ttl: float) -> bool:
        return self.store.renew(job_id, token, ttl)

    def release(self, job_id: str, token: int) -> None:
        self.store.release(job_id, token)

    def load_checkpoint(self, job_id: str) -> bytes | None:
        if self._fresh and job_id == self._job_id:
            self._fresh = False
            return self._state
        return self.store.load_checkpoint(job_id)

    def save_checkpoint(self, job_id: str, token: int, state: bytes, update: ProgressUpdate | None = None) -> None:
        try:
            self.store.save_checkpoint(job_id, token, state, update)
        except LeaseLost:
            self.refused += 1
            raise

    def record_progress(self, job_id: str, token: int, update: ProgressUpdate) -> None:
        try:
            self.store.record_progress(job_id, token, update)
        except LeaseLost:
            self.refused += 1
            raise

    def save_snapshot_base(self, job_id: str, token: int, slot: str, data: bytes) -> None:
        self.store.save_snapshot_base(job_id, token, slot, data)

    def load_snapshot_base(self, job_id: str, slot: str) -> bytes | None:
        return self.store.load_snapshot_base(job_id, slot)

    def kv_get(self, namespace: str, key: str) -> str | None:
        return self.store.kv_get(namespace, key)

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        self.store.kv_set(namespace, key, value)
