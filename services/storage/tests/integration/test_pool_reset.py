"""Pool release: a connection that took session state is reset, the others are released as they are."""

from __future__ import annotations

import asyncpg

from sentinel.storage.adapters.sessions import mark_session_state, reset_on_release

_LOCK_ID = 0x53454EFF


async def advisory_locks(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1", _LOCK_ID
        )
    )


async def test_a_marked_connection_loses_its_advisory_locks_on_release(postgres_dsn: str) -> None:
    pool = await asyncpg.create_pool(postgres_dsn, min_size=2, max_size=2, reset=reset_on_release)
    try:
        async with pool.acquire() as connection:
            mark_session_state(connection)
            await connection.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
            # released without unlocking, as when the unlock in a `finally` never ran
        assert await advisory_locks(pool) == 0
    finally:
        await pool.close()


async def test_an_unmarked_connection_is_released_without_the_reset_round_trip(postgres_dsn: str) -> None:
    """The point of `reset_on_release`: no `RESET ALL` for connections that took no session state
    (a session-level setting, which our statements never make, shows that none ran)."""
    pool = await asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1, reset=reset_on_release)
    try:
        async with pool.acquire() as connection:
            await connection.execute("SET application_name = 'kept'")
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT current_setting('application_name')") == "kept"
            mark_session_state(connection)
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT current_setting('application_name')") != "kept"
    finally:
        await pool.close()
