"""Build a Rust extension (a ``cdylib`` crate on ``wasmjob-sdk``) into its ``.wasm``.

Two toolchains work, tried in this order:

* **Debian's** (``scripts/install-rust-toolchain.sh``): ``/usr/bin/cargo`` and
  ``/usr/bin/rustc`` with ``libstd-rust-dev-wasm32``; crates come from the
  ``librust-*-dev`` packages in ``/usr/share/cargo/registry``, used as a cargo
  directory source in a private ``CARGO_HOME``, offline. Nothing touches ``~/.cargo``.
* **rustup's**: a ``rustc`` whose sysroot has ``wasm32-unknown-unknown``, with
  cargo's usual registry.

Builds are reproducible from any checkout directory. Cargo hashes the
absolute path of a path dependency (the SDK) into symbol names, which changes
code layout, so the crate and its path dependencies are copied into a scratch
workspace that keeps their relative layout; that workspace and the other build
directories are then remapped to fixed names (``--remap-path-prefix``). The
output is written atomically; an updated ``Cargo.lock`` is copied back.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import BuildError

__all__ = [
    "BuildError",
    "RustToolchain",
    "SDK_RUST_DIR",
    "build_rust",
    "default_build_dir",
    "find_rust_toolchain",
    "offline_cargo_home",
]

TARGET = "wasm32-unknown-unknown"
SDK_RUST_DIR = Path(__file__).resolve().parent.parent / "extensions" / "sdk" / "rust"
"""The Rust SDK crates (``wasmjob-sdk``, ``wasmjob-sdk-macros``)."""

DEBIAN_RUSTC = Path("/usr/bin/rustc")
DEBIAN_CARGO = Path("/usr/bin/cargo")
DEBIAN_REGISTRY = Path("/usr/share/cargo/registry")

DEBIAN_CRATES: dict[str, str] = {
    "serde": "librust-serde-dev",
    "serde_derive": "librust-serde-derive-dev",
    "serde_json": "librust-serde-json-dev",
    "rmp-serde": "librust-rmp-serde-dev",
    "syn": "librust-syn-dev",
    "quote": "librust-quote-dev",
    "proc-macro2": "librust-proc-macro2-dev",
}
"""The crates the SDK needs, and the Debian package that ships each."""

INSTALL_HINT = (
    "run scripts/install-rust-toolchain.sh (Debian/Ubuntu packages: rustc cargo libstd-rust-dev-wasm32 "
    + " ".join(DEBIAN_CRATES.values())
    + "), or with rustup: rustup target add wasm32-unknown-unknown"
)

# Paths in the module (panic locations, file!()) name these instead of the machine's.
REMAP_SOURCES = "/wasmjob/src"
REMAP_CARGO_HOME = "/wasmjob/cargo"
REMAP_TARGET = "/wasmjob/target"


@dataclass(frozen=True)
class RustToolchain:
    """A usable toolchain: its kind (``debian`` or ``rustup``), binaries, version and crate source."""

    kind: str
    cargo: str
    rustc: str
    version: str
    registry: Path | None = None
    """A cargo directory source to build from offline, or None for cargo's own registry."""

    def describe(self) -> str:
        source = f"crates from {self.registry} (offline)" if self.registry else "crates from cargo's registry"
        return f"{self.kind} toolchain: {self.version}, {source}"


def find_rust_toolchain() -> RustToolchain:
    """The first usable toolchain, or a BuildError that says what is missing and how to install it."""
    problems: list[str] = []
    debian = _debian_toolchain(problems)
    if debian is not None:
        return debian
    rustup = _rustup_toolchain(problems)
    if rustup is not None:
        return rustup
    found = "; ".join(problems) if problems else "no rustc or cargo found"
    raise BuildError(f"no Rust toolchain that can build wasm32 extensions ({found}): {INSTALL_HINT}")


def _debian_toolchain(problems: list[str]) -> RustToolchain | None:
    if not (DEBIAN_RUSTC.exists() and DEBIAN_CARGO.exists()):
        return None
    sysroot = _run_text([str(DEBIAN_RUSTC), "--print", "sysroot"])
    if sysroot is None or not _has_wasm_std(Path(sysroot)):
        problems.append("Debian's rustc lacks the wasm32 standard library (package libstd-rust-dev-wasm32)")
        return None
    missing = [pkg for crate, pkg in DEBIAN_CRATES.items() if not any(DEBIAN_REGISTRY.glob(f"{crate}-[0-9]*"))]
    if missing:
        problems.append(f"Debian's packaged crates are missing (packages {' '.join(missing)})")
        return None
    lld = shutil.which("rust-lld") or "/usr/bin/rust-lld"
    if not Path(lld).resolve().exists():
        problems.append("rust-lld points at an lld that is not installed (package lld, e.g. lld-14)")
        return None
    version = _run_text([str(DEBIAN_RUSTC), "--version"]) or "rustc (unknown version)"
    return RustToolchain("debian", str(DEBIAN_CARGO), str(DEBIAN_RUSTC), version, DEBIAN_REGISTRY)


def _rustup_toolchain(problems: list[str]) -> RustToolchain | None:
    rustc, cargo = shutil.which("rustc"), shutil.which("cargo")
    if rustc is None or cargo is None or Path(rustc).resolve() == DEBIAN_RUSTC.resolve():
        return None
    sysroot = _run_text([rustc, "--print", "sysroot"])
    if sysroot is None or not _has_wasm_std(Path(sysroot)):
        problems.append(f"{rustc} has no wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown)")
        return None
    version = _run_text([rustc, "--version"]) or "rustc (unknown version)"
    return RustToolchain("rustup", cargo, rustc, version)


def _has_wasm_std(sysroot: Path) -> bool:
    lib = sysroot / "lib" / "rustlib" / TARGET / "lib"
    return lib.is_dir() and any(lib.glob("libstd-*.rlib"))


def _run_text(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def build_rust(
    src_dir: Path,
    out: Path | None = None,
    *,
    out_dir: Path | None = None,
    strict: bool | None = None,
    target_dir: Path | None = None,
    toolchain: RustToolchain | None = None,
) -> Path:
    """Build the crate in ``src_dir``; returns the written ``.wasm`` path.

    The output is ``out`` if given, else ``out_dir`` (default ``src_dir``) joined
    with the manifest's ``wasm_file`` (default ``<package>.wasm``). ``strict``
    turns warnings into errors and requires an up-to-date ``Cargo.lock``
    (default: on when the ``CI`` environment variable is set). ``target_dir``
    holds the staged sources and compiled dependencies between builds (default:
    :func:`default_build_dir`); builds that share one take turns. Reusing it
    changes build time only, never the bytes.
    """
    src_dir = Path(src_dir).resolve()
    cargo_toml = src_dir / "Cargo.toml"
    if not cargo_toml.is_file():
        raise BuildError(f"{src_dir}: no Cargo.toml")
    package, lib_name = _crate_names(cargo_toml)
    if out is None:
        out = Path(out_dir or src_dir) / _wasm_file(src_dir, package)
    out = Path(out).resolve()
    if strict is None:
        strict = bool(os.environ.get("CI"))
    tc = toolchain or find_rust_toolchain()

    work = Path(target_dir).resolve() if target_dir else default_build_dir()
    work.mkdir(parents=True, exist_ok=True)
    with _exclusive(work / "lock"):
        shutil.rmtree(work / "stage", ignore_errors=True)
        staged = _stage(src_dir, work / "stage")
        targets = work / "target"
        env = _cargo_env(tc, work, staged.root, targets, strict)
        cmd = [tc.cargo, "build", "--release", "--target", TARGET, "--manifest-path", str(staged.manifest)]
        cmd += ["--target-dir", str(targets)]
        if strict and (src_dir / "Cargo.lock").exists():
            cmd.append("--locked")
        try:
            proc = subprocess.run(cmd, cwd=staged.root, env=env, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise BuildError(f"cannot run {tc.cargo}: {exc.strerror}: {INSTALL_HINT}") from exc
        if proc.returncode != 0:
            raise BuildError(_failure_message(src_dir, tc, staged.readable(proc.stderr)))
        _show_warnings(staged.readable(proc.stderr))
        built = targets / TARGET / "release" / f"{lib_name}.wasm"
        if not built.is_file():
            raise BuildError(f"cargo built no {built.name}: is [lib] crate-type = [\"cdylib\"] in {cargo_toml}?")
        _replace_file(out, built.read_bytes())
        lock = staged.root / "Cargo.lock"
        if lock.is_file() and _read_bytes(src_dir / "Cargo.lock") != lock.read_bytes():
            _replace_file(src_dir / "Cargo.lock", lock.read_bytes())
    return out


@dataclass(frozen=True)
class _Staged:
    """The scratch workspace: its root, the extension's manifest in it, and copy → original dirs."""

    root: Path
    manifest: Path
    originals: dict[Path, Path]

    def readable(self, text: str) -> str:
        """Compiler output with scratch and remapped paths turned back into the user's."""
        for copy, original in sorted(self.originals.items(), key=lambda kv: -len(str(kv[0]))):
            rel = copy.relative_to(self.root).as_posix()
            text = text.replace(str(copy), str(original)).replace(f"{REMAP_SOURCES}/{rel}", str(original))
            text = re.sub(rf"(-->\s+){re.escape(rel)}/", lambda m: f"{m.group(1)}{original}/", text)
        return text


_SKIP = shutil.ignore_patterns("target", ".git", "*.wasm", ".wasmjob")


def default_build_dir() -> Path:
    """Where Rust builds keep their staging copy and compiled dependencies."""
    return Path(platformdirs.user_cache_dir("wasmjob")) / "rust-build"


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (one build per build directory at a time)."""
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stage(src_dir: Path, root: Path) -> _Staged:
    """Copy the crate and its path dependencies under ``root``, keeping their relative layout,
    and make ``root`` the workspace root so cargo hashes relative paths only."""
    dirs = [src_dir, *sorted(_path_deps(src_dir))]
    base = Path(os.path.commonpath([str(d) for d in dirs]))
    originals: dict[Path, Path] = {}
    for d in dirs:
        copy = root / d.relative_to(base)
        shutil.copytree(d, copy, ignore=_SKIP, dirs_exist_ok=True)
        originals[copy] = d
    member = root / src_dir.relative_to(base)
    manifest = member / "Cargo.toml"
    original_text = (src_dir / "Cargo.toml").read_text(encoding="utf-8")
    # Profiles and [workspace] belong to the root now; cargo would ignore them (with a warning) or refuse.
    manifest.write_text(_drop_tables(original_text, ("workspace", "profile")), encoding="utf-8")
    (member / "Cargo.lock").unlink(missing_ok=True)
    if (src_dir / "Cargo.lock").is_file():
        shutil.copyfile(src_dir / "Cargo.lock", root / "Cargo.lock")
    members = [member.relative_to(root).as_posix() or "."]
    lines = ["[workspace]", f"members = {_toml_value(members)}", 'resolver = "2"', ""]
    profile = _read_toml(src_dir / "Cargo.toml").get("profile")
    if isinstance(profile, dict):
        lines += _toml_table("profile", profile)
    if member != root:
        (root / "Cargo.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return _Staged(root, manifest, originals)


def _path_deps(crate_dir: Path, seen: set[Path] | None = None) -> set[Path]:
    """Directories of the crate's path dependencies, transitively."""
    seen = set() if seen is None else seen
    data = _read_toml(crate_dir / "Cargo.toml")
    tables = [data] + [t for t in data.get("target", {}).values() if isinstance(t, dict)]
    for table in tables:
        for kind in ("dependencies", "dev-dependencies", "build-dependencies"):
            for spec in (table.get(kind) or {}).values():
                if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                    dep = (crate_dir / spec["path"]).resolve()
                    if dep not in seen and (dep / "Cargo.toml").is_file():
                        seen.add(dep)
                        _path_deps(dep, seen)
    return seen


def _drop_tables(text: str, names: tuple[str, ...]) -> str:
    """``text`` without the TOML tables ``[name]`` / ``[name.*]`` for each of ``names``."""
    header = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
    kept, dropping = [], False
    for line in text.splitlines():
        m = header.match(line)
        if m:
            top = m.group(1).split(".")[0].strip('" ')
            dropping = top in names
        if not dropping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _toml_table(prefix: str, table: dict[str, object]) -> list[str]:
    lines = [f"[{prefix}]"]
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            lines += ["", *_toml_table(f"{prefix}.{_toml_key(k)}", v)]
    return lines


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError(f"{path}: cannot read: {exc}") from exc


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _replace_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _crate_names(cargo_toml: Path) -> tuple[str, str]:
    """The package name and the library's file stem (``[lib] name`` or the package name, ``-`` → ``_``)."""
    data = _read_toml(cargo_toml)
    package = data.get("package", {}).get("name")
    if not isinstance(package, str) or not package:
        raise BuildError(f"{cargo_toml}: [package] name is missing")
    lib = data.get("lib", {}).get("name") or package
    return package, str(lib).replace("-", "_")


def _wasm_file(src_dir: Path, package: str) -> str:
    manifest = src_dir / "manifest.json"
    if not manifest.is_file():
        return f"{package}.wasm"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BuildError(f"{manifest}: cannot read: {exc}") from exc
    name = data.get("wasm_file") if isinstance(data, dict) else None
    if name is None:
        return f"{package}.wasm"
    if not isinstance(name, str) or not name.endswith(".wasm") or Path(name).name != name:
        raise BuildError(f"{manifest}: wasm_file must be a file name ending in .wasm")
    return name


def _cargo_env(tc: RustToolchain, work: Path, sources: Path, targets: Path, strict: bool) -> dict[str, str]:
    """The environment of the cargo run: our flags only, and for Debian a private offline CARGO_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_", "RUSTFLAGS", "RUSTC_", "RUSTDOCFLAGS"))}
    if "CARGO_HOME" in os.environ:  # rustup keeps its proxies and the registry cache there
        env["CARGO_HOME"] = os.environ["CARGO_HOME"]
    env["RUSTC"] = tc.rustc
    cargo_home = Path(env.get("CARGO_HOME") or Path.home() / ".cargo")
    if tc.registry is not None:
        cargo_home = offline_cargo_home(tc.registry, work)
        env["CARGO_HOME"] = str(cargo_home)
    remaps = {cargo_home: REMAP_CARGO_HOME, targets: REMAP_TARGET, sources: REMAP_SOURCES}
    # rustc applies the last matching prefix: longer (more specific) paths go last.
    flags = [f"--remap-path-prefix={p}={to}" for p, to in sorted(remaps.items(), key=lambda kv: len(str(kv[0])))]
    if strict:
        flags += ["-D", "warnings"]
    env["CARGO_ENCODED_RUSTFLAGS"] = "\x1f".join(flags)
    env["CARGO_TERM_COLOR"] = "never"
    return env


def _show_warnings(stderr: str) -> None:
    """Print the warnings of a successful build on stderr (cargo's progress lines left out)."""
    noise = ("Compiling ", "Finished ", "Locking ", "Adding ", "Updating ", "Blocking ")
    text = "\n".join(line for line in stderr.splitlines() if not line.strip().startswith(noise))
    if text.strip():
        print(text.rstrip(), file=sys.stderr)


def offline_cargo_home(registry: Path, work: Path) -> Path:
    """A private CARGO_HOME under ``work`` whose crates come from ``registry`` (a directory
    source, Debian's packaged crates), offline: cargo never reaches for the network."""
    cargo_home = work / "cargo-home"
    cargo_home.mkdir(parents=True, exist_ok=True)
    (cargo_home / "config.toml").write_text(
        "[source.crates-io]\n"
        'replace-with = "packaged"\n'
        "[source.packaged]\n"
        f"directory = {json.dumps(str(registry))}\n"
        "[net]\n"
        "offline = true\n",
        encoding="utf-8",
    )
    return cargo_home


def _failure_message(src_dir: Path, tc: RustToolchain, stderr: str) -> str:
    noise = ("Compiling ", "Checking ", "Locking ", "Adding ", "Updating ", "Downloaded ", "Downloading ")
    lines = [line for line in stderr.splitlines() if not line.strip().startswith(noise)]
    text = "\n".join(lines[-80:]).strip()
    hint = ""
    missing_crate = ("no matching package named", "no matching package found", "failed to select a version")
    if tc.registry is not None and any(text in stderr for text in missing_crate):
        hint = (
            f"\nthe {tc.kind} toolchain builds offline from the crates Debian packages in {tc.registry}: "
            "install the crate's librust-<name>-dev package, or build with a rustup toolchain"
        )
    elif "--locked" in stderr and "Cargo.lock" in stderr:
        hint = "\nCargo.lock is out of date: build once without CI set and commit the updated Cargo.lock"
    return f"cargo build failed for {src_dir.name} ({tc.describe()}):\n{text}{hint}"
