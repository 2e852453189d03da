"""The run of one job: instantiate → ``plugin_init`` → write ctx and state → ``execute_<fn>`` → outcome.

A :class:`Runtime` lives once per process (an Engine with fuel metering and, made
on first use, one without; one epoch ticker; a module cache and Linkers per Engine). It knows nothing of Celery or Redis: callers hand it a
checkpoint store, a lease token and an interrupt flag.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import wasmtime

from . import abi
from .abi import JobInfo
from .cache import CacheStats, ModuleCache, default_cache_dir
from .component import ComponentExtension, ComponentRunner, is_component
from .component.traps import explain_component
from .compiler import CompileLimits, compile_serialized
from .encoding import decode, encode
from .engine import EngineSettings, EpochTicker, make_engine
from .errors import ModuleError, StoreUnavailable, UnknownJob, WasmJobError
from .host import HostState
from .job import MiB, InterruptFlag, JobSpec, Limits, Outcome, Status, Usage
from .linking import make_linker
from .manifest import Manifest
from .ops import OpContext, Operations, default_operations
from .snapshot import run as snapshot_run
from .snapshot.image import Image, is_snapshot
from .snapshot.instrument import InstrumentCache
from .snapshot.storage import SnapshotStore
from .store.base import CheckpointStore
from .traps import explain
from .wasmbin import digest_of
from .wasmtime_internals import call_i32

UNMETERED_FUEL = 2**62


@dataclass(frozen=True)
class RuntimeConfig:
    """Process-wide settings: where compiled code is cached, and which host-call path to use."""

    cache_dir: Path | None = field(default_factory=default_cache_dir)
    memory_cache_entries: int = 64
    fast_host_calls: bool = True
    init_timeout_seconds: float = 5.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    compile_limits: CompileLimits | None = None  # set: compile in a bounded child process (workers)


@dataclass(frozen=True)
class Extension:
    """A loaded, validated module: digest, manifest, jobs and the pre-linked instance."""

    digest: str
    manifest: Manifest
    size: int
    jobs: dict[str, JobInfo]
    shape: abi.ModuleShape
    pre: wasmtime.InstancePre = field(repr=False, compare=False)
    metered: bool = True
    instrumented_digest: str = ""  # snapshot mode: the digest of the asyncify-instrumented bytes that run

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def snapshot_mode(self) -> bool:
        return self.manifest.durability == "snapshot"

    def describe(self) -> dict[str, Any]:
        """What ``wasmjob inspect`` prints."""
        extra: dict[str, Any] = {"durability": self.manifest.durability}
        if self.instrumented_digest:
            extra["instrumented_digest"] = self.instrumented_digest
        return self.manifest.describe(
            digest=self.digest, size=self.size, jobs=self.jobs.values(), imports=self.shape.imports, **extra
        )


class Sandbox:
    """One Engine flavour (with or without fuel): the Engine, its compiled-module cache
    (keyed by the engine's fingerprint, so the two never share code) and its Linkers."""

    def __init__(self, settings: EngineSettings, config: RuntimeConfig) -> None:
        self.metered = settings.fuel
        self.engine = make_engine(settings)
        limits = config.compile_limits
        compiler = None if limits is None else partial(compile_serialized, settings=settings, limits=limits)
        self.cache = ModuleCache(
            self.engine, settings.fingerprint(), config.cache_dir, config.memory_cache_entries, compiler
        )
        self.linkers: dict[bool, wasmtime.Linker] = {}
        self.components: ComponentRunner | None = None


def _extension_key(digest: str, manifest: Manifest) -> Hashable:
    """(digest, manifest) as the loaded-extension cache key: a frozen Manifest hashes in
    well under a microsecond, where dumping it to JSON cost a warm start ~20 µs. A
    manifest that cannot hash (a list inside) falls back to its canonical JSON."""
    try:
        hash(manifest)
    except TypeError:
        return digest + hashlib.sha256(json.dumps(manifest.to_dict(), sort_keys=True).encode()).hexdigest()
    return (digest, manifest)


class Runtime:
    """Loads extensions and runs their jobs; takes a RuntimeConfig and an operations registry."""

    def __init__(self, config: RuntimeConfig | None = None, operations: Operations | None = None) -> None:
        self.config = config or RuntimeConfig()
        self.operations = operations or default_operations()
        metered = Sandbox(replace(self.config.engine, fuel=True), self.config)
        self._sandboxes = {True: metered}
        self.engine, self.cache = metered.engine, metered.cache
        self.ticker = EpochTicker(self.engine)
        cache_dir = self.config.cache_dir
        self.instrumenter = InstrumentCache(cache_dir.parent / "instrumented" if cache_dir is not None else None)
        self._extensions: OrderedDict[Hashable, Extension | ComponentExtension] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.ticker.stop()

    def cache_stats(self) -> CacheStats:
        """Module-cache hits, compiles and compile time of this process, over both engine flavours."""
        total = CacheStats()
        with self._lock:
            boxes = list(self._sandboxes.values())
        for box in boxes:
            for name, value in vars(box.cache.stats).items():
                setattr(total, name, getattr(total, name) + value)
        return total

    def sandbox(self, metered: bool) -> Sandbox:
        """The Engine flavour with (``metered``) or without fuel; the second is made on first use."""
        with self._lock:
            box = self._sandboxes.get(metered)
            if box is None:
                box = self._sandboxes[metered] = Sandbox(replace(self.config.engine, fuel=metered), self.config)
                self.ticker.add(box.engine)
            return box

    def _components(self, box: Sandbox) -> ComponentRunner:
        with self._lock:
            if box.components is None:
                box.components = ComponentRunner(box.engine, self.ticker, box.cache, box.metered)
            return box.components

    def _linker(self, box: Sandbox, wasi: bool) -> wasmtime.Linker:
        with self._lock:
            if wasi not in box.linkers:
                box.linkers[wasi] = make_linker(box.engine, fast=self.config.fast_host_calls, wasi=wasi)
            return box.linkers[wasi]

    # loading -----------------------------------------------------------------

    def load(
        self,
        wasm: bytes,
        manifest: Manifest | None = None,
        *,
        digest: str | None = None,
        metered: bool = True,
        instrumented: bytes | None = None,
    ) -> Extension | ComponentExtension:
        """Compile (cached), validate against the ABI and collect the module's (or component's) jobs.

        ``metered=False`` loads it on the engine without fuel: its runs cannot have a fuel budget.
        In snapshot mode the module that runs is the instrumented one: ``instrumented``
        when the caller has it (the fleet's registry), else made here once and cached.
        """
        digest = digest or digest_of(wasm)
        manifest = manifest or Manifest.default("extension")
        key = (metered, _extension_key(digest, manifest))
        with self._lock:
            cached = self._extensions.get(key)
            if cached is not None:
                self._extensions.move_to_end(key)
                return cached
        box = self.sandbox(metered)
        if is_component(wasm):
            return self._remember(key, self._load_component(wasm, manifest, digest, box))
        code, code_digest, instrumented_digest = wasm, digest, ""
        if manifest.durability == "snapshot":
            code = instrumented if instrumented is not None else self.instrumenter.get(wasm, digest)
            code_digest = instrumented_digest = digest_of(code)
        module = box.cache.get(code, code_digest)
        if not isinstance(module, wasmtime.Module):
            raise ModuleError("snapshot mode is for core modules, not components")
        shape = abi.check_module(module, allow_wasi=manifest.wasi)
        try:
            pre = self._linker(box, shape.wasi).instantiate_pre(module)
        except wasmtime.WasmtimeError as exc:
            raise ModuleError(f"cannot link module: {str(exc).strip().splitlines()[0]}") from exc
        registered = self._discover_jobs(pre, shape, manifest, box)
        ext = Extension(digest, manifest, len(wasm), registered, shape, pre, metered, instrumented_digest)
        return self._remember(key, ext)

    def _remember(self, key: Hashable, ext: Extension | ComponentExtension) -> Extension | ComponentExtension:
        with self._lock:
            self._extensions[key] = ext
            while len(self._extensions) > self.config.memory_cache_entries:
                self._extensions.popitem(last=False)
        return ext

    def _load_component(self, wasm: bytes, manifest: Manifest, digest: str, box: Sandbox) -> ComponentExtension:
        limits = Limits(timeout_seconds=self.config.init_timeout_seconds, max_memory_mb=manifest.limits.max_memory_mb)
        host = self._host(JobSpec(job_name="", job_id="00000000-0000-0000-0000-000000000000"), manifest, limits)
        return self._components(box).load(wasm, manifest, digest, host, limits)

    def _discover_jobs(
        self, pre: wasmtime.InstancePre, shape: abi.ModuleShape, manifest: Manifest, box: Sandbox
    ) -> dict[str, JobInfo]:
        jobs: dict[str, JobInfo] = {}
        if shape.has("plugin_init"):
            limits = Limits(timeout_seconds=self.config.init_timeout_seconds, max_memory_mb=manifest.limits.max_memory_mb)
            host = self._host(JobSpec(job_name="", job_id="00000000-0000-0000-0000-000000000000"), manifest, limits)
            store = self._store(limits, box.engine, box.metered)
            if shape.wasi:
                store.set_wasi(wasmtime.WasiConfig())
            try:
                with host:
                    instance = pre.instantiate(store)
                    self._attach(host, store, instance)
                    self._init(host, store, instance)
            except WasmJobError:
                raise
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                _, reason = explain(exc, host, limits, None)
                raise ModuleError(f"plugin_init failed: {reason}") from exc
            for reg in host.registered:
                abi.check_job_export(shape, reg.name, reg.export)
                jobs[reg.name] = reg
        if not jobs:
            for name, sig in shape.exports.items():
                if name.startswith("execute_") and sig == abi.JOB_EXPORT_SIG:
                    jobs[name.removeprefix("execute_")] = JobInfo(name.removeprefix("execute_"), name)
        if not jobs:
            raise ModuleError("module registers no jobs and exports no execute_<job> function")
        return jobs

    # running -----------------------------------------------------------------

    def run(
        self,
        ext: Extension | ComponentExtension,
        spec: JobSpec,
        store: CheckpointStore | None,
        token: int = 0,
        interrupts: InterruptFlag | None = None,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run ``spec`` once, from its last checkpoint if it has one; never raises for guest faults.

        An unmetered ``ext`` bills the run's thread CPU time instead of fuel; it refuses a fuel budget.
        """
        limits = limits or ext.manifest.limits
        if limits.fuel is not None and not ext.metered:
            raise ValueError(f"job {spec.job_id}: a fuel budget needs the extension loaded with metered=True")
        interrupts = interrupts or InterruptFlag()
        started = time.monotonic()
        cpu_started = time.thread_time()
        job = ext.jobs.get(spec.job_name)
        if job is None:
            known = ", ".join(sorted(ext.jobs)) or "none"
            reason = UnknownJob(f"extension {ext.id} has no job {spec.job_name!r} (jobs: {known})").reason
            return Outcome(spec.job_id, Status.FAILED, reason=reason, failure="module")
        try:
            state = store.load_checkpoint(spec.job_id) if store is not None else None
        except StoreUnavailable as exc:
            return Outcome(spec.job_id, Status.FAILED, reason=exc.reason, failure="store", infrastructure=True)
        snapshots = SnapshotStore(store, spec.job_id, token, limits.max_checkpoint_bytes) if (
            ext.snapshot_mode and store is not None
        ) else None
        image: Image | None = None
        if snapshots is not None and is_snapshot(state):
            assert state is not None
            try:
                image = snapshots.load(state)
            except StoreUnavailable as exc:
                return Outcome(spec.job_id, Status.FAILED, reason=exc.reason, failure="store", infrastructure=True)
            except WasmJobError as exc:
                return Outcome(spec.job_id, Status.FAILED, reason=exc.reason, failure="snapshot")
            state = None
        resumed = state is not None
        if state is None:
            state = encode(spec.params, ext.manifest.state_encoding)
        host = self._host(spec, ext.manifest, limits, store=store, token=token, interrupts=interrupts, ext=ext)
        host.last_state = state if resumed else None
        if isinstance(ext, ComponentExtension):
            return self._run_component(ext, job, spec, host, state, limits, started, cpu_started)
        wasm_store = self._store(limits, self.sandbox(ext.metered).engine, ext.metered)
        if ext.shape.wasi:
            wasm_store.set_wasi(wasmtime.WasiConfig())
        fuel_budget = limits.fuel or UNMETERED_FUEL
        code: int | None = None
        error: BaseException | None = None
        with host:
            try:
                instance = ext.pre.instantiate(wasm_store)
                self._attach(host, wasm_store, instance)
                self._init(host, wasm_store, instance)
                if limits.slice_seconds:
                    host.slice_deadline = started + limits.slice_seconds
                if ext.snapshot_mode:
                    args = None if image is not None else self._arguments(host, spec, state)
                    code = snapshot_run.execute(
                        host, wasm_store, instance, job.export, args, image, snapshots, limits.snapshot_seconds
                    )
                else:
                    code = self._execute(host, wasm_store, instance, job, spec, state, resumed)
            except (wasmtime.Trap, wasmtime.WasmtimeError, WasmJobError) as exc:
                error = exc
            finally:
                self._cleanup(wasm_store, instance if "instance" in locals() else None)
        host.flush()
        usage = _usage(ext.metered, wasm_store, fuel_budget, host, started, cpu_started)
        outcome = self._outcome(ext, spec, host, code, error, usage, limits, fuel_budget)
        outcome.snapshots = snapshots.stats if snapshots is not None else None
        return outcome

    def _run_component(
        self, ext: ComponentExtension, job: JobInfo, spec: JobSpec, host: HostState, state: bytes, limits: Limits,
        started: float, cpu_started: float,
    ) -> Outcome:
        """The same run for a component: its own Store and WASI context, the same host and outcome."""
        runner = self._components(self.sandbox(ext.metered))
        fuel_budget = limits.fuel or UNMETERED_FUEL
        wasm_store, sinks = runner.store(limits, host, fuel_budget)
        with host:
            code, error = runner.execute(ext, host, wasm_store, sinks, job, spec, state, limits, started)
        host.flush()
        usage = _usage(ext.metered, wasm_store, fuel_budget, host, started, cpu_started)
        return self._outcome(ext, spec, host, code, error, usage, limits, fuel_budget, explain_component)

    def _host(
        self,
        spec: JobSpec,
        manifest: Manifest,
        limits: Limits,
        *,
        store: CheckpointStore | None = None,
        token: int = 0,
        interrupts: InterruptFlag | None = None,
        ext: Extension | ComponentExtension | None = None,
    ) -> HostState:
        host = HostState(
            job_id=spec.job_id,
            library_id=spec.library_id,
            extension_id=manifest.id,
            job_name=spec.job_name,
            limits=limits,
            store=store,
            token=token,
            interrupts=interrupts or InterruptFlag(),
            operations=self.operations,
            op_context=None,
        )
        host.op_context = OpContext(
            job_id=spec.job_id,
            job_name=spec.job_name,
            library_id=spec.library_id,
            extension_id=manifest.id,
            extension_version=manifest.version,
            digest=ext.digest if ext else "",
            permissions=manifest.permissions,
            store=store,
            config=manifest.config_value(),
            info=lambda: {
                "progress": host.progress,
                "message": host.message,
                "items": host.items,
                "bytes": host.bytes,
                "checkpoints": host.checkpoints,
                "resumed": host.last_state is not None,
            },
        )
        return host

    def _store(self, limits: Limits, engine: wasmtime.Engine, metered: bool) -> wasmtime.Store:
        store = wasmtime.Store(engine)
        store.set_limits(memory_size=limits.max_memory_mb * MiB, instances=4, tables=4, memories=1, table_elements=100_000)
        if metered:
            store.set_fuel(limits.fuel or UNMETERED_FUEL)
        store.set_epoch_deadline(self.ticker.ticks_for(limits.timeout_seconds))
        return store

    @staticmethod
    def _attach(host: HostState, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        exports = instance.exports(store)
        memory = exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise ModuleError("module does not export its linear memory as 'memory'")
        host.attach(store, memory, exports.get("wasm_alloc"))

    @staticmethod
    def _init(host: HostState, store: wasmtime.Store, instance: wasmtime.Instance) -> None:
        init = instance.exports(store).get("plugin_init")
        if not isinstance(init, wasmtime.Func):
            return
        host.registering = True
        try:
            rc = call_i32(store, init)
        finally:
            host.registering = False
        if rc != 0:
            raise ModuleError(f"plugin_init returned {rc} (expected 0)")

    @staticmethod
    def _execute(
        host: HostState,
        store: wasmtime.Store,
        instance: wasmtime.Instance,
        job: JobInfo,
        spec: JobSpec,
        state: bytes,
        resumed: bool,
    ) -> int:
        exports = instance.exports(store)
        func = exports.get(job.export)
        if not isinstance(func, wasmtime.Func):
            raise ModuleError(f"job {job.name!r} names export {job.export!r}, which the module does not export")
        return call_i32(store, func, *Runtime._arguments(host, spec, state, resumed))

    @staticmethod
    def _arguments(host: HostState, spec: JobSpec, state: bytes, resumed: bool = False) -> tuple[int, int, int, int]:
        """Write ctx and state into guest memory: the job export's four arguments."""
        ctx = abi.context_json(spec.job_id, spec.library_id, resumed)
        ctx_ptr = host.write_alloc(ctx, "the job context")
        state_ptr = host.write_alloc(state, "the job state") if state else 0
        return ctx_ptr, len(ctx), state_ptr, len(state)

    @staticmethod
    def _cleanup(store: wasmtime.Store, instance: wasmtime.Instance | None) -> None:
        if instance is None:
            return
        cleanup = instance.exports(store).get("plugin_cleanup")
        if isinstance(cleanup, wasmtime.Func):
            try:
                call_i32(store, cleanup)
            except (wasmtime.Trap, wasmtime.WasmtimeError, WasmJobError):
                pass

    def _outcome(
        self,
        ext: Extension | ComponentExtension,
        spec: JobSpec,
        host: HostState,
        code: int | None,
        error: BaseException | None,
        usage: Usage,
        limits: Limits,
        fuel_budget: int,
        explainer: Callable[[BaseException, HostState, Limits, int | None], tuple[str, str]] = explain,
    ) -> Outcome:
        out = Outcome(
            spec.job_id,
            Status.FAILED,
            state=host.last_state,
            checkpoints=host.checkpoints,
            progress=host.progress,
            message=host.message,
            items=host.items,
            bytes=host.bytes,
            usage=usage,
            logs=host.logs,
            warnings=host.warnings,
        )
        if host.lease_lost:
            out.reason, out.failure, out.infrastructure = host.store_error, "lease", True
        elif error is not None:
            out.failure, out.reason = explainer(error, host, limits, limits.fuel)
        elif code == abi.ReturnCode.COMPLETED:
            if host.store_error:
                out.reason = f"the job finished but its final checkpoint was not saved: {host.store_error}"
                out.failure, out.infrastructure = "store", host.store_error_transient
            else:
                out.status = Status.COMPLETED
                out.result = decode(host.last_state, ext.manifest.state_encoding)
                out.progress = 1.0
        elif code == abi.ReturnCode.INTERRUPTED:
            if host.interrupts.reason is None:
                out.failure = "bad_return"
                out.reason = "the job returned 1 (Interrupted) although no interrupt was requested"
            else:
                out.status, out.interrupt = Status.INTERRUPTED, host.interrupts.reason
        elif code == abi.ReturnCode.FAILED and abi.reads_as_interrupt(host.guest_error, host.interrupts.reason):
            # Spacedrive's convention: checkpoint, then fail with "Interrupted" when asked to stop.
            out.status, out.interrupt = Status.INTERRUPTED, host.interrupts.reason
        elif code == abi.ReturnCode.FAILED:
            out.failure = "guest"
            out.reason = host.guest_error or host.host_error or "the job reported failure (return code 2) without logging a reason"
        else:
            out.failure = "bad_return"
            out.reason = f"the job returned {code}, not 0 (completed), 1 (interrupted) or 2 (failed)"
        if out.status is not Status.COMPLETED and out.state is not None:
            out.result = decode(out.state, ext.manifest.state_encoding)
        return out


def _fuel_left(store: wasmtime.Store) -> int:
    try:
        return store.get_fuel()
    except wasmtime.WasmtimeError:
        return 0


def _usage(
    metered: bool, store: wasmtime.Store, fuel_budget: int, host: HostState, started: float, cpu_started: float
) -> Usage:
    """What a run consumed, core module or component alike."""
    return Usage(
        fuel=fuel_budget - _fuel_left(store) if metered else 0,
        wall_seconds=time.monotonic() - started,
        cpu_seconds=time.thread_time() - cpu_started,
        peak_memory_bytes=host.peak_memory(),
        host_calls=host.host_calls,
    )
