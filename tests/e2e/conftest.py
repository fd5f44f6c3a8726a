"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from e2e_stack import Stack, running_stack


@pytest.fixture
async def stack(postgres_dsn: str, redis_url: str) -> AsyncIterator[Stack]:
    """All four services, wired together, on this test's database."""
    async with running_stack(postgres_dsn, redis_url) as addresses:
        yield addresses
