"""The extension registry: modules by digest, id@version immutable, bytes verified on fetch,
semantic versions, and ids owned by the publisher keys that signed them."""

from __future__ import annotations

import uuid

import pytest

from modules import TICKER_WAT, TRAP_WAT, manifest, publish, signed, unique, wasm
from wasmjob.errors import ManifestError, ModuleError, NotFound, PublishRefused
from wasmjob.publishers import PublisherKey, Signature

pytestmark = pytest.mark.timeout(30)


def _ext() -> str:
    return f"reg-{uuid.uuid4().hex[:6]}"


def test_a_module_is_found_by_id_by_id_at_version_and_by_digest(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    v1 = publish(reg, wasm(unique(TICKER_WAT, ext)), manifest(ext, "1.9.0"), ["tick"])
    v2 = publish(reg, wasm(unique(TRAP_WAT, ext)), manifest(ext, "1.10.0"), ["tick"])
    assert reg.resolve(ext) == v2  # semantic version order, not string order
    assert reg.resolve(f"{ext}@1.9.0") == v1
    assert reg.resolve(v1.digest) == v1
    assert reg.fetch(v1.digest) == wasm(unique(TICKER_WAT, ext))
    assert [r.version for r in reg.entries() if r.id == ext] == ["1.9.0", "1.10.0"]


def test_an_id_at_version_cannot_be_registered_again_with_other_bytes(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    publish(reg, wasm(TICKER_WAT), manifest(ext), ["tick"])
    publish(reg, wasm(TICKER_WAT), manifest(ext), ["tick"])  # the same bytes again: fine
    with pytest.raises(ManifestError, match="already"):
        publish(reg, wasm(TRAP_WAT), manifest(ext), ["tick"])


def test_unknown_names_say_what_exists(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    publish(reg, wasm(TICKER_WAT), manifest(ext), ["tick"])
    with pytest.raises(NotFound, match="has no version 2.0.0 \\(has 1.0.0\\)"):
        reg.resolve(f"{ext}@2.0.0")
    with pytest.raises(NotFound, match="no extension"):
        reg.resolve("never-registered")
    with pytest.raises(NotFound, match="malformed digest"):
        reg.resolve("sha256:abc")


def test_the_same_bytes_can_be_two_releases_each_with_its_own_manifest(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    module = wasm(unique(TICKER_WAT, ext))
    publish(reg, module, manifest(ext, "1.0.0"), ["tick"])
    publish(reg, module, manifest(ext, "1.0.1", concurrent_jobs=2), ["tick"])
    assert reg.resolve(f"{ext}@1.0.0").digest == reg.resolve(f"{ext}@1.0.1").digest
    assert reg.manifest(ext, "1.0.1").permissions.rate_limits.concurrent_jobs == 2
    assert reg.manifest(ext, "1.0.0").permissions.rate_limits.concurrent_jobs == 0
    assert reg.resolve(reg.resolve(ext).digest).version == "1.0.0"  # a bare digest: its first release


def test_tampered_module_bytes_are_refused_on_fetch(redis_fleet) -> None:
    reg = redis_fleet.registry
    tag = uuid.uuid4().hex[:6]
    ref = publish(reg, wasm(unique(TICKER_WAT, tag)), manifest(f"reg-{tag}"), ["tick"])
    redis_fleet.client.set(redis_fleet.keys.module(ref.hex), b"\0asm tampered")
    with pytest.raises(ModuleError, match="refusing to run them"):
        reg.fetch(ref.digest)


# ownership -----------------------------------------------------------------------------


def test_another_publisher_cannot_take_over_an_id_with_a_higher_version(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    victim = publish(reg, wasm(unique(TICKER_WAT, ext)), manifest(ext, "1.0.0"), ["tick"])
    attacker = PublisherKey.generate()
    with pytest.raises(PublishRefused, match="belongs to other publishers"):
        publish(reg, wasm(unique(TRAP_WAT, ext)), manifest(ext, "9.9.9"), ["tick"], key=attacker)
    assert reg.resolve(ext) == victim
    assert reg.owners(ext) == [signed(b"", manifest(ext)).public]


def test_versions_must_be_semantic_so_nothing_sorts_above_every_release(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    for bad in ("*", "9.9.9.9", "v1.0.0", "01.0.0", "1.0", "1.0.0-", "x" * 80):
        with pytest.raises(PublishRefused, match="not a semantic version"):
            publish(reg, wasm(TICKER_WAT), manifest(ext, bad), ["tick"])
    assert reg.owners(ext) == []  # a refused release claims nothing


def test_a_bare_id_resolves_to_the_highest_release_not_a_prerelease(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    publish(reg, wasm(unique(TICKER_WAT, ext + "a")), manifest(ext, "1.2.0-rc.1"), ["tick"])
    assert reg.resolve(ext).version == "1.2.0-rc.1"  # only pre-releases: the highest of them
    publish(reg, wasm(unique(TICKER_WAT, ext + "b")), manifest(ext, "1.1.0"), ["tick"])
    publish(reg, wasm(unique(TICKER_WAT, ext + "c")), manifest(ext, "2.0.0-beta.10"), ["tick"])
    assert reg.resolve(ext).version == "1.1.0"
    assert reg.resolve(f"{ext}@2.0.0-beta.10").version == "2.0.0-beta.10"
    publish(reg, wasm(unique(TICKER_WAT, ext + "d")), manifest(ext, "1.0.5"), ["tick"])
    assert reg.resolve(ext).version == "1.1.0"  # an older release registered later does not win


def test_a_bare_id_reads_its_newest_version_from_a_pointer_and_rebuilds_it_when_missing(redis_fleet) -> None:
    reg, keys = redis_fleet.registry, redis_fleet.keys
    ext = _ext()
    for version in ("1.0.0", "1.3.0", "1.2.0"):
        publish(reg, wasm(unique(TICKER_WAT, ext + version)), manifest(ext, version), ["tick"])
    assert redis_fleet.client.get(keys.ext_latest(ext)) == b"1.3.0"
    redis_fleet.client.delete(keys.ext_latest(ext))  # a registry written before the pointer existed
    assert reg.resolve(ext).version == "1.3.0"
    assert redis_fleet.client.get(keys.ext_latest(ext)) == b"1.3.0"


def test_a_signature_binds_the_bytes_and_the_manifest(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    module, man = wasm(unique(TICKER_WAT, ext)), manifest(ext)
    sig = signed(module, man)
    with pytest.raises(PublishRefused, match="does not match"):
        reg.add(wasm(unique(TRAP_WAT, ext)), man, ["tick"], signature=sig)  # other bytes
    with pytest.raises(PublishRefused, match="does not match"):
        reg.add(module, manifest(ext, concurrent_jobs=9), ["tick"], signature=sig)  # other manifest
    forged = Signature(PublisherKey.generate().public, sig.signature)
    with pytest.raises(PublishRefused, match="does not match"):
        reg.add(module, man, ["tick"], signature=forged)  # someone else's key on it
    assert reg.add(module, man, ["tick"], signature=sig).version == "1.0.0"


def test_the_operator_can_give_an_id_to_another_key(redis_fleet) -> None:
    reg = redis_fleet.registry
    ext = _ext()
    publish(reg, wasm(unique(TICKER_WAT, ext)), manifest(ext, "1.0.0"), ["tick"])
    heir = PublisherKey.generate()
    reg.set_owners(ext, [heir.public])
    with pytest.raises(PublishRefused):
        publish(reg, wasm(unique(TRAP_WAT, ext)), manifest(ext, "1.1.0"), ["tick"])  # the old key
    assert publish(reg, wasm(unique(TRAP_WAT, ext)), manifest(ext, "1.1.0"), ["tick"], key=heir).version == "1.1.0"


def test_closed_registration_admits_only_keys_the_operator_registered(redis_fleet) -> None:
    from wasmjob.registry import Registry

    closed = Registry(redis_fleet.client, redis_fleet.keys, redis_fleet.scripts, registration="closed")
    stranger, known = PublisherKey.generate(), PublisherKey.generate()
    ext = _ext()
    with pytest.raises(PublishRefused, match="registration of new extension ids is closed"):
        publish(closed, wasm(unique(TICKER_WAT, ext)), manifest(ext), ["tick"], key=stranger)
    closed.allow_publisher(known.public, "known-publisher")
    assert publish(closed, wasm(unique(TICKER_WAT, ext)), manifest(ext), ["tick"], key=known).id == ext
    assert closed.publishers()[known.public] == "known-publisher"
