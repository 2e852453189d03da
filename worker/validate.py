"""Checks for every value that comes from outside: limits, params, ids and digests.

One place, used by ``Client.submit``, the CLI and the worker's message parser,
so a value refused at one edge is refused at all of them with the same reason,
and nothing invalid (a float fuel, NaN, 10**30) ever reaches Lua or wasmtime.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgpack

from .errors import ConfigError

# Absolute maxima, whatever the operator's policy: every integer stays below 2**53
# (exact in a Lua number and in JSON readers) and far below Redis's 2**63.
ABS_MAX_FUEL = 10**15
ABS_MAX_BYTES = 2**40
ABS_MAX_MEMORY_MB = 65536
ABS_MAX_SECONDS = 7 * 24 * 3600.0
ABS_MAX_RETENTION = 366 * 24 * 3600.0

# name -> (kind, absolute maximum); "int" refuses floats, "seconds" takes finite positive numbers.
LIMIT_FIELDS: dict[str, tuple[str, float]] = {
    "fuel": ("int", ABS_MAX_FUEL),
    "timeout_seconds": ("seconds", ABS_MAX_SECONDS),
    "slice_seconds": ("seconds", ABS_MAX_SECONDS),
    "max_memory_mb": ("int", ABS_MAX_MEMORY_MB),
    "max_checkpoint_bytes": ("int", ABS_MAX_BYTES),
    "retention_seconds": ("seconds", ABS_MAX_RETENTION),  # kept once finished, up to the operator's maximum
}

EXT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_EXT_ID = re.compile(EXT_ID_PATTERN)
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
MAX_PARAMS_DEPTH = 32
_MSGPACK_INT_MIN, _MSGPACK_INT_MAX = -(2**63), 2**64 - 1


def check_int(name: str, value: Any, maximum: float, *, job_id: str | None = None, minimum: int = 1) -> int:
    """``value`` as an integer in ``[minimum, maximum]``; floats, bools and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {_show(value)}", job_id=job_id)
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}", job_id=job_id)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {int(maximum)}, got {_show(value)}", job_id=job_id)
    return value


def check_seconds(name: str, value: Any, maximum: float = ABS_MAX_SECONDS, *, job_id: str | None = None) -> float:
    """``value`` as finite, positive seconds no larger than ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number of seconds, got {_show(value)}", job_id=job_id)
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number of seconds above 0, got {_show(value)}", job_id=job_id)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g} seconds, got {_show(value)}", job_id=job_id)
    return float(value)


def check_limits(raw: Any, *, job_id: str | None = None) -> dict[str, Any]:
    """The per-job limits a submitter may ask for, each checked; ``None`` values are dropped."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError("limits must be an object", job_id=job_id)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        spec = LIMIT_FIELDS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise ConfigError(f"unknown limit {name!r} (known: {', '.join(LIMIT_FIELDS)})", job_id=job_id)
        if value is None:
            continue
        kind, maximum = spec
        if kind == "int":
            out[name] = check_int(f"limit {name}", value, maximum, job_id=job_id)
        else:
            out[name] = check_seconds(f"limit {name}", value, maximum, job_id=job_id)
    return out


def check_params(params: Any, max_bytes: int, *, job_id: str | None = None) -> Any:
    """Refuse params a job could not take: bytes, ints outside 64 bits, NaN/inf, non-string
    keys, deep nesting, or more than ``max_bytes`` once encoded."""
    _walk(params, 0, job_id)
    size = len(msgpack.packb(params, use_bin_type=True))
    if size > max_bytes:
        raise ConfigError(f"params are {size} bytes encoded; the limit is {max_bytes}", job_id=job_id)
    return params


def _walk(value: Any, depth: int, job_id: str | None) -> None:
    if depth > MAX_PARAMS_DEPTH:
        raise ConfigError(f"params are nested deeper than {MAX_PARAMS_DEPTH} levels", job_id=job_id)
    if value is None or isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not _MSGPACK_INT_MIN <= value <= _MSGPACK_INT_MAX:
            raise ConfigError(f"params hold an integer outside 64 bits ({_show(value)})", job_id=job_id)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"params hold a non-finite number ({value!r})", job_id=job_id)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, depth + 1, job_id)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"params keys must be strings, got {_show(key)}", job_id=job_id)
            _walk(item, depth + 1, job_id)
        return
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise ConfigError("params hold raw bytes; send text (e.g. base64 or hex) instead", job_id=job_id)
    raise ConfigError(f"params hold a {type(value).__name__}, which is not a JSON value", job_id=job_id)


def check_ext_id(ext_id: Any, *, what: str = "extension id") -> str:
    """An extension id: letters, digits, ``.``, ``_``, ``-``; 1..64 characters."""
    if not isinstance(ext_id, str) or not _EXT_ID.match(ext_id):
        raise ConfigError(
            f"{what} {_show(ext_id)} is not valid: use 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"
        )
    return ext_id


_EXT_REF = re.compile(r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9][A-Za-z0-9._-]{0,63}(@[0-9A-Za-z.+-]{1,64})?)$")


def check_extension_ref(ref: Any, *, job_id: str | None = None) -> str:
    """How a job names its extension: ``id``, ``id@version`` or ``sha256:<64 hex>``."""
    if not isinstance(ref, str) or not _EXT_REF.match(ref):
        raise ConfigError(
            f"extension {_show(ref)} is not an id, id@version or sha256:<64 hex digits>", job_id=job_id
        )
    return ref


def is_hex_digest(text: Any) -> bool:
    """True for exactly 64 lowercase hex digits (a SHA-256 without its ``sha256:`` prefix)."""
    return isinstance(text, str) and bool(_HEX_DIGEST.match(text))


def check_hex_digest(text: Any) -> str:
    if not is_hex_digest(text):
        raise ConfigError(f"malformed digest {_show(text)}: expected 64 lowercase hex digits")
    return str(text)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
