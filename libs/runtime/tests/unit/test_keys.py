from __future__ import annotations

import pytest

from sentinel.runtime.errors import InvalidArgumentError, UnauthenticatedError
from sentinel.runtime.keys import DEFAULT_TENANT, KeyRing, hash_key

KEYS = KeyRing.parse([f"acme:{hash_key('acme-secret')}", f"*:{hash_key('service-secret')}", "# comment", ""])


def test_a_tenant_key_acts_for_its_own_tenant_only() -> None:
    metadata = {"authorization": "Bearer acme-secret", "x-sentinel-tenant": "globex"}
    assert KEYS.tenant_for(metadata) == "acme"


def test_missing_or_unknown_keys_are_unauthenticated() -> None:
    with pytest.raises(UnauthenticatedError, match="missing API key"):
        KEYS.tenant_for({})
    with pytest.raises(UnauthenticatedError, match="missing API key"):
        KEYS.tenant_for({"authorization": "Basic acme-secret"})
    with pytest.raises(UnauthenticatedError, match="unknown API key"):
        KEYS.tenant_for({"authorization": "Bearer acme-secret2"})


def test_a_service_key_acts_for_the_tenant_it_names() -> None:
    metadata = {"authorization": "Bearer service-secret", "x-sentinel-tenant": "globex"}
    assert KEYS.tenant_for(metadata) == "globex"
    with pytest.raises(InvalidArgumentError, match="x-sentinel-tenant"):
        KEYS.tenant_for({"authorization": "Bearer service-secret"})
    with pytest.raises(InvalidArgumentError, match="x-sentinel-tenant"):
        KEYS.tenant_for({"authorization": "Bearer service-secret", "x-sentinel-tenant": "bad tenant!"})


def test_without_keys_auth_is_off_and_the_tenant_is_named_or_default() -> None:
    open_ring = KeyRing.parse([])
    assert not open_ring.enabled
    assert open_ring.tenant_for({}) == DEFAULT_TENANT
    assert open_ring.tenant_for({"x-sentinel-tenant": "team-a"}) == "team-a"


@pytest.mark.parametrize("entry", ["acme", "acme:1234", ":" + "a" * 64, "acme:" + "g" * 64])
def test_malformed_entries_are_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="tenant:<sha256 hex>"):
        KeyRing.parse([entry])
