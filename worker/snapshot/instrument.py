"""Asyncify instrumentation: make a module's call stack something the host can save and restore.

binaryen's ``wasm-opt --asyncify`` rewrites every function that can reach one of
the listed imports so that, when the host asks, it spills its locals to a buffer
in linear memory and returns (unwind), and later rebuilds the same frames from
that buffer (rewind). We list the two imports a job calls in its loop, so a job
can be snapshotted wherever it checks for an interrupt or reports progress; then
every mutable global gets an export (see :mod:`.globals_export`).

A module is instrumented once: the bytes are cached on disk under the original
module's digest and the tool's version, and in the fleet stored in the registry
under their own digest. The original digest stays the extension's identity.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import wasmbin
from ..wasmbin import digest_of
from ..errors import SnapshotError
from ..manifest import Manifest
from .globals_export import export_mutable_globals

log = logging.getLogger(__name__)

SAFE_POINT_IMPORTS = ("job_check_interrupt", "job_report_progress")
"""The imports at which the host can unwind a job (the guest's safe points)."""

ASYNCIFY_EXPORTS = (
    "asyncify_start_unwind",
    "asyncify_stop_unwind",
    "asyncify_start_rewind",
    "asyncify_stop_rewind",
    "asyncify_get_state",
)
RECIPE = "asyncify-v1"
"""Names the pass list and export rewrite below; part of the cache key, so a change re-instruments."""
INSTRUMENT_TIMEOUT = 120.0
FEATURES = (
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-simd",
)
"""What compilers emit for wasm32 today and wasmtime accepts; wasmtime validates the result again."""


def wasm_opt_command(wasm_opt: str, source: Path, output: Path) -> list[str]:
    """The ``wasm-opt`` command line that instruments ``source`` into ``output``."""
    imports = ",".join(f"spacedrive.{name}" for name in SAFE_POINT_IMPORTS)
    return [
        wasm_opt,
        *FEATURES,
        "--asyncify",
        f"--pass-arg=asyncify-imports@{imports}",
        "-O2",
        str(source),
        "-o",
        str(output),
    ]


def find_wasm_opt() -> str:
    """The ``wasm-opt`` to run: ``$WASMJOB_WASM_OPT``, else the one on PATH."""
    configured = os.environ.get("WASMJOB_WASM_OPT")
    found = configured or shutil.which("wasm-opt")
    if not found:
        raise SnapshotError(
            "snapshot mode needs binaryen's wasm-opt: install it (apt-get install binaryen) or set WASMJOB_WASM_OPT"
        )
    return found


def can_instrument() -> bool:
    """True when this machine has a ``wasm-opt`` to instrument modules with."""
    return bool(os.environ.get("WASMJOB_WASM_OPT") or shutil.which("wasm-opt"))


def tool_version(wasm_opt: str) -> str:
    """``wasm-opt --version``'s number, e.g. ``108``."""
    try:
        out = subprocess.run([wasm_opt, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    except OSError as exc:
        raise SnapshotError(f"cannot run {wasm_opt}: {exc.strerror}") from exc
    words = out.split()
    return words[2] if len(words) >= 3 and words[:2] == ["wasm-opt", "version"] else (words[-1] if words else "unknown")


def instrument(wasm: bytes, wasm_opt: str | None = None) -> bytes:
    """The instrumented module: asyncify around the safe-point imports, then every mutable global exported."""
    info = wasmbin.inspect(wasm)
    clash = [e.name for e in info.exports if e.name.startswith("asyncify_")]
    if clash:
        raise SnapshotError(f"module already exports {clash[0]!r}: it was instrumented before; give the original")
    tool = wasm_opt or find_wasm_opt()
    with tempfile.TemporaryDirectory(prefix="wasmjob-asyncify-") as scratch:
        source, output = Path(scratch) / "in.wasm", Path(scratch) / "out.wasm"
        source.write_bytes(wasm)
        try:
            proc = subprocess.run(
                wasm_opt_command(tool, source, output),
                capture_output=True, text=True, timeout=INSTRUMENT_TIMEOUT, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SnapshotError(f"wasm-opt took longer than {INSTRUMENT_TIMEOUT:.0f} s on this module") from exc
        except OSError as exc:
            raise SnapshotError(f"cannot run {tool}: {exc.strerror}") from exc
        if proc.returncode != 0 or not output.exists():
            first = (proc.stderr.strip().splitlines() or ["no message"])[0]
            raise SnapshotError(f"wasm-opt could not instrument the module: {first}")
        instrumented = output.read_bytes()
    instrumented = export_mutable_globals(instrumented)
    names = set(wasmbin.inspect(instrumented).export_names(wasmbin.KIND_FUNC))
    missing = [name for name in ASYNCIFY_EXPORTS if name not in names]
    if missing:
        raise SnapshotError(f"instrumented module lacks {missing[0]}: wasm-opt did not apply asyncify")
    return instrumented


class InstrumentCache:
    """Instrumented modules on disk, keyed by the original's digest and the recipe; None = memory only."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._version: str | None = None
        self.instrumented = 0

    def _key(self, digest: str, tool: str) -> str:
        if self._version is None:
            self._version = tool_version(tool)
        return f"{digest.removeprefix('sha256:')}.{RECIPE}.binaryen-{self._version}"

    def get(self, wasm: bytes, digest: str | None = None) -> bytes:
        """The instrumented bytes of ``wasm``: from memory, disk, else made now and kept."""
        digest = digest or digest_of(wasm)
        with self._lock:
            hit = self._memory.get(digest)
        if hit is not None:
            return hit
        tool = find_wasm_opt()
        key = self._key(digest, tool)
        path = self.directory / f"{key}.wasm" if self.directory is not None else None
        data = self._read(path)
        if data is None:
            data = instrument(wasm, tool)
            self.instrumented += 1
            self._write(path, data)
        with self._lock:
            self._memory[digest] = data
        return data

    @staticmethod
    def _read(path: Path | None) -> bytes | None:
        if path is None or not path.exists():
            return None
        try:
            data = path.read_bytes()
        except OSError:
            return None
        return data if wasmbin.header_ok(data) else None

    @staticmethod
    def _write(path: Path | None, data: bytes) -> None:
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("cannot cache instrumented module %s: %s", path, exc)


def load_for_registry(runtime: Any, wasm: bytes, manifest: Manifest) -> tuple[Any, bytes | None]:
    """Validate a module about to be registered: (the loaded Extension, its instrumented bytes or None).

    Snapshot mode on a machine without binaryen validates the module as built and
    registers no instrumented copy: workers with ``wasm-opt`` instrument it themselves.
    """
    if manifest.durability == "snapshot" and not can_instrument():
        return runtime.load(wasm, replace(manifest, durability="checkpoint")), None
    ext = runtime.load(wasm, manifest)
    return ext, runtime.instrumenter.get(wasm, ext.digest) if ext.snapshot_mode else None
