"""``wasmjob new``: write a new extension project that builds and runs as it is.

Both languages get the same job, ``count`` (sum 1..target, resumable at every
step), a ``manifest.json``, a ``build.sh`` and a short README, so an author
starts from something that already pauses and resumes correctly.

Each ships a native test that pauses the job and resumes it (``wasmjob test DIR``).

* Rust: a ``cdylib`` crate depending on ``extensions/sdk/rust/wasmjob-sdk`` by a
  relative path (the project moves with the checkout, and works in any clone);
  the test is in ``src/lib.rs``.
* C: one ``.c`` file that includes ``wasmjob.h``; the builder puts
  ``extensions/sdk/c`` on the include path, so no copy of the header goes stale.
  The test is ``tests/test_<name>.c``, on the SDK's mock host ``wasmjob_test.h``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal

from .errors import ConfigError

__all__ = ["scaffold"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SDK_RUST = REPO_ROOT / "extensions" / "sdk" / "rust" / "wasmjob-sdk"

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")


def scaffold(name: str, lang: Literal["rust", "c", "python"], dest: Path) -> Path:
    """Write the project for extension ``name`` into ``dest`` (new or empty); returns ``dest``."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"extension name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter"
        )
    if lang not in ("rust", "c", "python"):
        raise ConfigError(f"language {lang!r}: use rust, c or python")
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} already exists and is not an empty directory")
    if lang == "python":
        from .scaffold_python import python_files

        files = python_files(name, dest)
    else:
        files = _rust_files(name, dest) if lang == "rust" else _c_files(name)
    files["manifest.json"] = _manifest(name)
    files["README.md"] = _readme(name, lang, dest)
    files["build.sh"] = _BUILD_SH.format(name=name)
    files[".gitignore"] = "/target/\n/.wasmjob/\n" + ("__pycache__/\n" if lang == "python" else "")
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (dest / "build.sh").chmod(0o755)
    return dest


def _title(name: str) -> str:
    return re.sub(r"[-_]+", " ", name).strip().capitalize()


def _manifest(name: str) -> str:
    manifest = {
        "id": name,
        "name": _title(name),
        "version": "0.1.0",
        "description": f"{_title(name)}: a wasmjob extension.",
        "author": "",
        "wasm_file": f"{name}.wasm",
        "permissions": {
            "methods": ["query:", "action:kv."],
            "libraries": ["*"],
            "rate_limits": {"requests_per_minute": 600, "concurrent_jobs": 4},
            "network_access": [],
            "max_memory_mb": 64,
        },
        "wasmjob": {
            "state_encoding": "json",
            # "snapshot": the host saves the whole guest at interrupt checks; no checkpoint code needed
            "durability": "checkpoint",
            "limits": {"fuel": None, "timeout_seconds": 300, "max_checkpoint_bytes": 1048576},
        },
    }
    return json.dumps(manifest, indent=2) + "\n"


def _sdk_path(dest: Path) -> str:
    """The SDK as a relative Cargo path, so no machine's absolute path is written into the project."""
    return Path(os.path.relpath(SDK_RUST, dest.resolve())).as_posix()


def _rust_files(name: str, dest: Path) -> dict[str, str]:
    return {
        "Cargo.toml": _CARGO_TOML.format(name=name, sdk=_sdk_path(dest)),
        "src/lib.rs": _LIB_RS.replace("{name}", name).replace("{title}", _title(name)),
    }


def _c_files(name: str) -> dict[str, str]:
    return {f"{name}.c": _MAIN_C.replace("{name}", name), f"tests/test_{name}.c": _TEST_C.replace("{name}", name)}


def _readme(name: str, lang: str, dest: Path) -> str:
    source = {"rust": "src/lib.rs", "c": f"{name}.c", "python": "app.py (tests: plain `pytest`)"}[lang]
    return _README.format(name=name, title=_title(name), source=source, dir=dest.as_posix())


_BUILD_SH = """#!/bin/sh
# Build {name}.wasm beside this file (the same as `wasmjob build <this directory>`).
set -e
cd "$(dirname "$0")"
exec wasmjob build .
"""

_README = """# {title}

A wasmjob extension. Edit `{source}`, then:

    wasmjob test {dir}     # native tests on the SDK's mock host: pause at step N, resume
    wasmjob build {dir}    # writes {dir}/{name}.wasm
    wasmjob run {dir}/{name}.wasm count --params '{{"target": 5000000}}'   # Ctrl-C pauses; run again to resume

See extensions/README.md in the wasmjob repository for the SDK and the fleet commands.
"""

_CARGO_TOML = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmjob-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1.0.136", features = ["derive"] }}

# Small, reproducible modules.
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false

# Not part of any enclosing cargo workspace.
[workspace]
"""

_LIB_RS = """//! {title}: a wasmjob extension.
//!
//! Job "count" sums 1..=target. It takes typed parameters (`{"target": 1000}`),
//! keeps a resumable state built from them, and returns that state as its result.

use wasmjob_sdk::prelude::*;

#[extension(id = "{name}", name = "{title}", version = "0.1.0", jobs = [count])]
struct Extension;

/// What a caller passes: `--params '{"target": 1000}'`. `target` is required.
#[derive(Deserialize)]
struct CountParams {
    target: u64,
}

/// What is checkpointed, resumed from, and finally returned.
#[derive(Serialize, Deserialize, Default)]
struct CountState {
    target: u64,
    current: u64,
    sum: u64,
}

/// The first run's state comes from the parameters.
impl From<CountParams> for CountState {
    fn from(params: CountParams) -> Self {
        CountState { target: params.target, ..CountState::default() }
    }
}

#[job(name = "count", params = CountParams)]
fn count(ctx: &JobContext, state: &mut CountState) -> Result<()> {
    if state.target == 0 {
        return Err(Error::InvalidInput("target must be at least 1".into()));
    }
    while state.current < state.target {
        // Paused, cancelled or out of time? The SDK checkpoints `state` as it
        // is now and the next run continues from here.
        ctx.check()?;
        state.current += 1;
        state.sum += state.current;
        ctx.increment_items(1);
        if state.current % 10_000 == 0 {
            let done = state.current as f32 / state.target as f32;
            ctx.report_progress(done, format!("{}/{}", state.current, state.target));
            ctx.checkpoint(state)?;
        }
    }
    info!("sum of 1..={} is {}", state.target, state.sum);
    Ok(()) // the SDK checkpoints the final state: it is the job's result
}

// Native tests on the SDK's mock host: `wasmjob test .` (or cargo test, set up offline).
#[cfg(test)]
mod tests {
    use super::*;
    use wasmjob_sdk::serde_json::json;
    use wasmjob_sdk::testing::MockHost;

    #[test]
    fn count_pauses_and_resumes_to_the_full_sum() {
        let mut host = MockHost::new();
        host.interrupt_at(25_000); // the 25000th ctx.check() asks the job to stop
        let run = host.run_with_params::<CountParams, _, _>(count, json!({"target": 100_000}));
        assert!(run.is_interrupted(), "{:?}", run.outcome);
        let paused: CountState = run.state();
        assert!(paused.current > 0 && paused.current < 100_000);

        let run = host.resume(count); // from the checkpoint, as after `wasmjob resume`
        assert!(run.is_completed(), "{:?}", run.outcome);
        assert_eq!(run.state::<CountState>().sum, 100_000 * 100_001 / 2);
    }

    #[test]
    fn missing_target_is_refused_with_a_reason() {
        let mut host = MockHost::new();
        let run = host.run_with_params::<CountParams, _, _>(count, json!({}));
        assert!(run.failure().unwrap().contains("missing field `target`"), "{:?}", run.outcome);
    }
}
"""

_MAIN_C = """/*
 * {name}: a wasmjob extension.
 *
 * Job "count" sums 1..target. Its state is also its parameters
 * ({"target": 1000}) and, once it completes, its result.
 * Built by `wasmjob build`, which puts the C SDK (wasmjob.h) on the include path.
 */
#include "wasmjob.h"

typedef struct count_state {
    int64_t target, current, sum;
} count_state;

static int32_t save(wasmjob_job *job, const count_state *s,
                    int32_t (*how)(wasmjob_job *, const void *, uint32_t)) {
    char text[128];
    uint32_t len = wasmjob_format(text, sizeof text, "{\\"target\\":%lld,\\"current\\":%lld,\\"sum\\":%lld}",
                                  s->target, s->current, s->sum);
    return how(job, text, len);
}

static int32_t run_count(wasmjob_job *job) {
    count_state s = {0, 0, 0};
    if (wasmjob_json_get_int(job->state, job->state_len, "target", &s.target) < 0
        || wasmjob_json_get_int(job->state, job->state_len, "current", &s.current) < 0
        || wasmjob_json_get_int(job->state, job->state_len, "sum", &s.sum) < 0)
        return wasmjob_fail(job, "state must be {\\"target\\": int, \\"current\\": int, \\"sum\\": int}");
    if (s.target <= 0)
        return wasmjob_fail_code(job, WASMJOB_E_INVALID_INPUT, "give a target: --params '{\\"target\\": 1000}'");

    while (s.current < s.target) {
        if (wasmjob_interrupted(job)) /* paused, cancelled or out of time */
            return save(job, &s, wasmjob_pause);
        s.current += 1;
        s.sum += s.current;
        wasmjob_add_items(job, 1);
        if (s.current % 10000 == 0) {
            wasmjob_progress(job, (float)s.current / (float)s.target, "%lld/%lld", s.current, s.target);
            save(job, &s, wasmjob_checkpoint);
        }
    }
    wasmjob_log_info("sum of 1..%lld is %lld", s.target, s.sum);
    return save(job, &s, wasmjob_complete); /* the final state is the result */
}

WASMJOB_JOB(count, run_count)
WASMJOB_EXTENSION(WASMJOB_RESUMABLE(count))
"""

_TEST_C = """/*
 * Native tests of {name}'s "count" job on the SDK's mock host (wasmjob_test.h).
 * Run them with `wasmjob test .` (zig builds this file for this machine).
 */
#define WASMJOB_NATIVE
#include "../{name}.c"
#include "wasmjob_test.h"

static int64_t saved(const char *key) {
    int64_t value = -1;
    wasmjob_json_get_int(wasmjob_test.checkpoint.data, wasmjob_test.checkpoint.len, key, &value);
    return value;
}

int main(void) {
    /* The 25000th wasmjob_interrupted() asks the job to stop: it saves where it is... */
    wasmjob_test_interrupt_at(25000);
    WASMJOB_CHECK(wasmjob_test_run(execute_count, "{\\"target\\": 100000}") == WASMJOB_INTERRUPTED);
    WASMJOB_CHECK(saved("current") > 0 && saved("current") < 100000);

    /* ...and a resume from that checkpoint finishes with the full sum. */
    WASMJOB_CHECK(wasmjob_test_resume(execute_count) == WASMJOB_COMPLETED);
    WASMJOB_CHECK(saved("sum") == 100000LL * 100001 / 2);

    /* No target: the job fails and says why. */
    WASMJOB_CHECK(wasmjob_test_run(execute_count, "{}") == WASMJOB_FAILED);
    WASMJOB_CHECK(strstr(wasmjob_test.last_error, "target") != NULL);
    return wasmjob_test_done();
}
"""
