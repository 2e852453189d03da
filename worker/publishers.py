"""Publisher keys: who may publish which extension id, proved by an Ed25519 signature.

An extension id belongs to the keys that published it (its *owners*): the first signed
release of an id binds it to its publisher's key, as a package registry binds a name to
its first uploader; every later version must be signed by an owner. What is signed is a
short statement naming the id, the version, the module digest and the manifest digest,
so neither the bytes nor the manifest (with its permissions) can be swapped afterwards.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import ConfigError, PublishRefused

KEY_ENV = "WASMJOB_PUBLISHER_KEY"
STATEMENT_TAG = "wasmjob-release-v1"
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
MAX_VERSION_LENGTH = 64


# versions ------------------------------------------------------------------------------


def check_version(version: str) -> str:
    """``version`` if it is a semantic version (``1.2.3``, ``1.2.3-rc.1``); else a PublishRefused."""
    if not isinstance(version, str) or len(version) > MAX_VERSION_LENGTH or not _SEMVER.match(version):
        raise PublishRefused(f"version {version!r} is not a semantic version such as 1.2.3 or 1.2.3-rc.1")
    return version


def is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]


def semver_key(version: str) -> tuple[Any, ...]:
    """Semantic-version precedence: 1.10.0 > 1.9.0 > 1.9.0-rc.10 > 1.9.0-rc.2; non-semver lowest."""
    match = _SEMVER.match(version)
    if not match:
        return (-1, version)
    core = tuple(int(match.group(i)) for i in (1, 2, 3))
    pre = match.group(4)
    if pre is None:
        return (*core, 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (*core, 0, ids)


def latest(versions: list[str]) -> str | None:
    """The version a bare id resolves to: the highest release, or the highest pre-release
    when nothing else was published (as package managers' ``latest`` does)."""
    valid = [v for v in versions if _SEMVER.match(v)]
    releases = [v for v in valid if not is_prerelease(v)]
    pool = releases or valid
    return max(pool, key=semver_key) if pool else None


# keys ----------------------------------------------------------------------------------


def key_id(public: str) -> str:
    """A short, stable name of a public key for messages: ``ed25519:`` and 16 hex digits."""
    return "ed25519:" + hashlib.sha256(base64.b64decode(public)).hexdigest()[:16]


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def parse_public(text: str) -> Ed25519PublicKey:
    """A public key given as base64 of its 32 raw bytes (what ``wasmjob publisher show`` prints)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise ConfigError(f"not an Ed25519 public key (base64 of 32 bytes): {text[:60]!r}") from None


@dataclass(frozen=True)
class PublisherKey:
    """A publisher's private key and where it came from."""

    private: Ed25519PrivateKey
    path: Path | None = None
    created: bool = False

    @property
    def public(self) -> str:
        return public_text(self.private.public_key())

    @property
    def id(self) -> str:
        return key_id(self.public)

    def sign(self, statement: bytes) -> str:
        return base64.b64encode(self.private.sign(statement)).decode()

    @classmethod
    def generate(cls) -> PublisherKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: str | Path) -> PublisherKey:
        """A key from a PEM file (PKCS#8, unencrypted), as ``wasmjob publisher init`` writes it."""
        p = Path(path).expanduser()
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read publisher key {p}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{p} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{p} is not an Ed25519 key")
        return cls(key, p)

    def save(self, path: str | Path) -> PublisherKey:
        """Write the key as PEM, readable by its owner only; refuses to overwrite."""
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigError(f"{p} exists already; not overwriting a publisher key") from None
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return PublisherKey(self.private, p, created=True)


def default_key_path() -> Path:
    """``WASMJOB_PUBLISHER_KEY``, else ``publisher.pem`` in the user's config directory."""
    configured = os.environ.get(KEY_ENV)
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("wasmjob")) / "publisher.pem"


def load_or_create(path: str | Path | None = None) -> PublisherKey:
    """The publisher key at ``path`` (default: :func:`default_key_path`), created on first use
    when it is the default one; an explicitly named key must exist."""
    if path is not None:
        return PublisherKey.load(path)
    p = default_key_path()
    if p.exists():
        return PublisherKey.load(p)
    return PublisherKey.generate().save(p)


# statements ----------------------------------------------------------------------------


def manifest_digest(manifest: dict[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def statement(ext_id: str, version: str, digest: str, manifest: dict[str, Any]) -> bytes:
    """The bytes a publisher signs for one release."""
    return "\n".join((STATEMENT_TAG, ext_id, version, digest, manifest_digest(manifest))).encode()


@dataclass(frozen=True)
class Signature:
    """A release's signature and the public key that made it (both base64)."""

    public: str
    signature: str

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    @classmethod
    def make(cls, key: PublisherKey, ext_id: str, version: str, digest: str, manifest: dict[str, Any]) -> Signature:
        return cls(key.public, key.sign(statement(ext_id, version, digest, manifest)))

    def verify(self, ext_id: str, version: str, digest: str, manifest: dict[str, Any]) -> None:
        """Raise PublishRefused unless this signature covers exactly that release."""
        public = parse_public(self.public)
        try:
            public.verify(base64.b64decode(self.signature), statement(ext_id, version, digest, manifest))
        except (InvalidSignature, ValueError):
            raise PublishRefused(
                f"the signature of {ext_id}@{version} does not match its module and manifest"
                f" (key {self.key_id})"
            ) from None
