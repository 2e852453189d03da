"""How the ``spacedrive`` imports are defined on a Linker: a fast path and a plain one.

wasmtime-py's ``Linker.define_func`` converts every argument and result through
``Val`` objects (several microseconds per call). The fast path registers the
same :class:`~wasmjob.host.HostState` methods with wasmtime's *unchecked* C API,
reading and writing the raw value array directly. Both paths are
store-independent, so one Linker (and one InstancePre per module) serves every
run in the process; tests run the ABI through both and expect the same results.
Everything private of wasmtime it needs goes through ``wasmtime_internals``.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import cache
from typing import Any

import wasmtime

from . import wasmtime_internals as internals
from .abi import IMPORT_MODULE, IMPORTS, functype
from .errors import HostAbort
from .host import HostState, current


def _no_run_trap() -> int:
    return internals.trap_pointer("wasmjob: host function called outside a run")


def _fail(host: HostState, exc: BaseException) -> int:
    if host.abort is None:
        host.abort = exc
    return internals.trap_pointer(f"wasmjob host abort: {exc}")


@cache
def _arg_structs() -> dict[str, type[ctypes.Structure]]:
    """The hot imports' arguments as one struct over the raw value slots (made on first use)."""
    return {
        "job_check_interrupt": internals.slot_struct(("value", ctypes.c_int32)),
        "job_report_progress": internals.slot_struct(
            ("job", ctypes.c_int32), ("progress", ctypes.c_float), ("msg_ptr", ctypes.c_int32), ("msg_len", ctypes.c_int32)
        ),
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
    structs = _arg_structs()
    for name, sig in IMPORTS.items():
        internals.define_unchecked(linker, IMPORT_MODULE, name, functype(sig), _unchecked(name), structs.get(name))


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
    """A Linker with the ABI imports (and WASI only when asked for); ``fast`` only where
    this wasmtime is one the fast path was written for (``wasmtime_internals``)."""
    linker = wasmtime.Linker(engine)
    (define_fast if fast and internals.fast() else define_plain)(linker)
    if wasi:
        linker.define_wasi()
    return linker
