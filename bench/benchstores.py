"""Stores for a benchmark run: a fresh PostgreSQL database (dropped afterwards) and Redis.

PostgreSQL: SENTINEL_POSTGRES_DSN, else SENTINEL_TEST_POSTGRES_DSN, else an embedded server.
Redis: SENTINEL_REDIS_URL, else SENTINEL_TEST_REDIS_URL, else an embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg


@dataclass(frozen=True)
class BenchStores:
    """Where a benchmark's services keep their data."""

    work: Path
    admin_dsn: str
    dsn: str
    database: str
    redis_url: str


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def bench_stores(prefix: str) -> Iterator[BenchStores]:
    """A fresh database named `<prefix>_<random>` and a Redis URL; cleaned up on exit."""
    work = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    embedded: list[Any] = []
    admin_dsn = os.environ.get("SENTINEL_POSTGRES_DSN") or os.environ.get("SENTINEL_TEST_POSTGRES_DSN")
    redis_url = os.environ.get("SENTINEL_REDIS_URL") or os.environ.get("SENTINEL_TEST_REDIS_URL")
    try:
        if not admin_dsn:
            from sentinel.runtime.embedded import start_embedded_postgres

            embedded.append(start_embedded_postgres(work / "postgres"))
            admin_dsn = embedded[-1].dsn
        if not redis_url:
            from sentinel.runtime.embedded import start_embedded_redis

            embedded.append(start_embedded_redis(work / "redis"))
            redis_url = embedded[-1].url
        database = f"{prefix}_{uuid.uuid4().hex[:8]}"
        asyncio.run(_execute(admin_dsn, f'CREATE DATABASE "{database}"'))
        dsn = urlunsplit(urlsplit(admin_dsn)._replace(path="/" + database))
        try:
            yield BenchStores(work, admin_dsn, dsn, database, redis_url)
        finally:
            asyncio.run(_execute(admin_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    finally:
        for server in reversed(embedded):
            server.stop()
