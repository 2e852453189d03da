"""Operator policy: the ceilings no manifest and no submitter can raise.

The operator sets them with ``WASMJOB_*`` variables or a JSON file named by
``WASMJOB_POLICY_FILE`` (variables win). Effective limits of a run are
``min(policy, manifest, submitter)``: a manifest asking for more than policy is
refused at ``extensions add`` (and clamped at run time, in case the policy
changed since); a submitter asking for more is clamped, and the record says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from .component.format import is_component
from .errors import ConfigError, ManifestError, ModuleError, ModuleRefused
from .job import Limits
from .manifest import Manifest, Permissions, RateLimits
from .validate import ABS_MAX_BYTES, ABS_MAX_FUEL, ABS_MAX_MEMORY_MB, ABS_MAX_SECONDS, check_int, check_seconds
from .wasmbin import ModuleInfo, WasmFormatError, inspect

MiB = 1024 * 1024

# field -> environment variable (every field has one)
ENV = {
    "max_fuel": "WASMJOB_MAX_FUEL",
    "max_timeout_seconds": "WASMJOB_MAX_TIMEOUT_SECONDS",
    "max_memory_mb": "WASMJOB_MAX_MEMORY_MB",
    "max_checkpoint_bytes": "WASMJOB_MAX_CHECKPOINT_BYTES",
    "max_log_bytes": "WASMJOB_MAX_LOG_BYTES",
    "max_kv_bytes": "WASMJOB_MAX_KV_BYTES",
    "max_kv_keys": "WASMJOB_MAX_KV_KEYS",
    "max_module_bytes": "WASMJOB_MAX_MODULE_BYTES",
    "max_component_bytes": "WASMJOB_MAX_COMPONENT_BYTES",
    "max_functions": "WASMJOB_MAX_FUNCTIONS",
    "max_globals": "WASMJOB_MAX_GLOBALS",
    "max_data_segments": "WASMJOB_MAX_DATA_SEGMENTS",
    "max_table_entries": "WASMJOB_MAX_TABLE_ENTRIES",
    "max_params_bytes": "WASMJOB_MAX_PARAMS_BYTES",
    "max_requests_per_minute": "WASMJOB_MAX_REQUESTS_PER_MINUTE",
    "allow_unlimited_rate": "WASMJOB_ALLOW_UNLIMITED_RATE",
    "allowed_methods": "WASMJOB_ALLOWED_METHODS",
    "allow_wasi": "WASMJOB_ALLOW_WASI",
    "compile_timeout_seconds": "WASMJOB_COMPILE_TIMEOUT",
    "compile_memory_mb": "WASMJOB_COMPILE_MEMORY_MB",
    "redis_memory_high": "WASMJOB_REDIS_MEMORY_HIGH",
}
POLICY_FILE_ENV = "WASMJOB_POLICY_FILE"
_MAXIMA: dict[str, float] = {
    "max_fuel": ABS_MAX_FUEL,
    "max_memory_mb": ABS_MAX_MEMORY_MB,
    "max_checkpoint_bytes": ABS_MAX_BYTES,
    "max_log_bytes": ABS_MAX_BYTES,
    "max_kv_bytes": ABS_MAX_BYTES,
    "max_module_bytes": 1024 * MiB,
    "max_component_bytes": 1024 * MiB,
    "compile_memory_mb": ABS_MAX_MEMORY_MB,
}


@dataclass(frozen=True)
class Policy:
    """The operator's ceilings; each field is named after what it caps (see docs/security.md)."""

    max_fuel: int | None = None  # None: no fuel ceiling; wall time (timeout) bounds every run
    max_timeout_seconds: float = 3600.0
    max_memory_mb: int = 1024
    max_checkpoint_bytes: int = 16 * MiB
    max_log_bytes: int = 1 * MiB
    max_kv_bytes: int = 64 * MiB  # per (tenant, extension)
    max_kv_keys: int = 10_000  # per (tenant, extension)
    max_module_bytes: int = 16 * MiB
    max_component_bytes: int = 64 * MiB  # a Python extension bundles CPython: ~18 MB
    max_functions: int = 50_000
    max_globals: int = 10_000
    max_data_segments: int = 10_000
    max_table_entries: int = 100_000  # the runtime caps a table at 100,000 elements too
    max_params_bytes: int = 1 * MiB
    max_requests_per_minute: int = 6000
    allow_unlimited_rate: bool = False
    allowed_methods: tuple[str, ...] = ("query:", "action:")
    allow_wasi: bool = True
    compile_timeout_seconds: float = 60.0
    compile_memory_mb: int = 2048
    redis_memory_high: float = 0.9  # refuse KV/checkpoint writes above this fraction of maxmemory

    # building ------------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Policy:
        """Defaults, then the policy file (``WASMJOB_POLICY_FILE``), then ``WASMJOB_*`` variables."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = env.get(POLICY_FILE_ENV)
        if path:
            values.update(_read_file(Path(path)))
        for name, var in ENV.items():
            raw = env.get(var)
            if raw:
                values[name] = _parse_env(name, var, raw)
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Policy:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown policy settings: {', '.join(sorted(unknown))}")
        data = dict(values)
        if "allowed_methods" in data:
            data["allowed_methods"] = tuple(data["allowed_methods"])
        return replace(cls(), **data).validated()

    def validated(self) -> Policy:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("max_timeout_seconds", "compile_timeout_seconds"):
                check_seconds(f"policy {f.name}", value, ABS_MAX_SECONDS)
            elif f.name == "redis_memory_high":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                    raise ConfigError(f"policy redis_memory_high must be a fraction in (0, 1], got {value!r}")
            elif f.name in ("allow_unlimited_rate", "allow_wasi"):
                if not isinstance(value, bool):
                    raise ConfigError(f"policy {f.name} must be true or false, got {value!r}")
            elif f.name == "allowed_methods":
                if not all(isinstance(m, str) and ":" in m for m in value):
                    raise ConfigError("policy allowed_methods must be prefixes like 'query:' or 'action:kv.'")
            elif not (f.name == "max_fuel" and value is None):
                check_int(f"policy {f.name}", value, _MAXIMA.get(f.name, 2**53 - 1))
        return self

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["allowed_methods"] = list(self.allowed_methods)
        return out

    # manifests -----------------------------------------------------------------------

    def manifest_violations(self, manifest: Manifest) -> list[str]:
        """Every rule of this policy ``manifest`` breaks, as readable sentences."""
        out: list[str] = []
        lim, perms = manifest.limits, manifest.permissions
        for name, asked, ceiling in (
            ("wasmjob.limits.fuel", lim.fuel, self.max_fuel),
            ("wasmjob.limits.timeout_seconds", lim.timeout_seconds, self.max_timeout_seconds),
            ("permissions.max_memory_mb", perms.max_memory_mb, self.max_memory_mb),
            ("wasmjob.limits.max_checkpoint_bytes", lim.max_checkpoint_bytes, self.max_checkpoint_bytes),
            ("wasmjob.limits.max_log_bytes", lim.max_log_bytes, self.max_log_bytes),
        ):
            if asked is not None and ceiling is not None and asked > ceiling:
                out.append(f"{name} is {asked:g}; the operator allows at most {ceiling:g}")
        for method in perms.methods:
            if not method:
                out.append("permissions.methods has an empty prefix (it would grant every method)")
            elif not self.method_grantable(method):
                out.append(
                    f"permissions.methods grants {method!r}; the operator allows only prefixes "
                    f"{', '.join(self.allowed_methods) or '(none)'}"
                )
        if manifest.wasi and not self.allow_wasi:
            out.append("wasmjob.wasi is true; the operator does not grant WASI")
        rpm = perms.rate_limits.requests_per_minute
        if rpm == 0 and not self.allow_unlimited_rate:
            out.append(
                "rate_limits.requests_per_minute is 0 (unlimited); the operator allows at most "
                f"{self.max_requests_per_minute}"
            )
        elif rpm > self.max_requests_per_minute:
            out.append(
                f"rate_limits.requests_per_minute is {rpm}; the operator allows at most {self.max_requests_per_minute}"
            )
        return out

    def check_manifest(self, manifest: Manifest) -> Manifest:
        """``manifest`` when it stays within policy; ManifestError naming every rule it breaks."""
        broken = self.manifest_violations(manifest)
        if broken:
            raise ManifestError(f"manifest of {manifest.id}@{manifest.version} breaks operator policy: " + "; ".join(broken))
        return manifest

    def method_grantable(self, method: str) -> bool:
        """A manifest prefix is grantable when it lies inside one of the operator's prefixes."""
        return bool(method) and any(method.startswith(p) for p in self.allowed_methods)

    def clamp_manifest(self, manifest: Manifest) -> Manifest:
        """``manifest`` cut down to policy: what a worker runs with, whatever was registered."""
        perms = manifest.permissions
        rpm = perms.rate_limits.requests_per_minute
        if (rpm == 0 and not self.allow_unlimited_rate) or rpm > self.max_requests_per_minute:
            rpm = self.max_requests_per_minute
        memory = min(perms.max_memory_mb, self.max_memory_mb)
        permissions = replace(
            perms,
            methods=tuple(m for m in perms.methods if self.method_grantable(m)),
            rate_limits=RateLimits(requests_per_minute=rpm, concurrent_jobs=perms.rate_limits.concurrent_jobs),
            max_memory_mb=memory,
        )
        lim = manifest.limits
        limits = replace(
            lim,
            max_memory_mb=min(lim.max_memory_mb, memory),
            fuel=lim.fuel if self.max_fuel is None else min(lim.fuel or self.max_fuel, self.max_fuel),
            timeout_seconds=min(lim.timeout_seconds, self.max_timeout_seconds),
            max_checkpoint_bytes=min(lim.max_checkpoint_bytes, self.max_checkpoint_bytes),
            max_log_bytes=min(lim.max_log_bytes, self.max_log_bytes),
        )
        clamped = replace(manifest, permissions=permissions, limits=limits, wasi=manifest.wasi and self.allow_wasi)
        return manifest if clamped == manifest else clamped

    # runs ----------------------------------------------------------------------------

    def effective_limits(
        self, manifest: Manifest, requested: Mapping[str, Any], *, run_timeout: float, slice_seconds: float,
        store_checkpoint_bytes: int,
    ) -> tuple[Limits, list[str]]:
        """min(policy, manifest, submitter) for one run, and a note for each submitter value cut down."""
        base = self.clamp_manifest(manifest).limits
        notes: list[str] = []

        def pick(name: str, ceiling: float | None) -> Any:
            asked = requested.get(name)
            if asked is None:
                return ceiling
            if ceiling is not None and asked > ceiling:
                notes.append(f"{name} {asked:g} asked, clamped to {ceiling:g}")
                return ceiling
            return asked

        timeout = pick("timeout_seconds", min(base.timeout_seconds, run_timeout))
        limits = replace(
            base,
            fuel=pick("fuel", base.fuel),
            max_memory_mb=int(pick("max_memory_mb", base.max_memory_mb)),
            timeout_seconds=float(timeout),
            slice_seconds=float(min(requested.get("slice_seconds") or slice_seconds, timeout)),
            max_checkpoint_bytes=int(
                pick("max_checkpoint_bytes", min(base.max_checkpoint_bytes, store_checkpoint_bytes))
            ),
        )
        return limits, notes

    # modules -------------------------------------------------------------------------

    def check_module(self, wasm: bytes) -> ModuleInfo:
        """Read ``wasm``'s sections and refuse it (ModuleRefused naming the rule) when it is too big.
        A component (Python extensions) is held to the size ceiling only."""
        if is_component(wasm):  # its core modules are bounded by the compile limits instead
            if len(wasm) > self.max_component_bytes:
                raise ModuleRefused(
                    f"component is {len(wasm)} bytes; the operator allows at most {self.max_component_bytes} bytes"
                )
            return ModuleInfo(size=len(wasm))
        if len(wasm) > self.max_module_bytes:
            raise ModuleRefused(f"module is {len(wasm)} bytes; the operator allows at most {self.max_module_bytes} bytes")
        if wasm[:4] == b"\0asm" and wasm[4:8] != b"\x01\0\0\0":
            return ModuleInfo(size=len(wasm))  # a component: its size is checked, its contents by wasmtime
        try:
            info = inspect(wasm)
        except WasmFormatError as exc:
            raise ModuleError(f"invalid WebAssembly module: {exc.reason}") from None
        for what, count, ceiling in (
            ("functions", info.functions, self.max_functions),
            ("globals", info.globals, self.max_globals),
            ("data segments", info.data_segments, self.max_data_segments),
            ("table entries", info.table_entries, self.max_table_entries),
        ):
            if count > ceiling:
                raise ModuleRefused(f"module defines {count} {what}; the operator allows at most {ceiling}")
        pages = max((m.minimum for m in info.memories), default=0)
        if pages * 64 > self.max_memory_mb * 1024:
            raise ModuleRefused(
                f"module's memory starts at {pages} pages ({pages * 64 // 1024} MiB); "
                f"the operator allows at most {self.max_memory_mb} MiB"
            )
        return info


def connection_warnings(redis_url: str, cert_reqs: str = "required") -> list[str]:
    """What is unsafe about how a process reaches Redis: no password beyond loopback, TLS unchecked.

    Redis credentials are the keys to the fleet (docs/security.md): a worker says so when it starts.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    if parts.scheme == "unix":
        return []
    host = (parts.hostname or "").lower()
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    out = []
    if not loopback and not parts.password:
        out.append(f"Redis at {host} is reached without a password: anyone who can reach it controls the fleet")
    if parts.scheme == "rediss" and cert_reqs != "required":
        out.append(f"TLS to Redis at {host} does not check certificates (WASMJOB_REDIS_CERT_REQS={cert_reqs})")
    if parts.scheme == "redis" and not loopback and parts.password:
        out.append(f"Redis at {host} is reached without TLS: its password and every job travel in clear text")
    return out


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read policy file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"policy file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"policy file {path} must hold a JSON object")
    return data


def _parse_env(name: str, var: str, raw: str) -> Any:
    kind = {f.name: str(f.type) for f in fields(Policy)}[name]
    if "bool" in kind:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var}={raw!r} must be true or false")
    if "tuple" in kind:
        return tuple(p.strip() for p in raw.split(",") if p.strip())
    try:
        return float(raw) if "float" in kind else int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number") from None
