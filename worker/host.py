"""The host side of the ABI: what each ``spacedrive`` import does during one run.

A :class:`HostState` is made per run and bound to the running thread; the
import callbacks (see ``linking.py``) find it there. Every pointer the guest
passes is bounds-checked before the host touches memory. Hot calls
(``job_check_interrupt``, progress, metrics) only touch memory and Python
attributes; the store is written at a bounded rate by :meth:`HostState.flush`.
"""

from __future__ import annotations

import ctypes
import json
import math
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import wasmtime

from .abi import JobInfo, LogLevel
from .errors import (
    BadPointer,
    CheckpointTooLarge,
    HostAbort,
    LeaseLost,
    StoreUnavailable,
    WasmJobError,
)
from .job import InterruptFlag, InterruptReason, Limits
from .store.base import CheckpointStore, LogLine, ProgressUpdate
from .wasmtime_internals import call_i32, memory_span

if TYPE_CHECKING:
    from .ops import OpContext, Operations
    from .snapshot.driver import Unwinder

FLUSH_INTERVAL = 0.25
MAX_LINE = 4096
MAX_WARNING = 1024
MAX_MESSAGE = 512
MAX_NAME = 256
MAX_CALL_PAYLOAD = 1024 * 1024
_MASK32 = 0xFFFFFFFF

_current = threading.local()


_NO_MEMORY = memoryview(b"")


def current() -> HostState | None:
    """The HostState of the run on this thread, if any."""
    return getattr(_current, "host", None)


class HostState:
    """Everything the imports of one run read and write; takes the run's job, store and limits."""

    def __init__(
        self,
        *,
        job_id: str,
        library_id: str,
        extension_id: str,
        job_name: str,
        limits: Limits,
        store: CheckpointStore | None,
        token: int,
        interrupts: InterruptFlag,
        operations: Operations | None,
        op_context: OpContext | None,
    ) -> None:
        self.job_id = job_id
        self.library_id = library_id
        self.extension_id = extension_id
        self.job_name = job_name
        self.limits = limits
        self.store = store
        self.token = token
        self.interrupts = interrupts
        self.operations = operations
        self.op_context = op_context
        self.registered: list[JobInfo] = []  # the register_job calls of plugin_init
        self.registering = False
        self.abort: BaseException | None = None
        self.guest_error: str | None = None
        self.host_error: str | None = None
        self.host_calls = 0
        self.slice_deadline = math.inf
        self.unwinder: Unwinder | None = None  # set for extensions in snapshot mode
        self.lease_lost = False
        self.store_error: str | None = None
        self.store_error_transient = False
        self.last_state: bytes | None = None
        self.checkpoints = 0
        self.progress = 0.0
        self.message = ""
        self.items = 0
        self.bytes = 0
        self.log_bytes = 0
        self.logs_dropped = 0
        self.logs: list[LogLine] = []
        self.warnings: list[str] = []
        self.pending = ProgressUpdate()
        self._last_flush = time.monotonic()
        self._pending_out: ProgressUpdate | None = None
        self._wasm_store: wasmtime.Store | None = None
        self._memory: wasmtime.Memory | None = None
        self._alloc: wasmtime.Func | None = None
        self._mem_base = 0
        self._mem_size = 0
        self._view = _NO_MEMORY

    # binding -----------------------------------------------------------------

    def attach(self, wasm_store: wasmtime.Store, memory: wasmtime.Memory, alloc: Any) -> None:
        """Give the host the instance's memory and allocator once it exists.

        The engine is made with ``memory_may_move`` off, so the base address kept here
        stays valid for the whole run; the size only grows, so a range inside the kept
        size is inside memory, and wasmtime is asked again only when a check fails.
        A memoryview over the kept range copies short strings out faster than
        ``ctypes.string_at``; it is dropped when the run leaves the thread.
        """
        self._wasm_store = wasm_store
        self._memory = memory
        self._alloc = alloc
        self._base_and_size()

    def __enter__(self) -> HostState:
        _current.host = self
        return self

    def __exit__(self, *exc: object) -> None:
        _current.host = None
        self._view = _NO_MEMORY
        self._mem_size = 0

    # memory ------------------------------------------------------------------

    def _base_and_size(self) -> tuple[int, int]:
        if self._memory is None or self._wasm_store is None:
            raise HostAbort("host function called before the instance's memory exists", job_id=self.job_id)
        base, size = memory_span(self._wasm_store, self._memory)
        self._mem_base = base
        self._mem_size = size
        self._view = memoryview((ctypes.c_ubyte * size).from_address(base)) if base and size else _NO_MEMORY
        return base, size

    def check_range(self, ptr: int, length: int, fn: str) -> None:
        """Fail with BadPointer unless [ptr, ptr+length) lies inside guest memory."""
        ptr &= _MASK32
        if length < 0 or ptr + length > self._mem_size:
            _, size = self._base_and_size()
            if length < 0 or ptr + length > size:
                raise BadPointer(
                    f"bad pointer passed to {fn}: range {ptr}..{ptr + length} is outside guest memory of {size} bytes",
                    job_id=self.job_id,
                )

    def read(self, ptr: int, length: int, fn: str) -> bytes:
        """Copy ``length`` bytes out of guest memory after a bounds check."""
        ptr &= _MASK32
        length &= _MASK32
        if ptr + length > self._mem_size:
            self.check_range(ptr, length, fn)
        return self._view[ptr : ptr + length].tobytes()

    def read_text(self, ptr: int, length: int, fn: str, cap: int) -> str:
        """Read UTF-8 text (invalid bytes replaced), keeping at most ``cap`` bytes."""
        data = self.read(ptr, length, fn)
        if len(data) > cap:
            data = data[:cap] + b"...[truncated]"
        return data.decode("utf-8", errors="replace")

    def write_alloc(self, data: bytes, fn: str) -> int:
        """Allocate with the guest's ``wasm_alloc`` and copy ``data`` in; returns the pointer."""
        if not isinstance(self._alloc, wasmtime.Func) or self._wasm_store is None:
            raise HostAbort(f"{fn} needs the module to export wasm_alloc", job_id=self.job_id)
        ptr = call_i32(self._wasm_store, self._alloc, len(data)) & _MASK32
        if ptr == 0 and data:
            raise HostAbort(f"wasm_alloc({len(data)}) returned 0 (out of guest memory) in {fn}", job_id=self.job_id)
        if ptr + len(data) > self._mem_size:  # wasm_alloc may have grown memory
            _, size = self._base_and_size()
            if ptr + len(data) > size:
                raise BadPointer(f"wasm_alloc returned {ptr}, outside guest memory, in {fn}", job_id=self.job_id)
        ctypes.memmove(self._mem_base + ptr, data, len(data))
        return ptr

    def peak_memory(self) -> int:
        """Linear memory never shrinks, so its size now is its peak."""
        if self._memory is None or self._wasm_store is None:
            return 0
        return int(self._memory.data_len(self._wasm_store))

    def write_at(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` into guest memory at ``ptr`` after a bounds check (host-owned ranges only)."""
        self.check_range(ptr, len(data), "the host")
        ctypes.memmove(self._mem_base + (ptr & _MASK32), data, len(data))

    def memory_bytes(self) -> bytes:
        """A copy of the whole linear memory (for snapshots)."""
        base, size = self._base_and_size()
        return ctypes.string_at(base, size) if base and size else b""

    def replace_memory(self, data: bytes | bytearray) -> None:
        """Overwrite linear memory with ``data`` and zero the rest (memory was grown to fit first)."""
        base, size = self._base_and_size()
        if len(data) > size:
            raise HostAbort(f"cannot restore {len(data)} bytes into a memory of {size}", job_id=self.job_id)
        source = (ctypes.c_char * len(data)).from_buffer(data) if isinstance(data, bytearray) else data
        ctypes.memmove(base, source, len(data))
        ctypes.memset(base + len(data), 0, size - len(data))

    # the operations, shared by both bindings ----------------------------------
    # The core imports below and the component host (``component/linking.py``) read
    # their arguments out of the guest and call these; limits, permissions, metering
    # and the store live here once. ``job_check_interrupt`` and ``job_report_progress``
    # keep inlined copies of ``check_interrupt`` and ``report_progress`` (the core fast
    # path); tests hold both versions to the same results.

    def log(self, level: int, text: str) -> None:
        """One guest log line; an error line becomes the failure reason."""
        level = level if 0 <= level <= 3 else int(LogLevel.INFO)
        if level == LogLevel.ERROR:
            self.guest_error = text
        self._log(level, text)

    def report_progress(self, progress: float, message: str) -> None:
        """Progress clamped to [0, 1] (NaN keeps the last value) and a message; flushed at a bounded rate."""
        pending = self.pending
        if not math.isnan(progress):
            progress = 1.0 if progress > 1.0 else max(progress, 0.0)
            self.progress = pending.progress = progress
        self.message = pending.message = message
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def checkpoint_refused(self, length: int) -> bool:
        """True (and the refusal recorded) when a state of ``length`` bytes is over the job's limit."""
        if length <= self.limits.max_checkpoint_bytes:
            return False
        self._warn_once(f"checkpoint of {length} bytes refused: the limit is {self.limits.max_checkpoint_bytes} bytes")
        self.store_error = f"checkpoint of {length} bytes exceeds the limit of {self.limits.max_checkpoint_bytes}"
        self.store_error_transient = False
        return True

    def checkpoint(self, state: bytes) -> int:
        """Save ``state`` under the lease; 0 = saved, 1 = not saved (the reason is kept)."""
        if self.checkpoint_refused(len(state)) or self.lease_lost:
            return 1
        if self.store is not None:
            update, self.pending = self.pending, ProgressUpdate()
            try:
                self.store.save_checkpoint(self.job_id, self.token, state, update)
            except LeaseLost:
                self._lose_lease()
                return 1
            except (StoreUnavailable, WasmJobError) as exc:
                self._merge_back(update)
                self.store_error = exc.reason
                self.store_error_transient = not isinstance(exc, CheckpointTooLarge)
                return 1
            self._last_flush = time.monotonic()
        self.store_error = None
        self.last_state = state
        self.checkpoints += 1
        return 0

    def check_interrupt(self) -> int:
        """1 when the job was paused or cancelled or its slice is over, else 0; no I/O."""
        flag = self.interrupts
        if flag.reason is not None:
            return 1
        if time.monotonic() >= self.slice_deadline:
            flag.request(InterruptReason.SLICE)
            return 1
        return 0

    def add_warning(self, text: str) -> None:
        """A non-fatal problem kept with the job (at most ``max_warnings``)."""
        if len(self.warnings) < self.limits.max_warnings:
            self.warnings.append(text)
            self.pending.warnings.append(text)
        self._maybe_flush()

    def add_bytes(self, n: int) -> None:
        if n > 0:
            self.bytes += n
            self.pending.bytes += n
            self._maybe_flush()

    def add_items(self, n: int) -> None:
        if n > 0:
            self.items += n
            self.pending.items += n
            self._maybe_flush()

    def call(self, method: str, library: str, payload_raw: bytes) -> bytes | None:
        """Run host operation ``method`` after the permission and rate checks; the JSON
        result, or None when refused or failed (the reason is logged at level 3)."""
        if len(payload_raw) > MAX_CALL_PAYLOAD:
            self._host_error(f"spacedrive_call {method}: payload over {MAX_CALL_PAYLOAD} bytes")
            return None
        if self.operations is None or self.op_context is None:
            self._host_error(f"spacedrive_call {method}: no host operations in this context")
            return None
        try:
            payload = json.loads(payload_raw) if payload_raw else None
            result = self.operations.dispatch(method, library, payload, self.op_context)
        except ValueError as exc:
            self._host_error(f"spacedrive_call {method}: payload is not JSON ({exc})")
            return None
        except LeaseLost:
            self._lose_lease()
            return None
        except WasmJobError as exc:
            self._host_error(f"spacedrive_call {method} failed: {exc.reason}")
            return None
        return json.dumps(result, separators=(",", ":")).encode()

    # the core imports: bounds checks and guest memory, then the operations above --

    def spacedrive_log(self, level: int, ptr: int, length: int) -> None:
        self.log(level, self.read_text(ptr, length, "spacedrive_log", MAX_LINE))

    def register_job(self, name_ptr: int, name_len: int, export_ptr: int, export_len: int, resumable: int) -> int:
        if not self.registering:
            self._log(int(LogLevel.WARN), "register_job called outside plugin_init: ignored")
            return 1
        name = self.read_text(name_ptr, name_len, "register_job", MAX_NAME)
        export = self.read_text(export_ptr, export_len, "register_job", MAX_NAME)
        if not name or not export:
            return 1
        self.registered.append(JobInfo(name, export, resumable != 0))
        return 0

    def job_report_progress(self, job_ptr: int, progress: float, msg_ptr: int, msg_len: int) -> None:
        # Spacedrive-style jobs call this on every step: the checks, read_text and
        # report_progress are inlined (same results, about half the cost).
        unwinder = self.unwinder
        if unwinder is not None and unwinder.at_progress():
            return  # the end of a rewind: this report was made before the snapshot
        msg_ptr &= _MASK32
        msg_len &= _MASK32
        size = self._mem_size
        if (job_ptr & _MASK32) + 16 > size or msg_ptr + msg_len > size:
            self.check_range(job_ptr, 16, "job_report_progress")
            if msg_len:
                self.check_range(msg_ptr, msg_len, "job_report_progress")
        if msg_len == 0:
            message = ""
        elif msg_len <= MAX_MESSAGE:
            message = self._view[msg_ptr : msg_ptr + msg_len].tobytes().decode("utf-8", "replace")
        else:
            raw = self._view[msg_ptr : msg_ptr + MAX_MESSAGE].tobytes() + b"...[truncated]"
            message = raw.decode("utf-8", "replace")
        pending = self.pending
        if not math.isnan(progress):
            progress = 1.0 if progress > 1.0 else max(progress, 0.0)
            self.progress = pending.progress = progress
        self.message = pending.message = message
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()
        if unwinder is not None:
            unwinder.after_progress()

    def job_checkpoint(self, job_ptr: int, state_ptr: int, state_len: int) -> int:
        if job_ptr & _MASK32 > self._mem_size - 16:
            self.check_range(job_ptr, 16, "job_checkpoint")
        self.check_range(state_ptr, state_len, "job_checkpoint")
        if self.checkpoint_refused(state_len):  # before copying an oversized state out
            return 1
        return self.checkpoint(self.read(state_ptr, state_len, "job_checkpoint"))

    def job_check_interrupt(self, job_ptr: int) -> int:
        # check_interrupt inlined: the hottest call of all
        if job_ptr & _MASK32 > self._mem_size - 16:
            self.check_range(job_ptr, 16, "job_check_interrupt")
        if self.unwinder is not None:
            return self.unwinder.at_check()
        flag = self.interrupts
        if flag.reason is not None:
            return 1
        if time.monotonic() >= self.slice_deadline:
            flag.request(InterruptReason.SLICE)
            return 1
        return 0

    def job_add_warning(self, job_ptr: int, msg_ptr: int, msg_len: int) -> None:
        if job_ptr & _MASK32 > self._mem_size - 16:
            self.check_range(job_ptr, 16, "job_add_warning")
        self.add_warning(self.read_text(msg_ptr, msg_len, "job_add_warning", MAX_WARNING))

    def job_increment_bytes(self, job_ptr: int, n: int) -> None:
        if job_ptr & _MASK32 > self._mem_size - 16:
            self.check_range(job_ptr, 16, "job_increment_bytes")
        self.add_bytes(n)

    def job_increment_items(self, job_ptr: int, n: int) -> None:
        if job_ptr & _MASK32 > self._mem_size - 16:
            self.check_range(job_ptr, 16, "job_increment_items")
        self.add_items(n)

    def spacedrive_call(self, method_ptr: int, method_len: int, lib_ptr: int, payload_ptr: int, payload_len: int) -> int:
        method = self.read_text(method_ptr, method_len, "spacedrive_call", MAX_NAME)
        library = str(uuid.UUID(bytes=self.read(lib_ptr, 16, "spacedrive_call")))
        if payload_len & _MASK32 > MAX_CALL_PAYLOAD:  # refused before copying it out
            self._host_error(f"spacedrive_call {method}: payload over {MAX_CALL_PAYLOAD} bytes")
            return 0
        body = self.call(method, library, self.read(payload_ptr, payload_len, "spacedrive_call"))
        if body is None:
            return 0
        return self.write_alloc(len(body).to_bytes(4, "little") + body, "spacedrive_call")

    # bookkeeping -------------------------------------------------------------

    def _host_error(self, text: str) -> None:
        """Log a failure the host saw on the guest's behalf (e.g. a refused call)."""
        self.host_error = text
        self._log(int(LogLevel.ERROR), text)

    def _log(self, level: int, text: str) -> None:
        size = len(text)
        if self.log_bytes + size > self.limits.max_log_bytes:
            if self.logs_dropped == 0:
                self._warn_once(f"log limit of {self.limits.max_log_bytes} bytes reached: further lines dropped")
            self.logs_dropped += 1
            return
        self.log_bytes += size
        line = LogLine(time.time(), level, text)
        self.logs.append(line)
        self.pending.logs.append(line)
        self._maybe_flush()

    def _warn_once(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            self.pending.warnings.append(text)

    def take_pending(self) -> ProgressUpdate:
        """The progress not yet written, handed to a snapshot that writes it along."""
        update, self.pending = self.pending, ProgressUpdate()
        self._pending_out = update
        return update

    def snapshot_saved(self) -> None:
        self._last_flush = time.monotonic()
        self._pending_out = None

    def snapshot_failed(self, reason: str) -> None:
        """A snapshot was not written: keep its progress for the next write and warn once."""
        if self._pending_out is not None:
            self._merge_back(self._pending_out)
            self._pending_out = None
        self._warn_once(f"snapshot not saved: {reason}")

    def lose_lease(self) -> None:
        """Another run took the job over: stop writing and ask the guest to stop."""
        self._lose_lease()

    def _lose_lease(self) -> None:
        self.lease_lost = True
        self.store_error = "lease lost: another worker took this job over"
        self.store_error_transient = True
        self.interrupts.request(InterruptReason.SHUTDOWN)

    def _merge_back(self, update: ProgressUpdate) -> None:
        fresh = self.pending
        update.items += fresh.items
        update.bytes += fresh.bytes
        update.logs.extend(fresh.logs)
        update.warnings.extend(fresh.warnings)
        if fresh.progress is not None:
            update.progress = fresh.progress
        if fresh.message is not None:
            update.message = fresh.message
        self.pending = update

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write pending progress to the store; a failed write is kept for the next one."""
        self._last_flush = time.monotonic()
        if self.store is None or self.pending.empty() or self.lease_lost:
            return
        update, self.pending = self.pending, ProgressUpdate()
        try:
            self.store.record_progress(self.job_id, self.token, update)
        except LeaseLost:
            self._lose_lease()
        except WasmJobError:
            self._merge_back(update)
