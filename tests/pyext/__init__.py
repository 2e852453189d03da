"""Python components for the tests and the bench, built once and shared.

``wasmjob build`` takes ~15 s (componentize-py) and the first load ~8 s (compiling
to native code), so each component is built once per source digest into a shared
directory, and every Runtime and worker of a session uses one compile cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).resolve().parent / "hostile.py"
VENDOR = Path(__file__).resolve().parent / "vendor" / "wjwords"


def _digest(*dirs: Path) -> str:
    from importlib.metadata import version

    h = hashlib.sha256(version("componentize-py").encode())
    for d in dirs:
        files = [d] if d.is_file() else sorted(p for p in d.rglob("*") if p.is_file() and p.suffix in (".py", ".wit", ".toml", ".json"))
        for p in files:
            if "__pycache__" in p.parts:
                continue
            h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def _sources() -> list[Path]:
    return [ROOT / "extensions" / "sdk" / "python" / "wasmjob_sdk", ROOT / "extensions" / "sdk" / "wit", ROOT / "worker" / "builder_python.py"]


def build_scaffold(base: Path) -> Path:
    """``wasmjob new pyscaffold --lang python`` plus the hostile test jobs, built; returns its directory."""
    from wasmjob.builder import build_extension
    from wasmjob.scaffold import scaffold

    key = _digest(*_sources(), HOSTILE, VENDOR, ROOT / "worker" / "scaffold_python.py")
    done = base / f"pyscaffold-{key}"
    if (done / "pyscaffold.wasm").is_file():
        return done
    work = _scratch(done)
    scaffold("pyscaffold", "python", work)
    shutil.copy(HOSTILE, work / "hostile.py")
    with (work / "app.py").open("a", encoding="utf-8") as fh:
        fh.write("\nimport hostile  # noqa: E402,F401  (test-only jobs)\n")
    pyproject = (work / "pyproject.toml").read_text()
    assert "dependencies = []" in pyproject
    (work / "pyproject.toml").write_text(pyproject.replace("dependencies = []", f'dependencies = ["{VENDOR.as_posix()}"]'))
    manifest = json.loads((work / "manifest.json").read_text())
    manifest["permissions"]["rate_limits"]["concurrent_jobs"] = 0
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    build_extension(work)
    return _publish(work, done)


def build_example(base: Path, name: str = "textstats") -> Path:
    """A copy of ``extensions/<name>`` with its component built; returns its directory."""
    from wasmjob.builder import build_extension

    src = ROOT / "extensions" / name
    key = _digest(*_sources(), src)
    done = base / f"{name}-{key}"
    if any(done.glob("*.wasm")):
        return done
    work = _scratch(done)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns("*.wasm", "__pycache__", ".wasmjob"))
    build_extension(work)
    return _publish(work, done)


def _scratch(done: Path) -> Path:
    """This process's own build directory beside ``done``: two suites that share the base (two
    checkouts tested at once) must not build in, or delete, each other's directory."""
    work = done.with_name(f"{done.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    return work


def _publish(work: Path, done: Path) -> Path:
    """Rename the finished build to ``done``; if another process got there first, keep its copy."""
    try:
        work.rename(done)
    except OSError:
        if not done.is_dir():
            raise
        shutil.rmtree(work, ignore_errors=True)
    return done
