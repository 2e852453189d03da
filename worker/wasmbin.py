"""A minimal reader of the WebAssembly binary format: sections and what they count.

Pure Python, no wasmtime: it runs before a module is compiled, so the fleet can
refuse a pathological module (a million functions, a huge table) cheaply, and
it is small enough for other tools (snapshots) to reuse and extend. It reads
section headers and the vectors that matter for limits; it does not validate
code bodies (wasmtime does that when it compiles).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import ModuleError


def digest_of(wasm: bytes) -> str:
    """The content address of a module: ``sha256:<hex>`` (cache, registry and snapshots share it)."""
    return "sha256:" + hashlib.sha256(wasm).hexdigest()

MAGIC = b"\0asm"
VERSION = b"\x01\0\0\0"

CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEMENT, CODE, DATA, DATACOUNT, TAG = range(14)

SECTION_NAMES = (
    "custom", "type", "import", "function", "table", "memory", "global",
    "export", "start", "element", "code", "data", "datacount", "tag",
)

# External kinds in import/export descriptors.
KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL, KIND_TAG = range(5)
KIND_NAMES = ("func", "table", "memory", "global", "tag")


class WasmFormatError(ModuleError):
    """The bytes are not a well-formed WebAssembly module (as far as this reader looks)."""


@dataclass(frozen=True)
class Section:
    """One section: its id, where its content starts in the module, and its length."""

    id: int
    offset: int
    size: int
    name: str = ""  # a custom section's name; empty otherwise

    @property
    def end(self) -> int:
        return self.offset + self.size

    @property
    def kind(self) -> str:
        return SECTION_NAMES[self.id] if self.id < len(SECTION_NAMES) else f"unknown({self.id})"


@dataclass(frozen=True)
class Limits:
    """A table's or memory's limits: ``minimum`` and optional ``maximum`` (pages or entries)."""

    minimum: int
    maximum: int | None = None
    shared: bool = False
    is64: bool = False


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: int


@dataclass(frozen=True)
class Export:
    name: str
    kind: int
    index: int


@dataclass
class ModuleInfo:
    """What a module declares, counted: the numbers operator policy puts ceilings on."""

    size: int
    sections: list[Section] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    types: int = 0
    functions: int = 0  # defined in the module (function section), not imported
    globals: int = 0  # defined in the module
    data_segments: int = 0
    element_segments: int = 0
    tables: list[Limits] = field(default_factory=list)  # imported first, then defined
    memories: list[Limits] = field(default_factory=list)  # imported first, then defined

    def imported(self, kind: int) -> int:
        return sum(1 for imp in self.imports if imp.kind == kind)

    @property
    def table_entries(self) -> int:
        """The sum of every table's initial size: what instantiation allocates up front."""
        return sum(t.minimum for t in self.tables)

    def export_names(self, kind: int | None = None) -> list[str]:
        return [e.name for e in self.exports if kind is None or e.kind == kind]


# ---------------------------------------------------------------- primitives


def read_uleb(data: bytes, pos: int, bits: int = 32) -> tuple[int, int]:
    """An unsigned LEB128 of at most ``bits`` bits at ``pos``; returns (value, next position)."""
    return _read_leb(data, pos, bits, signed=False)


def read_sleb(data: bytes, pos: int, bits: int = 32) -> tuple[int, int]:
    """A signed LEB128 of at most ``bits`` bits at ``pos``; returns (value, next position)."""
    return _read_leb(data, pos, bits, signed=True)


def _read_leb(data: bytes, pos: int, bits: int, *, signed: bool) -> tuple[int, int]:
    result = shift = 0
    max_bytes = (bits + 6) // 7
    for _ in range(max_bytes):
        if pos >= len(data):
            raise WasmFormatError("unexpected end of module inside an integer")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed:
                if byte & 0x40:
                    result -= 1 << shift
            elif result >> bits:
                raise WasmFormatError(f"integer too large for u{bits}")
            return result, pos
    raise WasmFormatError(f"integer longer than {max_bytes} bytes ({'s' if signed else 'u'}{bits})")


def encode_uleb(value: int) -> bytes:
    """The unsigned LEB128 encoding of ``value`` (for writers of sections)."""
    if value < 0:
        raise ValueError("unsigned LEB128 of a negative number")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_name(name: str) -> bytes:
    """A WebAssembly name: its UTF-8 length as LEB128, then the bytes."""
    raw = name.encode()
    return encode_uleb(len(raw)) + raw


def read_name(data: bytes, pos: int, end: int | None = None) -> tuple[str, int]:
    length, pos = read_uleb(data, pos)
    stop = pos + length
    if stop > (len(data) if end is None else end):
        raise WasmFormatError("a name runs past the end of its section")
    try:
        return data[pos:stop].decode(), stop
    except UnicodeDecodeError as exc:
        raise WasmFormatError("a name is not valid UTF-8") from exc


def _vector_count(data: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """A vector's length, refused when it cannot fit in what is left (each entry is >= 1 byte)."""
    count, pos = read_uleb(data, pos)
    if count > end - pos:
        raise WasmFormatError(f"{what} section claims {count} entries in {end - pos} bytes")
    return count, pos


def _read_limits(data: bytes, pos: int) -> tuple[Limits, int]:
    if pos >= len(data):
        raise WasmFormatError("unexpected end of module inside limits")
    flags = data[pos]
    pos += 1
    if flags & ~0x0F:
        raise WasmFormatError(f"unknown limits flags 0x{flags:02x}")
    is64 = bool(flags & 0x04)
    bits = 64 if is64 else 32
    minimum, pos = read_uleb(data, pos, bits)
    maximum = None
    if flags & 0x01:
        maximum, pos = read_uleb(data, pos, bits)
    if flags & 0x08:  # custom page size
        _, pos = read_uleb(data, pos)
    return Limits(minimum, maximum, shared=bool(flags & 0x02), is64=is64), pos


def _read_reftype(data: bytes, pos: int) -> int:
    if pos >= len(data):
        raise WasmFormatError("unexpected end of module inside a type")
    byte = data[pos]
    pos += 1
    if byte in (0x63, 0x64):  # (ref null? heaptype), heaptype is an s33
        _, pos = read_sleb(data, pos, 33)
    return pos


def _read_table_type(data: bytes, pos: int) -> tuple[Limits, int]:
    pos = _read_reftype(data, pos)
    return _read_limits(data, pos)


# ---------------------------------------------------------------- sections


def header_ok(data: bytes) -> bool:
    return data[:4] == MAGIC


def sections(data: bytes) -> Iterator[Section]:
    """Every section of a core module, in order, with bounds checked."""
    if data[:4] != MAGIC:
        raise WasmFormatError("not a WebAssembly module (missing the \\0asm header)")
    if data[4:8] != VERSION:
        raise WasmFormatError("not a core WebAssembly module of version 1 (a component?)")
    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, content = read_uleb(data, pos + 1)
        end = content + size
        if end > len(data):
            raise WasmFormatError(f"section {sid} runs past the end of the module")
        name = ""
        if sid == CUSTOM:
            name, _ = read_name(data, content, end)
        yield Section(sid, content, size, name)
        pos = end


def inspect(data: bytes) -> ModuleInfo:
    """Count what ``data`` declares; raises :class:`WasmFormatError` on malformed sections."""
    info = ModuleInfo(size=len(data))
    for sec in sections(data):
        info.sections.append(sec)
        pos, end = sec.offset, sec.end
        if sec.id == TYPE:
            info.types, _ = _vector_count(data, pos, end, "type")
        elif sec.id == IMPORT:
            _read_imports(data, pos, end, info)
        elif sec.id == FUNCTION:
            info.functions, _ = _vector_count(data, pos, end, "function")
        elif sec.id == TABLE:
            _read_tables(data, pos, end, info)
        elif sec.id == MEMORY:
            count, pos = _vector_count(data, pos, end, "memory")
            for _ in range(count):
                limits, pos = _read_limits(data, pos)
                info.memories.append(limits)
        elif sec.id == GLOBAL:
            info.globals, _ = _vector_count(data, pos, end, "global")
        elif sec.id == EXPORT:
            count, pos = _vector_count(data, pos, end, "export")
            for _ in range(count):
                name, pos = read_name(data, pos, end)
                if pos >= end:
                    raise WasmFormatError("export section is truncated")
                kind = data[pos]
                index, pos = read_uleb(data, pos + 1)
                info.exports.append(Export(name, kind, index))
        elif sec.id == ELEMENT:
            info.element_segments, _ = _vector_count(data, pos, end, "element")
        elif sec.id == DATA:
            info.data_segments, _ = _vector_count(data, pos, end, "data")
    return info


def _read_imports(data: bytes, pos: int, end: int, info: ModuleInfo) -> None:
    count, pos = _vector_count(data, pos, end, "import")
    for _ in range(count):
        module, pos = read_name(data, pos, end)
        name, pos = read_name(data, pos, end)
        if pos >= end:
            raise WasmFormatError("import section is truncated")
        kind = data[pos]
        pos += 1
        if kind == KIND_FUNC:
            _, pos = read_uleb(data, pos)
        elif kind == KIND_TABLE:
            limits, pos = _read_table_type(data, pos)
            info.tables.append(limits)
        elif kind == KIND_MEMORY:
            limits, pos = _read_limits(data, pos)
            info.memories.append(limits)
        elif kind == KIND_GLOBAL:
            pos = _read_reftype(data, pos) + 1  # value type, then mutability
        elif kind == KIND_TAG:
            _, pos = read_uleb(data, pos + 1)  # attribute byte, then type index
        else:
            raise WasmFormatError(f"unknown import kind {kind}")
        info.imports.append(Import(module, name, kind))


def _read_tables(data: bytes, pos: int, end: int, info: ModuleInfo) -> None:
    count, pos = _vector_count(data, pos, end, "table")
    for _ in range(count):
        with_init = data[pos : pos + 2] == b"\x40\x00"
        limits, pos = _read_table_type(data, pos + 2 if with_init else pos)
        if with_init:
            pos = skip_const_expr(data, pos, end)
        info.tables.append(limits)


_CONST_IMMEDIATES = {0x41: ("s", 32), 0x42: ("s", 64), 0x23: ("u", 32), 0xD2: ("u", 32), 0xD0: ("s", 33)}
_CONST_FIXED = {0x43: 4, 0x44: 8}
_CONST_PLAIN = {0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E}  # extended-const add/sub/mul


def skip_const_expr(data: bytes, pos: int, end: int) -> int:
    """The position after a constant expression (through its ``end`` opcode)."""
    while pos < end:
        op = data[pos]
        pos += 1
        if op == 0x0B:
            return pos
        if op in _CONST_IMMEDIATES:
            sign, bits = _CONST_IMMEDIATES[op]
            _, pos = (read_sleb if sign == "s" else read_uleb)(data, pos, bits)
        elif op in _CONST_FIXED:
            pos += _CONST_FIXED[op]
        elif op not in _CONST_PLAIN:
            raise WasmFormatError(f"unsupported instruction 0x{op:02x} in a constant expression")
    raise WasmFormatError("a constant expression runs past the end of its section")
