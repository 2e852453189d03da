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


PROBE_C = r"""#include "wasmjob.h"

/* Reads "threshold" from the config and "runs" from the store, stores runs + 1,
 * and fails with a code when the config has no threshold. */
static int32_t run_probe(wasmjob_job *job) {
    wasmjob_buf config, runs;
    int64_t threshold = -1, seen = 0;
    char text[96];
    wasmjob_buf_init(&config);
    wasmjob_buf_init(&runs);
    if (wasmjob_config(job, &config) == 1) wasmjob_json_get_int(config.data, config.len, "threshold", &threshold);
    if (threshold < 0) return wasmjob_fail_code(job, WASMJOB_E_INVALID_INPUT, "no threshold in the config");
    if (wasmjob_kv_get(job, "runs", &runs) == 1) {
        wasmjob_buf_byte(&runs, 0);
        for (const char *p = (const char *)runs.data; *p; p++) seen = seen * 10 + (*p - '0');
    }
    wasmjob_format(text, sizeof text, "%lld", (long long)(seen + 1));
    if (wasmjob_kv_set(job, "runs", text)) return wasmjob_fail(job, "kv_set failed");
    uint32_t n = wasmjob_format(text, sizeof text, "{\"threshold\":%lld,\"runs\":%lld}", (long long)threshold,
                                (long long)(seen + 1));
    return wasmjob_complete(job, text, n);
}

WASMJOB_JOB(probe, run_probe)
WASMJOB_EXTENSION(WASMJOB_RESUMABLE(probe))
"""

PROBE_TEST_C = r"""#define WASMJOB_NATIVE
#include "../probe.c"
#include "wasmjob_test.h"

int main(void) {
    WASMJOB_CHECK(wasmjob_test_run(execute_probe, "{}") == WASMJOB_FAILED);
    WASMJOB_CHECK(strcmp(wasmjob_test.last_error, "invalid_input: no threshold in the config") == 0);
    wasmjob_test.config = "{\"threshold\": 7, \"label\": \"x\"}";
    WASMJOB_CHECK(wasmjob_test_run(execute_probe, "{}") == WASMJOB_COMPLETED);
    WASMJOB_CHECK(wasmjob_test_run(execute_probe, "{}") == WASMJOB_COMPLETED);
    int64_t runs = 0, threshold = 0;
    wasmjob_json_get_int(wasmjob_test.checkpoint.data, wasmjob_test.checkpoint.len, "runs", &runs);
    wasmjob_json_get_int(wasmjob_test.checkpoint.data, wasmjob_test.checkpoint.len, "threshold", &threshold);
    WASMJOB_CHECK(runs == 2 && threshold == 7);
    return wasmjob_test_done();
}
"""


def test_c_sdk_config_kv_and_error_codes_on_the_mock_host_and_in_the_sandbox(tmp_path: Path) -> None:
    import json
    import subprocess

    from wasmjob.job import JobSpec, Limits, Status
    from wasmjob.manifest import Manifest
    from wasmjob.runtime import Runtime, RuntimeConfig
    from wasmjob.store import LocalStore

    project = tmp_path / "probe"
    (project / "tests").mkdir(parents=True)
    manifest = json.loads((COUNTER / "manifest.json").read_text())
    manifest.update(id="probe", wasm_file="probe.wasm")
    manifest["permissions"]["methods"] = ["query:", "action:kv."]
    manifest.setdefault("wasmjob", {})["config"] = {"threshold": 3}
    (project / "manifest.json").write_text(json.dumps(manifest))
    (project / "probe.c").write_text(PROBE_C)
    (project / "tests" / "test_probe.c").write_text(PROBE_TEST_C)
    native = subprocess.run([sys.executable, "-m", "wasmjob.cli", "test", str(project)], capture_output=True, text=True)
    assert native.returncode == 0 and "all checks passed" in native.stderr, native.stderr

    wasm = build_extension(project)
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path / "cache"))
    store = LocalStore(tmp_path / "state")
    try:
        ext = rt.load(wasm.read_bytes(), Manifest.from_file(project / "manifest.json"))
        for expected_runs in (1, 2):
            spec = JobSpec("probe", {})
            token = store.acquire(spec.job_id, "t", 60)
            out = rt.run(ext, spec, store, token, limits=Limits(timeout_seconds=30))
            store.release(spec.job_id, token)
            assert out.status is Status.COMPLETED, out.reason
            assert out.result == {"threshold": 3, "runs": expected_runs}
    finally:
        store.close()
        rt.close()
