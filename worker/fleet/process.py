"""What one worker process holds across tasks: its runtime, loaded extensions and identity.

Made in Celery's ``worker_process_init`` (after the fork, so the wasmtime
engine and its epoch ticker thread belong to the child that runs jobs).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from broker_config import Settings

from ..manifest import Manifest
from .context import Fleet

if TYPE_CHECKING:
    from ..runtime import Extension, Runtime

EXTENSIONS_KEPT = 32


class WorkerProcess:
    """One process's runtime and caches; takes the settings (a Fleet is built from them)."""

    def __init__(self, settings: Settings, fleet: Fleet | None = None) -> None:
        from ..runtime import Runtime, RuntimeConfig

        self.settings = settings
        self.fleet = fleet or Fleet(settings)
        config = RuntimeConfig() if settings.cache_dir is None else RuntimeConfig(cache_dir=_path(settings.cache_dir))
        self.runtime: Runtime = Runtime(config)
        self.pid = os.getpid()
        self.parent = os.getppid()
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._extensions: OrderedDict[str, Extension] = OrderedDict()
        self._lock = threading.Lock()

    def owner(self, worker_name: str) -> str:
        """A lease owner for one run: worker name, pid and a nonce."""
        return f"{worker_name}/{self.pid}/{secrets.token_hex(3)}"

    def parent_alive(self) -> bool:
        """False once this process was orphaned (its worker's main process died)."""
        return os.getppid() == self.parent

    def manifest(self, digest: str) -> Manifest:
        """The registered manifest of a module (cached; a digest's manifest never changes)."""
        with self._lock:
            cached = self._manifests.get(digest)
        if cached is not None:
            return cached
        manifest = self.fleet.registry.manifest(digest)
        with self._lock:
            self._manifests[digest] = manifest
            _trim(self._manifests)
        return manifest

    def extension(self, digest: str) -> Extension:
        """Fetch (verifying the digest), compile (the runtime caches by digest) and load a module."""
        with self._lock:
            cached = self._extensions.get(digest)
            if cached is not None:
                self._extensions.move_to_end(digest)
                return cached
        wasm = self.fleet.registry.fetch(digest)
        ext = self.runtime.load(wasm, self.manifest(digest), digest=digest)
        with self._lock:
            self._extensions[digest] = ext
            _trim(self._extensions)
        return ext

    def close(self) -> None:
        self.runtime.close()
        self.fleet.close()


def _trim(cache: OrderedDict[str, object]) -> None:
    while len(cache) > EXTENSIONS_KEPT:
        cache.popitem(last=False)


def _path(text: str) -> "os.PathLike[str]":
    from pathlib import Path

    return Path(text).expanduser()
