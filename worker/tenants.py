"""Tenant tokens: a job runs for a tenant only when its submitter holds that tenant's token.

The operator keeps one secret (``WASMJOB_TENANT_SECRET``) and hands each tenant its token,
an HMAC of the tenant id. A message carries the token; whoever creates the job's record
stores only a hash of it (records are readable by producers, a token is a credential),
and a worker checks that hash against the secret before every run. Without a secret,
tenants are labels: anyone who may submit may name any tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .errors import ConfigError
from .job import DEFAULT_LIBRARY_ID

TOKEN_ENV = "WASMJOB_TENANT_TOKEN"
_TAG = b"wasmjob-tenant-v1:"


def token_for(secret: str, tenant: str | None) -> str:
    """The token of ``tenant`` (the default library when None) under the operator's secret."""
    mac = hmac.new(secret.encode(), _TAG + (tenant or DEFAULT_LIBRARY_ID).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def proof_of(token: str | None) -> str:
    """What a record keeps of a token: its SHA-256, or '' when none was given."""
    if not token:
        return ""
    if not isinstance(token, str) or len(token) > 128:
        raise ConfigError("tenant_token must be a string of at most 128 characters")
    return hashlib.sha256(token.encode()).hexdigest()


def authenticated(secret: str | None, tenant: str | None, proof: str) -> bool:
    """True when no secret is configured, or ``proof`` is the hash of the tenant's token."""
    if secret is None:
        return True
    expected = proof_of(token_for(secret, tenant))
    return hmac.compare_digest(expected, proof or "")
