"""Packaging: every package directory of the repository is installed, under the one name ``wasmjob``."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_package_directory_is_listed_for_installation() -> None:
    config = _config()
    listed = set(config["packages"])
    found = set()
    for name, directory in config["package-dir"].items():
        base = ROOT / directory
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join((name, *rel.parts)) if rel.parts else name)
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert all(name == "wasmjob" or name.startswith("wasmjob.") for name in listed)


def test_console_script_points_into_the_installed_package() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["wasmjob"].startswith("wasmjob.")


def test_the_image_build_context_leaves_out_venvs_build_output_and_caches() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    for needed in (".venv", "**/__pycache__", "extensions/**/target", ".git", "build", "dist"):
        assert needed in ignored, needed
    copied = [line.split()[1] for line in (ROOT / "broker_config" / "Dockerfile").read_text().splitlines() if line.startswith("COPY")]
    assert not any(name in ignored for name in copied)


def test_runtime_dependencies_carry_the_extras_celery_documents_for_redis_and_msgpack() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {dep.split("[")[0].split(">")[0].split("=")[0].split("<")[0]: dep for dep in deps}
    assert by_name["celery"].startswith("celery[redis,msgpack]")
    assert by_name["kombu"].startswith("kombu[redis,msgpack]")
    assert "prometheus_client" in by_name


def test_the_installed_package_ships_no_test_harness_and_imports_none() -> None:
    package = ROOT / "worker"
    assert not list(package.rglob("procs.py")), "process harnesses live in harness/, outside the package"
    outside = ("harness", "tests", "bench", "demo")
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in package.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(tuple(f"{kw} {name}" for kw in ("import", "from") for name in outside))
    ]
    assert offenders == []
