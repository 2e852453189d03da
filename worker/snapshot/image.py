"""A snapshot of a guest as bytes: memory in 4 KiB chunks, globals and the unwound call, zstd-compressed.

A *full* blob carries every non-zero chunk of linear memory; a *delta* blob
names the full one it builds on (by slot and id) and carries only the chunks
that differ from it. Both carry the mutable globals, the asyncify buffer's
address, the export and arguments of the unwound call and the guest's last own
checkpoint, so a delta plus its full blob rebuild the guest exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import zstandard

from ..errors import SnapshotError

MAGIC = b"WJSNAP1"
CHUNK = 4096
_ZERO = bytes(CHUNK)
_LEVEL = 3
_MAX_DECOMPRESSED = 4 * 1024 * 1024 * 1024 + 16 * 1024 * 1024  # a full 4 GiB memory and its header


@dataclass
class Image:
    """One guest, uncompressed: what :func:`encode` writes and :func:`decode` + :func:`apply` read back."""

    memory: bytes | bytearray
    globals: dict[str, list[Any]] = field(default_factory=dict)  # export name -> [type, value]
    buffer: int = 0
    export: str = ""
    args: tuple[int, ...] = ()
    last_state: bytes | None = None
    reason: str = ""


@dataclass
class Blob:
    """A decoded blob: its header, and the chunks it carries (index -> bytes)."""

    header: dict[str, Any]
    chunks: dict[int, memoryview]  # views into the decompressed blob

    @property
    def kind(self) -> str:
        return str(self.header["kind"])


def is_snapshot(state: bytes | None) -> bool:
    """True when stored state is a snapshot blob rather than a job's own checkpoint."""
    return state is not None and state[: len(MAGIC)] == MAGIC


def nonzero_chunks(memory: bytes | bytearray) -> list[int]:
    """Indices of the chunks of ``memory`` that are not all zero (memory is whole 64 KiB pages)."""
    view = memoryview(memory)
    return [i for i in range(len(memory) // CHUNK) if view[i * CHUNK : (i + 1) * CHUNK] != _ZERO]


def changed_chunks(memory: bytes | bytearray, base: bytes | bytearray) -> list[int]:
    """Indices of the chunks where ``memory`` differs from ``base``; memory only grows, and
    chunks past the end of ``base`` count when they are not zero."""
    now, then = memoryview(memory), memoryview(base)
    old = len(base) // CHUNK
    out = [i for i in range(min(old, len(memory) // CHUNK)) if now[i * CHUNK : (i + 1) * CHUNK] != then[i * CHUNK : (i + 1) * CHUNK]]
    out += [i for i in range(old, len(memory) // CHUNK) if now[i * CHUNK : (i + 1) * CHUNK] != _ZERO]
    return out


def encode(image: Image, kind: str, blob_id: int, chunks: list[int], base: tuple[str, int] | None = None) -> bytes:
    """The compressed blob of ``image`` carrying ``chunks`` (all non-zero ones for a full blob)."""
    view = memoryview(image.memory)
    header = {
        "v": 1,
        "kind": kind,
        "id": blob_id,
        "base": list(base) if base else None,
        "size": len(image.memory),
        "globals": image.globals,
        "buffer": image.buffer,
        "export": image.export,
        "args": list(image.args),
        "last_state": image.last_state,
        "reason": image.reason,
    }
    head = msgpack.packb({"h": header, "i": chunks}, use_bin_type=True)
    # streamed: the chunks go to the compressor straight out of memory, never joined into one copy
    stream = zstandard.ZstdCompressor(level=_LEVEL).compressobj(size=4 + len(head) + CHUNK * len(chunks))
    parts = [MAGIC, stream.compress(len(head).to_bytes(4, "little") + head)]
    parts += [stream.compress(view[i * CHUNK : (i + 1) * CHUNK]) for i in chunks]
    parts.append(stream.flush())
    return b"".join(parts)


def decode(blob: bytes) -> Blob:
    """Read a blob back; a damaged one raises SnapshotError."""
    if not is_snapshot(blob):
        raise SnapshotError("stored state is not a snapshot")
    try:
        body = memoryview(
            zstandard.ZstdDecompressor().decompress(blob[len(MAGIC) :], max_output_size=_MAX_DECOMPRESSED)
        )
        head_len = int.from_bytes(body[:4], "little")
        raw = msgpack.unpackb(body[4 : 4 + head_len], raw=False, strict_map_key=False)
        header, indices, data = raw["h"], raw["i"], body[4 + head_len :]
    except (zstandard.ZstdError, ValueError, KeyError, TypeError, msgpack.ExtraData) as exc:
        raise SnapshotError(f"snapshot is damaged: {exc}") from exc
    if header.get("v") != 1:
        raise SnapshotError(f"snapshot format version {header.get('v')!r} is not supported")
    if len(data) != CHUNK * len(indices) or header["size"] % CHUNK:
        raise SnapshotError("snapshot is damaged: chunk data does not match its index")
    chunks = {int(index): data[n * CHUNK : (n + 1) * CHUNK] for n, index in enumerate(indices)}
    return Blob(header, chunks)


def rebuild(top: Blob, full: Blob | None) -> Image:
    """The image a blob stands for: a full blob alone, or a delta laid over its full blob."""
    header = top.header
    memory = bytearray(header["size"])
    layers = [top] if top.kind == "full" else [b for b in (full, top) if b is not None]
    if top.kind == "delta":
        if full is None or full.header["id"] != (header["base"] or [None, None])[1]:
            raise SnapshotError("snapshot delta's full snapshot is missing or was replaced")
    for layer in layers:
        for index, data in layer.chunks.items():
            lo = index * CHUNK
            if not 0 <= lo < len(memory):
                raise SnapshotError("snapshot chunk lies outside its memory size")
            memory[lo : lo + CHUNK] = data
    return Image(
        memory=memory,
        globals=header["globals"],
        buffer=int(header["buffer"]),
        export=str(header["export"]),
        args=tuple(int(a) for a in header["args"]),
        last_state=header["last_state"],
        reason=str(header["reason"]),
    )
