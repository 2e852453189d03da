"""What one worker process holds across tasks: its runtime, loaded extensions and identity.

Made in Celery's ``worker_process_init`` (after the fork, so the wasmtime
engine and its epoch ticker thread belong to the child that runs jobs).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wasmjob.broker_config import Settings

from ..compiler import CompileLimits
from ..errors import ModuleError, ModuleRefused
from ..manifest import Manifest
from ..snapshot.instrument import can_instrument
from ..store.redis import as_text, translated
from .context import Fleet
from .headroom import Headroom
from .metrics import ProcessCounters
from .supervisor import Supervisor

if TYPE_CHECKING:
    from ..job import Limits
    from ..component import ComponentExtension
    from ..runtime import Extension, Runtime

EXTENSIONS_KEPT = 32


class WorkerProcess:
    """One process's runtime and caches; takes the settings (a Fleet is built from them)."""

    def __init__(self, settings: Settings, fleet: Fleet | None = None) -> None:
        from ..ops import default_operations, load_plugins
        from ..runtime import Runtime, RuntimeConfig

        self.settings = settings
        self.fleet = fleet or Fleet(settings)
        policy = self.fleet.policy
        config = RuntimeConfig(compile_limits=CompileLimits(policy.compile_timeout_seconds, policy.compile_memory_mb))
        if settings.cache_dir is not None:
            config = replace(config, cache_dir=_path(settings.cache_dir))
        operations = load_plugins(settings.operations.split(","), default_operations())
        self.runtime: Runtime = Runtime(config, operations)
        self.pid = os.getpid()
        self.parent = os.getppid()
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        # (release, asked limits) -> the effective limits JSON and notes its runs got last
        self.limits_noted: Bounded[str, tuple[str, str]] = Bounded()
        # (manifest, asked limits) -> (run limits, notes, manifest clamped to the policy)
        self.run_limits: Bounded[tuple[Manifest, str], tuple[Limits, list[str], Manifest]] = Bounded()
        self._extensions: OrderedDict[str, Extension | ComponentExtension] = OrderedDict()
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()
        self.supervisor = Supervisor()
        self.counters = ProcessCounters()
        self.refused_writes = 0
        self.headroom = Headroom(self.fleet.store, self.fleet.policy.redis_memory_high)

    def flush_metrics(self, refused_writes: int = 0) -> None:
        """Add this process's new cache, compile and refused-write counts to the fleet's metrics
        (a round trip only when one of them grew: warm runs cost nothing)."""
        self.refused_writes += refused_writes
        stats = self.runtime.cache_stats()
        self.counters.flush(self.fleet, {
            "cache_memory_hits": stats.memory_hits, "cache_disk_hits": stats.disk_hits, "compiles": stats.compiles,
            "compile_seconds": stats.compile_seconds, "refused_writes": self.refused_writes,
        })

    def owner(self, worker_name: str) -> str:
        """A lease owner for one run: worker name, pid and a nonce (64 bits: the scripts fence by token
        and owner, so a token number a failover issued again still belongs to one run only)."""
        return f"{worker_name}/{self.pid}/{secrets.token_hex(8)}"

    def parent_alive(self) -> bool:
        """False once this process was orphaned (its worker's main process died)."""
        return os.getppid() == self.parent

    def manifest(self, ext_id: str, version: str) -> Manifest:
        """The manifest of a release (cached: an id@version never changes)."""
        key = f"{ext_id}@{version}"
        with self._lock:
            cached = self._manifests.get(key)
        if cached is not None:
            return cached
        manifest = self.fleet.registry.manifest(ext_id, version)
        with self._lock:
            self._manifests[key] = manifest
            _trim(self._manifests)
        return manifest

    def extension(self, digest: str, manifest: Manifest, *, metered: bool = True) -> Extension | ComponentExtension:
        """Fetch (verifying the digest), compile (the runtime caches by digest and engine) and load a
        module, on the engine with fuel metering or (``metered=False``) the lighter one without."""
        key = f"{digest}|{manifest.id}@{manifest.version}|{'fuel' if metered else 'cpu'}"
        with self._lock:
            cached = self._extensions.get(key)
            if cached is not None:
                self._extensions.move_to_end(key)
                return cached
        wasm = self._checked(digest)
        instrumented = None
        if manifest.durability == "snapshot" and not can_instrument():
            # the publisher's signature covers the original only: a worker with binaryen makes
            # (and caches) the instrumented bytes itself; one without takes the registry's copy
            instrumented = self.fleet.registry.instrumented(digest)
        ext = self.load(wasm, digest, manifest, metered, instrumented)
        with self._lock:
            self._extensions[key] = ext
            _trim(self._extensions)
        return ext

    def _checked(self, digest: str) -> bytes:
        """A module's bytes once they pass operator policy; a refused digest is remembered in
        Redis (and here), so every worker fails its jobs at once instead of compiling again."""
        client, keys = self.fleet.client, self.fleet.keys
        hex_digest = digest.removeprefix("sha256:")
        reason = self._refused.get(hex_digest)
        if reason is None:
            with translated():
                known = client.hget(keys.modules_refused, hex_digest)
            reason = as_text(known) if known else None
        if reason is not None:
            self._refused[hex_digest] = reason
            raise ModuleError(reason)
        wasm = self.fleet.registry.fetch(digest)
        try:
            self.fleet.policy.check_module(wasm)
            return wasm
        except ModuleRefused as exc:
            self._refuse(hex_digest, exc)
            raise

    def load(
        self, wasm: bytes, digest: str, manifest: Manifest, metered: bool, instrumented: bytes | None = None
    ) -> Extension | ComponentExtension:
        try:
            return self.runtime.load(wasm, manifest, digest=digest, metered=metered, instrumented=instrumented)
        except ModuleRefused as exc:  # over the compile limits
            self._refuse(digest.removeprefix("sha256:"), exc)
            raise

    def _refuse(self, hex_digest: str, exc: ModuleRefused) -> None:
        client, keys = self.fleet.client, self.fleet.keys
        self._refused[hex_digest] = exc.reason
        with translated():
            client.hset(keys.modules_refused, hex_digest, exc.reason)

    def close(self) -> None:
        self.runtime.close()
        self.fleet.close()


K = TypeVar("K")
V = TypeVar("V")


class Bounded(OrderedDict[K, V]):
    """A map that forgets its oldest entries past 256 (per-process memos of small values)."""

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > 256:
            self.popitem(last=False)


def _trim(cache: OrderedDict[str, Any]) -> None:
    while len(cache) > EXTENSIONS_KEPT:
        cache.popitem(last=False)


def _path(text: str) -> Path:
    return Path(text).expanduser()
