"""The Redis dedup claim against a real Redis (SET NX PX)."""

from __future__ import annotations

import redis.asyncio as aioredis

from sentinel.incident_manager.adapters.dedup import RedisDedupLock


async def test_redis_claims_are_set_nx_with_ttl(redis_url: str, redis_namespace: str) -> None:
    lock = RedisDedupLock(aioredis.Redis.from_url(redis_url), namespace=redis_namespace)
    try:
        assert await lock.claim(tenant="t", fingerprint="v1:abc", ttl_s=60)
        assert not await lock.claim(tenant="t", fingerprint="v1:abc", ttl_s=60)
        ttl = await lock._redis.pttl(f"{redis_namespace}:dedup:t:v1:abc")
        assert 0 < ttl <= 60_000
        await lock.release(tenant="t", fingerprint="v1:abc")
        assert await lock.claim(tenant="t", fingerprint="v1:abc", ttl_s=60)
    finally:
        await lock.close()


async def test_an_unreachable_redis_grants_the_claim_and_storage_stays_the_truth() -> None:
    lock = RedisDedupLock(aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    try:
        assert await lock.claim(tenant="t", fingerprint="f", ttl_s=1)
    finally:
        await lock.close()
