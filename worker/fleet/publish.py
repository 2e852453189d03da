"""``wasmjob.publish``: a worker verifies and registers a release that a producer uploaded.

Producers hold Redis credentials that cannot write the registry (``broker_config/acl.py``),
so they leave a signed release under ``{prefix}:upload:<id>`` and send this task. The
worker, which may write the registry, loads the module itself (the jobs come from its
own load, not the uploader's word), checks the signature and the id's owners, and
registers it; the task's result is the release, or a failure with the reason.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgpack

from ..errors import PublishRefused, StoreUnavailable, WasmJobError
from ..manifest import Manifest
from ..publishers import Signature
from ..snapshot.instrument import load_for_registry
from ..store.redis import as_bytes, translated

if TYPE_CHECKING:
    from celery import Task

    from ..registry import ExtensionRef
    from .context import Fleet
    from .task import FleetApp

PUBLISH_TASK = "wasmjob.publish"
UPLOAD_TTL = 600
log = logging.getLogger(__name__)


def upload(fleet: Fleet, wasm: bytes, manifest: Manifest, signature: Signature) -> str:
    """Leave a signed release for a worker to verify; returns the upload id."""
    upload_id = str(uuid.uuid4())
    body = msgpack.packb(
        {"wasm": wasm, "manifest": manifest.to_dict(), "public": signature.public, "signature": signature.signature},
        use_bin_type=True,
    )
    with translated():
        fleet.client.set(fleet.keys.upload(upload_id), body, ex=UPLOAD_TTL)
    return upload_id


def publish(task: Task, upload: str) -> dict[str, Any]:
    """Verify and register the release left under ``upload``; its ExtensionRef as a dict."""
    app: FleetApp = task.app  # type: ignore[assignment]
    proc = app.worker_process()
    try:
        ref = verify_and_register(proc.fleet, proc.runtime, upload)
    except StoreUnavailable as exc:
        raise task.retry(countdown=1.0, max_retries=5) from exc
    except WasmJobError as exc:
        log.warning("release upload %s refused: %s", upload, exc)
        raise PublishRefused(str(exc)) from None
    log.info("registered %s (%s), uploaded by %s", ref, ref.digest, ref.publisher and ref.as_dict()["publisher"])
    return ref.as_dict()


def verify_and_register(fleet: Fleet, runtime: Any, upload_id: str) -> ExtensionRef:
    """The worker's side of a publish; every refusal is a WasmJobError with the reason."""
    try:
        uuid.UUID(upload_id)
    except (ValueError, TypeError):
        raise PublishRefused(f"malformed upload id {upload_id!r}") from None
    key = fleet.keys.upload(upload_id)
    with translated():
        raw = fleet.client.getdel(key)
    if raw is None:
        raise PublishRefused(f"upload {upload_id} is unknown or expired (uploads live {UPLOAD_TTL} s)")
    try:
        data = msgpack.unpackb(as_bytes(raw), raw=False)
        wasm, public, signature = bytes(data["wasm"]), str(data["public"]), str(data["signature"])
        manifest = Manifest.from_dict(data["manifest"], source=f"upload {upload_id}")
    except (ValueError, KeyError, TypeError, msgpack.exceptions.ExtraData) as exc:
        raise PublishRefused(f"upload {upload_id} is malformed: {exc}") from None
    ext, instrumented = load_for_registry(runtime, wasm, manifest)
    return fleet.registry.add(
        wasm, manifest, list(ext.jobs), signature=Signature(public, signature), instrumented=instrumented
    )
