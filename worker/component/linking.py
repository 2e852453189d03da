"""The component host: ``wasmjob:job/host`` defined on a component Linker, plus WASI p2.

Each function reads its (already lifted) arguments, clips text as the core ABI does
and calls the shared operations of the running :class:`~wasmjob.host.HostState`.
``check-interrupt`` and the counters (called on every step of a job) and
``checkpoint`` (whose ``list<u8>`` wasmtime-py would convert byte by byte) are
registered as raw callbacks (through ``wasmtime_internals``, on a wasmtime they were
written for); the others, and all of them on any other wasmtime, go through
wasmtime-py's ``add_func``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import component as wc

from .. import wasmtime_internals as internals
from ..abi import LogLevel
from ..errors import HostAbort
from ..host import MAX_LINE, MAX_MESSAGE, MAX_NAME, MAX_WARNING, HostState, current
from ..job import DEFAULT_LIBRARY_ID
from .format import HOST_INTERFACE
from .raw import list_bytes, set_u32

_LEVELS = {"debug": int(LogLevel.DEBUG), "info": int(LogLevel.INFO), "warn": int(LogLevel.WARN), "error": int(LogLevel.ERROR)}


def clip(text: str, cap: int) -> str:
    """``text`` cut to at most ``cap`` UTF-8 bytes, marked as the core ABI marks it."""
    if len(text) * 4 <= cap:
        return text
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text
    return (data[:cap] + b"...[truncated]").decode("utf-8", "replace")


def _running() -> HostState:
    host = current()
    if host is None:
        raise HostAbort("host function called outside a run")
    host.host_calls += 1
    return host


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Record the first host failure as the run's abort reason (as the core binding does)."""

    def call(store: Any, *args: Any) -> Any:
        host = _running()
        try:
            return fn(host, *args)
        except BaseException as exc:
            if host.abort is None:
                host.abort = exc
            raise

    return call


def _log(host: HostState, level: str, message: str) -> None:
    host.log(_LEVELS.get(level, int(LogLevel.INFO)), clip(message, MAX_LINE))


def _report_progress(host: HostState, progress: float, message: str) -> None:
    host.report_progress(progress, clip(message, MAX_MESSAGE))


def _add_warning(host: HostState, message: str) -> None:
    host.add_warning(clip(message, MAX_WARNING))


def _call(host: HostState, method: str, library: str, payload: str) -> wc.Variant:
    method = clip(method, MAX_NAME)
    body = host.call(method, library or DEFAULT_LIBRARY_ID, payload.encode())  # refuses oversized payloads
    if body is None:
        return wc.Variant("err", host.host_error or host.store_error or f"call {method} failed")
    return wc.Variant("ok", body.decode())


_FUNCS: dict[str, Callable[..., Any]] = {
    "log": _log,
    "report-progress": _report_progress,
    "add-warning": _add_warning,
    "call": _call,
}


def _error_pointer(exc: BaseException) -> int:
    return internals.error_pointer(f"wasmjob host abort: {exc}")


def _check_interrupt(env: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
    host = current()
    if host is None:
        return _error_pointer(HostAbort("host function called outside a run"))
    host.host_calls += 1
    try:
        set_u32(results, host.check_interrupt())
    except BaseException as exc:
        if host.abort is None:
            host.abort = exc
        return _error_pointer(exc)
    return 0


def _checkpoint(env: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
    host = current()
    if host is None:
        return _error_pointer(HostAbort("host function called outside a run"))
    host.host_calls += 1
    try:
        size = args[0].of.list.size
        set_u32(results, 1 if host.checkpoint_refused(size) else host.checkpoint(list_bytes(args[0])))
    except BaseException as exc:
        if host.abort is None:
            host.abort = exc
        return _error_pointer(exc)
    return 0


def _counter(add: Callable[[HostState, int], None]) -> Any:
    """A raw callback for ``increment-items``/``increment-bytes`` (called per step by many jobs)."""

    def increment(env: Any, context: Any, ty: Any, args: Any, nargs: int, results: Any, nresults: int) -> int:
        host = current()
        if host is None:
            return _error_pointer(HostAbort("host function called outside a run"))
        host.host_calls += 1
        try:
            add(host, args[0].of.u64)
        except BaseException as exc:
            if host.abort is None:
                host.abort = exc
            return _error_pointer(exc)
        return 0

    return increment


def _plain_check_interrupt(host: HostState) -> int:
    return host.check_interrupt()


def _plain_checkpoint(host: HostState, state: bytes) -> int:
    return 1 if host.checkpoint_refused(len(state)) else host.checkpoint(state)


def make_component_linker(engine: wasmtime.Engine) -> wc.Linker:
    """A Linker with WASI p2 (what a store's WasiConfig grants) and the wasmjob host interface."""
    linker = wc.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root, root.add_instance(HOST_INTERFACE) as host:
        if internals.fast():
            internals.add_component_raw(host, "check-interrupt", _check_interrupt)
            internals.add_component_raw(host, "checkpoint", _checkpoint)
            internals.add_component_raw(host, "increment-items", _counter(HostState.add_items))
            internals.add_component_raw(host, "increment-bytes", _counter(HostState.add_bytes))
        else:  # a wasmtime the raw callbacks were not written for: wasmtime-py converts the values
            host.add_func("check-interrupt", _guarded(_plain_check_interrupt))
            host.add_func("checkpoint", _guarded(_plain_checkpoint))
            host.add_func("increment-items", _guarded(HostState.add_items))
            host.add_func("increment-bytes", _guarded(HostState.add_bytes))
        for name, fn in _FUNCS.items():
            host.add_func(name, _guarded(fn))
    return linker
