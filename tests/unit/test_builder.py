"""wasmjob.builder: reproducible C builds, clear errors, and the Rust dispatch point."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest

from wasmjob import builder
from wasmjob.builder import BuildError, build_extension

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COUNTER = ROOT / "extensions" / "counter"


def test_building_counter_twice_gives_the_committed_bytes(tmp_path: Path) -> None:
    first = build_extension(COUNTER, tmp_path / "one")
    second = build_extension(COUNTER, tmp_path / "two")
    assert first.name == "counter.wasm"
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() == (COUNTER / "counter.wasm").read_bytes(), "run python extensions/build.py"


C_EXTENSIONS = sorted(p.parent for p in (ROOT / "extensions").glob("*/*.c") if (p.parent / "manifest.json").exists())


@pytest.mark.parametrize("src", sorted(set(C_EXTENSIONS)), ids=lambda p: p.name)
def test_every_committed_c_module_is_what_its_source_builds(tmp_path: Path, src: Path) -> None:
    import json

    wasm_file = json.loads((src / "manifest.json").read_text())["wasm_file"]
    built = build_extension(src, tmp_path)
    assert built.read_bytes() == (src / wasm_file).read_bytes(), f"stale {src.name}/{wasm_file}: run python extensions/build.py"


def test_output_does_not_depend_on_where_the_sources_are(tmp_path: Path) -> None:
    copy = tmp_path / "somewhere" / "else" / "counter"
    shutil.copytree(COUNTER, copy)
    (copy / "counter.wasm").unlink()
    built = build_extension(copy)
    assert built == copy / "counter.wasm"
    assert built.read_bytes() == (COUNTER / "counter.wasm").read_bytes()


def test_missing_toolchain_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(builder.shutil, "which", lambda name: None)
    with pytest.raises(BuildError, match=r"^zig not found: pip install ziglang$"):
        builder.find_zig()


def test_unrunnable_zig_command_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="zig not found.*pip install ziglang"):
        build_extension(COUNTER, tmp_path, zig=[str(tmp_path / "no-such-zig")])
    assert not (tmp_path / "counter.wasm").exists()


def test_compiler_errors_are_reported_and_leave_no_output(tmp_path: Path) -> None:
    src = tmp_path / "broken"
    src.mkdir()
    shutil.copy(COUNTER / "manifest.json", src)
    (src / "broken.c").write_text('#include "wasmjob.h"\nint32_t f(void) { return undeclared; }\n')
    with pytest.raises(BuildError, match="undeclared"):
        build_extension(src)
    assert not (src / "counter.wasm").exists()


def test_directory_without_sources_or_manifest_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="manifest.json"):
        build_extension(tmp_path)
    shutil.copy(COUNTER / "manifest.json", tmp_path)
    with pytest.raises(BuildError, match=r"no \*\.c file or Cargo.toml"):
        build_extension(tmp_path)


def test_cargo_toml_dispatches_to_the_rust_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, Path | None]] = []

    def build_rust(src_dir: Path, out_dir: Path | None = None) -> Path:
        calls.append((src_dir, out_dir))
        return (out_dir or src_dir) / "fake.wasm"

    fake = types.ModuleType("wasmjob.builder_rust")
    fake.build_rust = build_rust  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wasmjob.builder_rust", fake)
    shutil.copy(COUNTER / "manifest.json", tmp_path)
    (tmp_path / "Cargo.toml").write_text('[package]\nname = "x"\n')
    assert build_extension(tmp_path) == tmp_path / "fake.wasm"
    assert build_extension(tmp_path, tmp_path / "out") == tmp_path / "out" / "fake.wasm"
    assert calls == [(tmp_path, None), (tmp_path, tmp_path / "out")]
