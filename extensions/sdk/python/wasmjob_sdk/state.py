"""State and parameters: bytes in the extension's encoding (JSON or msgpack) to typed values and back.

A job's second parameter may be annotated with a dataclass: parameters and checkpoints
become instances of it (unknown fields and wrong types fail the job with a message).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any



def _msgpack() -> Any:
    """msgpack, imported on first use: a component bundles it only for a msgpack extension."""
    try:
        import msgpack
    except ImportError:
        raise RuntimeError("msgpack state needs the msgpack package (bundled when the manifest says msgpack)") from None
    return msgpack


def encode_state(state: Any, encoding: str) -> bytes:
    """The bytes of ``state``: dataclasses become objects; bytes pass through."""
    if isinstance(state, (bytes, bytearray)):
        return bytes(state)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        state = dataclasses.asdict(state)
    if encoding == "msgpack":
        return _msgpack().packb(state, use_bin_type=True)
    return json.dumps(state, separators=(",", ":")).encode()


def decode_state(data: bytes, encoding: str) -> Any:
    if not data:
        return None
    if encoding == "msgpack":
        return _msgpack().unpackb(data, raw=False)
    return json.loads(data)


def convert(value: Any, kind: Any, where: str = "state") -> Any:
    """``value`` (decoded JSON/msgpack) as ``kind``: a dataclass, a container or a scalar type."""
    if kind is Any or kind is None:
        return value
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(value, option, where)
            except TypeError as exc:
                errors.append(str(exc))
        raise TypeError(errors[0] if errors else f"{where}: unexpected {value!r}")
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object for {kind.__name__}, got {type(value).__name__}")
        hints = typing.get_type_hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        unknown = sorted(set(value) - names)
        if unknown:
            raise TypeError(f"{where}: unknown field(s) {', '.join(unknown)} for {kind.__name__}")
        return kind(**{k: convert(v, hints.get(k, Any), f"{where}.{k}") for k, v in value.items()})
    if origin in (list, tuple, set, frozenset):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(kind)
        item = args[0] if args else Any
        return origin(convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError(f"{where}: expected an object, got {type(value).__name__}")
        args = typing.get_args(kind)
        item = args[1] if len(args) == 2 else Any
        return {k: convert(v, item, f"{where}.{k}") for k, v in value.items()}
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(kind, type):
        if kind is dict and value is None:
            return {}
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {value!r}"[:300])
    return value
