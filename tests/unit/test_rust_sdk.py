"""The Rust SDK through the runtime (committed modules), and its build (when a toolchain is here).

Runtime tests use the committed ``.wasm`` of ``extensions/counter-rs``,
``extensions/csvstats`` and the SDK's self-test module. Build tests rebuild them
and compile small bad crates; they skip cleanly without a Rust toolchain
(``scripts/install-rust-toolchain.sh`` installs one). The Rust builds are marked
``slow`` (minutes on a loaded machine): CI runs them on its fresh clone (``.ci/run``).
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import msgpack
import pytest

from wasmjob.job import InterruptFlag, JobSpec, Limits, Outcome, Status
from wasmjob.manifest import Manifest
from wasmjob.runtime import Extension, Runtime
from wasmjob.store import LocalStore

from .conftest import StopAfter

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COUNTER_RS = ROOT / "extensions" / "counter-rs"
CSVSTATS = ROOT / "extensions" / "csvstats"
SELFTEST = ROOT / "extensions" / "sdk" / "rust" / "selftest"
RUST_CRATES = [COUNTER_RS, CSVSTATS, SELFTEST]


def load(rt: Runtime, crate: Path) -> Extension:
    manifest = Manifest.from_file(crate / "manifest.json")
    return rt.load((crate / manifest.wasm_file).read_bytes(), manifest)


def run_once(rt: Runtime, ext: Extension, spec: JobSpec, store: LocalStore, flag: InterruptFlag | None = None) -> Outcome:
    token = store.acquire(spec.job_id, "test", 60)
    try:
        return rt.run(ext, spec, store, token, flag or InterruptFlag(), Limits(timeout_seconds=60))
    finally:
        store.release(spec.job_id, token)


def run_to_end(rt: Runtime, ext: Extension, spec: JobSpec, store: LocalStore, rng: random.Random | None, gap: int) -> tuple[Outcome, int]:
    """Run until completed; with ``rng``, pause after a random number of polls each run."""
    for runs in range(1, 10_000):
        out = run_once(rt, ext, spec, store, StopAfter(rng.randint(1, gap)) if rng else None)
        assert out.status is not Status.FAILED, out.reason
        if out.status is Status.COMPLETED:
            return out, runs
    raise AssertionError("never completed")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    st = LocalStore(tmp_path / "state")
    yield st
    st.close()


# counter-rs -------------------------------------------------------------------


def test_counter_rs_counts_to_its_target(fast_runtime: Runtime, store: LocalStore) -> None:
    ext = load(fast_runtime, COUNTER_RS)
    assert ext.id == "counter-rs" and list(ext.jobs) == ["counter"] and ext.jobs["counter"].resumable
    out, _ = run_to_end(fast_runtime, ext, JobSpec("counter", {"target": 25}), store, None, 0)
    assert out.result == {"current": 25, "target": 25, "processed": [f"item_{i}" for i in range(1, 26)]}
    assert out.items == 25 and out.progress == pytest.approx(1.0)
    assert out.checkpoints == 3  # at 10, 20 and the final state


def test_counter_rs_defaults_like_the_c_counter(fast_runtime: Runtime, store: LocalStore) -> None:
    out, _ = run_to_end(fast_runtime, load(fast_runtime, COUNTER_RS), JobSpec("counter"), store, None, 0)
    assert out.result["current"] == out.result["target"] == 100


@pytest.mark.parametrize("seed", range(4))
def test_counter_rs_interrupted_at_random_points_gives_the_same_result(fast_runtime: Runtime, tmp_path: Path, seed: int) -> None:
    ext = load(fast_runtime, COUNTER_RS)
    whole, _ = run_to_end(fast_runtime, ext, JobSpec("counter", {"target": 47}), LocalStore(tmp_path / "a"), None, 0)
    pieces, runs = run_to_end(
        fast_runtime, ext, JobSpec("counter", {"target": 47}), LocalStore(tmp_path / "b"), random.Random(seed), 12
    )
    assert runs > 3
    assert pieces.result == whole.result


# csvstats -------------------------------------------------------------------


def make_csv(rng: random.Random, rows: int) -> str:
    """A CSV with quoting, embedded line breaks, blank lines, CRLF and non-numbers."""
    def quote(s: str) -> str:
        return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s

    regions = ["north", "south", "east, west", 'the "centre"', "ünïcode"]
    lines = ["id,region,amount,note"]
    for i in range(rows):
        amount = rng.choice([f"{rng.uniform(-100, 1000):.3f}", str(rng.randint(0, 50)), "n/a", "", " 12.5 "])
        note = rng.choice(["", "plain", "two\nlines", 'said "hi"'])
        lines.append(",".join([str(i), quote(rng.choice(regions)), amount, quote(note)]))
        if i % 97 == 0:
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


def python_stats(text: str, group_by: str, total: str) -> tuple[dict[str, Any], int, int]:
    """The same aggregation with Python's csv module: (groups, rows, skipped)."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    g, s = rows[0].index(group_by), rows[0].index(total)
    groups: dict[str, Any] = {}
    n = skipped = 0
    for row in rows[1:]:
        if not row:
            continue
        n += 1
        try:
            value = float(row[s].strip())
        except (ValueError, IndexError):
            skipped += 1
            continue
        d = groups.setdefault(row[g], {"count": 0, "sum": 0.0, "min": value, "max": value})
        d["count"] += 1
        d["sum"] += value
        d["min"], d["max"] = min(d["min"], value), max(d["max"], value)
    return groups, n, skipped


def test_csvstats_result_equals_a_python_computation(fast_runtime: Runtime, store: LocalStore) -> None:
    text = make_csv(random.Random(7), 400)
    params = {"csv": text, "group_by": "region", "sum": "amount", "checkpoint_every": 50}
    out, _ = run_to_end(fast_runtime, load(fast_runtime, CSVSTATS), JobSpec("aggregate", params), store, None, 0)
    groups, rows, skipped = python_stats(text, "region", "amount")
    assert out.result["groups"] == groups
    assert (out.result["rows"], out.result["skipped"], out.result["done"]) == (rows, skipped, True)
    assert out.result["csv"] == ""  # the input is not part of the result
    assert len(out.warnings) == 10  # one per skipped row, at most ten


def test_csvstats_keeps_its_last_summary_in_the_key_value_store(fast_runtime: Runtime, store: LocalStore) -> None:
    ext = load(fast_runtime, CSVSTATS)
    params = {"csv": "k,v\na,1\nb,2\na,3\n", "group_by": "k", "sum": "v"}
    first, _ = run_to_end(fast_runtime, ext, JobSpec("aggregate", params), store, None, 0)
    second, _ = run_to_end(fast_runtime, ext, JobSpec("aggregate", params), store, None, 0)
    assert first.result["previous"] is None
    summary = json.loads(second.result["previous"])
    assert summary == {"group_by": "k", "sum": "v", "rows": 3, "skipped": 0, "groups": 2, "total": 6.0}


@pytest.mark.parametrize("seed", range(3))
def test_csvstats_resumes_mid_file_with_the_same_result(fast_runtime: Runtime, tmp_path: Path, seed: int) -> None:
    ext = load(fast_runtime, CSVSTATS)
    params = {"csv": make_csv(random.Random(seed), 300), "group_by": "region", "sum": "amount", "checkpoint_every": 40}
    whole, _ = run_to_end(fast_runtime, ext, JobSpec("aggregate", params), LocalStore(tmp_path / "a"), None, 0)
    pieces, runs = run_to_end(
        fast_runtime, ext, JobSpec("aggregate", params), LocalStore(tmp_path / "b"), random.Random(seed), 90
    )
    assert runs > 3
    assert pieces.result == whole.result


def test_msgpack_state_round_trips_through_python(fast_runtime: Runtime, store: LocalStore) -> None:
    """A msgpack checkpoint decodes in Python, re-encodes, and resumes to the uninterrupted result."""
    ext = load(fast_runtime, CSVSTATS)
    assert ext.manifest.state_encoding == "msgpack"
    params = {"csv": make_csv(random.Random(3), 200), "group_by": "region", "sum": "amount"}
    spec = JobSpec("aggregate", params)
    paused = run_once(fast_runtime, ext, spec, store, StopAfter(120))
    assert paused.status is Status.INTERRUPTED
    state = msgpack.unpackb(store.load_checkpoint(spec.job_id), raw=False)
    assert state["csv"] == params["csv"] and 0 < state["offset"] < len(params["csv"].encode())
    token = store.acquire(spec.job_id, "test", 60)
    store.save_checkpoint(spec.job_id, token, msgpack.packb(state, use_bin_type=True))
    store.release(spec.job_id, token)
    resumed, _ = run_to_end(fast_runtime, ext, spec, store, None, 0)
    whole, _ = run_to_end(fast_runtime, ext, JobSpec("aggregate", params), store, None, 0)
    assert resumed.result["groups"] == whole.result["groups"]
    assert msgpack.unpackb(resumed.state, raw=False) == resumed.result


# the generated export, through the self-test module ------------------------------


def test_panic_is_reported_with_its_message(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), JobSpec("panics", {"message": "boom at row 7"}), store)
    assert out.status is Status.FAILED and out.failure == "trap"
    assert "boom at row 7" in (out.reason or "")
    assert "src/lib.rs" in (out.reason or "")  # where it panicked


def test_job_error_is_logged_and_becomes_the_failure_reason(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), JobSpec("fails", {"message": "bad input"}), store)
    assert out.status is Status.FAILED
    assert "bad input" in (out.reason or "")


def test_parameters_that_do_not_fit_the_state_fail_as_invalid_input(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), JobSpec("report", {"n": -1}), store)
    assert out.status is Status.FAILED
    assert (out.reason or "").startswith("Invalid input: the parameters do not fit the job's state: invalid value: integer `-1`")


def test_a_state_without_serde_default_starts_from_the_parameters_laid_over_its_default(
    fast_runtime: Runtime, store: LocalStore
) -> None:
    # counter-rs's state has no #[serde(default)]; {"target": 3} alone is a first run.
    out, _ = run_to_end(fast_runtime, load(fast_runtime, COUNTER_RS), JobSpec("counter", {"target": 3}), store, None, 0)
    assert out.result == {"current": 3, "target": 3, "processed": ["item_1", "item_2", "item_3"]}


def test_kv_helpers_store_and_read_strings(fast_runtime: Runtime, store: LocalStore) -> None:
    spec = JobSpec("kv", {"key": "greeting", "value": "hello"})
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), spec, store)
    assert out.status is Status.COMPLETED, out.reason
    assert out.result["got"] == "hello" and out.result["missing"] is None
    assert out.result["raw"] == '"hello"'  # typed values are stored as JSON text
    assert out.result["count"] == 0


def test_typed_kv_reads_back_what_it_stored(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), JobSpec("kv", {"key": "k", "value": "v", "n": 2**40}), store)
    assert out.status is Status.COMPLETED, out.reason
    assert out.result["count"] == 2**40


def test_config_is_the_manifests_wasmjob_config(fast_runtime: Runtime, store: LocalStore, tmp_path: Path) -> None:
    data = json.loads((SELFTEST / "manifest.json").read_text())
    data["wasmjob"]["config"] = {"threshold": 3, "label": "x"}
    manifest = Manifest.from_dict(data)
    ext = fast_runtime.load((SELFTEST / "selftest.wasm").read_bytes(), manifest)
    out = run_once(fast_runtime, ext, JobSpec("config", {}), store)
    assert out.status is Status.COMPLETED, out.reason
    assert out.result["result"] == {"threshold": 3, "label": "x"}
    plain = run_once(fast_runtime, load(fast_runtime, SELFTEST), JobSpec("config", {}), store)
    assert plain.result["result"] is None


def test_a_refused_host_call_fails_the_job_naming_the_method(fast_runtime: Runtime, store: LocalStore) -> None:
    spec = JobSpec("call", {"method": "query:no.such.op.v1", "payload": {}})
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), spec, store)
    assert out.status is Status.FAILED
    assert "query:no.such.op.v1" in (out.reason or "")


def test_every_reporting_host_function_reaches_the_host(fast_runtime: Runtime, store: LocalStore) -> None:
    spec = JobSpec("report", {"message": "hi", "n": 3})
    out = run_once(fast_runtime, load(fast_runtime, SELFTEST), spec, store)
    assert out.status is Status.COMPLETED, out.reason
    assert (out.items, out.bytes, out.warnings) == (3, 3000, ["hi"])
    assert out.message == "hi"  # the progress message (the fraction reads 1.0 once completed)
    assert out.result["result"] == f"{spec.job_id} {spec.library_id}"


# building (needs a Rust toolchain) -------------------------------------------------


@pytest.fixture(scope="module")
def rust_build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wasmjob.builder import BuildError
    from wasmjob.builder_rust import find_rust_toolchain

    try:
        find_rust_toolchain()
    except BuildError as exc:
        pytest.skip(f"no Rust toolchain: {exc}")
    return tmp_path_factory.mktemp("rust-build")


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("crate", RUST_CRATES, ids=lambda p: p.name)
def test_committed_rust_modules_are_what_their_sources_build(rust_build_dir: Path, tmp_path: Path, crate: Path) -> None:
    from wasmjob.builder_rust import build_rust

    manifest = Manifest.from_file(crate / "manifest.json")
    built = build_rust(crate, tmp_path / manifest.wasm_file, strict=True, target_dir=rust_build_dir)
    assert built.read_bytes() == (crate / manifest.wasm_file).read_bytes(), f"rebuild: wasmjob build {crate.relative_to(ROOT)}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_rust_output_does_not_depend_on_the_checkout_path(rust_build_dir: Path, tmp_path: Path) -> None:
    del rust_build_dir  # only for its skip when there is no toolchain
    from wasmjob.builder_rust import build_rust

    copy = tmp_path / "some" / "other" / "checkout" / "extensions"
    shutil.copytree(COUNTER_RS, copy / "counter-rs", ignore=shutil.ignore_patterns("*.wasm"))
    shutil.copytree(ROOT / "extensions" / "sdk" / "rust", copy / "sdk" / "rust", ignore=shutil.ignore_patterns("selftest"))
    # A fresh build directory too: nothing of the earlier builds is reused.
    built = build_rust(copy / "counter-rs", strict=True, target_dir=tmp_path / "build")
    assert built == copy / "counter-rs" / "counter-rs.wasm"
    assert built.read_bytes() == (COUNTER_RS / "counter-rs.wasm").read_bytes()


HEADER = """use wasmjob_sdk::prelude::*;
#[derive(Serialize, Deserialize, Default)]
struct S { n: u32 }
"""

BAD_CRATES = {
    "wrong_signature": (
        HEADER + '#[extension(id = "x", name = "x", version = "0.1.0", jobs = [work])]\nstruct X;\n'
        "#[job]\nfn work(ctx: &JobContext, state: S) -> Result<()> { let _ = (ctx, state); Ok(()) }\n",
        "the second parameter must be `state: &mut YourState`; "
        "expected `fn NAME(ctx: &JobContext, state: &mut YourState) -> Result<()>`",
    ),
    "listed_but_not_a_job": (
        HEADER + '#[extension(id = "x", name = "x", version = "0.1.0", jobs = [work])]\nstruct X;\n'
        "fn work(_ctx: &JobContext, _state: &mut S) -> Result<()> { Ok(()) }\n",
        "`work` is listed in `jobs = [...]` but is not a job: put #[job",
    ),
    "listed_but_missing": (
        HEADER + '#[extension(id = "x", name = "x", version = "0.1.0", jobs = [wrok])]\nstruct X;\n'
        "#[job]\nfn work(_ctx: &JobContext, _state: &mut S) -> Result<()> { Ok(()) }\n",
        "`wrok` is listed in `jobs = [...]` but there is no function `wrok`",
    ),
    "job_not_listed": (
        HEADER + '#[extension(id = "x", name = "x", version = "0.1.0", jobs = [work])]\nstruct X;\n'
        "#[job]\nfn work(_ctx: &JobContext, _state: &mut S) -> Result<()> { Ok(()) }\n"
        '#[job(name = "hash")]\nfn hash(_ctx: &JobContext, _state: &mut S) -> Result<()> { Ok(()) }\n',
        "`hash` is marked #[job] but is not listed in `jobs = [...]`: add it (jobs = [work, hash])",
    ),
    "returns_a_value": (
        HEADER + '#[extension(id = "x", name = "x", version = "0.1.0", jobs = [work])]\nstruct X;\n'
        "#[job]\nfn work(_ctx: &JobContext, _state: &mut S) -> Result<u32> { Ok(1) }\n",
        "a job returns `Result<()>`",
    ),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", sorted(BAD_CRATES))
def test_sdk_misuse_is_a_compile_error_that_says_what_is_expected(rust_build_dir: Path, tmp_path: Path, case: str) -> None:
    from wasmjob.builder import BuildError
    from wasmjob.builder_rust import build_rust
    from wasmjob.scaffold import scaffold

    source, expected = BAD_CRATES[case]
    project = scaffold("bad", "rust", tmp_path / "bad")
    (project / "src" / "lib.rs").write_text(source)
    with pytest.raises(BuildError) as info:
        build_rust(project, target_dir=rust_build_dir)
    assert expected in str(info.value)
    assert str(project / "src" / "lib.rs") in str(info.value)  # the author's path, not the staging copy
    assert not (project / "bad.wasm").exists()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_scaffolded_rust_project_builds_and_its_job_pauses_and_resumes(
    rust_build_dir: Path, fast_runtime: Runtime, tmp_path: Path
) -> None:
    from wasmjob.builder_rust import build_rust

    _check_scaffolded(fast_runtime, tmp_path, "rust", lambda project: build_rust(project, target_dir=rust_build_dir))


@pytest.mark.timeout(120)
def test_a_scaffolded_c_project_builds_and_its_job_pauses_and_resumes(fast_runtime: Runtime, tmp_path: Path) -> None:
    from wasmjob.builder import build_extension

    _check_scaffolded(fast_runtime, tmp_path, "c", build_extension)


def _check_scaffolded(
    fast_runtime: Runtime, tmp_path: Path, lang: Literal["rust", "c"], build: Callable[[Path], Path]
) -> None:
    from wasmjob.scaffold import scaffold

    project = scaffold("hello-ext", lang, tmp_path / "hello-ext")
    wasm = build(project)
    assert wasm == project / "hello-ext.wasm"
    manifest = Manifest.from_file(project / "manifest.json")
    ext = fast_runtime.load(wasm.read_bytes(), manifest)
    store = LocalStore(tmp_path / "state")
    out, runs = run_to_end(fast_runtime, ext, JobSpec("count", {"target": 30_000}), store, random.Random(1), 25_000)
    assert runs > 1
    assert out.result == {"target": 30_000, "current": 30_000, "sum": 30_000 * 30_001 // 2}


def wasmjob_test(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wasmjob.cli", "test", str(path)], capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.timeout(900)
@pytest.mark.parametrize("lang", ["rust", "c"])
def test_every_scaffold_ships_a_native_test_that_pauses_and_resumes(rust_build_dir: Path, tmp_path: Path, lang: str) -> None:
    from wasmjob.scaffold import scaffold

    project = scaffold("paused-ext", lang, tmp_path / "paused-ext")  # type: ignore[arg-type]
    proc = wasmjob_test(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    if lang == "rust":
        assert "test tests::count_pauses_and_resumes_to_the_full_sum ... ok" in proc.stdout, proc.stdout
        assert "path = \"../" in (project / "Cargo.toml").read_text()  # relative: no machine's path in it
    else:
        assert "all checks passed" in proc.stderr, proc.stderr
    # A broken job makes the same command fail.
    source = project / ("src/lib.rs" if lang == "rust" else "paused-ext.c")
    text = source.read_text()
    broken = text.replace("state.sum += state.current;", "state.sum += 1;") if lang == "rust" else text.replace(
        "s.sum += s.current;", "s.sum += 1;"
    )
    assert broken != text
    source.write_text(broken)
    assert wasmjob_test(project).returncode != 0


@pytest.mark.timeout(900)
def test_the_sdk_mock_host_interrupts_refuses_and_serves_host_calls(rust_build_dir: Path) -> None:
    proc = wasmjob_test(ROOT / "extensions" / "sdk" / "rust" / "wasmjob-sdk")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("interrupt_at_n_pauses", "spacedrive_interrupt_convention", "refused_checkpoints", "kv_config_and_host_calls"):
        assert f"testing::tests::{name}" in proc.stdout, proc.stdout
    assert "error::tests::question_mark_turns_serde_errors_into_serialization" in proc.stdout, proc.stdout


def test_no_rust_toolchain_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmjob import builder_rust
    from wasmjob.builder import BuildError

    monkeypatch.setattr(builder_rust, "DEBIAN_RUSTC", Path("/nonexistent/rustc"))
    monkeypatch.setattr(builder_rust.shutil, "which", lambda name: None)
    with pytest.raises(BuildError, match=r"run scripts/install-rust-toolchain\.sh .*rustup target add wasm32-unknown-unknown"):
        builder_rust.find_rust_toolchain()


def test_scaffold_refuses_bad_names_and_non_empty_directories(tmp_path: Path) -> None:
    from wasmjob.errors import ConfigError
    from wasmjob.scaffold import scaffold

    with pytest.raises(ConfigError, match="lowercase letters"):
        scaffold("My Ext", "rust", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an empty directory"):
        scaffold("b", "c", tmp_path / "b")
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"


def test_the_guide_runs_the_scaffold_with_the_scaffolds_own_numbers(tmp_path: Path) -> None:
    import re

    from wasmjob.scaffold import scaffold

    guide = (ROOT / "extensions" / "README.md").read_text()
    for lang in ("rust", "c"):
        readme = (scaffold("numbers", lang, tmp_path / lang) / "README.md").read_text()  # type: ignore[arg-type]
        local = re.search(r"wasmjob run \S+ count --params '(\{.*?\})'", readme)
        assert local is not None and f"count --params '{local.group(1)}'" in guide
        assert "wasmjob test" in readme and "wasmjob test myext" in guide
    assert "## The C SDK" in guide and "wasmjob_test.h" in guide
