"""Job records in Redis: where a job stands and every change of its status (``job_record.py`` says what a record holds).

A record is one hash (``Keys.job``). Its status changes only inside Lua scripts
(``store/lua``): ``create`` → queued; ``claim`` → running under a fenced lease;
``finish`` → completed / failed / paused / cancelled / queued again; ``recover``
(the sweep) → queued from the last checkpoint; ``control`` → pause, resume, cancel.
A message carries the job's *dispatch* number; a delivery whose number is older
than the record's is a stale duplicate and is dropped.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import msgpack
import redis

from .errors import ConfigError, NotFound
from .job_record import TERMINAL, Claim, Finished, FinishKind, JobRecord, Page, UsageRow, to_json
from .keys import Keys
from .store import contracts as c
from .store.base import Fence, owner_of
from .store.redis import Scripts, as_bytes, as_text, translated

# a status-filtered page reads at most this many records per record it may return
SCAN_FACTOR = 10


def _parse_cursor(cursor: str | None) -> tuple[int | str, int]:
    """(highest creation time to read, how many at exactly that time were returned already)."""
    if not cursor:
        return "+inf", 0
    score, _, skip = cursor.partition(":")
    try:
        return int(score), int(skip or 0)
    except ValueError:
        raise ConfigError(f"not a job list cursor: {cursor!r}") from None


class Records:
    """Reads and changes job records; takes a client, the key layout and the fleet's policy.

    ``max_stalls`` is how many attempts in a row may end without a new checkpoint
    before a job fails; ``grace`` is how long a published-but-unacknowledged
    outbox entry waits before the sweep sends it again. With ``celery_results``
    (Celery's result backend is this Redis) the scripts that end a job also write
    Celery's result of its submitter's task id, kept ``result_expires`` seconds.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        scripts: Scripts,
        *,
        max_stalls: int = 3,
        grace: float = 10.0,
        retention: float = 3 * 86400.0,
        max_retention: float = 30 * 86400.0,
        result_inline_bytes: int = 64 * 1024,
        celery_results: bool = True,
        result_expires: float = 86400.0,
    ) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.max_stalls = max_stalls
        self.grace_ms = int(grace * 1000)
        self.retain_ms = int(retention * 1000)
        self.max_retain_ms = int(max_retention * 1000)
        self.result_inline_bytes = result_inline_bytes
        self.celery_results = celery_results
        self.result_expires_ms = int(result_expires * 1000)

    def result_key(self, task_id: str) -> str | None:
        """Celery's result key of ``task_id`` when the scripts write it, else None."""
        return self.keys.celery_result(task_id) if self.celery_results and task_id else None

    def _ids_of(self, job_id: str) -> tuple[str, str]:
        """(extension id, submitter's task id) of a job, for the scripts' keys."""
        with translated(job_id):
            ext_id, task_id = self.client.hmget(self.keys.job(job_id), "ext_id", "task_id")
        return as_text(ext_id or b""), as_text(task_id or b"") or job_id

    # creating and reading ---------------------------------------------------------

    def create(self, job_id: str, **fields: Any) -> bool:
        """Create the record (status queued) unless it exists; True when it was created.

        Takes :meth:`create_call`'s keyword arguments.
        """
        return bool(self.scripts(self.create_call(job_id, **fields), job_id=job_id))

    def create_call(
        self,
        job_id: str,
        *,
        extension: str,
        digest: str,
        ext_id: str,
        ext_version: str,
        job: str,
        params: Any,
        tenant: str | None,
        queue: str | None,
        priority: int | None,
        limits: dict[str, Any] | None,
        dispatch: int,
        enqueue: bool,
        concurrent: int = 0,
        tenant_proof: str = "",
        task_id: str | None = None,
    ) -> c.Create:
        """The create script's call for a new record (the bench pipelines these to seed Redis).

        ``concurrent`` is the extension's fleet-wide concurrent_jobs (0 = unlimited);
        ``tenant_proof`` the hash of the submitter's tenant token (``tenants.py``).
        ``task_id`` the Celery task id the submitter holds (default: the job id).
        """
        fields: dict[str, Any] = {
            "extension": extension,
            "digest": digest,
            "ext_id": ext_id,
            "ext_version": ext_version,
            "job": job,
            "params": msgpack.packb(params, use_bin_type=True),
            "tenant": tenant or "",
            "queue": queue or "",
            "priority": "" if priority is None else int(priority),
            "limits": json.dumps(limits or {}),
            "concurrent": int(concurrent),
            "tenant_proof": tenant_proof,
            "task_id": task_id or job_id,
        }
        retention = (limits or {}).get("retention_seconds")
        if retention:
            fields["retain_ms"] = int(retention * 1000)  # the finish script's retention for this job
        k = self.keys
        return c.Create(
            job=k.job(job_id), jobs=k.jobs, outbox=k.outbox, queued=k.queued, events=k.events(job_id),
            job_id=job_id, dispatch=dispatch, enqueue=enqueue, grace_ms=self.grace_ms,
            fields=[item for pair in fields.items() for item in pair],
        )

    def get(self, job_id: str) -> JobRecord:
        with translated(job_id):
            raw = self.client.hgetall(self.keys.job(job_id))
        if not raw:
            raise NotFound(f"no job {job_id}")
        rec = JobRecord.from_hash(raw)
        if rec.result_bytes:
            with translated(job_id):
                text = self.client.get(self.keys.result(job_id))
            rec.result = json.loads(text) if text else None
        return rec

    def exists(self, job_id: str) -> bool:
        with translated(job_id):
            return bool(self.client.exists(self.keys.job(job_id)))

    def ids_with_prefix(self, prefix: str, limit: int = 2) -> list[str]:
        """Up to ``limit`` job ids that start with ``prefix`` (for ids typed short, as git
        takes them); scans the job index, so it is for people, not hot paths."""
        if not prefix or any(c in prefix for c in "*?[]\\"):
            return []
        found: list[str] = []
        with translated():
            for member, _ in self.client.zscan_iter(self.keys.jobs, match=f"{prefix}*", count=1000):
                found.append(as_text(member))
                if len(found) >= limit:
                    break
        return found

    def page(self, status: str | None = None, limit: int = 100, cursor: str | None = None) -> Page:
        """Up to ``limit`` jobs, newest first, starting after ``cursor`` (a previous page's).

        Walks the creation-time index from the cursor, never the whole keyspace: each call
        reads at most ``limit`` records, or ``SCAN_FACTOR`` times that when filtering by
        ``status``, so a filtered page may hold fewer and still have a next cursor.
        """
        limit = max(1, int(limit))
        budget = limit if status is None else limit * SCAN_FACTOR
        score, skip = _parse_cursor(cursor)
        out: list[JobRecord] = []
        while budget > 0:
            want = min(budget, 1000)
            with translated():
                ids: list[tuple[bytes, float]] = self.client.zrevrangebyscore(  # type: ignore[assignment]
                    self.keys.jobs, score, "-inf", start=skip, num=want, withscores=True
                )
                pipe = self.client.pipeline(transaction=False)
                for job_id, _ in ids:
                    pipe.hgetall(self.keys.job(as_text(job_id)))
                rows = pipe.execute() if ids else []
            for (job_id, raw_score), raw in zip(ids, rows):
                at = int(raw_score)
                score, skip = (score, skip + 1) if at == score else (at, 1)
                budget -= 1
                if raw:  # else expired, and the sweep has not pruned the index entry yet
                    rec = JobRecord.from_hash(raw)
                    if status is None or rec.status == status:
                        out.append(rec)
                        if len(out) >= limit:
                            return Page(out, f"{score}:{skip}")
            if len(ids) < want:
                return Page(out, None)
        return Page(out, f"{score}:{skip}")

    def recent(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """The first page of :meth:`page`: the newest ``limit`` jobs, optionally only those in ``status``."""
        return self.page(status, limit).records

    def logs(self, job_id: str, last: int = 200) -> list[dict[str, Any]]:
        with translated(job_id):
            lines = self.client.lrange(self.keys.logs(job_id), -last, -1)
        return [json.loads(line) for line in lines]

    def warnings(self, job_id: str) -> list[str]:
        with translated(job_id):
            return [as_text(w) for w in self.client.lrange(self.keys.warnings(job_id), 0, -1)]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        with translated(job_id):
            return [json.loads(e) for e in self.client.lrange(self.keys.events(job_id), 0, -1)]

    def watch_fields(self, job_id: str, worker_name: str) -> tuple[str, float, str, bool]:
        """(control, progress, message, worker stopping) in one round trip, for the interrupt watcher."""
        with translated(job_id):
            pipe = self.client.pipeline(transaction=False)
            pipe.hmget(self.keys.job(job_id), "control", "progress", "message")
            pipe.exists(self.keys.worker_stopping(worker_name))
            (control, progress, message), stopping = pipe.execute()
        return (
            as_text(control or b""),
            float(progress or 0),
            as_text(message or b""),
            bool(stopping),
        )

    # the lifecycle of a run ------------------------------------------------------------

    def claim(
        self, job_id: str, ext_id: str, owner: str, ttl: float, dispatch: int, wait: float,
        limits_noted: tuple[str, str] = ("", ""),
    ) -> Claim:
        """Take the job for one run if its status, dispatch number and concurrency allow.

        ``limits_noted``: (effective limits JSON, notes) to show in the record from the claim on,
        when the worker knows them already (saves a write per run); ("", "") leaves them.
        """
        call = self.claim_call(job_id, ext_id, owner, ttl, dispatch, wait, limits_noted)
        reply = self.scripts(call, job_id=job_id)
        what = as_text(reply[0])
        if what == "ok":
            flat = reply[4]
            record = JobRecord.from_hash(dict(zip(flat[::2], flat[1::2])))
            state = as_bytes(reply[5]) if len(reply) > 5 and reply[5] is not None else None
            return Claim(
                "ok", token=Fence(int(reply[1]), owner), checkpoints=int(reply[2]), attempts=int(reply[3]), record=record, state=state
            )
        return Claim(what, detail=as_text(reply[1]) if len(reply) > 1 else "")  # type: ignore[arg-type]

    def claim_call(
        self, job_id: str, ext_id: str, owner: str, ttl: float, dispatch: int, wait: float,
        limits_noted: tuple[str, str] = ("", ""),
    ) -> c.Claim:
        k = self.keys
        return c.Claim(
            job=k.job(job_id), lease=k.lease(job_id), active=k.active, outbox=k.outbox, queued=k.queued,
            ext_running=k.ext_running(ext_id), ext_waiting=k.ext_waiting(ext_id), events=k.events(job_id),
            state=k.state(job_id),
            owner=owner, ttl_ms=int(ttl * 1000), dispatch=dispatch, ext_id=ext_id, wait_ms=int(wait * 1000),
            job_id=job_id, effective_limits=limits_noted[0], limit_notes=limits_noted[1],
        )

    def finish(self, job_id: str, **fields: Any) -> Finished:
        """Write the end of a run, fenced by ``token`` (LeaseLost when it no longer holds the lease).

        Takes :meth:`finish_call`'s keyword arguments.
        """
        reply = self.scripts(self.finish_call(job_id, **fields), job_id=job_id)
        return Finished(as_text(reply[0]), int(reply[1]), as_text(reply[2]) or None, as_text(reply[3]))

    def finish_call(
        self,
        job_id: str,
        *,
        ext_id: str,
        tenant: str,
        token: int,
        kind: FinishKind,
        result: Any = None,
        error: str = "",
        delay: float = 0.0,
        fuel: int = 0,
        wall_seconds: float = 0.0,
        cpu_seconds: float = 0.0,
        peak_memory: int = 0,
        detail: str = "",
        task_id: str = "",
    ) -> c.Finish:
        """The finish script's call; ``task_id`` is the record's submitter task id (the job id when empty)."""
        k = self.keys
        return c.Finish(
            job=k.job(job_id), lease=k.lease(job_id), active=k.active, outbox=k.outbox, queued=k.queued,
            ext_running=k.ext_running(ext_id), ext_waiting=k.ext_waiting(ext_id), events=k.events(job_id),
            usage=k.usage(ext_id, tenant), usage_index=k.usage_index, **self._retired_keys(job_id),
            celery_result=self.result_key(task_id or job_id),
            token=token,
            owner=owner_of(token),
            kind=kind,
            result="" if result is None else to_json(result),
            inline_result_bytes=self.result_inline_bytes,
            error=error,
            delay_ms=int(delay * 1000),
            max_stalls=self.max_stalls,
            fuel=_counter(fuel),
            wall_seconds=repr(_seconds(wall_seconds)),
            cpu_seconds=repr(_seconds(cpu_seconds)),
            peak_memory=_counter(peak_memory),
            usage_member=f"{ext_id}|{tenant}",
            job_id=job_id,
            grace_ms=self.grace_ms,
            detail=detail,
            retain_ms=self.retain_ms,
            max_retain_ms=self.max_retain_ms,
            result_expires_ms=self.result_expires_ms,
        )

    def note_limits(self, job_id: str, effective: dict[str, Any], notes: list[str]) -> None:
        """Record the limits a run of the job really gets, and why any asked value was cut."""
        with translated(job_id):
            self.client.hset(
                self.keys.job(job_id), mapping={"effective_limits": json.dumps(effective), "limit_notes": "; ".join(notes)}
            )

    def reject(self, job_id: str, reason: str, *, fields: dict[str, str] | None = None) -> str:
        """Fail a job that cannot run as asked (a bad message or record), once, without a retry.

        A queued or paused job fails; a missing one is created failed (with ``fields``, for
        ``wasmjob status``); a running or finished one is left alone. Returns the status after.
        A WATCH transaction, not a script: it touches no lease and races only with itself.
        """
        k = self.keys
        key = k.job(job_id)
        with translated(job_id):
            with self.client.pipeline(transaction=True) as pipe:
                for _ in range(5):
                    try:
                        pipe.watch(key)
                        status, retain = (as_text(v or b"") for v in pipe.hmget(key, "status", "retain_ms"))
                        if status in ("running", *TERMINAL):
                            pipe.unwatch()
                            return status
                        now = int(time.time() * 1000)
                        pipe.multi()
                        if not status:
                            base: dict[str, str | int] = {"id": job_id, "dispatch": 0, "created_at": now, "attempts": 0}
                            base.update(fields or {})
                            pipe.hset(key, mapping=base)  # type: ignore[arg-type]
                            pipe.zadd(k.jobs, {job_id: now})
                        pipe.hset(key, mapping={"status": "failed", "error": reason, "finished_at": now, "updated_at": now})
                        pipe.hdel(key, "paused_at")
                        pipe.zrem(k.outbox, job_id)
                        pipe.zrem(k.queued, job_id)
                        pipe.rpush(k.events(job_id), json.dumps({"ts": now / 1000, "event": "failed", "error": reason}))
                        pipe.ltrim(k.events(job_id), -200, -1)
                        self._retire(pipe, job_id, now, int(retain) if retain.isdigit() else None)
                        pipe.execute()
                        return "failed"
                    except redis.WatchError:
                        continue
        return "queued"

    def recover(self, job_id: str) -> Finished | None:
        """Requeue a running job whose lease expired (the sweep); None when it is alive or not running."""
        k = self.keys
        ext_id, task_id = self._ids_of(job_id)
        call = c.Recover(
            job=k.job(job_id), lease=k.lease(job_id), active=k.active, outbox=k.outbox, queued=k.queued,
            ext_running=k.ext_running(ext_id), ext_waiting=k.ext_waiting(ext_id), events=k.events(job_id),
            **self._retired_keys(job_id), celery_result=self.result_key(task_id), max_stalls=self.max_stalls, job_id=job_id, grace_ms=self.grace_ms,
            retain_ms=self.retain_ms, max_retain_ms=self.max_retain_ms, result_expires_ms=self.result_expires_ms,
        )
        reply = self.scripts(call, job_id=job_id)
        if not reply:
            return None
        return Finished(as_text(reply[0]), int(reply[1]), as_text(reply[2]) or None)

    def redispatch(self, job_id: str, dispatch: int, why: str = "was taken by a worker that never started it") -> int:
        """Queue a job again whose message ``dispatch`` will not arrive (``why``: taken and never
        claimed, or gone from the broker); the new dispatch, or 0 when the job is no longer queued
        at ``dispatch``."""
        k = self.keys
        call = c.Redispatch(
            job=k.job(job_id), outbox=k.outbox, queued=k.queued, events=k.events(job_id), job_id=job_id, dispatch=dispatch,
            grace_ms=self.grace_ms, why=why,
        )
        return int(self.scripts(call, job_id=job_id) or 0)

    def queued_unseen(self, seconds: float, limit: int) -> list[str]:
        """Up to ``limit`` queued jobs, oldest first, that were queued (or last looked at by
        :meth:`seen_queued`) more than ``seconds`` ago: O(log n + limit), never a scan."""
        with translated():
            secs, micros = self.client.time()  # Redis's clock, the one the scripts score by
            ceiling = secs * 1000 + micros // 1000 - int(seconds * 1000)
            ids = self.client.zrangebyscore(self.keys.queued, "-inf", ceiling, start=0, num=limit)
        return [as_text(i) for i in ids]

    def queued_states(self, job_ids: list[str]) -> list[tuple[str, int, str, bool]]:
        """(status, dispatch, queue, whether an outbox entry will send it) of each job, in one round trip."""
        k = self.keys
        with translated():
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hmget(k.job(job_id), "status", "dispatch", "queue")
                pipe.zscore(k.outbox, job_id)
            rows = pipe.execute()
        return [
            (as_text(status or b""), int(dispatch) if dispatch is not None else -1, as_text(queue or b""), due is not None)
            for (status, dispatch, queue), due in zip(rows[::2], rows[1::2])
        ]

    def seen_queued(self, checked: list[str], gone: list[str]) -> None:
        """The sweep looked at ``checked`` (their message may still come: look again later, after
        the others) and found ``gone`` no longer queued (drop them from the index)."""
        if not checked and not gone:
            return
        with translated():
            secs, micros = self.client.time()
            now = secs * 1000 + micros // 1000
            pipe = self.client.pipeline(transaction=False)
            if checked:
                pipe.zadd(self.keys.queued, dict.fromkeys(checked, now), xx=True)
            if gone:
                pipe.zrem(self.keys.queued, *gone)
            pipe.execute()

    def dispatch_states(self, job_ids: list[str]) -> list[tuple[str, int]]:
        """(status, dispatch) of each job in one round trip; ("", -1) for a job without a record."""
        with translated():
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hmget(self.keys.job(job_id), "status", "dispatch")
            rows = pipe.execute()
        return [(as_text(status or b""), int(dispatch) if dispatch is not None else -1) for status, dispatch in rows]

    def control(self, job_id: str, action: Literal["pause", "resume", "cancel"]) -> tuple[str, int, bool]:
        """Apply pause/resume/cancel; returns (status, dispatch, whether a message must be sent now)."""
        k = self.keys
        ext_id, task_id = self._ids_of(job_id)
        call = c.Control(
            job=k.job(job_id), outbox=k.outbox, queued=k.queued, events=k.events(job_id), ext_waiting=k.ext_waiting(ext_id),
            **self._retired_keys(job_id), celery_result=self.result_key(task_id),
            action=action, job_id=job_id, grace_ms=self.grace_ms, retain_ms=self.retain_ms,
            max_retain_ms=self.max_retain_ms, result_expires_ms=self.result_expires_ms,
        )
        reply = self.scripts(call, job_id=job_id)
        return as_text(reply[0]), int(reply[1]), as_text(reply[2]) == "1"

    def _retired_keys(self, job_id: str) -> dict[str, str]:
        """The keys that expire with a finished job's record (see ``retire`` in _lib.lua)."""
        k = self.keys
        return {
            "state": k.state(job_id), "logs_key": k.logs(job_id), "warnings_key": k.warnings(job_id),
            "result_key": k.result(job_id), "expiring": k.expiring,
            "snapshot_a": k.snapshot_base(job_id, "a"), "snapshot_b": k.snapshot_base(job_id, "b"),
        }

    def _retire(self, pipe: Any, job_id: str, now: int, retain_ms: int | None) -> None:
        """In a transaction, what ``retire`` in _lib.lua does: the job's keys expire together."""
        at = now + max(1000, min(retain_ms or self.retain_ms, self.max_retain_ms))
        pipe.hset(self.keys.job(job_id), "expires_at", at)
        keys = self._retired_keys(job_id)
        for key in (self.keys.job(job_id), self.keys.events(job_id), *(v for n, v in keys.items() if n != "expiring")):
            pipe.pexpireat(key, at)
        pipe.zadd(keys["expiring"], {job_id: at})

    def prune_expired(self, max_entries: int = 1000) -> int:
        """Drop finished jobs whose keys expired from the jobs index (the sweep calls it each round).

        Reads only the due part of the expiring index, so a round costs O(jobs that expired since
        the last one), not O(all jobs). A job id whose record exists again (created anew under the
        same id) keeps its place. Returns how many entries were pruned.
        """
        k = self.keys
        with translated():
            seconds, micros = self.client.time()  # Redis's clock, the one the scripts expire keys by
            due = self.client.zrangebyscore(k.expiring, "-inf", seconds * 1000 + micros // 1000, start=0, num=max_entries)
            if not due:
                return 0
            ids = [as_text(i) for i in due]
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.exists(k.job(job_id))
            alive = pipe.execute()
            gone = [job_id for job_id, exists in zip(ids, alive) if not exists]
            pipe = self.client.pipeline(transaction=True)
            if gone:
                pipe.zrem(k.jobs, *gone)
            pipe.zrem(k.expiring, *ids)
            pipe.execute()
        return len(gone)

    def active_ids(self) -> list[str]:
        with translated():
            return [as_text(m) for m in self.client.smembers(self.keys.active)]

    def leases_alive(self, job_ids: list[str]) -> list[bool]:
        with translated():
            pipe = self.client.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.exists(self.keys.lease(job_id))
            return [bool(x) for x in pipe.execute()]

    # the outbox: messages still to be sent -----------------------------------------------

    def outbox_take(self, max_entries: int = 100) -> list[str]:
        reply = self.scripts(c.OutboxTake(outbox=self.keys.outbox, grace_ms=self.grace_ms, max_entries=max_entries))
        return [as_text(r) for r in reply]

    def outbox_ack(self, job_id: str, dispatch: int) -> None:
        call = c.OutboxAck(outbox=self.keys.outbox, job=self.keys.job(job_id), job_id=job_id, dispatch=dispatch)
        self.scripts(call, job_id=job_id)

    # usage ---------------------------------------------------------------------------

    def add_abandoned_usage(
        self, ext_id: str, tenant: str, fuel: int, wall_seconds: float, cpu_seconds: float = 0.0
    ) -> None:
        """Bill a run whose lease was lost: its job state is not touched, only the usage ledger."""
        key = self.keys.usage(ext_id, tenant)
        with translated():
            pipe = self.client.pipeline(transaction=True)
            pipe.sadd(self.keys.usage_index, f"{ext_id}|{tenant}")
            pipe.hincrby(key, "runs", 1)
            pipe.hincrby(key, "abandoned", 1)
            pipe.hincrby(key, "fuel", _counter(fuel))
            pipe.hincrbyfloat(key, "wall_seconds", _seconds(wall_seconds))
            pipe.hincrbyfloat(key, "cpu_seconds", _seconds(cpu_seconds))
            pipe.execute()

    def usage(self) -> list[UsageRow]:
        with translated():
            members = sorted(as_text(m) for m in self.client.smembers(self.keys.usage_index))
            pipe = self.client.pipeline(transaction=False)
            for member in members:
                ext_id, _, tenant = member.partition("|")
                pipe.hgetall(self.keys.usage(ext_id, tenant))
            rows = pipe.execute()
        out = []
        for member, raw in zip(members, rows):
            ext_id, _, tenant = member.partition("|")
            h = {as_text(k): as_text(v) for k, v in raw.items()}
            out.append(
                UsageRow(
                    extension=ext_id,
                    tenant=tenant,
                    runs=int(h.get("runs", 0)),
                    fuel=int(h.get("fuel", 0)),
                    wall_seconds=float(h.get("wall_seconds", 0)),
                    cpu_seconds=float(h.get("cpu_seconds", 0)),
                    completed=int(h.get("completed", 0)),
                    failed=int(h.get("failed", 0)),
                    cancelled=int(h.get("cancelled", 0)),
                    abandoned=int(h.get("abandoned", 0)),
                )
            )
        return out


MAX_COUNTER = 2**53 - 1  # what one run may add to a counter: exact in Lua, far from HINCRBY's 2**63


def _counter(value: Any) -> int:
    """A usage amount safe to HINCRBY: an int in [0, 2**53)."""
    return max(0, min(int(value), MAX_COUNTER))


def _seconds(value: Any) -> float:
    seconds = float(value)
    return seconds if 0 <= seconds < 1e9 else 0.0
