"""Bytes across the component boundary without a Python step per byte.

wasmtime's C API passes a ``list<u8>`` as an array of 32-byte ``wasmtime_component_val_t``
values, one per byte, and wasmtime-py converts them one by one (a 1 MB checkpoint took
seconds). These helpers read and build that array with strided slices instead: the
byte of element ``i`` sits at ``i * 32 + 8``. Used for ``checkpoint`` (an import) and
for calling ``execute`` (whose state is a ``list<u8>``).
"""

from __future__ import annotations

import ctypes
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime.component._enter import maybe_raise_last_exn

_VAL = ffi.wasmtime_component_val_t
_SIZE = ctypes.sizeof(_VAL)
_PAYLOAD = _VAL.of.offset
_U8 = ffi.WASMTIME_COMPONENT_U8.value
_U32 = ffi.WASMTIME_COMPONENT_U32.value


def list_bytes(val: Any) -> bytes:
    """The bytes of a lifted ``list<u8>`` value (a ``wasmtime_component_val_t``)."""
    vals = val.of.list
    n = vals.size
    if n == 0:
        return b""
    address = ctypes.cast(vals.data, ctypes.c_void_p).value
    return ctypes.string_at(address, n * _SIZE)[_PAYLOAD::_SIZE]


def _string(val: Any, text: bytes, keep: list[Any]) -> None:
    buf = ctypes.create_string_buffer(text, len(text))
    keep.append(buf)
    val.kind = ffi.WASMTIME_COMPONENT_STRING
    val.of.string.size = len(text)
    val.of.string.data = ctypes.cast(buf, ctypes.POINTER(ctypes.c_ubyte))


def _bytes(val: Any, data: bytes, keep: list[Any]) -> None:
    n = len(data)
    elements = bytearray(max(n, 1) * _SIZE)
    if n:
        elements[0 : n * _SIZE : _SIZE] = bytes((_U8,)) * n
        elements[_PAYLOAD : n * _SIZE : _SIZE] = data
    array = (ctypes.c_ubyte * len(elements)).from_buffer(elements)
    keep.append(array)
    val.kind = ffi.WASMTIME_COMPONENT_LIST
    val.of.list.size = n
    val.of.list.data = ctypes.cast(array, ctypes.POINTER(_VAL))


def call_execute(store: wasmtime.Store, func: Any, job: str, ctx: str, state: bytes) -> int:
    """Call ``execute(job: string, ctx: string, state: list<u8>) -> u32`` with Python-owned arguments.

    wasmtime only borrows the arguments during the call; errors and traps are raised as
    wasmtime-py's ``Func.__call__`` raises them. ``post_return`` is the caller's.
    """
    keep: list[Any] = []
    params = (_VAL * 3)()
    _string(params[0], job.encode(), keep)
    _string(params[1], ctx.encode(), keep)
    _bytes(params[2], state, keep)
    result = _VAL()
    error = ffi.wasmtime_component_func_call(ctypes.byref(func._func), store._context(), params, 3, ctypes.byref(result), 1)
    if error:
        exc = wasmtime.WasmtimeError._from_ptr(error)
        maybe_raise_last_exn()
        raise exc
    if result.kind != _U32:
        raise wasmtime.WasmtimeError(f"execute returned a value of kind {result.kind}, not u32")
    return int(result.of.u32)


def set_u32(results: Any, value: int) -> None:
    """Write ``value`` as the one ``u32`` result of a raw host callback."""
    out = results[0]
    out.kind = _U32
    out.of.u32 = value
