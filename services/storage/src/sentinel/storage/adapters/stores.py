"""Connections to PostgreSQL and Redis, embedded servers when none are configured."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as redis

from sentinel.runtime.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    start_embedded_postgres,
    start_embedded_redis,
)
from sentinel.storage.adapters.migrations import migrate
from sentinel.storage.adapters.sessions import reset_on_release
from sentinel.storage.settings import StorageSettings

logger = logging.getLogger(__name__)


@dataclass
class Stores:
    """The storage service's PostgreSQL pool and Redis client, opened at start, closed at stop."""

    settings: StorageSettings
    _pool: asyncpg.Pool | None = None
    _redis: redis.Redis | None = None
    _embedded: list[EmbeddedPostgres | EmbeddedRedis] = field(default_factory=list)
    postgres_dsn: str | None = None
    redis_url: str | None = None
    _instance_id: str | None = None

    @property
    def instance_id(self) -> str:
        """Identity of the database (a uuid made by the migrations), for cache keys."""
        if self._instance_id is None:
            raise RuntimeError("stores are not open")
        return self._instance_id

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("stores are not open")
        return self._pool

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            raise RuntimeError("stores are not open")
        return self._redis

    async def open(self) -> None:
        """Connect (starting embedded servers if no DSN/URL is set) and migrate the schema."""
        self.postgres_dsn = self.settings.postgres_dsn
        if self.postgres_dsn is None:
            embedded_pg = await asyncio.to_thread(start_embedded_postgres, self.settings.var_dir / "postgres")
            self._embedded.append(embedded_pg)
            self.postgres_dsn = embedded_pg.dsn
        self.redis_url = self.settings.redis_url
        if self.redis_url is None:
            embedded_redis = await asyncio.to_thread(start_embedded_redis, self.settings.var_dir / "redis")
            self._embedded.append(embedded_redis)
            self.redis_url = embedded_redis.url
        self._pool = await asyncpg.create_pool(
            self.postgres_dsn,
            min_size=self.settings.postgres_pool_min,
            max_size=self.settings.postgres_pool_max,
            reset=reset_on_release,
        )
        applied = await migrate(self._pool)
        self._instance_id = str(await self._pool.fetchval("SELECT instance_id FROM storage_instance"))
        logger.info("postgresql ready", extra={"migrations_applied": applied})
        self._redis = redis.Redis.from_url(self.redis_url)
        await self._redis.ping()
        logger.info("redis ready")

    async def close(self) -> None:
        """Close connections and stop the embedded servers this process started."""
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        for server in reversed(self._embedded):
            await asyncio.to_thread(server.stop)
        self._embedded.clear()
