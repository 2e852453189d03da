"""Turning errors out of a component call into reasons a user can act on.

A component call reports a trap as a ``WasmtimeError`` whose text carries the trap
("wasm trap: all fuel consumed ...") after a backtrace, not as a ``Trap`` with a
code, so the reason is found in the text.
"""

from __future__ import annotations

import wasmtime

from ..host import HostState
from ..job import Limits
from ..traps import explain

_TRAPS = (
    ("all fuel consumed", "fuel", "out of fuel: the job used its whole budget of {fuel} fuel units"),
    ("wasm trap: interrupt", "timeout", "timed out: the run exceeded its wall-clock limit of {timeout:g} s"),
    ("call stack exhausted", "trap", "stack overflow: recursion too deep"),
    ("out of bounds memory access", "trap", "trap: out-of-bounds memory access"),
    ("wasm `unreachable` instruction executed", "trap", "trap: the guest aborted (unreachable instruction executed)"),
    ("integer divide by zero", "trap", "trap: integer division by zero"),
    ("indirect call", "trap", "trap: bad indirect call"),
)


def explain_component(
    exc: BaseException, host: HostState, limits: Limits, fuel_budget: int | None = None
) -> tuple[str, str]:
    """Return (failure kind, reason) for an error raised by a call into a component."""
    if host.abort is not None or not isinstance(exc, wasmtime.WasmtimeError) or isinstance(exc, wasmtime.ExitTrap):
        return explain(exc, host, limits, fuel_budget)
    text = str(exc)
    for needle, kind, reason in _TRAPS:
        if needle in text:
            if kind == "trap" and host.guest_error and "unreachable" in needle:
                return "trap", f"the guest aborted: {host.guest_error}"
            return kind, reason.format(fuel=fuel_budget, timeout=limits.timeout_seconds)
    if "memory" in text and ("limit" in text or "minimum" in text):
        return "memory", f"the component needs more memory than the limit of {limits.max_memory_mb} MiB"
    return "trap", f"trap: {_last_line(text)}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "unknown error"
