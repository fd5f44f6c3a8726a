"""Per-series state checkpoints: Redis (`redis.asyncio`), or nothing (in-memory only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import redis.asyncio as redis

from sentinel.runtime.errors import UnavailableError

logger = logging.getLogger(__name__)


class RedisStateStore:
    """Checkpoints under `<prefix>:detection:state:v1:<key>`: one MGET per load, one pipeline per save."""

    durable = True

    def __init__(self, url: str, *, prefix: str, ttl_s: int | None, connect_timeout_s: float = 30.0) -> None:
        self._url = url
        self._prefix = f"{prefix}:detection:state:v1:"
        self._ttl_s = ttl_s
        self._connect_timeout_s = connect_timeout_s
        self._redis: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._redis is None:
            raise RuntimeError("the state store is not open")
        return self._redis

    async def open(self) -> None:
        self._redis = redis.Redis.from_url(self._url, socket_timeout=10, socket_connect_timeout=5)
        deadline = asyncio.get_running_loop().time() + self._connect_timeout_s
        delay = 0.05
        while True:
            try:
                await self._redis.ping()
                break
            except (redis.RedisError, OSError):
                if asyncio.get_running_loop().time() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        logger.info("detection state checkpoints in redis", extra={"prefix": self._prefix})

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def load(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self.client.mget([self._prefix + key for key in keys])
        except (redis.RedisError, OSError) as exc:
            raise UnavailableError(
                "series state cannot be restored from Redis; retry", reason="STATE_UNAVAILABLE"
            ) from exc
        return [None if v is None else v if isinstance(v, bytes) else v.encode() for v in values]

    async def save(self, states: Mapping[str, bytes]) -> None:
        if not states:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, data in states.items():
            pipe.set(self._prefix + key, data, ex=self._ttl_s)
        try:
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise UnavailableError("checkpoint to Redis failed", reason="STATE_UNAVAILABLE") from exc


class MemoryOnlyStateStore:
    """No checkpoints: state lives and dies with the process."""

    durable = False

    async def open(self) -> None:
        logger.warning("SENTINEL_REDIS_URL is unset: detection state is in memory only (lost on restart)")

    async def close(self) -> None:
        return None

    async def load(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    async def save(self, states: Mapping[str, bytes]) -> None:
        return None
