"""Ordered plain-SQL migrations, applied once each, under an advisory lock."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from sentinel.storage.adapters.sessions import mark_session_state

logger = logging.getLogger(__name__)

# Any constant shared by every storage replica: concurrent starts apply migrations one at a time.
_MIGRATION_LOCK_ID = 0x53454E54  # "SENT"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, order=True)
class Migration:
    """One migration file: `NNNN_name.sql`."""

    version: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """The migrations shipped in `sentinel.storage.adapters.sql`, in version order."""
    migrations = []
    for entry in resources.files("sentinel.storage.adapters.sql").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            migrations.append(
                Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
            )
    migrations.sort()
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return migrations


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply every migration not applied yet; returns the versions applied now (idempotent)."""
    applied_now: list[int] = []
    async with pool.acquire() as connection:
        mark_session_state(connection)  # the lock, and whatever a migration's SQL may SET
        await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        try:
            await connection.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}
            for migration in load_migrations():
                if migration.version in done:
                    continue
                async with connection.transaction():
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                logger.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now
