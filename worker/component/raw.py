"""Bytes across the component boundary without a Python step per byte.

wasmtime's C API passes a ``list<u8>`` as an array of 32-byte ``wasmtime_component_val_t``
values, one per byte, and wasmtime-py converts them one by one (a 1 MB checkpoint took
seconds). These helpers read and build that array with strided slices instead: the
byte of element ``i`` sits at ``i * 32 + 8``. Used for ``checkpoint`` (an import) and
for calling ``execute`` (whose state is a ``list<u8>``).
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any, NamedTuple

import wasmtime

from .. import wasmtime_internals as internals


class _Layout(NamedTuple):
    api: Any  # wasmtime's C API (through the one door to its internals)
    val: Any  # wasmtime_component_val_t
    size: int
    payload: int
    u8: int
    u32: int


@cache
def _layout() -> _Layout:
    api = internals.c_api()
    val = api.wasmtime_component_val_t
    return _Layout(api, val, ctypes.sizeof(val), val.of.offset, api.WASMTIME_COMPONENT_U8.value, api.WASMTIME_COMPONENT_U32.value)


def list_bytes(val: Any) -> bytes:
    """The bytes of a lifted ``list<u8>`` value (a ``wasmtime_component_val_t``)."""
    lay = _layout()
    vals = val.of.list
    n = vals.size
    if n == 0:
        return b""
    address = ctypes.cast(vals.data, ctypes.c_void_p).value or 0
    return ctypes.string_at(address, n * lay.size)[lay.payload :: lay.size]


def _string(val: Any, text: bytes, keep: list[Any]) -> None:
    buf = ctypes.create_string_buffer(text, len(text))
    keep.append(buf)
    val.kind = _layout().api.WASMTIME_COMPONENT_STRING
    val.of.string.size = len(text)
    val.of.string.data = ctypes.cast(buf, ctypes.POINTER(ctypes.c_ubyte))


def _bytes(val: Any, data: bytes, keep: list[Any]) -> None:
    lay = _layout()
    n, size = len(data), lay.size
    elements = bytearray(max(n, 1) * size)
    if n:
        elements[0 : n * size : size] = bytes((lay.u8,)) * n
        elements[lay.payload : n * size : size] = data
    array = (ctypes.c_ubyte * len(elements)).from_buffer(elements)
    keep.append(array)
    val.kind = lay.api.WASMTIME_COMPONENT_LIST
    val.of.list.size = n
    val.of.list.data = ctypes.cast(array, ctypes.POINTER(lay.val))


def call_execute(store: wasmtime.Store, func: Any, job: str, ctx: str, state: bytes) -> int:
    """Call ``execute(job: string, ctx: string, state: list<u8>) -> u32`` with Python-owned arguments.

    wasmtime only borrows the arguments during the call; errors and traps are raised as
    wasmtime-py's ``Func.__call__`` raises them. ``post_return`` is the caller's. On a
    wasmtime the fast paths were not written for, wasmtime-py's own call converts the values.
    """
    if not internals.fast():
        return int(func(store, job, ctx, state))
    lay = _layout()
    keep: list[Any] = []
    params = (lay.val * 3)()
    _string(params[0], job.encode(), keep)
    _string(params[1], ctx.encode(), keep)
    _bytes(params[2], state, keep)
    result = lay.val()
    internals.component_call(store, func, params, 3, ctypes.byref(result), 1)
    if result.kind != lay.u32:
        raise wasmtime.WasmtimeError(f"execute returned a value of kind {result.kind}, not u32")
    return int(result.of.u32)


def set_u32(results: Any, value: int) -> None:
    """Write ``value`` as the one ``u32`` result of a raw host callback."""
    out = results[0]
    out.kind = _layout().u32
    out.of.u32 = value
