"""`python -m sentinel.detection` / `sentinel-detection`."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

from sentinel.detection.app import build_server
from sentinel.detection.settings import DetectionSettings
from sentinel.runtime.server import run_service

_M_ARENA_MAX = -8  # glibc mallopt parameter (malloc.h)


def limit_malloc_arenas() -> bool:
    """Keep glibc from growing one heap per thread.

    The kernel thread allocates and frees tens of MB of NumPy temporaries per flush, the event
    loop and gRPC's threads allocate on their own; glibc gives each thread its own arena (up to 8
    per core), each keeping its freed blocks: RSS grows by the sum of their peaks. Two arenas cap
    that. The mmap and trim thresholds are deliberately left alone: setting either stops glibc's
    adaptive mmap threshold, and then every large temporary is mmapped and page-faulted afresh
    on every flush (measured: the kernel 10-25% slower). A no-op (False) off glibc.
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
    return bool(mallopt(_M_ARENA_MAX, 2) == 1)


def main() -> None:
    """Run the detection service until SIGTERM."""
    limit_malloc_arenas()
    run_service("detection", DetectionSettings, build_server)


if __name__ == "__main__":
    main()
