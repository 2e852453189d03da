"""The extension registry: modules by digest, id@version immutable, bytes verified on fetch."""

from __future__ import annotations

import uuid

import pytest

from modules import TICKER_WAT, TRAP_WAT, manifest, unique, wasm
from wasmjob.errors import ManifestError, ModuleError, NotFound

pytestmark = pytest.mark.timeout(30)


def test_a_module_is_found_by_id_by_id_at_version_and_by_digest(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = f"reg-{uuid.uuid4().hex[:6]}"
    v1 = reg.add(wasm(unique(TICKER_WAT, ext)), manifest(ext, "1.9.0"), ["tick"])
    v2 = reg.add(wasm(unique(TRAP_WAT, ext)), manifest(ext, "1.10.0"), ["tick"])
    assert reg.resolve(ext) == v2  # numeric version order, not string order
    assert reg.resolve(f"{ext}@1.9.0") == v1
    assert reg.resolve(v1.digest) == v1
    assert reg.fetch(v1.digest) == wasm(unique(TICKER_WAT, ext))
    assert [r.version for r in reg.entries() if r.id == ext] == ["1.9.0", "1.10.0"]


def test_an_id_at_version_cannot_be_registered_again_with_other_bytes(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = f"reg-{uuid.uuid4().hex[:6]}"
    reg.add(wasm(TICKER_WAT), manifest(ext), ["tick"])
    reg.add(wasm(TICKER_WAT), manifest(ext), ["tick"])  # the same bytes again: fine
    with pytest.raises(ManifestError, match="already"):
        reg.add(wasm(TRAP_WAT), manifest(ext), ["tick"])


def test_unknown_names_say_what_exists(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = f"reg-{uuid.uuid4().hex[:6]}"
    reg.add(wasm(TICKER_WAT), manifest(ext), ["tick"])
    with pytest.raises(NotFound, match="has no version 2.0.0 \\(has 1.0.0\\)"):
        reg.resolve(f"{ext}@2.0.0")
    with pytest.raises(NotFound, match="no extension"):
        reg.resolve("never-registered")
    with pytest.raises(NotFound, match="malformed digest"):
        reg.resolve("sha256:abc")


def test_the_same_bytes_can_be_two_releases_each_with_its_own_manifest(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = f"reg-{uuid.uuid4().hex[:6]}"
    module = wasm(unique(TICKER_WAT, ext))
    reg.add(module, manifest(ext, "1.0.0"), ["tick"])
    reg.add(module, manifest(ext, "1.0.1", concurrent_jobs=2), ["tick"])
    assert reg.resolve(f"{ext}@1.0.0").digest == reg.resolve(f"{ext}@1.0.1").digest
    assert reg.manifest(ext, "1.0.1").permissions.rate_limits.concurrent_jobs == 2
    assert reg.manifest(ext, "1.0.0").permissions.rate_limits.concurrent_jobs == 0
    assert reg.resolve(reg.resolve(ext).digest).version == "1.0.0"  # a bare digest: its first release


def test_tampered_module_bytes_are_refused_on_fetch(redis_fleet) -> None:
    reg = redis_fleet.registry
    tag = uuid.uuid4().hex[:6]
    ref = reg.add(wasm(unique(TICKER_WAT, tag)), manifest(f"reg-{tag}"), ["tick"])
    redis_fleet.client.set(redis_fleet.keys.module(ref.hex), b"\0asm tampered")
    with pytest.raises(ModuleError, match="refusing to run them"):
        reg.fetch(ref.digest)
