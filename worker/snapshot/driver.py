"""Runs a job export of an instrumented module, unwinding it at safe points to take snapshots.

At a safe point (``job_check_interrupt``, ``job_report_progress``) the host asks
for an unwind when a pause, cancel, slice end, worker shutdown or a periodic
snapshot is due: it calls ``asyncify_start_unwind`` and returns; every frame
spills its locals to the buffer and the export returns. The driver stops the
unwind, saves memory + mutable globals + the buffer's address + the call, and
then either stops (an interrupt: the run ends as *interrupted*) or rewinds the
same instance and calls the export again, which rebuilds its frames and carries
on from the safe point as though the import had returned 0. A resumed run
restores an image into a fresh instance (after ``plugin_init``) and rewinds it.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import wasmtime

from ..abi import ReturnCode
from ..errors import CheckpointTooLarge, LeaseLost, SnapshotError, StoreUnavailable, WasmJobError
from ..wasmtime_internals import call_i32
from ..job import InterruptReason
from .globals_export import GLOBAL_EXPORT_PREFIX
from .image import Image
from .storage import SnapshotStore

if TYPE_CHECKING:
    from ..host import HostState

log = logging.getLogger(__name__)

BUFFER_BYTES = 256 * 1024
"""Room for the unwound frames' locals; a deeper stack than this cannot be snapshotted."""
NORMAL, UNWINDING, REWINDING = 0, 1, 2
PERIODIC = "periodic"
_VALTYPES = {"i32": wasmtime.Val.i32, "i64": wasmtime.Val.i64, "f32": wasmtime.Val.f32, "f64": wasmtime.Val.f64}


class Unwinder:
    """The snapshot side of one run; takes the run's host state, store, instance, snapshot store and
    the period of snapshots in seconds of run time (None = only when a stop is asked for)."""

    def __init__(
        self,
        host: HostState,
        store: wasmtime.Store,
        instance: wasmtime.Instance,
        snapshots: SnapshotStore | None,
        every: float | None,
    ) -> None:
        exports = instance.exports(store)
        self.host = host
        self.store = store
        memory = exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise SnapshotError("module does not export its linear memory as 'memory'")
        self.memory = memory
        self._start_unwind = self._func(exports, "asyncify_start_unwind")
        self._stop_unwind = self._func(exports, "asyncify_stop_unwind")
        self._start_rewind = self._func(exports, "asyncify_start_rewind")
        self._stop_rewind = self._func(exports, "asyncify_stop_rewind")
        self._get_state = self._func(exports, "asyncify_get_state")
        self.globals: dict[str, wasmtime.Global] = {
            name: g for name, g in exports.items() if name.startswith(GLOBAL_EXPORT_PREFIX) and isinstance(g, wasmtime.Global)
        }
        self.snapshots = snapshots
        self.every = every
        self.buffer = 0
        self.rewinding = False
        self.pending: str | None = None
        self.next_snapshot = time.monotonic() + every if every else math.inf

    @staticmethod
    def _func(exports: Mapping[str, object], name: str) -> wasmtime.Func:
        func = exports.get(name)
        if not isinstance(func, wasmtime.Func):
            raise SnapshotError(f"instrumented module lacks the export {name}")
        return func

    # safe points (called from the host's imports) -------------------------------------

    def at_check(self) -> int:
        """``job_check_interrupt`` in snapshot mode: 0 to carry on; an unwind when a stop or snapshot is due."""
        if self.rewinding:
            self._finish_rewind()
            return 0
        self._maybe_unwind()
        return 0

    def at_progress(self) -> bool:
        """Before a progress report: True when this call is the end of a rewind (the report was made)."""
        if self.rewinding:
            self._finish_rewind()
            return True
        return False

    def after_progress(self) -> None:
        """After a progress report: unwind when a stop or snapshot is due."""
        self._maybe_unwind()

    def _maybe_unwind(self) -> None:
        host = self.host
        flag = host.interrupts
        if flag.reason is not None:
            self._unwind(flag.reason.value)
            return
        now = time.monotonic()
        if now >= host.slice_deadline:
            flag.request(InterruptReason.SLICE)
            self._unwind(InterruptReason.SLICE.value)
        elif now >= self.next_snapshot:
            self._unwind(PERIODIC)

    def allocate_buffer(self) -> None:
        """Take the unwind buffer from the guest's allocator before the job starts: the guest is
        idle then, so no allocator of its is re-entered in the middle of the job."""
        self.buffer = self.host.write_alloc(bytes(8 + BUFFER_BYTES), "the snapshot buffer")

    def _unwind(self, reason: str) -> None:
        if self.buffer == 0:
            raise SnapshotError("the unwind buffer was never allocated", job_id=self.host.job_id)
        self._reset_buffer()
        call_i32(self.store, self._start_unwind, self.buffer)
        self.pending = reason

    def _reset_buffer(self) -> None:
        header = (ctypes.c_uint32 * 2)(self.buffer + 8, self.buffer + 8 + BUFFER_BYTES)
        self.host.write_at(self.buffer, bytes(header))

    def _finish_rewind(self) -> None:
        call_i32(self.store, self._stop_rewind)
        self.rewinding = False

    # the run ----------------------------------------------------------------------------

    def execute(self, func: wasmtime.Func, export: str, args: tuple[int, ...], *, rewind: bool = False) -> int:
        """Call the job export until it returns for good or stops for an interrupt; returns its code."""
        while True:
            if rewind:
                self.rewinding = True
                call_i32(self.store, self._start_rewind, self.buffer)
            try:
                code = call_i32(self.store, func, *args)
            except wasmtime.Trap as exc:
                if self.pending is None or self.host.abort is not None:
                    raise
                raise SnapshotError(
                    f"the call stack is too deep to snapshot: its locals outgrew the {BUFFER_BYTES // 1024} KiB buffer",
                    job_id=self.host.job_id,
                ) from exc
            state = call_i32(self.store, self._get_state)
            if state == REWINDING or self.rewinding:
                raise SnapshotError("the resumed job returned before reaching the safe point it was snapshotted at")
            if state == NORMAL:
                if self.pending is not None:
                    raise SnapshotError("the job returned while the host was unwinding it")
                return code
            call_i32(self.store, self._stop_unwind)
            reason, self.pending = self.pending, None
            self._save(self.capture(export, args, reason or PERIODIC))
            if reason != PERIODIC or self.host.lease_lost:
                return int(ReturnCode.INTERRUPTED)
            # after a failed save too: the next try waits a period rather than hammering the store
            self.next_snapshot = time.monotonic() + (self.every or math.inf)
            rewind = True

    def capture(self, export: str, args: tuple[int, ...], reason: str) -> Image:
        """The guest as it is now (call only between stop_unwind and the next call into it)."""
        return Image(
            memory=self.host.memory_bytes(),
            globals={name: [str(g.type(self.store).content), g.value(self.store)] for name, g in self.globals.items()},
            buffer=self.buffer,
            export=export,
            args=args,
            last_state=self.host.last_state,
            reason=reason,
        )

    def _save(self, image: Image) -> None:
        host = self.host
        if self.snapshots is None or host.lease_lost:
            return
        try:
            self.snapshots.save(image, host.take_pending())
        except LeaseLost:
            host.snapshot_failed("lease lost")
            host.lose_lease()
            return
        except CheckpointTooLarge as exc:  # every later snapshot would be refused too: stop here
            host.snapshot_failed(exc.reason)
            raise SnapshotError(exc.reason, job_id=host.job_id) from exc
        except (StoreUnavailable, WasmJobError) as exc:  # the job goes on; the next snapshot may succeed
            host.snapshot_failed(exc.reason)
            return
        host.snapshot_saved()

    def restore(self, image: Image) -> None:
        """Put ``image`` into this (fresh, initialised) instance: memory, globals, buffer."""
        started = time.perf_counter()
        have = self.memory.size(self.store)
        want = len(image.memory) // 65536
        if want > have:
            try:
                self.memory.grow(self.store, want - have)
            except wasmtime.WasmtimeError as exc:
                raise SnapshotError(
                    f"cannot restore the snapshot: its {len(image.memory)} bytes of memory exceed the job's memory limit"
                ) from exc
        self.host.replace_memory(image.memory)
        for name, (kind, value) in image.globals.items():
            glob = self.globals.get(name)
            if glob is None or kind not in _VALTYPES:
                raise SnapshotError(f"snapshot has global {name} ({kind}) that this module does not export")
            glob.set_value(self.store, _VALTYPES[kind](value))
        self.buffer = image.buffer
        self.host.last_state = image.last_state
        if self.snapshots is not None:
            self.snapshots.stats.restore_seconds += time.perf_counter() - started
