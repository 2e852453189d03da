"""The extension ABI (v1, Spacedrive-compatible) as data, and the checks a module must pass.

`docs/abi.md` is the prose version of this file; `host.py` implements the imports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import IntEnum

import wasmtime
from wasmtime import FuncType, ValType

from .errors import ModuleError

IMPORT_MODULE = "spacedrive"

_I32, _I64, _F32 = "i32", "i64", "f32"

# name -> (params, results)
IMPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "spacedrive_log": ((_I32, _I32, _I32), ()),
    "register_job": ((_I32, _I32, _I32, _I32, _I32), (_I32,)),
    "job_report_progress": ((_I32, _F32, _I32, _I32), ()),
    "job_checkpoint": ((_I32, _I32, _I32), (_I32,)),
    "job_check_interrupt": ((_I32,), (_I32,)),
    "job_add_warning": ((_I32, _I32, _I32), ()),
    "job_increment_bytes": ((_I32, _I64), ()),
    "job_increment_items": ((_I32, _I64), ()),
    "spacedrive_call": ((_I32, _I32, _I32, _I32, _I32), (_I32,)),
}

JOB_EXPORT_SIG = ((_I32, _I32, _I32, _I32), (_I32,))
EXPORT_SIGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "wasm_alloc": ((_I32,), (_I32,)),
    "wasm_free": ((_I32, _I32), ()),
    "plugin_init": ((), (_I32,)),
    "plugin_cleanup": ((), (_I32,)),
}


class ReturnCode(IntEnum):
    """What an ``execute_<fn>`` export returns."""

    COMPLETED = 0
    INTERRUPTED = 1
    FAILED = 2


class LogLevel(IntEnum):
    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


_VALTYPES = {_I32: ValType.i32, _I64: ValType.i64, _F32: ValType.f32}


def functype(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> FuncType:
    params, results = sig
    return FuncType([_VALTYPES[p]() for p in params], [_VALTYPES[r]() for r in results])


def _sig_of(ty: FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _fmt(sig: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    params, results = sig
    return f"({', '.join(params)}) -> ({', '.join(results)})"


@dataclass(frozen=True)
class JobInfo:
    """A job an extension offers: its name, the export that runs it, and whether it can resume
    (from a ``register_job`` call, or an ``execute_<name>`` export when it registers none)."""

    name: str
    export: str
    resumable: bool = True


@dataclass(frozen=True)
class ModuleShape:
    """What a module imports and exports, checked against the ABI."""

    imports: tuple[str, ...]
    exports: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]
    has_memory: bool
    wasi: bool

    def has(self, name: str) -> bool:
        return name in self.exports


def check_module(module: wasmtime.Module, *, allow_wasi: bool = False) -> ModuleShape:
    """Validate imports and exports; raise ModuleError naming the first problem."""
    imports: list[str] = []
    wasi = False
    for imp in module.imports:
        ty = imp.type
        if imp.module.startswith("wasi_") and allow_wasi:
            wasi = True
            continue
        if imp.module != IMPORT_MODULE:
            raise ModuleError(
                f"import {imp.module}.{imp.name} is outside the ABI: only module {IMPORT_MODULE!r} is provided"
                + ("" if not imp.module.startswith("wasi_") else " (WASI is not granted by the manifest)")
            )
        name = imp.name or ""
        if name not in IMPORTS:
            raise ModuleError(f"unknown import {IMPORT_MODULE}.{name}: not in the ABI table")
        if not isinstance(ty, FuncType):
            raise ModuleError(f"import {IMPORT_MODULE}.{name} must be a function")
        if _sig_of(ty) != IMPORTS[name]:
            raise ModuleError(
                f"import {IMPORT_MODULE}.{name} has signature {_fmt(_sig_of(ty))}, expected {_fmt(IMPORTS[name])}"
            )
        imports.append(name)
    exports: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
    has_memory = False
    for exp in module.exports:
        ty = exp.type
        if isinstance(ty, FuncType):
            exports[exp.name] = _sig_of(ty)
        elif isinstance(ty, wasmtime.MemoryType) and exp.name == "memory":
            has_memory = True
    if not has_memory:
        raise ModuleError("module does not export its linear memory as 'memory'")
    for name, sig in EXPORT_SIGS.items():
        if name in exports and exports[name] != sig:
            raise ModuleError(f"export {name} has signature {_fmt(exports[name])}, expected {_fmt(sig)}")
    return ModuleShape(imports=tuple(imports), exports=exports, has_memory=has_memory, wasi=wasi)


def check_job_export(shape: ModuleShape, job: str, export: str) -> None:
    """A job's export must exist with the ``(i32, i32, i32, i32) -> i32`` signature."""
    if export not in shape.exports:
        raise ModuleError(f"job {job!r} names export {export!r}, which the module does not export")
    if shape.exports[export] != JOB_EXPORT_SIG:
        raise ModuleError(
            f"job export {export} has signature {_fmt(shape.exports[export])}, expected {_fmt(JOB_EXPORT_SIG)}"
        )


def context_json(job_id: str, library_id: str, resumed: bool = False) -> bytes:
    """The ctx handed to ``execute_<fn>``: both ids as strings (SDK parsers reject null), and
    whether the state is a checkpoint (``resumed``) or the parameters of a first run."""
    return json.dumps({"job_id": job_id, "library_id": library_id, "resumed": resumed}).encode()


_INTERRUPT_REASON = re.compile(r"^\s*(?:[\w ]+:\s*)?interrupted\s*$", re.IGNORECASE)


def reads_as_interrupt(reason: str | None, requested: object) -> bool:
    """True when a job that returned 2 (failed) was really interrupted: the host asked it to
    stop and its last error line is Spacedrive's "Interrupted" (as ``Operation failed:
    Interrupted``). Local runs and the fleet both decide here, through the runtime's outcome."""
    return requested is not None and bool(reason) and bool(_INTERRUPT_REASON.match(reason or ""))
