"""How the ``spacedrive`` imports are defined on a Linker: a fast path and a plain one.

wasmtime-py's ``Linker.define_func`` converts every argument and result through
``Val`` objects (several microseconds per call). The fast path registers the
same :class:`~wasmjob.host.HostState` methods with wasmtime's *unchecked* C API,
reading and writing the raw value array directly. Both paths are
store-independent, so one Linker (and one InstancePre per module) serves every
run in the process; tests run the ABI through both and expect the same results.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from .abi import IMPORT_MODULE, IMPORTS, functype
from .errors import HostAbort
from .host import HostState, current

_KEEP_ALIVE: list[Any] = []
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()


def _trap_pointer(message: str) -> int:
    trap = wasmtime.Trap(message)
    return ctypes.cast(trap._consume(), ctypes.c_void_p).value or 0


def _no_run_trap() -> int:
    return _trap_pointer("wasmjob: host function called outside a run")


def _fail(host: HostState, exc: BaseException) -> int:
    if host.abort is None:
        host.abort = exc
    return _trap_pointer(f"wasmjob host abort: {exc}")


_SLOT = ctypes.sizeof(ffi.wasmtime_val_raw_t)


def _slots(*fields: tuple[str, Any]) -> type[ctypes.Structure]:
    """A struct laying named scalars over consecutive ``wasmtime_val_raw_t`` slots.

    Indexing ``POINTER(wasmtime_val_raw_t)`` builds a union object per argument
    (about 0.25 µs each); one struct read through its pointer reads them all as fields.
    """
    layout: list[tuple[str, Any]] = []
    for i, (name, kind) in enumerate(fields):
        layout += [(name, kind), (f"_pad{i}", ctypes.c_uint8 * (_SLOT - ctypes.sizeof(kind)))]
    return type("Slots", (ctypes.Structure,), {"_fields_": layout})


_ProgressArgs = _slots(
    ("job", ctypes.c_int32), ("progress", ctypes.c_float), ("msg_ptr", ctypes.c_int32), ("msg_len", ctypes.c_int32)
)
_InterruptArgs = _slots(("value", ctypes.c_int32))


def _callback_type(args: type[ctypes.Structure]) -> Any:
    """The unchecked callback's C type with the value array typed as ``args`` and the
    env and caller as plain addresses (cheaper than building pointer objects)."""
    return ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(args), ctypes.c_size_t)


_CALLBACK_TYPES = {
    "job_check_interrupt": _callback_type(_InterruptArgs),
    "job_report_progress": _callback_type(_ProgressArgs),
}


def _unchecked(name: str) -> Callable[..., int]:
    """A raw callback for import ``name`` that calls the HostState method of that name."""
    params, results = IMPORTS[name]
    method = getattr(HostState, name)
    kinds = tuple(params)
    has_result = bool(results)

    if name == "job_check_interrupt":

        def check_interrupt(env: Any, caller: Any, args: Any, nargs: int) -> int:
            host = current()
            if host is None:
                return _no_run_trap()
            host.host_calls += 1
            slot = args.contents
            try:
                slot.value = host.job_check_interrupt(slot.value)
            except BaseException as exc:
                return _fail(host, exc)
            return 0

        return check_interrupt

    if name == "job_report_progress":
        # called on every step by Spacedrive-style jobs: arguments read directly, no list

        def report_progress(env: Any, caller: Any, args: Any, nargs: int) -> int:
            host = current()
            if host is None:
                return _no_run_trap()
            host.host_calls += 1
            a = args.contents
            try:
                host.job_report_progress(a.job, a.progress, a.msg_ptr, a.msg_len)
            except BaseException as exc:
                return _fail(host, exc)
            return 0

        return report_progress

    def callback(env: Any, caller: Any, args: Any, nargs: int) -> int:
        host = current()
        if host is None:
            return _no_run_trap()
        host.host_calls += 1
        try:
            values = [getattr(args[i], kind) for i, kind in enumerate(kinds)]
            result = method(host, *values)
            if has_result:
                args[0].i32 = result
        except BaseException as exc:
            return _fail(host, exc)
        return 0

    return callback


def define_fast(linker: wasmtime.Linker) -> None:
    """Define every import with wasmtime's unchecked function API."""
    module_bytes = IMPORT_MODULE.encode()
    for name, sig in IMPORTS.items():
        typed = _CALLBACK_TYPES.get(name)
        own = (typed or ffi.wasmtime_func_unchecked_callback_t)(_unchecked(name))
        cb = ctypes.cast(own, ffi.wasmtime_func_unchecked_callback_t) if typed else own
        ty = functype(sig)
        name_bytes = name.encode()
        err = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(),
            ctypes.create_string_buffer(module_bytes),
            len(module_bytes),
            ctypes.create_string_buffer(name_bytes),
            len(name_bytes),
            ty.ptr(),
            cb,
            None,
            _NO_FINALIZER,
        )
        if err:
            raise wasmtime.WasmtimeError._from_ptr(err)
        _KEEP_ALIVE.append((own, cb, ty))


def _plain(name: str) -> Callable[..., Any]:
    method = getattr(HostState, name)

    def call(*args: Any) -> Any:
        host = current()
        if host is None:
            raise HostAbort("host function called outside a run")
        host.host_calls += 1
        try:
            return method(host, *args)
        except BaseException as exc:
            if host.abort is None:
                host.abort = exc
            raise

    return call


def define_plain(linker: wasmtime.Linker) -> None:
    """Define every import through wasmtime-py's ordinary ``define_func``."""
    for name, sig in IMPORTS.items():
        linker.define_func(IMPORT_MODULE, name, functype(sig), _plain(name))


def make_linker(engine: wasmtime.Engine, *, fast: bool = True, wasi: bool = False) -> wasmtime.Linker:
    """A Linker with the ABI imports (and WASI only when asked for)."""
    linker = wasmtime.Linker(engine)
    (define_fast if fast else define_plain)(linker)
    if wasi:
        linker.define_wasi()
    return linker
