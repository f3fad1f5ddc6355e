"""Keep a long-running server's memory near its baseline (glibc only; a no-op elsewhere).

Measured with bench/bench_server.py: with glibc's defaults the RSS after a load settles ~50-70%
above its warm-up level and stays there. Two causes, two settings:
- glibc raises its mmap threshold each time a large block is freed (up to 32 MiB), after which
  multi-megabyte image buffers come from the heap and fragment it; a fixed threshold keeps
  them in mmap, which goes back to the OS on free.
- every worker thread gets its own malloc arena (up to 8 per core), each keeping free memory;
  two arenas are enough for threads that mostly wait on libvips.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("imgpipe.server")

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2

_libc = None


def _glibc():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt  # noqa: B018 (AttributeError off glibc)
            libc.malloc_trim  # noqa: B018
            _libc = libc
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


def tune_allocator() -> None:
    """Call once at server start, before the worker threads exist."""
    libc = _glibc()
    if libc is None:
        return
    ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(M_ARENA_MAX, ARENA_MAX)
    if not ok:
        log.warning("could not tune malloc; memory may stay above baseline after load")


def trim() -> None:
    """Give free heap memory back to the OS (call when idle: it takes the arena locks)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
