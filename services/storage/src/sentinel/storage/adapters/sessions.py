"""Pool release without a round trip: the full session reset only where session state was taken.

asyncpg's default release runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;` on
every connection, one more round trip per pooled use. Our statements keep no session state: they
use transaction-scoped settings (SET LOCAL), no cursors outside transactions and no LISTEN. The
few places that take session-level state (advisory locks of migrations and maintenance, and
whatever a migration's SQL may set) mark their connection, and only such a connection gets the
full reset on release. asyncpg itself still rolls back a transaction left open before `reset`.
"""

from __future__ import annotations

import asyncpg

# Backend pids of connections that took session-level state since their last release.
_MARKED: set[int] = set()


def mark_session_state(connection: asyncpg.Connection) -> None:
    """Have the pool fully reset `connection` when it is released (before taking session state)."""
    _MARKED.add(connection.get_server_pid())


async def reset_on_release(connection: asyncpg.Connection) -> None:
    """The pool's `reset`: the full reset query for marked connections, nothing for the others."""
    pid = connection.get_server_pid()
    if pid in _MARKED:
        await connection.execute(connection.get_reset_query())
        _MARKED.discard(pid)
