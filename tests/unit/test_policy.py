"""Edge validation and operator policy: numbers, params, ids, ceilings and effective limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

from wasmjob.errors import ConfigError, ManifestError, ModuleError
from wasmjob.manifest import Manifest
from wasmjob.policy import Policy
from wasmjob.validate import check_ext_id, check_limits, check_params, is_hex_digest


def _manifest(**extra: object) -> Manifest:
    data: dict[str, object] = {"id": "ext", "name": "ext", "version": "1.0.0"}
    for key, value in extra.items():
        section, _, name = key.partition("__")
        data.setdefault(section, {})[name] = value  # type: ignore[index, union-attr]
    return Manifest.from_dict(data)


@pytest.mark.parametrize(
    "limits, match",
    [
        ({"fuel": 0.5}, "must be an integer, got 0.5"),
        ({"fuel": 1e6}, "must be an integer"),
        ({"fuel": True}, "must be an integer"),
        ({"fuel": float("nan")}, "must be an integer"),
        ({"fuel": 0}, "at least 1"),
        ({"fuel": -3}, "at least 1"),
        ({"fuel": 10**30}, "at most"),
        ({"max_memory_mb": 10**6}, "at most 65536"),
        ({"max_checkpoint_bytes": 2**63}, "at most"),
        ({"timeout_seconds": float("inf")}, "finite"),
        ({"timeout_seconds": float("nan")}, "finite"),
        ({"slice_seconds": 0}, "above 0"),
        ({"timeout_seconds": "5"}, "number of seconds"),
        ({"nonsense": 1}, "unknown limit"),
        ([1], "must be an object"),
    ],
)
def test_bad_limits_are_refused_with_one_reason(limits: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_limits(limits)


def test_good_limits_pass_and_none_values_drop() -> None:
    assert check_limits({"fuel": 10**9, "timeout_seconds": 2, "max_memory_mb": None}) == {
        "fuel": 10**9,
        "timeout_seconds": 2.0,
    }


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n": 2**64}, "outside 64 bits"),
        ({"n": -(2**63) - 1}, "outside 64 bits"),
        ({"b": b"x"}, "raw bytes"),
        ({"f": float("nan")}, "non-finite"),
        ({1: "x"}, "keys must be strings"),
        ({"s": {1, 2}}, "set"),
        ("x" * 2000, "bytes encoded"),
    ],
)
def test_bad_params_are_refused(params: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_params(params, 1000)


def test_deep_params_are_refused_and_normal_params_pass() -> None:
    deep: list[object] = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ConfigError, match="nested deeper"):
        check_params(deep, 10**6)
    assert check_params({"a": [1, 2.5, None, True, "x", 2**64 - 1]}, 10**6)


@pytest.mark.parametrize("bad", ["", "a|b", "a@b", "*", "../x", "a/b", "a b", "a:b", "-x", "x" * 65, None, 5])
def test_extension_ids_with_separators_or_path_characters_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        check_ext_id(bad)


def test_manifest_ids_are_checked_and_empty_method_prefixes_refused() -> None:
    assert check_ext_id("counter-rs_2.x") == "counter-rs_2.x"
    with pytest.raises(ManifestError, match="not valid"):
        Manifest.from_dict({"id": "kv|demo", "name": "x", "version": "1.0.0"})
    with pytest.raises(ManifestError, match="empty prefix"):
        _manifest(permissions__methods=[""])
    with pytest.raises(ManifestError, match="finite"):
        _manifest(wasmjob__limits={"timeout_seconds": float("nan")})


def test_an_empty_prefix_grants_nothing_even_when_it_got_in() -> None:
    from dataclasses import replace

    m = _manifest()
    perms = replace(m.permissions, methods=("",))
    assert not perms.allows_method("action:kv.set.v1")


def test_digests_are_exactly_64_lowercase_hex() -> None:
    assert is_hex_digest("a" * 64)
    assert not is_hex_digest("../travout/x:" + "a" * 51)
    assert not is_hex_digest("A" * 64)
    assert not is_hex_digest("a" * 63)


def test_policy_comes_from_a_file_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"max_memory_mb": 128, "allowed_methods": ["query:"], "allow_wasi": False}))
    policy = Policy.from_env({"WASMJOB_POLICY_FILE": str(path), "WASMJOB_MAX_MEMORY_MB": "256"})
    assert policy.max_memory_mb == 256 and policy.allowed_methods == ("query:",) and not policy.allow_wasi
    with pytest.raises(ConfigError, match="unknown policy settings"):
        Policy.from_dict({"max_everything": 1})
    with pytest.raises(ConfigError, match="not a number"):
        Policy.from_env({"WASMJOB_MAX_FUEL": "lots"})
    with pytest.raises(ConfigError, match="at least 1"):
        Policy.from_env({"WASMJOB_MAX_KV_KEYS": "-1"})


def test_a_manifest_over_policy_names_every_rule_it_breaks() -> None:
    policy = Policy(max_fuel=10**6, allowed_methods=("query:",), allow_wasi=False)
    greedy = _manifest(
        permissions__methods=["query:", "action:kv."],
        permissions__max_memory_mb=4096,
        permissions__rate_limits={"requests_per_minute": 0},
        wasmjob__limits={"fuel": 10**9, "max_log_bytes": 10**12},
        wasmjob__wasi=True,
    )
    with pytest.raises(ManifestError) as info:
        policy.check_manifest(greedy)
    text = str(info.value)
    for rule in ("fuel", "max_memory_mb", "max_log_bytes", "'action:kv.'", "WASI", "requests_per_minute is 0"):
        assert rule in text
    clamped = policy.clamp_manifest(greedy)
    assert clamped.permissions.methods == ("query:",)
    assert clamped.permissions.max_memory_mb == 1024 and clamped.limits.max_memory_mb == 1024
    assert clamped.permissions.rate_limits.requests_per_minute == policy.max_requests_per_minute
    assert clamped.limits.fuel == 10**6 and clamped.limits.max_log_bytes == policy.max_log_bytes
    assert not clamped.wasi
    assert policy.check_manifest(_manifest()) is not None


def test_unlimited_rate_is_allowed_only_when_policy_says_so() -> None:
    m = _manifest(permissions__rate_limits={"requests_per_minute": 0})
    assert Policy(allow_unlimited_rate=True).manifest_violations(m) == []
    assert Policy().clamp_manifest(m).permissions.rate_limits.requests_per_minute == 6000


def test_effective_limits_are_the_lowest_and_clamps_are_noted() -> None:
    manifest = _manifest(wasmjob__limits={"fuel": 10**6, "timeout_seconds": 2, "max_checkpoint_bytes": 1024})
    limits, notes = Policy().effective_limits(
        manifest,
        {"fuel": 10**15, "timeout_seconds": 10**5, "max_checkpoint_bytes": 10**9},
        run_timeout=300, slice_seconds=60, store_checkpoint_bytes=16 << 20,
    )
    assert (limits.fuel, limits.timeout_seconds, limits.max_checkpoint_bytes) == (10**6, 2, 1024)
    assert len(notes) == 3 and "fuel 1e+15 asked, clamped to 1e+06" in notes
    lower, notes = Policy().effective_limits(
        manifest, {"fuel": 10}, run_timeout=300, slice_seconds=60, store_checkpoint_bytes=16 << 20
    )
    assert lower.fuel == 10 and notes == []
    unmetered, _ = Policy().effective_limits(
        _manifest(), {}, run_timeout=300, slice_seconds=60, store_checkpoint_bytes=16 << 20
    )
    assert unmetered.fuel is None  # no ceiling set: the fuel-less engine may run it


def test_modules_over_the_ceilings_are_refused_before_compiling() -> None:
    many = wasmtime.wat2wasm("(module " + "(func)" * 50 + ")")
    with pytest.raises(ModuleError, match="defines 50 functions; the operator allows at most 10"):
        Policy(max_functions=10).check_module(many)
    table = wasmtime.wat2wasm("(module (table 5000 funcref))")
    with pytest.raises(ModuleError, match="5000 table entries"):
        Policy(max_table_entries=1000).check_module(table)
    with pytest.raises(ModuleError, match="operator allows at most 10 bytes"):
        Policy(max_module_bytes=10).check_module(many)
    memory = wasmtime.wat2wasm("(module (memory 32768))")
    with pytest.raises(ModuleError, match="memory starts at 32768 pages"):
        Policy(max_memory_mb=64).check_module(memory)
    with pytest.raises(ModuleError, match="invalid WebAssembly"):
        Policy().check_module(b"\0asm\x01\0\0\0\x03\x05\xff\xff\xff\xff\x0f")
    assert Policy().check_module(many).functions == 50


@pytest.mark.parametrize(
    "url, reqs, warning",
    [
        ("redis://10.0.0.5:6379/0", "required", "without a password"),
        ("rediss://:pw@redis.example:6380/0", "none", "does not check certificates"),
        ("redis://:pw@redis.example:6379/0", "required", "without TLS"),
    ],
)
def test_workers_warn_about_unsafe_redis_connections(url: str, reqs: str, warning: str) -> None:
    from wasmjob.policy import connection_warnings

    assert any(warning in w for w in connection_warnings(url, reqs))


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://localhost/0", "unix:///run/redis.sock", "rediss://:pw@r.example/0"]
)
def test_loopback_sockets_and_checked_tls_raise_no_warning(url: str) -> None:
    from wasmjob.policy import connection_warnings

    assert connection_warnings(url, "required") == []


def test_a_component_is_held_to_the_size_ceiling_only() -> None:
    component = b"\0asm\x0d\0\x01\0" + b"\0" * 100
    assert Policy().check_module(component).size == 108
    with pytest.raises(ModuleError, match="at most 50 bytes"):
        Policy(max_component_bytes=50).check_module(component)
    assert Policy(max_module_bytes=50).check_module(component).size == 108  # components have their own ceiling


# the CLI's edges ---------------------------------------------------------------------


def _module_dir(tmp_path: Path, methods: list[str]) -> Path:
    from .wat import wat_module

    (tmp_path / "m.wasm").write_bytes(wat_module("(i32.const 0)"))
    manifest = {"id": "m", "name": "m", "version": "1.0.0", "wasm_file": "m.wasm", "permissions": {"methods": methods}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path / "m.wasm"


def test_inspect_shows_method_prefixes_truthfully(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wasmjob.cli import main

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["inspect", str(_module_dir(tmp_path / "a", ["query:"]))]) == 0
    assert "'query:'" in capsys.readouterr().out
    assert main(["inspect", str(_module_dir(tmp_path / "b", []))]) == 0
    assert "none (no host methods)" in capsys.readouterr().out


def test_inspect_and_run_refuse_an_empty_method_prefix_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wasmjob.cli import main

    path = _module_dir(tmp_path, [""])
    assert main(["inspect", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "empty prefix" in err[0]


def test_the_local_runner_refuses_a_zero_fuel_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wasmjob.cli import main

    path = _module_dir(tmp_path, ["query:"])
    assert main(["run", str(path), "main", "--fuel", "0", "--state-dir", str(tmp_path / "s")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "limit fuel must be at least 1" in err[0]
