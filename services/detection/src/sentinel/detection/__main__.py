"""`python -m sentinel.detection` / `sentinel-detection`."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

from sentinel.detection.app import build_server
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.server import run_service

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def limit_malloc_arenas() -> bool:
    """Keep glibc from growing one heap per thread and holding freed kernel temporaries.

    The kernel thread allocates and frees tens of MB of NumPy temporaries per flush. By default
    glibc gives that thread its own arena and raises its mmap threshold after each large free, so
    those blocks end up in heaps that are never given back: RSS creeps up by hundreds of MB. Two
    arenas, and large blocks always mmapped (returned on free), keep RSS near the live data. A
    no-op (False) where the C library is not glibc.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_ARENA_MAX, 2) == 1
    ok &= mallopt(_M_MMAP_THRESHOLD, 1 << 20) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, 8 << 20) == 1
    return bool(ok)


def main() -> None:
    """Run the detection service until SIGTERM."""
    limit_malloc_arenas()
    run_service("detection", DetectionSettings, build_server)


if __name__ == "__main__":
    main()
