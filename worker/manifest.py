"""Spacedrive's ``manifest.json``, plus wasmjob's own fields under the ``wasmjob`` key.

Old Spacedrive manifests load unchanged: every wasmjob field has a default.
A module without a manifest gets :meth:`Manifest.default` and its
``register_job`` calls alone define its jobs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .encoding import Encoding, check_encoding
from .errors import ConfigError, ManifestError
from .job import Limits
from .validate import ABS_MAX_BYTES, ABS_MAX_FUEL, ABS_MAX_MEMORY_MB, ABS_MAX_SECONDS, check_ext_id

MANIFEST_NAME = "manifest.json"
DURABILITY_MODES = ("checkpoint", "snapshot")
"""How a job survives a stop: its own ``job_checkpoint`` calls, or transparent snapshots of the guest."""


@dataclass(frozen=True)
class RateLimits:
    requests_per_minute: int = 600
    concurrent_jobs: int = 0


@dataclass(frozen=True)
class Permissions:
    """What ``spacedrive_call`` may do: method prefixes, libraries ("*" = any), rates."""

    methods: tuple[str, ...] = ("query:",)
    libraries: tuple[str, ...] = ("*",)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    network_access: tuple[str, ...] = ()
    max_memory_mb: int = 64

    def allows_method(self, method: str) -> bool:
        """True when a non-empty granted prefix starts ``method`` (an empty prefix grants nothing)."""
        return any(prefix and method.startswith(prefix) for prefix in self.methods)

    def allows_library(self, library_id: str) -> bool:
        return "*" in self.libraries or library_id in self.libraries


@dataclass(frozen=True)
class Manifest:
    """An extension's identity, permissions, state encoding and default limits."""

    id: str
    name: str
    version: str
    wasm_file: str = ""
    description: str = ""
    author: str = ""
    homepage: str | None = None
    permissions: Permissions = field(default_factory=Permissions)
    state_encoding: Encoding = "json"
    limits: Limits = field(default_factory=Limits)
    wasi: bool = False
    durability: str = "checkpoint"
    config: str = ""
    """``wasmjob.config``, the extension's settings, as canonical JSON text (kept hashable);
    jobs read it with ``query:config.get.v1``."""

    def config_value(self) -> Any:
        """``wasmjob.config`` as a JSON value, or None when the manifest has none."""
        return json.loads(self.config) if self.config else None

    @classmethod
    def default(cls, name: str) -> Manifest:
        """The manifest of a module shipped without one: its file stem, version 0.0.0."""
        return cls(id=name, name=name, version="0.0.0", wasm_file=f"{name}.wasm")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = MANIFEST_NAME) -> Manifest:
        """Validate a parsed manifest; every problem names the field."""
        if not isinstance(data, dict):
            raise ManifestError(f"{source}: expected a JSON object")
        for key in ("id", "name", "version"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise ManifestError(f"{source}: field {key!r} must be a non-empty string")
        try:
            check_ext_id(data["id"], what="id")
        except ConfigError as exc:
            raise ManifestError(f"{source}: {exc.reason}") from None
        perms_raw = _obj(data.get("permissions", {}), "permissions", source)
        rates_raw = _obj(perms_raw.get("rate_limits", {}), "permissions.rate_limits", source)
        extra = _obj(data.get("wasmjob", {}), "wasmjob", source)
        max_memory = _int(
            perms_raw.get("max_memory_mb", 64), "permissions.max_memory_mb", source, minimum=1, maximum=ABS_MAX_MEMORY_MB
        )
        permissions = Permissions(
            methods=_methods(perms_raw.get("methods", ["query:"]), source),
            libraries=_strs(perms_raw.get("libraries", ["*"]), "permissions.libraries", source),
            rate_limits=RateLimits(
                requests_per_minute=_int(
                    rates_raw.get("requests_per_minute", 600), "rate_limits.requests_per_minute", source, minimum=0
                ),
                concurrent_jobs=_int(rates_raw.get("concurrent_jobs", 0), "rate_limits.concurrent_jobs", source, minimum=0),
            ),
            network_access=_strs(perms_raw.get("network_access", []), "permissions.network_access", source),
            max_memory_mb=max_memory,
        )
        limits_raw = _obj(extra.get("limits", {}), "wasmjob.limits", source)
        try:
            encoding = check_encoding(extra.get("state_encoding", "json"))
        except ManifestError as exc:
            raise ManifestError(f"{source}: wasmjob.state_encoding: {exc.reason}") from None
        durability = extra.get("durability", "checkpoint")
        if durability not in DURABILITY_MODES:
            raise ManifestError(
                f"{source}: field 'wasmjob.durability' must be one of {', '.join(DURABILITY_MODES)}, not {durability!r}"
            )
        limits = Limits(max_memory_mb=max_memory)
        limits = limits.merged(
            fuel=_opt_int(limits_raw.get("fuel"), "wasmjob.limits.fuel", source, maximum=ABS_MAX_FUEL),
            timeout_seconds=_opt_num(limits_raw.get("timeout_seconds"), "wasmjob.limits.timeout_seconds", source),
            max_checkpoint_bytes=_opt_int(
                limits_raw.get("max_checkpoint_bytes"), "wasmjob.limits.max_checkpoint_bytes", source,
                maximum=ABS_MAX_BYTES,
            ),
            max_log_bytes=_opt_int(
                limits_raw.get("max_log_bytes"), "wasmjob.limits.max_log_bytes", source, maximum=ABS_MAX_BYTES
            ),
        )
        homepage = data.get("homepage")
        config = extra.get("config")
        if config is not None:
            _obj(config, "wasmjob.config", source)
        return cls(
            id=data["id"],
            name=data["name"],
            version=data["version"],
            wasm_file=str(data.get("wasm_file", f"{data['id']}.wasm")),
            description=str(data.get("description", "")),
            author=str(data.get("author", "")),
            homepage=str(homepage) if homepage else None,
            permissions=permissions,
            state_encoding=encoding,
            limits=limits,
            wasi=bool(extra.get("wasi", False)),
            durability=durability,
            config=json.dumps(config, sort_keys=True, separators=(",", ":")) if config is not None else "",
        )

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = MANIFEST_NAME) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        try:
            return cls.from_json(path.read_bytes(), source=str(path))
        except OSError as exc:
            raise ManifestError(f"cannot read {path}: {exc.strerror}") from None

    def describe(self, *, digest: str, size: int, jobs: Any, imports: Any, **extra: Any) -> dict[str, Any]:
        """What ``wasmjob inspect`` prints of a module with this manifest (core or component):
        ``jobs`` are registered jobs (name, export, resumable), ``extra`` fields go after the imports."""
        data = self.to_dict()
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "digest": digest,
            "size": size,
            "jobs": [{"name": j.name, "export": j.export, "resumable": j.resumable} for j in jobs],
            "imports": list(imports),
            "state_encoding": self.state_encoding,
            **extra,
            "permissions": data["permissions"],
            "limits": data["wasmjob"]["limits"] | {"max_memory_mb": self.limits.max_memory_mb},
        }

    def to_dict(self) -> dict[str, Any]:
        """The manifest as Spacedrive's JSON shape with our ``wasmjob`` section."""
        perms = asdict(self.permissions)
        perms["methods"] = list(self.permissions.methods)
        perms["libraries"] = list(self.permissions.libraries)
        perms["network_access"] = list(self.permissions.network_access)
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "author": self.author,
            "wasm_file": self.wasm_file,
            "permissions": perms,
            "wasmjob": {
                "state_encoding": self.state_encoding,
                "limits": {
                    "fuel": self.limits.fuel,
                    "timeout_seconds": self.limits.timeout_seconds,
                    "max_checkpoint_bytes": self.limits.max_checkpoint_bytes,
                    "max_log_bytes": self.limits.max_log_bytes,
                },
                "wasi": self.wasi,
                "durability": self.durability,
            },
        }
        if self.homepage:
            out["homepage"] = self.homepage
        if self.config:
            out["wasmjob"]["config"] = self.config_value()
        return out


def find_manifest(module_path: Path) -> Manifest:
    """The manifest beside a module, or the default one when there is none."""
    candidate = module_path.parent / MANIFEST_NAME
    if candidate.is_file():
        manifest = Manifest.from_file(candidate)
        if manifest.wasm_file and manifest.wasm_file != module_path.name:
            return Manifest.default(module_path.stem)
        return manifest
    return Manifest.default(module_path.stem)


def _obj(value: Any, name: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestError(f"{source}: field {name!r} must be an object")
    return value


def _strs(value: Any, name: str, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{source}: field {name!r} must be a list of strings")
    return tuple(value)


def _methods(value: Any, source: str) -> tuple[str, ...]:
    methods = _strs(value, "permissions.methods", source)
    if any(not m for m in methods):
        raise ManifestError(f"{source}: field 'permissions.methods' has an empty prefix, which would grant every method")
    return methods


def _int(value: Any, name: str, source: str, *, minimum: int = 0, maximum: int = 2**53 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ManifestError(f"{source}: field {name!r} must be an integer >= {minimum}")
    if value > maximum:
        raise ManifestError(f"{source}: field {name!r} must be at most {maximum}")
    return value


def _opt_int(value: Any, name: str, source: str, *, maximum: int = 2**53 - 1) -> int | None:
    return None if value is None else _int(value, name, source, minimum=1, maximum=maximum)


def _opt_num(value: Any, name: str, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= ABS_MAX_SECONDS:
        raise ManifestError(f"{source}: field {name!r} must be a positive number of seconds, finite and at most {ABS_MAX_SECONDS:g}")
    return float(value)
