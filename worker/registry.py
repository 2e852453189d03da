"""The extension registry in Redis: modules addressed by SHA-256, named by id and version.

Publishers upload a module and its manifest once, as a release ``id@version``
signed with their key (``publishers.py``); workers fetch the bytes by digest on a
cache miss and verify them before compiling, so no filesystem is shared between
them. An ``id@version`` is immutable, versions are semantic versions, and an id
belongs to the keys that published it. A job names its extension as ``id`` (the
highest release its owners published), ``id@version`` or ``sha256:<hex>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import redis

from .errors import ModuleError, NotFound, PublishRefused
from .keys import Keys
from .manifest import Manifest
from .publishers import Signature, check_version, key_id, latest, parse_public, semver_key
from .store import contracts as c
from .store.redis import Scripts, as_bytes, as_text, translated
from .wasmbin import digest_of

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
    publisher: str = ""
    durability: str = "checkpoint"

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
            "publisher": key_id(self.publisher) if self.publisher else None,
            "durability": self.durability,
        }


class Registry:
    """Registers, resolves and fetches extension modules; takes a client, keys and scripts."""

    def __init__(self, client: redis.Redis, keys: Keys, scripts: Scripts, *, registration: str = "open") -> None:
        self.client = client
        self.keys = keys
        self.scripts = scripts
        self.registration = registration

    def add(
        self,
        wasm: bytes,
        manifest: Manifest,
        jobs: list[str] | tuple[str, ...],
        *,
        signature: Signature,
        instrumented: bytes | None = None,
    ) -> ExtensionRef:
        """Store ``wasm`` under its digest as release ``manifest.id@version``, signed by ``signature``.

        The caller validated the module; here the version must be semantic, the signature must
        cover these bytes and this manifest, and its key must own the id (or claim a new one).
        ``instrumented``: for snapshot mode, the module's asyncify-instrumented bytes, stored
        under their own digest and named in the original module's meta (the original's digest
        stays the extension's identity; the signature does not cover these bytes).
        """
        if len(wasm) > MAX_MODULE_BYTES:
            raise ModuleError(f"module is {len(wasm)} bytes; the registry takes at most {MAX_MODULE_BYTES}")
        check_version(manifest.version)
        digest = digest_of(wasm)
        manifest_dict = manifest.to_dict()
        signature.verify(manifest.id, manifest.version, digest, manifest_dict)
        hex_digest = digest.split(":", 1)[1]
        k = self.keys
        call = c.Register(
            versions=k.ext_versions(manifest.id), ext_ids=k.ext_ids, module=k.module(hex_digest),
            module_meta=k.module_meta(hex_digest), release=k.ext_release(manifest.id, manifest.version),
            owners=k.ext_owners(manifest.id), publishers=k.publishers,
            id=manifest.id, version=manifest.version, digest=digest, module_bytes=wasm,
            manifest_json=json.dumps(manifest_dict), jobs_json=json.dumps(list(jobs)), size=len(wasm),
            publisher=signature.public, signature=signature.signature, registration=self.registration,
        )
        self.scripts(call)
        self._bump_latest(manifest.id, manifest.version)
        if instrumented is not None:
            self._add_instrumented(hex_digest, instrumented)
        return self.describe(manifest.id, manifest.version)

    def _add_instrumented(self, hex_digest: str, code: bytes) -> None:
        if len(code) > MAX_MODULE_BYTES:
            raise ModuleError(f"instrumented module is {len(code)} bytes; the registry takes at most {MAX_MODULE_BYTES}")
        code_digest = digest_of(code)
        with translated():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.keys.module(code_digest.split(":", 1)[1]), code, nx=True)
            pipe.hset(self.keys.module_meta(hex_digest), "instrumented", code_digest)
            pipe.execute()

    def instrumented(self, digest: str) -> bytes | None:
        """The instrumented bytes registered for module ``digest`` (verified against their digest), or None."""
        with translated():
            raw = self.client.hget(self.keys.module_meta(digest.split(":", 1)[-1]), "instrumented")
        return None if raw is None else self.fetch(as_text(raw))

    # owners and publishers (operator acts: they need credentials that may write the registry) ----

    def owners(self, ext_id: str) -> list[str]:
        """The public keys that may publish versions of ``ext_id``."""
        with translated():
            return sorted(as_text(m) for m in self.client.smembers(self.keys.ext_owners(ext_id)))

    def set_owners(self, ext_id: str, public_keys: list[str]) -> None:
        """Give ``ext_id`` to exactly these keys (the operator transfers or shares a name)."""
        if not public_keys:
            raise PublishRefused(f"{ext_id} needs at least one owner key")
        for key in public_keys:
            parse_public(key)
        owners = self.keys.ext_owners(ext_id)
        with translated():
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(owners)
            pipe.sadd(owners, *public_keys)
            pipe.execute()

    def publishers(self) -> dict[str, str]:
        """Publisher keys the operator registered: public key -> name."""
        with translated():
            raw = self.client.hgetall(self.keys.publishers)
        return {as_text(k): as_text(v) for k, v in raw.items()}

    def allow_publisher(self, public_key: str, name: str) -> None:
        """Register a publisher's key; under closed registration only these may claim new ids."""
        parse_public(public_key)
        with translated():
            self.client.hset(self.keys.publishers, public_key, name)

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
        if version:
            try:
                return self.describe(ext_id, version)  # one read, however many releases the id has
            except NotFound:
                pass
        else:
            with translated():
                pointer = self.client.get(self.keys.ext_latest(ext_id))
            if pointer is not None:
                return self.describe(ext_id, as_text(pointer))
        versions = self._versions(ext_id)  # the slow path: a miss, or a registry older than the pointer
        if not versions:
            raise NotFound(f"no extension {ext_id!r} is registered (wasmjob extensions add PATH)")
        if version:
            known = ", ".join(sorted(versions, key=semver_key))
            raise NotFound(f"extension {ext_id} has no version {version} (has {known})")
        best = latest(list(versions))
        if best is None:
            raise NotFound(f"extension {ext_id} has no release with a semantic version; name one as {ext_id}@VERSION")
        self._bump_latest(ext_id, best)
        return self.describe(ext_id, best)

    def _bump_latest(self, ext_id: str, version: str) -> None:
        """Point the bare id at ``version`` if it is newer than what it points at (a WATCH transaction:
        two releases registered at once leave the newer one)."""
        key = self.keys.ext_latest(ext_id)
        with translated(), self.client.pipeline(transaction=True) as pipe:
            for _ in range(10):
                try:
                    pipe.watch(key)
                    current = pipe.get(key)
                    best = latest([version] + ([as_text(current)] if current is not None else []))
                    if best is None or (current is not None and best == as_text(current)):
                        pipe.unwatch()
                        return
                    pipe.multi()
                    pipe.set(key, best)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

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
            publisher=h.get("publisher", ""),
            durability=manifest.get("wasmjob", {}).get("durability", "checkpoint"),
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
            for version in sorted(self._versions(ext_id), key=semver_key)
        ]
