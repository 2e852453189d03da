"""Load and run components: discover their jobs, then instantiate → ``execute`` → return code.

A :class:`ComponentRunner` lives inside the process's Runtime and shares its Engine,
epoch ticker and compiled-code cache. Every run gets a fresh Store with the run's
limits and a WASI p2 context that grants nothing: no preopened directory, no
environment, no arguments, no network; stdout and stderr become job log lines.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime import component as wc

from ..abi import LogLevel
from ..errors import ModuleError, WasmJobError
from ..host import MAX_LINE, MAX_NAME, HostState
from ..job import MiB, JobSpec, Limits
from ..manifest import Manifest
from .format import EXPORT_EXECUTE, EXPORT_JOBS, WORLD
from .linking import clip, make_component_linker
from .raw import call_execute
from .traps import explain_component

if TYPE_CHECKING:
    from ..cache import ModuleCache
    from ..engine import EpochTicker
    from ..abi import JobInfo

MAX_JOBS = 256
UNMETERED_FUEL = 2**62
# CPython components hold several core instances, tables and memories (the interpreter,
# the WASI adapter, glue); the memory cap applies to each linear memory.
_INSTANCES, _TABLES, _MEMORIES = 64, 64, 16


@dataclass(frozen=True)
class ComponentExtension:
    """A loaded component: digest, manifest, jobs and the compiled component."""

    digest: str
    manifest: Manifest
    size: int
    jobs: dict[str, JobInfo]
    imports: tuple[str, ...]
    component: wc.Component = field(repr=False, compare=False)
    execute_index: wc.ExportIndex = field(repr=False, compare=False)
    metered: bool = True

    kind = "component"
    snapshot_mode = False  # a component's durability is its checkpoints

    @property
    def id(self) -> str:
        return self.manifest.id

    def describe(self) -> dict[str, Any]:
        """What ``wasmjob inspect`` prints (as for a core module, plus ``kind``)."""
        return self.manifest.describe(
            digest=self.digest, size=self.size, jobs=self.jobs.values(), imports=self.imports, kind=self.kind
        )


class _LineSink:
    """WASI stdout or stderr of one run: complete lines go to the job log at ``level``."""

    def __init__(self, host: HostState, level: LogLevel) -> None:
        self.host, self.level, self.buffer = host, int(level), b""

    def write(self, data: bytes) -> None:
        self.buffer += data
        if b"\n" in self.buffer:
            *lines, self.buffer = self.buffer.split(b"\n")
            for line in lines:
                self._emit(line)
        elif len(self.buffer) > MAX_LINE:
            self._emit(self.buffer)
            self.buffer = b""

    def close(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer = b""

    def _emit(self, line: bytes) -> None:
        self.host.log(self.level, clip(line.decode("utf-8", "replace"), MAX_LINE))


class ComponentRunner:
    """Loads and runs components; takes an engine (with fuel when ``metered``), the ticker and its cache."""

    def __init__(self, engine: wasmtime.Engine, ticker: EpochTicker, cache: ModuleCache, metered: bool = True) -> None:
        self.engine = engine
        self.metered = metered
        self.ticker = ticker
        self.cache = cache
        self._linker: wc.Linker | None = None
        self._lock = threading.Lock()

    @property
    def linker(self) -> wc.Linker:
        with self._lock:
            if self._linker is None:
                self._linker = make_component_linker(self.engine)
            return self._linker

    # loading -----------------------------------------------------------------

    def load(self, wasm: bytes, manifest: Manifest, digest: str, host: HostState, init_limits: Limits) -> ComponentExtension:
        """Compile (cached), check the world's exports and ask the component for its jobs."""
        from ..abi import JobInfo

        if manifest.durability == "snapshot":
            raise ModuleError("durability 'snapshot' is for core modules: a component checkpoints its state")
        component = self.cache.get(wasm, digest)
        if not isinstance(component, wc.Component):
            raise ModuleError("expected a component")
        execute_index = component.get_export_index(EXPORT_EXECUTE)
        if execute_index is None or component.get_export_index(EXPORT_JOBS) is None:
            raise ModuleError(
                f"component does not export {EXPORT_JOBS!r} and {EXPORT_EXECUTE!r}: build it for world "
                f"{WORLD!r} of extensions/sdk/wit"
            )
        imports = tuple(component.type.imports(self.engine))
        names = self._discover(component, host, init_limits)
        jobs = {name: JobInfo(name, EXPORT_EXECUTE, True) for name in names}
        return ComponentExtension(digest, manifest, len(wasm), jobs, imports, component, execute_index, self.metered)

    def _discover(self, component: wc.Component, host: HostState, limits: Limits) -> list[str]:
        store, sinks = self.store(limits, host)
        try:
            with host:
                instance = self._instantiate(store, component)
                func = instance.get_func(store, EXPORT_JOBS)
                if func is None:
                    raise ModuleError(f"component does not export {EXPORT_JOBS!r}")
                names = func(store)
                func.post_return(store)
            for sink in sinks:
                sink.close()
        except WasmJobError:
            raise
        except wasmtime.WasmtimeError as exc:
            _, reason = explain_component(exc, host, limits, None)
            raise ModuleError(f"the component's jobs() failed: {reason}") from exc
        if not isinstance(names, list) or not names or len(names) > MAX_JOBS:
            raise ModuleError(f"the component's jobs() must name 1..{MAX_JOBS} jobs")
        for name in names:
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
                raise ModuleError(f"job name {name!r} must be 1..{MAX_NAME} characters")
        return list(dict.fromkeys(names))

    def _instantiate(self, store: wasmtime.Store, component: wc.Component) -> wc.Instance:
        try:
            return self.linker.instantiate(store, component)
        except wasmtime.WasmtimeError as exc:
            text = str(exc)
            if "matching implementation was not found" in text or "import" in text.split("\n")[0]:
                first = text.strip().splitlines()[0]
                raise ModuleError(
                    f"cannot link component: {first} (only wasmjob:job/host and WASI p2 are provided)"
                ) from exc
            raise

    # running -----------------------------------------------------------------

    def store(self, limits: Limits, host: HostState, fuel: int | None = None) -> tuple[wasmtime.Store, list[_LineSink]]:
        """A fresh Store with the run's caps and a WASI p2 context that grants nothing, and
        the sinks that turn its stdout and stderr into log lines."""
        store = wasmtime.Store(self.engine)
        if self.metered:
            store.set_fuel(fuel if fuel is not None else (limits.fuel or UNMETERED_FUEL))
        store.set_limits(
            memory_size=limits.max_memory_mb * MiB,
            instances=_INSTANCES,
            tables=_TABLES,
            memories=_MEMORIES,
            table_elements=1_000_000,
        )
        store.set_epoch_deadline(self.ticker.ticks_for(limits.timeout_seconds))
        wasi = wasmtime.WasiConfig()
        out, err = _LineSink(host, LogLevel.INFO), _LineSink(host, LogLevel.WARN)
        wasi.stdout_custom = out.write
        wasi.stderr_custom = err.write
        store.set_wasi(wasi)
        return store, [out, err]

    def execute(
        self, ext: ComponentExtension, host: HostState, store: wasmtime.Store, sinks: list[_LineSink],
        job: JobInfo, spec: JobSpec, state: bytes, limits: Limits, started: float,
    ) -> tuple[int | None, BaseException | None]:
        """Instantiate and call ``execute`` inside ``host``'s run; returns (code, error)."""
        try:
            instance = self._instantiate(store, ext.component)
            func = instance.get_func(store, ext.execute_index)
            if func is None:
                raise ModuleError(f"component does not export {EXPORT_EXECUTE!r}")
            ctx = json.dumps(
                {"job_id": spec.job_id, "library_id": spec.library_id, "state_encoding": ext.manifest.state_encoding}
            )
            if limits.slice_seconds:
                host.slice_deadline = started + limits.slice_seconds
            code = call_execute(store, func, job.name, ctx, state)
            func.post_return(store)
            return int(code), None
        except (wasmtime.WasmtimeError, WasmJobError) as exc:
            return None, exc
        finally:
            for sink in sinks:
                sink.close()
