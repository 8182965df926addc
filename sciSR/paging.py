"""Arrays larger than RAM: disk-backed outputs whose written pages are handed back to the OS.

A ``numpy.memmap`` keeps every page it has touched resident until the kernel runs short of memory, so
a 16k × 16k float32 result (1 GiB) would still show as 1 GiB of resident memory. :func:`release_pages`
writes the dirty pages to the file and drops them from the mapping (``MADV_DONTNEED``): the data stay in
the file, the resident set stays bounded by what is being worked on.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

RELEASE_EVERY_BYTES = 64 * 2**20
"""Dirty output bytes after which a long writer (tiled prediction, chunked post-processing) releases pages."""


def available_ram() -> int:
    """Bytes of RAM the process may still use (the kernel's MemAvailable, or psutil's estimate)."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024


def _mapping(array: np.ndarray) -> mmap.mmap | None:
    """The ``mmap`` behind ``array`` (a ``numpy.memmap`` or any view of one), else None."""
    base: object = array
    while base is not None:
        mapped = getattr(base, "_mmap", None)
        if isinstance(mapped, mmap.mmap):
            return mapped
        if isinstance(base, mmap.mmap):
            return base
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


def is_disk_backed(array: np.ndarray) -> bool:
    """True when ``array`` lives in a memory-mapped file."""
    return _mapping(array) is not None


def release_pages(array: np.ndarray) -> None:
    """Flush a memory-mapped array and drop its pages from memory (they stay in the file).

    A no-op for arrays in RAM and on systems without ``madvise``.
    """
    mapped = _mapping(array)
    if mapped is None:
        return
    mapped.flush()
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapped.madvise(mmap.MADV_DONTNEED)


@contextlib.contextmanager
def disk_array(shape: Sequence[int], dtype: np.dtype | type = np.float32,
               folder: str | os.PathLike | None = None) -> Iterator[np.memmap]:
    """A zero-filled array in a temporary file, deleted when the block ends.

    Parameters
    ----------
    shape : sequence of int
        Array shape.
    dtype : numpy dtype
        Element type.
    folder : path, optional
        Where the temporary file goes (default: the system's temporary folder). Put it on the disk
        that will receive the result, so that the space is known to be there.

    Yields
    ------
    numpy.memmap
        Writable, initially zero (a sparse file: nothing is written until used).
    """
    fd, name = tempfile.mkstemp(prefix=".scisr-", suffix=".f32", dir=folder)
    os.close(fd)
    try:
        yield np.memmap(name, dtype=dtype, mode="w+", shape=tuple(int(n) for n in shape))
    finally:
        Path(name).unlink(missing_ok=True)


def row_chunks(n_rows: int, row_bytes: int, budget: int = RELEASE_EVERY_BYTES) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges over ``n_rows`` rows so that each range holds about ``budget`` bytes."""
    step = max(1, budget // max(1, row_bytes))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)
