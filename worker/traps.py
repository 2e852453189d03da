"""Turning wasmtime's errors into reasons a user can act on.

``wasmtime.Trap`` is not a ``WasmtimeError``; ``ExitTrap`` is. Each is mapped
separately, and a trap caused by a host abort reports the host's reason.
"""

from __future__ import annotations

import wasmtime
from wasmtime import TrapCode

from .errors import BadPointer, HostAbort, WasmJobError
from .host import HostState
from .job import MiB, Limits

_TRAP_WORDS = {
    TrapCode.MEMORY_OUT_OF_BOUNDS: "out-of-bounds memory access",
    TrapCode.HEAP_MISALIGNED: "misaligned atomic memory access",
    TrapCode.TABLE_OUT_OF_BOUNDS: "out-of-bounds table access",
    TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to a null function",
    TrapCode.BAD_SIGNATURE: "indirect call with the wrong signature",
    TrapCode.INTEGER_OVERFLOW: "integer overflow",
    TrapCode.INTEGER_DIVISION_BY_ZERO: "integer division by zero",
    TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid float to integer conversion",
    TrapCode.UNREACHABLE: "unreachable instruction executed (the guest aborted or panicked)",
    TrapCode.NULL_REFERENCE: "null reference",
}


def explain(exc: BaseException, host: HostState, limits: Limits, fuel_budget: int | None) -> tuple[str, str]:
    """Return (failure kind, reason) for an exception raised by a call into the guest."""
    if host.abort is not None:
        return _from_abort(host.abort)
    if isinstance(exc, WasmJobError):
        return _from_abort(exc)
    if isinstance(exc, wasmtime.ExitTrap):
        return "trap", f"the guest exited with code {exc.code}"
    if isinstance(exc, wasmtime.Trap):
        return _from_trap(exc, host, limits, fuel_budget)
    if isinstance(exc, wasmtime.WasmtimeError):
        text = _first_line(str(exc))
        if "memory" in text and ("limit" in text or "minimum" in text):
            return "memory", f"the module needs more memory than the limit of {limits.max_memory_mb} MiB ({text})"
        return "trap", f"wasmtime error: {text}"
    return "trap", f"host error: {type(exc).__name__}: {exc}"


def _from_abort(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, BadPointer):
        return "bad_pointer", exc.reason
    if isinstance(exc, HostAbort):
        return "trap", exc.reason
    if isinstance(exc, WasmJobError):
        return "trap", exc.reason
    return "trap", f"host function failed: {type(exc).__name__}: {exc}"


def _from_trap(trap: wasmtime.Trap, host: HostState, limits: Limits, fuel_budget: int | None) -> tuple[str, str]:
    code = trap.trap_code
    where = _where(trap)
    if code is TrapCode.OUT_OF_FUEL:
        return "fuel", f"out of fuel: the job used its whole budget of {fuel_budget} fuel units"
    if code is TrapCode.INTERRUPT:
        return "timeout", f"timed out: the run exceeded its wall-clock limit of {limits.timeout_seconds:g} s"
    if code is TrapCode.STACK_OVERFLOW:
        return "trap", f"stack overflow: recursion too deep{where}"
    limit_bytes = limits.max_memory_mb * MiB
    near_limit = host.peak_memory() * 4 >= limit_bytes * 3
    if near_limit and code in (TrapCode.UNREACHABLE, TrapCode.MEMORY_OUT_OF_BOUNDS, None):
        return "memory", f"memory limit of {limits.max_memory_mb} MiB reached ({_words(code)}{where})"
    if host.guest_error and code is TrapCode.UNREACHABLE:
        return "trap", f"the guest panicked: {host.guest_error}"
    return "trap", f"trap: {_words(code)}{where}"


def _words(code: TrapCode | None) -> str:
    if code is None:
        return "the guest trapped"
    return _TRAP_WORDS.get(code, code.name.lower().replace("_", " "))


def _where(trap: wasmtime.Trap) -> str:
    try:
        frames = trap.frames
    except Exception:
        return ""
    for frame in frames:
        if frame.func_name:
            return f" in {frame.func_name}"
    return ""


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"
