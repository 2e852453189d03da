"""The extension registry in Redis: modules addressed by SHA-256, named by id and version.

Producers upload a module and its manifest once, as a release ``id@version``;
workers fetch the bytes by digest on a cache miss and verify them before
compiling, so no filesystem is shared between them. An ``id@version`` is
immutable: registering a different module under it is refused. A job names its extension as ``id`` (the highest
version), ``id@version`` or ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import redis

from .errors import ModuleError, NotFound
from .keys import Keys
from .manifest import Manifest
from .store import contracts as c
from .store.redis import Scripts, as_bytes, as_text, translated

MAX_MODULE_BYTES = 64 * 1024 * 1024
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


@dataclass(frozen=True)
class ExtensionRef:
    """One registered module: its id, version, digest ("sha256:<hex>"), jobs and size."""

    id: str
    version: str
    digest: str
    jobs: tuple[str, ...]
    size: int
    state_encoding: str = "json"
    added_at: float | None = None
    concurrent_jobs: int = 0

    def __str__(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def hex(self) -> str:
        return self.digest.split(":", 1)[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "digest": self.digest,
            "jobs": list(self.jobs),
            "size": self.size,
            "state_encoding": self.state_encoding,
            "added_at": self.added_at,
            "concurrent_jobs": self.concurrent_jobs,
        }


def digest_of(wasm: bytes) -> str:
    return "sha256:" + hashlib.sha256(wasm).hexdigest()


class Registry:
    """Registers, resolves and fetches extension modules; takes a client, keys and scripts."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts) -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts

    def add(self, wasm: bytes, manifest: Manifest, jobs: list[str] | tuple[str, ...]) -> ExtensionRef:
        """Store ``wasm`` under its digest as release ``manifest.id@version``; the caller validated it."""
        if len(wasm) > MAX_MODULE_BYTES:
            raise ModuleError(f"module is {len(wasm)} bytes; the registry takes at most {MAX_MODULE_BYTES}")
        digest = digest_of(wasm)
        hex_digest = digest.split(":", 1)[1]
        k = self.keys
        call = c.Register(
            versions=k.ext_versions(manifest.id), ext_ids=k.ext_ids, module=k.module(hex_digest),
            module_meta=k.module_meta(hex_digest), release=k.ext_release(manifest.id, manifest.version),
            id=manifest.id, version=manifest.version, digest=digest, module_bytes=wasm,
            manifest_json=json.dumps(manifest.to_dict()), jobs_json=json.dumps(list(jobs)), size=len(wasm),
        )
        self.scripts(call)
        return self.describe(manifest.id, manifest.version)

    def resolve(self, ref: str) -> ExtensionRef:
        """The release a job names: ``id`` (its highest version), ``id@version`` or ``sha256:<hex>``
        (the release those bytes were first registered as)."""
        ref = ref.strip()
        if ref.startswith("sha256:"):
            if not _DIGEST.match(ref):
                raise NotFound(f"malformed digest {ref!r}: expected sha256: and 64 lowercase hex digits")
            with translated():
                first = self.client.hmget(self.keys.module_meta(ref.split(":", 1)[1]), "id", "version")
            if first[0] is None:
                raise NotFound(f"no module {ref} in the registry")
            return self.describe(as_text(first[0]), as_text(first[1]))
        ext_id, _, version = ref.partition("@")
        versions = self._versions(ext_id)
        if not versions:
            raise NotFound(f"no extension {ext_id!r} is registered (wasmjob extensions add PATH)")
        if version:
            if version not in versions:
                raise NotFound(f"extension {ext_id} has no version {version} (has {', '.join(sorted(versions))})")
            return self.describe(ext_id, version)
        return self.describe(ext_id, max(versions, key=version_key))

    def _versions(self, ext_id: str) -> dict[str, str]:
        with translated():
            raw = self.client.hgetall(self.keys.ext_versions(ext_id))
        return {as_text(v): as_text(d) for v, d in raw.items()}

    def describe(self, ext_id: str, version: str) -> ExtensionRef:
        """One release: its digest, jobs, size and state encoding."""
        with translated():
            raw = self.client.hgetall(self.keys.ext_release(ext_id, version))
        if not raw:
            raise NotFound(f"no extension {ext_id}@{version} in the registry")
        h = {as_text(k): as_text(v) for k, v in raw.items()}
        manifest = json.loads(h.get("manifest", "{}"))
        return ExtensionRef(
            id=ext_id,
            version=version,
            digest=h["digest"],
            jobs=tuple(json.loads(h.get("jobs", "[]"))),
            size=int(h.get("size", 0)),
            state_encoding=manifest.get("wasmjob", {}).get("state_encoding", "json"),
            added_at=int(h["added_at"]) / 1000 if h.get("added_at") else None,
            concurrent_jobs=int(manifest.get("permissions", {}).get("rate_limits", {}).get("concurrent_jobs", 0)),
        )

    def manifest(self, ext_id: str, version: str) -> Manifest:
        """The manifest a release was registered with."""
        with translated():
            raw = self.client.hget(self.keys.ext_release(ext_id, version), "manifest")
        if raw is None:
            raise NotFound(f"no extension {ext_id}@{version} in the registry")
        return Manifest.from_json(raw, source=f"manifest of {ext_id}@{version}")

    def fetch(self, digest: str) -> bytes:
        """The module's bytes, verified against ``digest`` (a mismatch is a ModuleError)."""
        hex_digest = digest.split(":", 1)[-1]
        with translated():
            wasm = self.client.get(self.keys.module(hex_digest))
        if wasm is None:
            raise NotFound(f"no module {digest} in the registry")
        module = as_bytes(wasm)
        actual = digest_of(module)
        if actual != f"sha256:{hex_digest}":
            raise ModuleError(f"module bytes stored for {digest} hash to {actual}: refusing to run them")
        return module

    def entries(self) -> list[ExtensionRef]:
        """Every registered release, by id then version."""
        with translated():
            ids = sorted(as_text(i) for i in self.client.smembers(self.keys.ext_ids))
        return [
            self.describe(ext_id, version)
            for ext_id in ids
            for version in sorted(self._versions(ext_id), key=version_key)
        ]


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions numerically where they are numbers: 0.10.0 after 0.9.1."""
    parts = re.split(r"[.\-+]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
