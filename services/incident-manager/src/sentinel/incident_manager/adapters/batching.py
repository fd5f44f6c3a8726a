"""Coalesced reads: concurrent lookups of single keys become one batched call per tenant.

A lookup queues its key and waits. While no call is in flight the queue is sent at the next turn of
the event loop; while one is, the queue fills and goes next. So a lone lookup costs one call, as
before, and a burst of them (the first reports of many new alerts) costs a few.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[str, Sequence[K]], Awaitable[dict[K, V]]]


class Coalescer(Generic[K, V]):
    """`get(tenant, key)` answered by `fetch(tenant, keys)` calls of at most `max_keys` keys."""

    def __init__(self, fetch: Fetch[K, V], *, max_keys: int = 1000) -> None:
        self._fetch = fetch
        self._max_keys = max_keys
        self._queue: dict[str, dict[K, list[asyncio.Future[V | None]]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def get(self, tenant: str, key: K) -> V | None:
        """The value of `key` (None when `fetch` does not return it); `fetch`'s error if it fails."""
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._queue.setdefault(tenant, {}).setdefault(key, []).append(future)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="coalesced-reads")
        return await future

    async def _run(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # let the lookups of this turn of the loop join
                queued, self._queue = self._queue, {}
                calls = []
                for tenant, waiting in queued.items():
                    keys = list(waiting)
                    for start in range(0, len(keys), self._max_keys):
                        chunk = {key: waiting[key] for key in keys[start : start + self._max_keys]}
                        calls.append(self._call(tenant, chunk))
                await asyncio.gather(*calls)
        finally:
            self._task = None

    async def _call(self, tenant: str, waiting: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(tenant, list(waiting))
        except BaseException as exc:
            for futures in waiting.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        for key, futures in waiting.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(key))
