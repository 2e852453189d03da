"""The one door to wasmtime-py's private internals, and the public API behind it when they change.

The host-call speed comes from wasmtime's C API used directly (``wasmtime._ffi``,
``Store._context()``, ``Func._func``, ``Memory._memory``, the unchecked call and
define functions, struct overlays on raw value slots). None of that is public: it
was written for wasmtime-py :data:`WRITTEN_FOR`. On any other version, or when a
piece is missing, :func:`select` turns the fast paths off, logs one warning, and
every function here takes wasmtime-py's public API instead (slower, same results).
Nothing outside this module touches a private name of wasmtime.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from importlib.metadata import version as _installed
from typing import Any

import wasmtime

log = logging.getLogger(__name__)

WRITTEN_FOR = (50,)
"""The wasmtime-py major versions whose internals this module was written and tested against."""

_fast = False
_warned = False
_ffi: Any = None
_memory_data: Any = None
_raise_last: Any = None  # wasmtime-py's re-raise of an exception a host callback raised
_raise_last_component: Any = None  # the same for component calls


def wasmtime_version() -> str:
    return _installed("wasmtime")


def _internals_present() -> bool:
    try:
        from wasmtime import _ffi as ffi
        from wasmtime._func import maybe_raise_last_exn  # noqa: F401
        from wasmtime.component._enter import maybe_raise_last_exn as component_raise  # noqa: F401
    except ImportError:
        return False
    names = (
        "dll", "wasmtime_context_t", "wasmtime_memory_t", "wasmtime_val_raw_t", "wasm_trap_t",
        "wasmtime_func_call_unchecked", "wasmtime_memory_data_size", "wasmtime_linker_define_func_unchecked",
        "wasmtime_func_unchecked_callback_t", "wasmtime_component_val_t", "wasmtime_component_func_call",
        "wasmtime_component_func_callback_t", "wasmtime_component_linker_instance_add_func",
    )
    return (
        all(hasattr(ffi, n) for n in names)
        and hasattr(wasmtime.Store, "_context")
        and hasattr(wasmtime.Trap, "_from_ptr")
        and hasattr(wasmtime.Trap, "_consume")
        and hasattr(wasmtime.WasmtimeError, "_from_ptr")
        and hasattr(wasmtime.Linker, "ptr")
        and hasattr(wasmtime.FuncType, "ptr")
    )


def select(installed: str | None = None) -> bool:
    """Decide whether this process takes the fast paths: only on a wasmtime-py they were written for.

    ``installed`` stands in for the installed version (tests force the fallback with it).
    Logs one warning the first time the fast paths are refused. Returns whether they are on.
    """
    global _fast, _warned, _ffi, _memory_data, _raise_last, _raise_last_component
    installed = installed or wasmtime_version()
    try:
        major = int(installed.split(".", 1)[0])
    except ValueError:
        major = -1
    _fast = major in WRITTEN_FOR and _internals_present()
    if _fast:
        from wasmtime import _ffi as ffi
        from wasmtime._func import maybe_raise_last_exn
        from wasmtime.component._enter import maybe_raise_last_exn as component_raise

        _ffi, _raise_last, _raise_last_component = ffi, maybe_raise_last_exn, component_raise
        _memory_data = _address_returning(ffi, "wasmtime_memory_data")
    elif not _warned:
        _warned = True
        log.warning(
            "wasmtime-py %s is not one the host-call fast paths were written for (%s); using wasmtime's "
            "public API instead: jobs run the same, host calls are slower (see wasmjob/wasmtime_internals.py)",
            installed, ", ".join(f"{v}.x" for v in WRITTEN_FOR),
        )
    return _fast


def fast() -> bool:
    """Whether the fast paths are on in this process."""
    return _fast


def _address_returning(ffi: Any, name: str) -> Any:
    """Our own handle on a wasmtime C function returning a pointer, typed to give a plain int.

    wasmtime-py's binding returns ``POINTER(c_uint8)``, and the ``ctypes.cast`` to an
    address cost more than the call itself on every host call that touches memory.
    ``dll[name]`` is a fresh function object, so wasmtime-py's own stays as it was.
    """
    fn = ffi.dll[name]
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.POINTER(ffi.wasmtime_context_t), ctypes.POINTER(ffi.wasmtime_memory_t)]
    return fn


# memory and calls --------------------------------------------------------------------------


def memory_span(store: wasmtime.Store, memory: wasmtime.Memory) -> tuple[int, int]:
    """(base address, size in bytes) of ``memory`` now."""
    if _fast:
        ctx = store._context()
        raw = ctypes.byref(memory._memory)  # type: ignore[attr-defined]
        return _memory_data(ctx, raw) or 0, int(_ffi.wasmtime_memory_data_size(ctx, raw))
    size = memory.data_len(store)
    return (ctypes.addressof(memory.data_ptr(store).contents) if size else 0), size


def call_i32(store: wasmtime.Store, func: wasmtime.Func, *args: int) -> int:
    """Call an export whose signature the ABI check fixed (i32 parameters, at most one i32 result).

    ``Func.__call__`` looks the function's type up and converts every value through
    ``Val`` on each call (about 25 µs); wasmtime's unchecked call takes the raw values
    (about 2 µs). Only for signatures validated at load time (``abi.check_module``,
    ``abi.check_job_export``): an unchecked call with the wrong types is undefined.
    Errors and traps are raised exactly as ``Func.__call__`` raises them.
    """
    if not _fast:
        result = func(store, *args)
        return result if isinstance(result, int) else 0
    raw = (_ffi.wasmtime_val_raw_t * max(len(args), 1))()
    for i, value in enumerate(args):
        raw[i].i32 = value
    trap = ctypes.POINTER(_ffi.wasm_trap_t)()
    error = _ffi.wasmtime_func_call_unchecked(
        store._context(), ctypes.byref(func._func), raw, len(raw), ctypes.byref(trap)  # type: ignore[attr-defined]
    )
    if error:
        _raise_last()
        raise wasmtime.WasmtimeError._from_ptr(error)  # type: ignore[attr-defined]
    if trap:
        exc = wasmtime.Trap._from_ptr(trap)  # type: ignore[attr-defined]
        _raise_last()
        raise exc
    return int(raw[0].i32)


# unchecked host functions (only when fast() is on) -------------------------------------------


def slot_struct(*fields: tuple[str, Any]) -> type[ctypes.Structure]:
    """A struct laying named scalars over consecutive raw value slots.

    Indexing the raw value array builds a union object per argument (about 0.25 µs
    each); one struct read through its pointer reads them all as fields.
    """
    slot = ctypes.sizeof(_ffi.wasmtime_val_raw_t)
    layout: list[tuple[str, Any]] = []
    for i, (name, kind) in enumerate(fields):
        layout += [(name, kind), (f"_pad{i}", ctypes.c_uint8 * (slot - ctypes.sizeof(kind)))]
    return type("Slots", (ctypes.Structure,), {"_fields_": layout})


def raw_values() -> Any:
    """The raw value slot type, for callbacks that index their arguments (``args[i].i32``)."""
    return _ffi.wasmtime_val_raw_t


def trap_pointer(message: str) -> int:
    """A new trap with ``message``, as the address an unchecked callback returns."""
    trap = wasmtime.Trap(message)
    return ctypes.cast(trap._consume(), ctypes.c_void_p).value or 0  # type: ignore[attr-defined]


_KEEP_ALIVE: list[Any] = []
_NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType,
    callback: Callable[..., int], args: type[ctypes.Structure] | None = None,
) -> None:
    """Define ``module.name`` on ``linker`` with wasmtime's unchecked function API.

    ``callback(env, caller, args, nargs)`` returns 0 or a trap address; with ``args``, its
    value array arrives typed as that struct (see :func:`slot_struct`) and env and caller
    as plain addresses (cheaper than building pointer objects).
    """
    if args is not None:
        typed = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(args), ctypes.c_size_t)
        own = typed(callback)
        cb = ctypes.cast(own, _ffi.wasmtime_func_unchecked_callback_t)
    else:
        own = cb = _ffi.wasmtime_func_unchecked_callback_t(callback)
    module_bytes, name_bytes = module.encode(), name.encode()
    err = _ffi.wasmtime_linker_define_func_unchecked(
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
        raise wasmtime.WasmtimeError._from_ptr(err)  # type: ignore[attr-defined]
    _KEEP_ALIVE.append((own, cb, ty))


select()


# components (only when fast() is on) ------------------------------------------------------------


def c_api() -> Any:
    """wasmtime's C API bindings, for the component fast paths' value layouts; only while :func:`fast`."""
    if not _fast:
        raise RuntimeError("wasmtime's C API is used only on a wasmtime-py the fast paths were written for")
    return _ffi


def error_pointer(message: str) -> int:
    """A new wasmtime error with ``message``, as the address a raw component callback returns."""
    err = wasmtime.WasmtimeError(message)
    return ctypes.cast(err._consume(), ctypes.c_void_p).value or 0  # type: ignore[attr-defined]


def add_component_raw(instance: Any, name: str, callback: Callable[..., int]) -> None:
    """Define ``name`` on a component LinkerInstance as a raw callback that reads the lowered values."""
    own = _ffi.wasmtime_component_func_callback_t(callback)
    name_bytes = name.encode()
    err = _ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(name_bytes), len(name_bytes), own, None, _NO_FINALIZER
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)  # type: ignore[attr-defined]
    _KEEP_ALIVE.append(own)


def component_call(store: wasmtime.Store, func: Any, params: Any, nparams: int, result: Any, nresults: int) -> None:
    """Call a component function with raw values; errors and traps raised as ``Func.__call__`` raises them."""
    error = _ffi.wasmtime_component_func_call(
        ctypes.byref(func._func), store._context(), params, nparams, result, nresults
    )
    if error:
        exc = wasmtime.WasmtimeError._from_ptr(error)  # type: ignore[attr-defined]
        _raise_last_component()
        raise exc
