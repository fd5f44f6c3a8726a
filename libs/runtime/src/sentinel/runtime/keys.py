"""API keys: hashed, per tenant. Pure (no gRPC), so settings can validate them at start.

Keys are configured hashed (`SENTINEL_API_KEYS="tenant-a:<sha256 hex>,tenant-b:<sha256 hex>"`, or
a file with one `tenant:hash` per line in `SENTINEL_API_KEYS_FILE`); the key's tenant becomes the
call's tenant. A key configured for tenant `*` is a service key: Sentinel's own services use it
to call each other and name the tenant they act for in `x-sentinel-tenant`. With no keys
configured, authentication is off (local development): the tenant is taken from
`x-sentinel-tenant`, else `default`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.runtime.errors import InvalidArgumentError, UnauthenticatedError

TENANT_HEADER = "x-sentinel-tenant"
SERVICE_TENANT = "*"
DEFAULT_TENANT = "default"
MAX_TENANT_LENGTH = 64


def hash_key(key: str) -> str:
    """sha256 hex of an API key, as it is written in `SENTINEL_API_KEYS`."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyRing:
    """Hashed API keys and the tenant each one belongs to."""

    tenant_by_hash: Mapping[str, str]

    @property
    def enabled(self) -> bool:
        return bool(self.tenant_by_hash)

    @classmethod
    def parse(cls, entries: Sequence[str]) -> KeyRing:
        """Parse `tenant:sha256hex` entries (blank entries and `#` comments ignored)."""
        tenant_by_hash: dict[str, str] = {}
        for raw in entries:
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            tenant, sep, digest = entry.rpartition(":")
            digest = digest.strip().lower()
            if not sep or not tenant or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError(f"API key entry {entry[:20]!r}... is not 'tenant:<sha256 hex>'")
            tenant_by_hash[digest] = tenant.strip()
        return cls(tenant_by_hash)

    @classmethod
    def from_config(cls, inline: str | None, file: Path | None) -> KeyRing:
        entries = (inline or "").split(",")
        if file is not None:
            entries += file.read_text(encoding="utf-8").splitlines()
        return cls.parse(entries)

    def tenant_for(self, metadata: Mapping[str, str]) -> str:
        """The tenant a call acts for, from its metadata.

        Raises:
            UnauthenticatedError: missing or unknown key.
            InvalidArgumentError: a service key without a valid `x-sentinel-tenant`.
        """
        named = metadata.get(TENANT_HEADER)
        if not self.enabled:
            return _valid_tenant(named) if named else DEFAULT_TENANT
        header = metadata.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise UnauthenticatedError("missing API key: send 'authorization: Bearer <key>'")
        presented = hash_key(key.strip())
        tenant = next(
            (t for digest, t in self.tenant_by_hash.items() if hmac.compare_digest(digest, presented)),
            None,
        )
        if tenant is None:
            raise UnauthenticatedError("unknown API key")
        if tenant == SERVICE_TENANT:
            if not named:
                raise InvalidArgumentError(TENANT_HEADER, "a service key must name the tenant it acts for")
            return _valid_tenant(named)
        return tenant


def _valid_tenant(name: str) -> str:
    if not (0 < len(name) <= MAX_TENANT_LENGTH) or not all(c.isalnum() or c in "-_." for c in name):
        raise InvalidArgumentError(TENANT_HEADER, f"must be 1..{MAX_TENANT_LENGTH} of [A-Za-z0-9._-]")
    return name
