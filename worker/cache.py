"""Compiled modules, cached by content digest in memory (LRU) and on disk.

Disk artifacts are wasmtime's serialized code, which runs without checks when
loaded, so only artifacts this host wrote are read back: each file carries an
HMAC made with a key that lives in the private (0700) cache directory, and a
file whose tag, length or engine fingerprint does not match is recompiled.
Components (a CPython one serializes to ~40 MB) are cached the same way; the
directory is kept under ``max_disk_bytes`` by dropping the least recently used
artifacts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import wasmtime
from wasmtime import component as wc

from .component.format import is_component
from .errors import ModuleError
from .validate import is_hex_digest
from .wasmbin import digest_of

log = logging.getLogger(__name__)

MAGIC = b"WJMC1\n"
TAG_LEN = 32
MAX_DISK_BYTES = 4 * 1024**3

Compiled = wasmtime.Module | wc.Component


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("wasmjob")) / "modules"


@dataclass
class CacheStats:
    memory_hits: int = 0
    disk_hits: int = 0
    compiles: int = 0
    rejected_artifacts: int = 0
    compile_seconds: float = 0.0


class ModuleCache:
    """Compile-once cache; takes the engine, its fingerprint, a directory (None = no disk), an LRU
    size and optionally a ``compiler`` that turns a module into serialized code out of process."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        fingerprint: str,
        directory: Path | None,
        max_entries: int = 64,
        compiler: Callable[[bytes], bytes] | None = None,
        max_disk_bytes: int = MAX_DISK_BYTES,
    ) -> None:
        self.engine = engine
        self.compiler = compiler
        self.fingerprint = fingerprint
        self.directory = directory
        self.max_entries = max_entries
        self.max_disk_bytes = max_disk_bytes
        self.stats = CacheStats()
        self._memory: OrderedDict[str, Compiled] = OrderedDict()
        self._lock = threading.Lock()
        self._key: bytes | None = None
        if directory is not None:
            self._key = self._prepare_dir(directory)

    def _prepare_dir(self, directory: Path) -> bytes | None:
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(directory, 0o700)
            key_path = directory / "host.key"
            if not key_path.exists():
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(secrets.token_bytes(32))
            key = key_path.read_bytes()
            if len(key) != 32:
                raise OSError("host.key has the wrong length")
            return key
        except FileExistsError:
            return (directory / "host.key").read_bytes()
        except OSError as exc:
            log.warning("module cache disabled on disk: %s: %s", directory, exc)
            self.directory = None
            return None

    def get(self, wasm: bytes, digest: str | None = None) -> Compiled:
        """The compiled module (or component) for ``wasm``: from memory, then disk, else compiled now."""
        digest = digest or digest_of(wasm)
        with self._lock:
            module = self._memory.get(digest)
            if module is not None:
                self._memory.move_to_end(digest)
                self.stats.memory_hits += 1
                return module
        module = self._from_disk(digest, wc.Component if is_component(wasm) else wasmtime.Module)
        if module is None:
            started = time.perf_counter()
            module = self._compile(wasm)
            self.stats.compile_seconds += time.perf_counter() - started
            self.stats.compiles += 1
            self._to_disk(digest, module)
        else:
            self.stats.disk_hits += 1
        with self._lock:
            self._memory[digest] = module
            self._memory.move_to_end(digest)
            while len(self._memory) > self.max_entries:
                self._memory.popitem(last=False)
        return module

    def _compile(self, wasm: bytes) -> Compiled:
        if not wasm.startswith(b"\0asm"):
            raise ModuleError("not a WebAssembly module (missing the \\0asm header)")
        try:
            kind: type[Compiled] = wc.Component if is_component(wasm) else wasmtime.Module
            if self.compiler is not None:  # bounded, in a child; its output is code this host made
                return kind.deserialize(self.engine, self.compiler(wasm))
            return kind(self.engine, wasm)
        except wasmtime.WasmtimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
            raise ModuleError(f"invalid WebAssembly module: {first}") from exc

    def _path(self, digest: str) -> Path | None:
        if self.directory is None:
            return None
        if not is_hex_digest(digest.removeprefix("sha256:")):
            log.warning("not caching a module under a malformed digest %r", digest[:80])
            return None
        return self.directory / f"{digest.removeprefix('sha256:')}.{self.fingerprint}.cwasm"

    def _tag(self, digest: str, payload: bytes) -> bytes:
        assert self._key is not None
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        mac.update(digest.encode() + b"\0" + self.fingerprint.encode() + b"\0")
        mac.update(payload)
        return mac.digest()

    def _from_disk(self, digest: str, kind: type[Compiled] = wasmtime.Module) -> Compiled | None:
        path = self._path(digest)
        if path is None or not path.exists():
            return None
        try:
            blob = path.read_bytes()
            header = len(MAGIC) + TAG_LEN
            if len(blob) <= header or not blob.startswith(MAGIC):
                raise ValueError("truncated or foreign artifact")
            tag, payload = blob[len(MAGIC) : header], blob[header:]
            if not hmac.compare_digest(tag, self._tag(digest, payload)):
                raise ValueError("artifact was not written by this host")
            module = kind.deserialize(self.engine, payload)
            os.utime(path)  # recently used: the last to be evicted
            return module
        except (OSError, ValueError, wasmtime.WasmtimeError) as exc:
            self.stats.rejected_artifacts += 1
            log.warning("ignoring cached artifact %s: %s", path.name, exc)
            path.unlink(missing_ok=True)
            return None

    def _to_disk(self, digest: str, module: Compiled) -> None:
        path = self._path(digest)
        if path is None:
            return
        try:
            payload = bytes(module.serialize())
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC + self._tag(digest, payload) + payload)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot write cached artifact %s: %s", path, exc)
            return
        self._trim_disk(keep=path)

    def _trim_disk(self, keep: Path) -> None:
        """Delete least recently used artifacts until the directory fits ``max_disk_bytes``."""
        assert self.directory is not None
        entries = []
        for path in self.directory.glob("*.cwasm"):
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, path))
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= self.max_disk_bytes:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

