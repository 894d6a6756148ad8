"""glibc's allocator held steady while a model trains.

With glibc's default thresholds, the large buffers a training step frees go back to the kernel (unmapped, or
trimmed off the top of the heap), and the next step faults their pages in again: on this project's 2-core CPUs a
quarter to a half of a slow step's time was system time. `held_memory` raises the mmap and trim thresholds while a
training runs, so freed buffers stay in the process for the next step, and afterwards puts glibc's fixed defaults
back and trims the heap, so that a long-lived worker does not keep its largest job's memory. The ratio is measured
side by side by bench/allocator_speed.py. Off glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_THRESHOLD = -3
HELD = 1 << 30  # bytes: larger than any buffer a training step on this project's crops frees
# glibc's initial thresholds. Once set by mallopt they stay fixed: glibc's dynamic raising of the mmap threshold
# stays off after a training, which keeps memory returned eagerly between trainings.
GLIBC_DEFAULT = 128 * 1024

_lock = threading.Lock()
_depth = 0  # trainings running in this process: the thresholds are restored when the last one ends
_enabled = True


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library this process runs on, where it is glibc (the one with malloc_trim); else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (only glibc has it)
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def set_enabled(enabled: bool) -> None:
    """Whether `held_memory` changes anything (bench/train_speed.py --glibc-defaults turns it off to compare)."""
    global _enabled
    _enabled = enabled


@contextmanager
def held_memory() -> Iterator[None]:
    """Raise glibc's mmap and trim thresholds for the block; the last block to end restores them and trims."""
    global _depth
    libc = _glibc() if _enabled else None
    if libc is None:
        yield
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_THRESHOLD, HELD)
            libc.mallopt(M_TRIM_THRESHOLD, HELD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT)
                libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT)
                libc.malloc_trim(0)
