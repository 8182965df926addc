"""Write outputs atomically: a temp file (or folder) beside the target, renamed on success."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sciSR.errors import SciSRError


def check_output(path: str | os.PathLike, *, overwrite: bool, inputs: tuple[str, ...] = ()) -> Path:
    """Refuse outputs that would destroy data, before any work is done.

    Parameters
    ----------
    path : str or os.PathLike
        Planned output file or folder.
    overwrite : bool
        Whether an existing output may be replaced.
    inputs : tuple of str
        Paths that were read; an output may never replace one of them.

    Returns
    -------
    pathlib.Path
        The output path, resolved.
    """
    out = Path(path).expanduser().resolve()
    for src in inputs:
        src_path = Path(src).expanduser().resolve()
        if out == src_path or (src_path.is_dir() and src_path in out.parents):
            raise SciSRError("output path is the input; choose another output", path)
    if out.exists() and not overwrite:
        raise SciSRError("output exists; pass overwrite=True (CLI: --overwrite) to replace it", path)
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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False, folder: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        Final output file (or folder when ``folder=True``).
    overwrite : bool
        Replace an existing output.
    folder : bool
        Yield a temporary folder instead of a file name.

    Yields
    ------
    pathlib.Path
        Where the writer must write. Nothing is left behind if the block raises.
    """
    out = check_output(path, overwrite=overwrite)
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
        _publish_mode(tmp)
        if folder and out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(tmp, out)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()
        raise
