"""``wasmjob test DIR``: run an extension's own native tests, offline, in its language.

Nothing is built for the sandbox: each language's runner compiles the tests for
this machine against the SDK's mock host (Rust: ``cargo test`` with
``wasmjob_sdk::testing``; C: each ``tests/*.c`` with ``wasmjob_test.h``) and runs
them. Languages plug in with :func:`register` (a detector and a runner).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import BuildError, ConfigError

__all__ = ["TestRunner", "language_of", "register", "run_tests"]


@dataclass(frozen=True)
class TestRunner:
    """A language's tests: ``detect(dir)`` says whether ``dir`` is in it; ``run(dir)`` returns an exit code."""

    language: str
    detect: Callable[[Path], bool]
    run: Callable[[Path], int]


_RUNNERS: list[TestRunner] = []


def register(runner: TestRunner) -> None:
    """Add (or replace) the runner of ``runner.language``; later ones are asked first."""
    _RUNNERS[:] = [r for r in _RUNNERS if r.language != runner.language] + [runner]


def language_of(src_dir: Path) -> TestRunner:
    """The runner for ``src_dir``, or a ConfigError naming what was looked for."""
    for runner in reversed(_RUNNERS):
        if runner.detect(src_dir):
            return runner
    known = ", ".join(r.language for r in _RUNNERS)
    raise ConfigError(f"{src_dir}: no extension sources found to test (languages: {known})")


def run_tests(src_dir: Path) -> int:
    """Run the tests of the extension in ``src_dir``; their output goes to this terminal."""
    src_dir = Path(src_dir).resolve()
    if not src_dir.is_dir():
        raise ConfigError(f"{src_dir}: not a directory")
    return language_of(src_dir).run(src_dir)


# Rust ------------------------------------------------------------------------------------


def _run_rust(src_dir: Path) -> int:
    from .builder_rust import default_build_dir, find_rust_toolchain, offline_cargo_home

    tc = find_rust_toolchain()
    work = default_build_dir().parent / "rust-test"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_", "RUSTFLAGS", "RUSTC", "RUSTDOC"))}
    env["RUSTC"] = tc.rustc
    rustdoc = Path(tc.rustc).with_name("rustdoc")
    if rustdoc.exists():  # doctests need the rustdoc of the same toolchain
        env["RUSTDOC"] = str(rustdoc)
    if tc.registry is not None:
        env["CARGO_HOME"] = str(offline_cargo_home(tc.registry, work))
    cmd = [tc.cargo, "test", "--manifest-path", str(src_dir / "Cargo.toml"), "--target-dir", str(work / "target")]
    return _call(cmd, env=env, cwd=src_dir)


# C ---------------------------------------------------------------------------------------


def _c_tests(src_dir: Path) -> list[Path]:
    return sorted((src_dir / "tests").glob("*.c"))


def _run_c(src_dir: Path) -> int:
    from .builder import SDK_C_DIR, find_zig

    tests = _c_tests(src_dir)
    if not tests:
        raise ConfigError(f"{src_dir}: no tests/*.c to run (wasmjob new writes one)")
    zig = find_zig()
    worst = 0
    with tempfile.TemporaryDirectory(prefix="wasmjob-test-") as scratch:
        for test in tests:
            exe = Path(scratch) / test.stem
            cmd = [*zig, "cc", "-O1", "-g", "-Wall", "-Wextra", "-Werror=return-type", "-Wno-format", f"-I{SDK_C_DIR}", f"-I{src_dir}"]
            if _call([*cmd, "-o", str(exe), str(test)], cwd=src_dir) != 0:
                raise BuildError(f"{test}: does not compile for the native test (see above)")
            print(f"test {test.relative_to(src_dir)}", flush=True)
            worst = max(worst, _call([str(exe)], cwd=src_dir))
    return worst


def _call(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> int:
    try:
        return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode
    except OSError as exc:
        raise BuildError(f"cannot run {cmd[0]}: {exc.strerror}") from exc


register(TestRunner("c", lambda d: bool(list(d.glob("*.c"))) and not (d / "Cargo.toml").exists(), _run_c))
register(TestRunner("rust", lambda d: (d / "Cargo.toml").is_file(), _run_rust))


def _run_python(src_dir: Path) -> int:
    from .builder_python import test_command

    return _call(test_command(src_dir), cwd=src_dir)


def _is_python(src_dir: Path) -> bool:
    from .builder_python import is_python_project

    return is_python_project(src_dir)


register(TestRunner("python", _is_python, _run_python))
