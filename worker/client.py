"""The producer API: register extensions, submit jobs, and follow them through a handle.

    from wasmjob.client import Client

    client = Client("redis://127.0.0.1:6379/0")
    client.add_extension("extensions/counter")
    job = client.submit("counter", "counter", {"target": 100})
    record = job.wait(timeout=60, on_progress=lambda r: print(r.progress))
    print(job.result())

Importing this module starts nothing and connects nowhere; the first call does.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wasmjob.broker_config import Settings

from .errors import (
    ConfigError,
    InvalidTransition,
    JobFailed,
    JobTimeout,
    ManifestError,
    ModuleRefused,
    NotFound,
    PermissionDenied,
    PublishRefused,
    StoreUnavailable,
    UnknownJob,
)
from .manifest import MANIFEST_NAME, Manifest, find_manifest
from .publishers import PublisherKey, Signature, load_or_create
from .job_record import STATUSES, JobRecord, Page, UsageRow
from .registry import ExtensionRef
from .tenants import TOKEN_ENV, proof_of
from .validate import check_limits, check_params

if TYPE_CHECKING:
    from .policy import Policy

log = logging.getLogger(__name__)

ProgressHandler = Callable[[JobRecord], None]
PUBLISH_TIMEOUT = 120.0


class Client:
    """A connection to a wasmjob fleet; takes a Redis URL (else ``WASMJOB_REDIS_URL``) or Settings."""

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None) -> None:
        from .fleet.context import Fleet

        self.settings = settings or Settings.from_env(redis_url=redis_url)
        self.fleet = Fleet(self.settings)
        self._app: Any = None
        self._refs: dict[str, tuple[float, ExtensionRef]] = {}

    @property
    def app(self) -> Any:
        """The Celery app messages are sent with (made on first use, not set as current)."""
        if self._app is None:
            from .fleet.factory import create_app

            self._app = create_app(self.settings)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()
        self.fleet.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # extensions ----------------------------------------------------------------------

    def add_extension(self, path: str | Path, *, key: PublisherKey | str | Path | None = None) -> ExtensionRef:
        """Validate, sign and upload a module: a directory with manifest.json, or a .wasm file.

        ``key`` is the publisher key (a PublisherKey or a PEM file); by default the one at
        ``WASMJOB_PUBLISHER_KEY`` or in the user's config directory, made on first use.
        """
        p = Path(path)
        if p.is_dir():
            manifest = Manifest.from_file(p / MANIFEST_NAME)
            p = p / (manifest.wasm_file or f"{manifest.id}.wasm")
        else:
            manifest = find_manifest(p)
        try:
            wasm = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read module {p}: {exc.strerror}") from None
        return self.add_module(wasm, manifest, key=key)

    def add_module(
        self, wasm: bytes, manifest: Manifest, *, key: PublisherKey | str | Path | None = None
    ) -> ExtensionRef:
        """Validate ``wasm`` against the fleet's operator policy (manifest, size and counts), compile
        it, check the ABI, collect its jobs, sign it and upload it."""
        from .wasmbin import digest_of
        from .runtime import Runtime, RuntimeConfig
        from .component.format import is_component
        from .snapshot.instrument import load_for_registry

        policy, note = self.publishing_policy()
        if note:
            log.info("%s", note)
        try:
            policy.check_manifest(manifest)
            policy.check_module(wasm)
        except (ManifestError, ModuleRefused) as exc:
            whose = "this environment's policy" if note else "the policy the fleet's workers published"
            raise type(exc)(f"{exc.reason} (checked against {whose})") from None
        publisher = key if isinstance(key, PublisherKey) else load_or_create(key)
        # A component compiles for seconds: it goes through the signed cache workers on this
        # machine use, on the engine they run it on (no fuel), so it compiles once here.
        component = is_component(wasm)
        runtime = Runtime(RuntimeConfig(cache_dir=self._worker_cache_dir() if component else None))
        try:
            if component:
                ext, instrumented = runtime.load(wasm, manifest, metered=False), None
            else:
                ext, instrumented = load_for_registry(runtime, wasm, manifest)
        finally:
            runtime.close()
        signature = Signature.make(publisher, manifest.id, manifest.version, digest_of(wasm), manifest.to_dict())
        try:
            return self.fleet.registry.add(
                wasm, manifest, list(ext.jobs), signature=signature, instrumented=instrumented
            )
        except PermissionDenied:
            return self._publish_through_worker(wasm, manifest, signature)

    def publishing_policy(self) -> tuple[Policy, str]:
        """The policy a release is checked against before upload: the one the fleet's workers
        published, else (with a note saying so) the one of this process's environment."""
        try:
            published = self.fleet.published_policy()
        except PermissionDenied:  # a producer ACL user made before workers published their policy
            why = f"these Redis credentials may not read {self.fleet.keys.policy} (`wasmjob acl` grants it)"
        else:
            if published is not None:
                return published.policy, ""
            why = "no worker has published the fleet's policy yet"
        return self.fleet.policy, (
            f"{why}: checked against this environment's policy (WASMJOB_* variables); "
            "workers still refuse what their policy does not allow"
        )

    def _worker_cache_dir(self) -> Path:
        from .cache import default_cache_dir

        return Path(self.settings.cache_dir).expanduser() if self.settings.cache_dir else default_cache_dir()

    def _publish_through_worker(self, wasm: bytes, manifest: Manifest, signature: Signature) -> ExtensionRef:
        """With producer credentials: upload the signed release and let a worker verify and register it."""
        from .fleet.publish import PUBLISH_TASK, upload
        from .registry import ExtensionRef

        upload_id = upload(self.fleet, wasm, manifest, signature)
        result = self.app.send_task(PUBLISH_TASK, kwargs={"upload": upload_id}, queue=self.settings.queue)
        try:
            value = result.get(timeout=PUBLISH_TIMEOUT, propagate=False)
        except Exception as exc:  # celery's TimeoutError and backend errors
            raise JobTimeout(f"no worker registered {manifest.id}@{manifest.version} within {PUBLISH_TIMEOUT:g}s"
                             f" (is a worker running?): {exc}") from None
        if not result.successful():
            raise PublishRefused(str(value))
        value.pop("publisher", None)
        return ExtensionRef(**{**value, "jobs": tuple(value["jobs"]), "publisher": signature.public})

    def extensions(self) -> list[ExtensionRef]:
        return self.fleet.registry.entries()

    # jobs ----------------------------------------------------------------------------

    def submit(
        self,
        extension: str,
        job: str,
        params: Any = None,
        *,
        tenant: str | None = None,
        limits: dict[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        job_id: str | None = None,
        tenant_token: str | None = None,
    ) -> JobHandle:
        """Queue a job of a registered extension (``id``, ``id@version`` or ``sha256:<hex>``).

        ``tenant`` is the library id the job runs for (a UUID); ``limits`` may set fuel,
        timeout_seconds, slice_seconds, max_memory_mb, max_checkpoint_bytes; ``priority``
        is 0..9, higher first. ``tenant_token`` proves the tenant where the operator asks for
        it (default: ``$WASMJOB_TENANT_TOKEN``).
        """
        from .fleet.dispatch import Dispatcher

        limits = check_limits(limits)
        check_params(params, self.fleet.policy.max_params_bytes)
        ref = self._resolve(extension)
        if job not in ref.jobs:
            raise UnknownJob(f"extension {ref} has no job {job!r} (jobs: {', '.join(ref.jobs) or 'none'})")
        if tenant is not None:
            tenant = _uuid(tenant, "tenant")
        if priority is not None and (isinstance(priority, bool) or not 0 <= int(priority) <= 9):
            raise ConfigError("priority must be an integer from 0 to 9")
        explicit_id = job_id is not None
        job_id = _uuid(job_id, "job_id") if job_id else str(uuid.uuid4())
        rec = JobRecord(
            id=job_id, status="queued", extension=extension, ext_id=ref.id, ext_version=ref.version,
            digest=ref.digest, job=job, params=params, tenant=tenant, queue=queue, priority=priority,
            limits=limits, concurrent=ref.concurrent_jobs, dispatch=1, task_id=job_id,
        )
        if explicit_id and self.fleet.records.exists(job_id):
            raise InvalidTransition(f"a job with id {job_id} exists already", job_id=job_id)
        # Publish first, then create the record: the message carries all a worker needs to
        # create the record itself, so a producer dying in between loses nothing, and no
        # outbox entry (and its acknowledgement) is needed for a first message.
        # The first message's task id is the job id: AsyncResult(job_id).get() is the job's outcome.
        tenant_token = tenant_token or os.environ.get(TOKEN_ENV) or None
        if not Dispatcher(self.app, self.fleet).publish(rec, ack=False, tenant_token=tenant_token, task_id=job_id):
            raise StoreUnavailable(f"cannot queue job {job_id}: the broker did not take its message")
        try:
            self._create(job_id, extension, ref, job, params, tenant, queue, priority, rec, tenant_token)
        except PermissionDenied:
            pass  # producer credentials: the worker that takes the message creates the record from it
        return JobHandle(self, job_id, submitted=True)

    def _create(
        self, job_id: str, extension: str, ref: ExtensionRef, job: str, params: Any, tenant: str | None,
        queue: str | None, priority: int | None, rec: JobRecord, tenant_token: str | None,
    ) -> None:
        self.fleet.records.create(
            job_id,
            extension=extension,
            digest=ref.digest,
            ext_id=ref.id,
            ext_version=ref.version,
            job=job,
            params=params,
            tenant=tenant,
            queue=queue,
            priority=priority,
            limits=rec.limits,
            dispatch=rec.dispatch,
            enqueue=False,
            concurrent=rec.concurrent,
            tenant_proof=proof_of(tenant_token),
            task_id=job_id,
        )

    def _resolve(self, extension: str) -> ExtensionRef:
        """Resolve a name; id@version and digests never change, a bare id is re-read after 2 s."""
        now = time.monotonic()
        cached = self._refs.get(extension)
        if cached is not None and ("@" in extension or extension.startswith("sha256:") or now - cached[0] < 2.0):
            return cached[1]
        ref = self.fleet.registry.resolve(extension)
        self._refs[extension] = (now, ref)
        return ref

    def job(self, job_id: str) -> JobHandle:
        """A handle on an existing job."""
        self.fleet.records.get(job_id)
        return JobHandle(self, job_id)

    def jobs(self, status: str | None = None, limit: int = 100, *, cursor: str | None = None) -> Page:
        """A page of jobs, newest first, optionally only those in ``status``; pass ``page.cursor``
        back for the next page (None when there is no more). Each call reads a bounded number of
        records, so a status-filtered page may be short and still have a cursor."""
        if status is not None and status not in STATUSES:
            raise ConfigError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        return self.fleet.records.page(status, limit, cursor)

    def iter_jobs(self, status: str | None = None, page_size: int = 100) -> Iterator[JobRecord]:
        """Every job (or every job in ``status``), newest first, fetched page by page."""
        cursor: str | None = None
        while True:
            page = self.jobs(status, page_size, cursor=cursor)
            yield from page.records
            if page.cursor is None:
                return
            cursor = page.cursor

    def usage(self) -> list[UsageRow]:
        """Fuel, wall time and runs per (extension, tenant)."""
        return self.fleet.records.usage()

    def _control(self, job_id: str, action: str) -> str:
        from .fleet.dispatch import Dispatcher

        status, _, send = self.fleet.records.control(job_id, action)  # type: ignore[arg-type]
        if send:
            Dispatcher(self.app, self.fleet).send(job_id)
        if action == "cancel" and status == "cancelled" and not self.fleet.records.celery_results:
            from .fleet.results import store_outcome

            store_outcome(self.app, self.fleet.records.get(job_id).task_id or job_id, job_id, status)
        return status


class JobHandle:
    """One submitted job: ``id``, status, record, wait, pause, resume, cancel, result."""

    def __init__(self, client: Client, job_id: str, *, submitted: bool = False) -> None:
        self.client = client
        self.id = job_id
        self._submitted = submitted

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    def record(self) -> JobRecord:
        """The job's record; a job this handle submitted reads as queued until a worker
        creates its record (with producer credentials, the worker does)."""
        try:
            return self.client.fleet.records.get(self.id)
        except NotFound:
            if not self._submitted:
                raise
            return JobRecord(id=self.id, status="queued", message="waiting for a worker to take it")

    def async_result(self) -> Any:
        """Celery's ``AsyncResult`` of the task id the job was submitted as: its ``get()`` returns
        the job's result once the job completed, however many runs it took, and raises on
        failure (``JobFailed``) or cancellation (``TaskRevokedError``)."""
        return self.client.app.AsyncResult(self.record().task_id or self.id)

    def status(self) -> str:
        return self.record().status

    def logs(self, last: int = 200) -> list[dict[str, Any]]:
        return self.client.fleet.records.logs(self.id, last)

    def events(self) -> list[dict[str, Any]]:
        return self.client.fleet.records.events(self.id)

    def pause(self) -> str:
        """Ask the job to checkpoint and stop (a queued job pauses at once); returns the status."""
        return self.client._control(self.id, "pause")

    def resume(self) -> str:
        """Queue a paused job again, from its checkpoint, on any worker."""
        return self.client._control(self.id, "resume")

    def cancel(self) -> str:
        """Stop the job for good; a cancelled job never runs again."""
        return self.client._control(self.id, "cancel")

    def wait(
        self,
        timeout: float | None = None,
        on_progress: ProgressHandler | None = None,
        *,
        poll: float = 0.2,
        until: tuple[str, ...] = ("completed", "failed", "cancelled"),
    ) -> JobRecord:
        """Poll until the job reaches one of ``until`` (by default: it is done); returns its record.

        ``on_progress`` gets the record whenever progress, message or status changed.
        Raises JobTimeout when ``timeout`` seconds pass first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[Any, ...] | None = None
        while True:
            rec = self.record()
            if on_progress is not None and (rec.progress, rec.message, rec.status) != seen:
                seen = (rec.progress, rec.message, rec.status)
                on_progress(rec)
            if rec.status in until:
                return rec
            if deadline is not None and time.monotonic() >= deadline:
                raise JobTimeout(f"still {rec.status} after {timeout:g}s", job_id=self.id)
            time.sleep(poll)

    def result(self) -> Any:
        """The job's result (its last checkpointed state, decoded) once it completed."""
        rec = self.record()
        if rec.status == "completed":
            return rec.result
        if rec.status == "failed":
            raise JobFailed(f"failed: {rec.error}", job_id=self.id)
        raise InvalidTransition(f"job is {rec.status}; it has no result", job_id=self.id)


def _uuid(text: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        raise ConfigError(f"{what} must be a UUID, got {text!r}") from None
