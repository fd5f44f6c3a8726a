"""The in-process series id cache is bounded and evicts the least recently used."""

from __future__ import annotations

from sentinel.storage.adapters.postgres import LruCache


def test_lru_evicts_the_least_recently_used_beyond_capacity() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)
