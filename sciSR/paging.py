"""Arrays larger than RAM: disk-backed outputs whose written pages are handed back to the OS.

A ``numpy.memmap`` keeps every page it has touched resident until the kernel runs short of memory, so
a 16k × 16k float32 result (1 GiB) would still show as 1 GiB of resident memory. :func:`release_pages`
writes the dirty pages to the file and drops them from the mapping (``MADV_DONTNEED``): the data stay in
the file, the resident set stays bounded by what is being worked on.

Scratch files live in one place: the folder named by the ``SCISR_SCRATCH`` environment variable when it is
set, else the folder the caller proposes (:func:`sciSR.upscale_file` proposes the output's folder, where the space
is known to be needed anyway), else the system's temporary folder (:func:`scratch_folder`). Before work that
large begins, :func:`check_output_size` refuses results that cannot fit, and :func:`check_run_time` jobs whose
estimated run time exceeds ``SCISR_MAX_HOURS`` (24 h unless set).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from sciSR.errors import SciSRError
from sciSR.tempfiles import discard_temp, new_temp, remove_stale_temps

RELEASE_EVERY_BYTES = 64 * 2**20
"""Dirty output bytes after which a long writer (tiled prediction, chunked post-processing) releases pages."""

SCRATCH_ENV = "SCISR_SCRATCH"
"""Environment variable naming the folder for memory-mapped scratch files."""

MAX_OUTPUT_BYTES = 64 * 2**30
"""Largest result (bytes, 64 GiB) :func:`check_output_size` accepts without ``force``, whatever the free space."""

MAX_HOURS_ENV = "SCISR_MAX_HOURS"
"""Environment variable: the most hours of estimated work :func:`check_run_time` accepts."""

DEFAULT_MAX_HOURS = 24.0
"""Hours of estimated work accepted when ``SCISR_MAX_HOURS`` is not set."""


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


def scratch_folder(default: str | os.PathLike | None = None) -> Path:
    """The folder for memory-mapped scratch files.

    Parameters
    ----------
    default : str or os.PathLike, optional
        Where the caller would put them (e.g. the output's folder); used when ``SCISR_SCRATCH`` is not set.
        None: the system's temporary folder (often a RAM disk: give a folder on a real disk for results
        larger than RAM).

    Returns
    -------
    pathlib.Path
        ``$SCISR_SCRATCH`` if set and not empty, else ``default``, else :func:`tempfile.gettempdir`.

    Raises
    ------
    SciSRError
        The chosen folder does not exist, is not a folder or is not writable (one line naming it).
    """
    chosen = os.environ.get(SCRATCH_ENV) or default or tempfile.gettempdir()
    where = f" (set by {SCRATCH_ENV})" if os.environ.get(SCRATCH_ENV) else ""
    folder = Path(chosen).expanduser()
    if not folder.is_dir():
        raise SciSRError(f"scratch folder{where} does not exist or is not a folder", folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SciSRError(f"scratch folder{where} is not writable", folder)
    return folder


@contextlib.contextmanager
def disk_array(shape: Sequence[int], dtype: np.dtype | type = np.float32,
               folder: str | os.PathLike | None = None) -> Iterator[np.memmap]:
    """A zero-filled array in a temporary file, deleted when the block ends (or on SIGINT/SIGTERM).

    The file is a :func:`sciSR.tempfiles.new_temp` (``.scisr-<pid>-<host>-<random>.scratch``), so that
    :func:`sciSR.tempfiles.cleanup_on_signals` removes it on a signal and a later run removes it after a
    kill; stale scratch files of killed runs in the folder are removed first (once per folder and process).

    Parameters
    ----------
    shape : sequence of int
        Array shape.
    dtype : numpy dtype
        Element type.
    folder : path, optional
        Where the temporary file goes. None: :func:`scratch_folder` (``SCISR_SCRATCH``, else the system's
        temporary folder). Callers that know where the result goes pass ``scratch_folder(that folder)``, so
        the user's ``SCISR_SCRATCH`` still wins.

    Yields
    ------
    numpy.memmap
        Writable, initially zero (a sparse file: nothing is written until used).
    """
    where = scratch_folder() if folder is None else Path(folder)
    remove_stale_temps(where, once=True)
    name = new_temp(where, "scratch")
    try:
        yield np.memmap(name, dtype=dtype, mode="w+", shape=tuple(int(n) for n in shape))
    finally:
        discard_temp(name)


@contextlib.contextmanager
def scratch_like(array: np.ndarray) -> Iterator[np.ndarray]:
    """A float32 array of ``array``'s shape, kept where ``array`` is: a :func:`disk_array` (beside
    ``array``'s file unless ``SCISR_SCRATCH`` says otherwise) for a memory-mapped ``array``, else in RAM.

    Yields
    ------
    numpy.ndarray
        Uninitialised in RAM, zero on disk; a file is deleted when the block ends.
    """
    if not is_disk_backed(array):
        yield np.empty(array.shape, dtype=np.float32)
        return
    filename = getattr(array, "filename", None)
    with disk_array(array.shape, np.float32, folder=scratch_folder(None if filename is None
                                                                  else Path(filename).parent)) as spare:
        yield spare


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB"


def _existing_folder(path: Path) -> Path:
    """The nearest folder of ``path`` (itself included when it is one) that exists."""
    folder = path.absolute() if path.is_dir() else path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def check_output_size(nbytes: int, *, force: bool, path: str | os.PathLike | None = None,
                      limit: int = MAX_OUTPUT_BYTES) -> None:
    """Refuse a result that cannot fit, or is absurdly large, before any work (a mistyped ``--scale 1000``).

    The result is refused when it is larger than ``limit`` (default 64 GiB) or than the space it needs:
    the free disk space of the output's folder for a file output, the available RAM for an in-memory
    result (``path=None``). Scratch on the same disk needs as much again; callers count it in ``nbytes``.

    Parameters
    ----------
    nbytes : int
        Bytes of the result (:meth:`sciSR.pipeline.UpscaleRequest.result_bytes`).
    force : bool
        Accept any size (CLI: ``--force``); nothing is checked.
    path : str or os.PathLike, optional
        The output file or folder; None for a result kept in memory.
    limit : int
        Bytes accepted at most without ``force``, free space or not.

    Raises
    ------
    SciSRError
        One line naming ``path`` (when given), the result's size and the limit it exceeds, advising ``force``.
    """
    if force:
        return
    if path is None:
        room, what = available_ram(), "the available RAM"
    else:
        folder = _existing_folder(Path(path))
        room, what = shutil.disk_usage(folder).free, f"the free space in {folder}"
    for cap, name in ((limit, "sciSR's limit without --force"), (room, what)):
        if nbytes > cap:
            raise SciSRError(f"the result would take {_gib(nbytes)}, more than {name} ({_gib(cap)}); check the "
                             "scale, or pass force=True (CLI: --force) to go ahead anyway", path)


def max_run_hours() -> float:
    """Hours of estimated work accepted without ``force``: ``$SCISR_MAX_HOURS``, else :data:`DEFAULT_MAX_HOURS`.

    Raises
    ------
    SciSRError
        ``SCISR_MAX_HOURS`` is set but is not a positive, finite number (one line naming the variable).
    """
    text = os.environ.get(MAX_HOURS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_HOURS
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not (math.isfinite(hours) and hours > 0):
        # Named like a file at fault: the variable is what the user has to fix.
        raise SciSRError(f"must be a positive number of hours, got {text!r}", MAX_HOURS_ENV)
    return hours


def check_run_time(seconds: float, *, path: str | os.PathLike | None = None, device: str | None = None) -> None:
    """Refuse a job whose estimated run time exceeds :func:`max_run_hours`, before any work.

    Callers skip the call when the user forces the job (``force=True``, CLI ``--force``), so that the
    estimate is not even computed.

    Parameters
    ----------
    seconds : float
        The estimate (:meth:`sciSR.pipeline.UpscaleRequest.estimated_seconds`; rough, it errs short).
    path : str or os.PathLike, optional
        The output the job would write; None for a result kept in memory.
    device : str, optional
        Where a network would run (``"cpu"``, ``"cuda"``, ...), named in the message; None for interpolation.

    Raises
    ------
    SciSRError
        One line naming ``path`` (when given), the estimated hours and the limit, advising ``force``.
    """
    limit = max_run_hours()
    if seconds > 3600 * limit:
        where = f" on {device}" if device else ""
        raise SciSRError(f"the upscale would take about {seconds / 3600:.3g} h{where} (a rough estimate), more "
                         f"than the limit of {limit:g} h ({MAX_HOURS_ENV}); use a faster device, check the scale, "
                         "or pass force=True (CLI: --force) to go ahead anyway", path)


def row_chunks(n_rows: int, row_bytes: int, budget: int = RELEASE_EVERY_BYTES) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges over ``n_rows`` rows so that each range holds about ``budget`` bytes."""
    step = max(1, budget // max(1, row_bytes))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)


def unscaled_slabs(lr_shape: Sequence[int], factors: Sequence[int], bytes_per_output_voxel: int,
                   budget: int = RELEASE_EVERY_BYTES) -> Iterator[tuple[slice, ...]]:
    """Indices of slabs across the longest unscaled spatial axis, the same for an input and its upscale.

    Along an axis with factor 1 the input's and the result's rows coincide, so a step that is separable
    along it (a projection whose operator leaves that axis alone) can run one slab at a time with the
    temporaries of a slab, each about ``budget`` bytes.

    Parameters
    ----------
    lr_shape : sequence of int
        The input's spatial shape.
    factors : sequence of int
        Factor per spatial axis.
    bytes_per_output_voxel : int
        The step's temporary memory per result voxel.
    budget : int
        Bytes per slab.

    Yields
    ------
    tuple of slice
        Indices into the leading axes of both arrays; one empty tuple (the whole arrays) when every axis is
        scaled.
    """
    flat = [a for a, f in enumerate(factors) if f == 1]
    if not flat:
        yield ()
        return
    axis = max(flat, key=lambda a: lr_shape[a])
    row_voxels = math.prod(n * f for n, f in zip(lr_shape, factors, strict=True)) // lr_shape[axis]
    for start, stop in row_chunks(lr_shape[axis], bytes_per_output_voxel * row_voxels, budget):
        yield (slice(None),) * axis + (slice(start, stop),)
