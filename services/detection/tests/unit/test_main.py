"""The process entry point's memory settings."""

from __future__ import annotations

import platform
import sys

import pytest

from sentinel.detection.__main__ import limit_malloc_arenas


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_malloc_arenas_are_limited_on_glibc() -> None:
    assert limit_malloc_arenas() is True
