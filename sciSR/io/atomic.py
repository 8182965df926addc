"""Write outputs atomically: a temp file (or folder) beside the target, renamed on success.

Outputs never destroy data. Nothing that is, holds or lies inside an input is removed or replaced
(inputs are compared by device and inode, so links to them count too); an existing output is replaced
only with ``overwrite``; a file only by a file; a folder only by a folder, and only one that sciSR wrote
(it holds :data:`MARKER`); a symbolic link is never written through.

Nothing is left behind either: the temporaries are :func:`sciSR.tempfiles.new_temp` names, removed on
SIGINT/SIGTERM under :func:`sciSR.tempfiles.cleanup_on_signals` and, after a kill, by the next write into
the same folder. Inputs that would block a reader (a named pipe) are refused by :func:`check_input`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from sciSR.errors import SciSRError
from sciSR.tempfiles import new_temp, register_temp, remove_path, remove_stale_temps, unregister_temp

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
    if that fails) and only then removed. The set-aside name is a :func:`sciSR.tempfiles.new_temp` name,
    registered only once the new folder is in place, so a signal or a kill mid-removal leaves nothing that
    a later run keeps.
    """
    if not (tmp.is_dir() and out.is_dir()):
        os.replace(tmp, out)
        return
    old = new_temp(out.parent, f"{out.name}.old", create=False)
    unregister_temp(old)  # until the new folder is in place, the old one is still the output
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    register_temp(old)
    try:
        shutil.rmtree(old)
    finally:
        unregister_temp(old)


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
        Where the writer must write: a :func:`sciSR.tempfiles.new_temp` name
        (``.scisr-<pid>-<host>-<random>.<stem>.part<suffixes>``, the output's suffixes kept for writers that
        choose by them), registered for removal on a signal. Nothing is left behind if the block raises.
        Stale temporaries of killed runs in the output folder are removed first, the first time this process
        writes there (:func:`sciSR.tempfiles.remove_stale_temps`).

    Raises
    ------
    SciSRError
        From :func:`check_output`, before the block or before the move (then nothing is written).
    """
    out = check_output(path, overwrite=overwrite, inputs=inputs, folder=folder)
    remove_stale_temps(out.parent, once=True)
    if folder:
        tmp = new_temp(out.parent, f"{out.name}.part", directory=True)
    else:
        tmp = new_temp(out.parent, f"{out.stem}.part{''.join(out.suffixes)}", create=False)
    try:
        yield tmp
        if folder:
            (tmp / MARKER).write_text(_MARKER_TEXT)
        _publish_mode(tmp)
        check_output(out, overwrite=overwrite, inputs=inputs, folder=folder)
        _replace(tmp, out)
    except BaseException:
        remove_path(tmp)
        raise
    finally:
        unregister_temp(tmp)


def check_input(path: str | os.PathLike) -> Path:
    """Refuse an input that is missing or is neither a regular file nor a folder, before anything opens it.

    Opening a named pipe (FIFO) blocks until something writes into it, and sockets and devices are no
    image files: all are refused at once.

    Parameters
    ----------
    path : str or os.PathLike
        A planned input (links are followed).

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`pathlib.Path`.

    Raises
    ------
    SciSRError
        One line naming ``path``: it does not exist, or what kind of file it is.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise SciSRError("no such file or folder", path) from None
    except OSError as err:
        raise SciSRError(f"cannot be read ({err.strerror or err})", path) from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return Path(path)
    kinds = {stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    kind = next((name for test, name in kinds.items() if test(mode)), "not a regular file")
    raise SciSRError(f"is {kind}, not a file or folder; sciSR reads image files and DICOM folders only", path)
