"""Build an extension's ``.wasm`` from its source directory, reproducibly.

A source directory holds ``manifest.json`` beside either C sources (``*.c``,
built here with ``zig cc`` against the C SDK in ``extensions/sdk/c``) or a
``Cargo.toml`` (built by :func:`wasmjob.builder_rust.build_rust`, imported only
when needed). The output goes to the manifest's ``wasm_file``; the same sources
always give the same bytes, so CI can rebuild and compare with what is committed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import BuildError

__all__ = ["BuildError", "build_extension", "c_compile_command", "find_zig", "SDK_C_DIR"]

SDK_C_DIR = Path(__file__).resolve().parent.parent / "extensions" / "sdk" / "c"
"""The C SDK (``wasmjob.h``), on the include path of every C extension."""

C_TARGET_FLAGS: tuple[str, ...] = (
    "--target=wasm32-freestanding",
    "-O2",
    "-nostdlib",
    "-g0",
    "-Wall",
    "-Wextra",
    # Warnings that mean a broken module: a non-void function that does not return a
    # value returns garbage (a job's "return code 2 without a reason" at run time).
    "-Werror=return-type",
    "-Werror=implicit-function-declaration",
)
"""Compiler flags: freestanding wasm32 (no libc), optimised, no debug info; known fatal warnings are errors."""

C_LINK_FLAGS: tuple[str, ...] = (
    "-Wl,--no-entry",
    # The ABI's fixed exports: a C extension that lacks one fails to link here
    # rather than to load later. Jobs export themselves (WASMJOB_JOB uses export_name).
    "-Wl,--export=wasm_alloc",
    "-Wl,--export=wasm_free",
    "-Wl,--export=plugin_init",
    "-Wl,--export=plugin_cleanup",
    # 256 KiB of shadow stack (zig places it below static data, so an
    # overflow traps instead of overwriting it).
    "-Wl,-z,stack-size=262144",
    "-Wl,--strip-debug",
)
"""Linker flags: a library module (no ``_start``) with the ABI exports, debug info stripped."""


def find_zig() -> list[str]:
    """The command that runs zig: the ``ziglang`` package of this Python, else ``zig`` on PATH."""
    if importlib.util.find_spec("ziglang") is not None:
        return [sys.executable, "-m", "ziglang"]
    zig = shutil.which("zig")
    if zig is not None:
        return [zig]
    raise BuildError("zig not found: pip install ziglang")


def c_compile_command(
    sources: Sequence[Path], output: Path, zig: Sequence[str], include_dirs: Sequence[Path] = (SDK_C_DIR,)
) -> list[str]:
    """The full ``zig cc`` command line that builds ``sources`` into ``output``."""
    includes = [f"-I{d}" for d in include_dirs]
    return [*zig, "cc", *C_TARGET_FLAGS, *includes, *C_LINK_FLAGS, "-o", str(output), *map(str, sources)]


def build_extension(src_dir: Path, out_dir: Path | None = None, *, zig: Sequence[str] | None = None) -> Path:
    """Build the extension in ``src_dir``; returns the written ``.wasm`` path.

    The file is named by the manifest's ``wasm_file`` and written into ``out_dir``
    (default: ``src_dir`` itself). ``zig`` overrides the zig command (default:
    :func:`find_zig`).
    """
    src_dir = Path(src_dir)
    wasm_file = _wasm_file(src_dir)
    target = Path(out_dir or src_dir) / wasm_file
    if (src_dir / "Cargo.toml").exists():
        # the Rust builder lives in its own module, imported only for Rust extensions
        from wasmjob.builder_rust import build_rust  # noqa: PLC0415

        return build_rust(src_dir) if out_dir is None else build_rust(src_dir, out_dir=Path(out_dir))
    if (src_dir / "pyproject.toml").exists():
        from wasmjob.builder_python import build_python, is_python_project  # noqa: PLC0415

        if is_python_project(src_dir):
            return build_python(src_dir, target)
    sources = sorted(src_dir.glob("*.c"))
    if not sources:
        raise BuildError(f"{src_dir}: no *.c file or Cargo.toml beside manifest.json")
    return _build_c(sources, target, list(zig) if zig is not None else find_zig())


def _wasm_file(src_dir: Path) -> str:
    manifest = src_dir / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"{manifest}: cannot read: {exc}") from exc
    name = data.get("wasm_file") if isinstance(data, dict) else None
    if not isinstance(name, str) or not name.endswith(".wasm") or Path(name).name != name:
        raise BuildError(f"{manifest}: wasm_file must be a file name ending in .wasm")
    return name


def _build_c(sources: list[Path], target: Path, zig: list[str]) -> Path:
    """Compile into a scratch file and move it into place, so a failed build leaves no partial output."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wasmjob-build-") as scratch:
        output = Path(scratch) / target.name
        command = c_compile_command(sources, output, zig)
        try:
            proc = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BuildError(f"zig not found ({exc.strerror}: {zig[0]}): pip install ziglang") from exc
        if proc.returncode != 0:
            if "No module named ziglang" in proc.stderr:
                raise BuildError("zig not found: pip install ziglang")
            raise BuildError(f"zig cc failed for {', '.join(s.name for s in sources)}:\n{proc.stderr.strip()}")
        show_warnings(proc.stderr)
        shutil.move(str(output), target)
    return target


def show_warnings(text: str) -> None:
    """A successful build's compiler warnings, on stderr: they often explain a later failure."""
    if text.strip():
        print(text.rstrip(), file=sys.stderr)
