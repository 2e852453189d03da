"""State encodings: how job parameters become bytes and checkpoints become values.

The host never interprets state otherwise; it only encodes parameters for a
first run and decodes the last checkpoint for display and results.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgpack

from .errors import ManifestError

Encoding = Literal["json", "msgpack"]
ENCODINGS: tuple[Encoding, ...] = ("json", "msgpack")


def check_encoding(name: str) -> Encoding:
    """Return ``name`` as an Encoding or fail naming the ones allowed."""
    if name not in ENCODINGS:
        raise ManifestError(f"unknown state encoding {name!r}: use one of {', '.join(ENCODINGS)}")
    return name  # type: ignore[return-value]


def encode(value: Any, encoding: Encoding) -> bytes:
    """Encode parameters; ``None`` becomes empty bytes, meaning the job's default state."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if encoding == "msgpack":
        return msgpack.packb(value, use_bin_type=True)
    return json.dumps(value, separators=(",", ":")).encode()


def decode(data: bytes | None, encoding: Encoding) -> Any:
    """Decode a checkpoint for display; undecodable bytes come back as a hex preview."""
    if not data:
        return None
    try:
        if encoding == "msgpack":
            return msgpack.unpackb(data, raw=False, strict_map_key=False)
        return json.loads(data)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, UnicodeDecodeError):
        return {"undecodable_state_hex": data[:64].hex(), "length": len(data)}
