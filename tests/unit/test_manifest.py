"""manifest.json: Spacedrive's fields load unchanged, ours have defaults, errors name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wasmjob.errors import ManifestError
from wasmjob.manifest import Manifest, find_manifest

SPACEDRIVE = {
    "id": "test-extension",
    "name": "Test Extension",
    "version": "0.1.0",
    "description": "counts",
    "author": "Spacedrive",
    "wasm_file": "test_extension.wasm",
    "permissions": {
        "methods": ["query:", "action:"],
        "libraries": ["*"],
        "rate_limits": {"requests_per_minute": 1000, "concurrent_jobs": 10},
        "network_access": [],
        "max_memory_mb": 512,
    },
}


def test_a_spacedrive_manifest_loads_with_our_defaults() -> None:
    m = Manifest.from_dict(SPACEDRIVE)
    assert (m.id, m.version, m.wasm_file) == ("test-extension", "0.1.0", "test_extension.wasm")
    assert m.permissions.rate_limits.concurrent_jobs == 10
    assert m.limits.max_memory_mb == 512
    assert m.state_encoding == "json" and m.wasi is False
    assert m.permissions.allows_method("query:jobs.status.v1")
    assert not m.permissions.allows_method("admin:wipe")


def test_wasmjob_section_sets_encoding_and_limits() -> None:
    data = SPACEDRIVE | {"wasmjob": {"state_encoding": "msgpack", "limits": {"fuel": 1000, "timeout_seconds": 5, "max_checkpoint_bytes": 4096}}}
    m = Manifest.from_dict(data)
    assert m.state_encoding == "msgpack"
    assert (m.limits.fuel, m.limits.timeout_seconds, m.limits.max_checkpoint_bytes) == (1000, 5.0, 4096)
    assert Manifest.from_dict(m.to_dict()) == m


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"id": ""}, "'id' must be a non-empty string"),
        ({"permissions": {"methods": "query:"}}, "'permissions.methods' must be a list of strings"),
        ({"permissions": {"max_memory_mb": 0}}, "max_memory_mb' must be an integer >= 1"),
        ({"wasmjob": {"state_encoding": "xml"}}, "unknown state encoding 'xml'"),
        ({"wasmjob": {"limits": {"timeout_seconds": -1}}}, "must be a positive number"),
    ],
)
def test_bad_fields_are_named(patch: dict, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_dict(SPACEDRIVE | patch)


def test_invalid_json_is_one_line() -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_json("{", source="x/manifest.json")


def test_module_without_manifest_gets_the_default(tmp_path: Path) -> None:
    (tmp_path / "thing.wasm").write_bytes(b"")
    assert find_manifest(tmp_path / "thing.wasm").id == "thing"
    (tmp_path / "manifest.json").write_text(json.dumps(SPACEDRIVE | {"wasm_file": "thing.wasm"}))
    assert find_manifest(tmp_path / "thing.wasm").id == "test-extension"


def test_a_method_prefix_allows_the_methods_under_it_and_no_others_of_the_same_kind() -> None:
    perms = Manifest.from_dict(SPACEDRIVE | {"permissions": {"methods": ["action:kv.", "query:job.info.v1"]}}).permissions
    assert perms.allows_method("action:kv.set.v1")
    assert not perms.allows_method("action:files.delete.v1")
    assert perms.allows_method("query:job.info.v1")
    assert not perms.allows_method("query:kv.get.v1")
