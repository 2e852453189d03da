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


def _scaffold_c(tmp_path: Path, source: str) -> Path:
    from wasmjob.scaffold import scaffold

    project = scaffold("warned", "c", tmp_path / "warned")
    (project / "warned.c").write_text(source)
    return project


def test_a_missing_return_value_is_a_build_error_not_a_runtime_mystery(tmp_path: Path) -> None:
    from wasmjob.scaffold import _MAIN_C

    source = _MAIN_C.replace("{name}", "warned").replace(
        "    return save(job, &s, wasmjob_complete); /* the final state is the result */\n", ""
    )
    with pytest.raises(BuildError, match="non-void function does not return a value"):
        build_extension(_scaffold_c(tmp_path, source))


def test_warnings_of_a_successful_build_are_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wasmjob.scaffold import _MAIN_C

    source = _MAIN_C.replace("{name}", "warned").replace(
        "    count_state s = {0, 0, 0};", "    count_state s = {0, 0, 0};\n    int unused_here = 1;"
    )
    built = build_extension(_scaffold_c(tmp_path, source))
    assert built.is_file()
    assert "unused variable 'unused_here'" in capsys.readouterr().err


def test_cargo_165s_missing_crate_wording_gets_the_debian_package_hint() -> None:
    from wasmjob.builder_rust import RustToolchain, _failure_message

    tc = RustToolchain("debian", "/usr/bin/cargo", "/usr/bin/rustc", "rustc 1.63.0", Path("/usr/share/cargo/registry"))
    stderr = "error: no matching package found\nsearched package name: `regex`\nperhaps you meant: rand"
    assert "install the crate's librust-<name>-dev package" in _failure_message(Path("/x/ext"), tc, stderr)


def test_build_prints_the_module_path_relative_to_where_it_runs(tmp_path: Path) -> None:
    import subprocess

    from wasmjob.scaffold import scaffold

    scaffold("pathy", "c", tmp_path / "pathy")
    proc = subprocess.run(
        [sys.executable, "-m", "wasmjob.cli", "build", "pathy"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "pathy/pathy.wasm"
