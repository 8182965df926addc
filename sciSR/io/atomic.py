"""Write outputs atomically: a temp file (or folder) beside the target, renamed on success.

Outputs never destroy data. Nothing that is, holds or lies inside an input is removed or replaced
(inputs are compared by device and inode, so links to them count too); an existing output is replaced
only with ``overwrite``; a file only by a file; a folder only by a folder, and only one that sciSR wrote
(it holds :data:`MARKER`); a symbolic link is never written through.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from sciSR.errors import SciSRError

MARKER = ".scisr-output"
"""Name of the file that every folder output carries: the proof that sciSR wrote it (readers skip it)."""

_MARKER_TEXT = "Written by sciSR. The folder may be replaced by a later sciSR run with --overwrite.\n"


def _identity(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of what ``path`` names (links followed), or None when it does not exist."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _lexical(path: str | os.PathLike) -> Path:
    """Absolute ``path`` with its folder resolved but its own name kept, so a link is seen as a link."""
    p = Path(path).expanduser()
    if p.name in ("", ".."):  # "." / "..": no name of their own to keep
        return p.resolve()
    return p.parent.resolve() / p.name


def _check_inputs(out: Path, inputs: Sequence[str | os.PathLike], path: str | os.PathLike) -> None:
    """Refuse an output that is, holds or lies inside one of ``inputs``."""
    out_id = _identity(out)
    # Where the output would land: its folders, through a link if the output is one.
    out_folders = {_identity(p) for p in out.resolve().parents}
    for src in inputs:
        real = Path(src).expanduser().resolve()
        src_id = _identity(real)
        if src_id is None:  # not (yet) there: the read reports it
            continue
        if out_id == src_id:
            raise SciSRError(f"output is the input {os.fspath(src)} (the same file on disk); "
                             "choose another output", path)
        if out_id is not None and out_id in {_identity(p) for p in real.parents}:
            raise SciSRError(f"output is a folder that holds the input {os.fspath(src)}; "
                             "choose another output", path)
        if real.is_dir() and src_id in out_folders:
            raise SciSRError(f"output lies inside the input folder {os.fspath(src)}; "
                             "choose another output", path)


def check_output(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    inputs: Sequence[str | os.PathLike] = (),
    folder: bool | None = None,
) -> Path:
    """Refuse outputs that would destroy data, before any work is done.

    Parameters
    ----------
    path : str or os.PathLike
        Planned output file or folder.
    overwrite : bool
        Whether an existing output may be replaced.
    inputs : sequence of str or os.PathLike
        Paths that were (or will be) read. The output may not be one of them (a symbolic or hard link
        to one included), a folder holding one, or lie inside an input folder.
    folder : bool, optional
        Whether the output is a folder (DICOM series). None (not known yet): an existing output of
        either kind may be replaced, as far as the other rules allow; :func:`atomic_output` checks again.

    Returns
    -------
    pathlib.Path
        The absolute output path; its own name is not resolved (a link stays a link).

    Raises
    ------
    SciSRError
        One line naming ``path``: the output is or holds an input, lies inside an input folder, exists
        (without ``overwrite``), is a symbolic link, is a folder sciSR did not write (no :data:`MARKER`),
        is of the other kind (file / folder) than the output, or its folder is missing or read-only.
    """
    out = _lexical(path)
    _check_inputs(out, inputs, path)
    if os.path.lexists(out):
        if not overwrite:
            raise SciSRError("output exists; pass overwrite=True (CLI: --overwrite) to replace it", path)
        if out.is_symlink():
            raise SciSRError(f"output is a symbolic link (to {os.readlink(out)}); sciSR does not write "
                             "through links: remove it or choose another output", path)
        if out.is_dir():
            if not (out / MARKER).is_file():
                raise SciSRError(f"output is a folder that sciSR did not write (no {MARKER} file in it); it is "
                                 "never replaced, even with overwrite: choose another output", path)
            if folder is False:
                raise SciSRError("output is a folder; a file cannot replace it", path)
        elif folder:
            raise SciSRError("output is a file; a folder (DICOM series) cannot replace it", path)
    parent = out.parent
    if not parent.is_dir():
        raise SciSRError(f"output folder {parent} does not exist", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SciSRError(f"output folder {parent} is not writable", path)
    return out


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (os.umask can only swap)."""
    with contextlib.suppress(OSError, StopIteration, ValueError):
        status = Path("/proc/self/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(tmp: Path) -> None:
    """Give a finished output the permissions a plain ``open``/``mkdir`` would have.

    ``mkdtemp`` (and some writers) create private (0600/0700) entries; an output is meant to be shared
    like any other file the user writes.
    """
    if not tmp.exists():
        return
    mask = _umask()
    if tmp.is_dir():
        for root, _dirs, files in os.walk(tmp):
            os.chmod(root, 0o777 & ~mask)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666 & ~mask)
    else:
        os.chmod(tmp, 0o666 & ~mask)


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` onto ``out`` (already checked); a folder being replaced is set aside first.

    ``os.replace`` renames onto the name itself and never follows a link there. A non-empty folder cannot
    be renamed over, so the old one is renamed away, the new one put in its place (the old one restored
    if that fails) and only then removed.
    """
    if not (tmp.is_dir() and out.is_dir()):
        os.replace(tmp, out)
        return
    old = out.with_name(f".{out.name}.{secrets.token_hex(4)}.old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    folder: bool = False,
    inputs: Sequence[str | os.PathLike] = (),
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The output is checked (:func:`check_output`) before the block and again just before the move, as the
    block may take long and the target may have changed meanwhile. A folder output gets a :data:`MARKER`
    file, so that a later run may replace it.

    Parameters
    ----------
    path : str or os.PathLike
        Final output file (or folder when ``folder=True``).
    overwrite : bool
        Replace an existing output: a file by a file; a folder only by a folder, and only one holding
        :data:`MARKER`. A symbolic link is never replaced or written through.
    folder : bool
        Yield a temporary folder instead of a file name.
    inputs : sequence of str or os.PathLike
        Paths that were read; the output may not be, hold or lie inside one of them.

    Yields
    ------
    pathlib.Path
        Where the writer must write. Nothing is left behind if the block raises.

    Raises
    ------
    SciSRError
        From :func:`check_output`, before the block or before the move (then nothing is written).
    """
    out = check_output(path, overwrite=overwrite, inputs=inputs, folder=folder)
    suffix = "".join(out.suffixes)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part{suffix}", dir=out.parent)
        os.close(fd)
        os.unlink(name)
        tmp = Path(name)
    try:
        yield tmp
        if folder:
            (tmp / MARKER).write_text(_MARKER_TEXT)
        _publish_mode(tmp)
        check_output(out, overwrite=overwrite, inputs=inputs, folder=folder)
        _replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
