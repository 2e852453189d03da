"""The limits of one fleet run: a message may lower the manifest's caps, never raise them."""

from __future__ import annotations

import pytest

from wasmjob.broker_config import Settings
from wasmjob.fleet.limits import run_limits
from wasmjob.manifest import Manifest
from wasmjob.policy import Policy

pytestmark = pytest.mark.unit


def _manifest(max_memory_mb: int) -> Manifest:
    return Manifest.from_dict(
        {"id": "capped", "name": "Capped", "version": "1.0.0", "permissions": {"max_memory_mb": max_memory_mb}}
    )


def _memory(manifest: Manifest, requested: dict) -> int:
    limits, _ = run_limits(manifest, requested, Settings(), Policy())
    return limits.max_memory_mb


def test_the_manifests_memory_cap_holds_whatever_the_message_asks() -> None:
    assert Policy().max_memory_mb > 32  # the manifest's cap is the lower one here
    assert _memory(_manifest(32), {}) == 32
    assert _memory(_manifest(32), {"max_memory_mb": 4096}) == 32
    assert _memory(_manifest(32), {"max_memory_mb": 8}) == 8
