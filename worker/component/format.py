"""What a wasmjob component looks like from outside: its header and its WIT names.

``extensions/sdk/wit/wasmjob.wit`` is the source of these names; docs/abi.md the prose.
"""

from __future__ import annotations

HOST_INTERFACE = "wasmjob:job/host@1.0.0"
"""The interface a component imports for its host calls."""

WORLD = "extension"
"""The world a component targets: ``import host``, ``export jobs`` and ``export execute``."""

EXPORT_JOBS = "jobs"
EXPORT_EXECUTE = "execute"

_MAGIC = b"\0asm"
_COMPONENT_LAYER = b"\x01\x00"


def is_component(wasm: bytes) -> bool:
    """True for a component (header layer 1), False for a core module (layer 0) or anything else.

    The 8-byte header is ``\\0asm``, a 16-bit version and a 16-bit layer; core modules
    are version 1 layer 0, components version 0x0d layer 1.
    """
    return len(wasm) >= 8 and wasm[:4] == _MAGIC and wasm[6:8] == _COMPONENT_LAYER
