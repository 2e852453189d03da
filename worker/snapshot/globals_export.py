"""Export every mutable global of a module, so a snapshot can read and restore them.

A C or Rust module keeps its shadow-stack pointer (and sometimes a TLS base or
heap pointer) in mutable globals that it does not export. A snapshot must carry
them, so the instrumented module gets one export per mutable global it defines,
named ``__wasmjob_global_<index>``; nothing else in the module changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import wasmbin
from ..errors import SnapshotError

GLOBAL_EXPORT_PREFIX = "__wasmjob_global_"


@dataclass(frozen=True)
class GlobalDecl:
    """A global the module defines: its index (imports counted first), value type byte and mutability."""

    index: int
    valtype: int
    mutable: bool


def defined_globals(wasm: bytes) -> list[GlobalDecl]:
    """The globals ``wasm`` defines, in index order."""
    info = wasmbin.inspect(wasm)
    first = info.imported(wasmbin.KIND_GLOBAL)
    out: list[GlobalDecl] = []
    for sec in info.sections:
        if sec.id != wasmbin.GLOBAL:
            continue
        count, pos = wasmbin.read_uleb(wasm, sec.offset)
        for i in range(count):
            if pos + 2 > sec.end:
                raise SnapshotError("global section is truncated")
            valtype = wasm[pos]
            if valtype in (0x63, 0x64):  # (ref null? heaptype): not a value a snapshot can carry
                raise SnapshotError("module has a global of reference type: snapshots cannot restore it")
            mutable = wasm[pos + 1] == 1
            pos = wasmbin.skip_const_expr(wasm, pos + 2, sec.end)
            out.append(GlobalDecl(first + i, valtype, mutable))
    return out


def export_mutable_globals(wasm: bytes) -> bytes:
    """``wasm`` with an export added for each mutable global it defines (those already exported too,
    under our name, so the host finds every one the same way)."""
    info = wasmbin.inspect(wasm)
    taken = [e.name for e in info.exports if e.name.startswith(GLOBAL_EXPORT_PREFIX)]
    if taken:
        raise SnapshotError(f"module already exports {taken[0]!r}: the {GLOBAL_EXPORT_PREFIX}* names are reserved")
    mutable = [g for g in defined_globals(wasm) if g.mutable]
    if not mutable:
        return wasm
    entries = b"".join(
        wasmbin.encode_name(e.name) + bytes([e.kind]) + wasmbin.encode_uleb(e.index) for e in info.exports
    )
    entries += b"".join(
        wasmbin.encode_name(f"{GLOBAL_EXPORT_PREFIX}{g.index}") + bytes([wasmbin.KIND_GLOBAL]) + wasmbin.encode_uleb(g.index)
        for g in mutable
    )
    body = wasmbin.encode_uleb(len(info.exports) + len(mutable)) + entries
    section = bytes([wasmbin.EXPORT]) + wasmbin.encode_uleb(len(body)) + body
    existing = [s for s in info.sections if s.id == wasmbin.EXPORT]
    if existing:
        old = existing[0]
        return wasm[: _section_start(wasm, old)] + section + wasm[old.end :]
    # no export section: it goes after the last section with a smaller id (custom sections aside)
    at = 8
    for sec in info.sections:
        if sec.id != wasmbin.CUSTOM and sec.id < wasmbin.EXPORT:
            at = sec.end
    return wasm[:at] + section + wasm[at:]


def _section_start(wasm: bytes, target: wasmbin.Section) -> int:
    """Where ``target``'s id byte is (its size may be padded LEB128), walking the headers from the start."""
    pos = 8
    while pos < len(wasm):
        _, content = wasmbin.read_uleb(wasm, pos + 1)
        if content == target.offset:
            return pos
        size, _ = wasmbin.read_uleb(wasm, pos + 1)
        pos = content + size
    raise SnapshotError("cannot locate the export section")
