"""The hot dedup path: claim a fingerprint with Redis `SET NX PX` (one command per new alert).

PostgreSQL (through storage) stays the truth: the claim only decides who creates an alert's row
when several replicas see its first report at once. If Redis is unreachable the claim is granted
(and logged): storage's versioned writes and unique keys still keep the data consistent.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sentinel.runtime.clock import Clock

logger = logging.getLogger(__name__)


class RedisDedupLock:
    """Claims in Redis under `<namespace>:dedup:<tenant>:<fingerprint>`."""

    def __init__(self, client: aioredis.Redis, *, namespace: str = "sentinel:incident") -> None:
        self._redis = client
        self._namespace = namespace

    def _key(self, tenant: str, fingerprint: str) -> str:
        return f"{self._namespace}:dedup:{tenant}:{fingerprint}"

    async def claim(self, *, tenant: str, fingerprint: str, ttl_s: float) -> bool:
        try:
            return bool(
                await self._redis.set(
                    self._key(tenant, fingerprint), b"1", nx=True, px=max(1, int(ttl_s * 1000))
                )
            )
        except RedisError as exc:
            logger.warning("redis dedup claim failed (%s); falling back to storage alone", exc)
            return True

    async def release(self, *, tenant: str, fingerprint: str) -> None:
        try:
            await self._redis.delete(self._key(tenant, fingerprint))
        except RedisError as exc:
            logger.warning("redis dedup release failed (%s)", exc)

    async def ping(self) -> None:
        """Raise if Redis does not answer (used at start)."""
        await self._redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()


class InProcessDedupLock:
    """Claims in this process only: for a single replica without Redis, and for tests."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._claims: dict[tuple[str, str], float] = {}

    async def claim(self, *, tenant: str, fingerprint: str, ttl_s: float) -> bool:
        now = self._clock.monotonic()
        key = (tenant, fingerprint)
        expiry = self._claims.get(key)
        if expiry is not None and expiry > now:
            return False
        self._claims[key] = now + ttl_s
        if len(self._claims) > 1_000_000:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        return True

    async def release(self, *, tenant: str, fingerprint: str) -> None:
        self._claims.pop((tenant, fingerprint), None)
