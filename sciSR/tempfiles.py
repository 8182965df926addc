"""sciSR's temporary files: recognisable names, a registry of live ones, removal on signals and after kills.

Every temporary file or folder sciSR creates (:func:`sciSR.io.atomic.atomic_output`,
:func:`sciSR.paging.disk_array`, checkpoints) is made by :func:`new_temp`: it is named
``.scisr-<pid>-<host>-<random>.<what>`` and registered while it lives. :func:`cleanup_on_signals` (the
``scisr`` command runs under it) removes the registered temporaries on SIGINT/SIGTERM. A process killed
outright (SIGKILL, out of memory, power loss) cannot clean up; the next sciSR run that writes into the same
folder removes its temporaries (:func:`remove_stale_temps`), recognising them by name.

This is a foundation module (docs/architecture.md §1): the io layer and :mod:`sciSR.paging` both use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

TEMP_PREFIX = ".scisr-"
"""Start of every temporary name sciSR creates: ``.scisr-<pid>-<host>-<random>.<what>``."""

STALE_AFTER_S = 60.0
"""Seconds since its last change after which a dead process's temporary is removed (see :func:`remove_stale_temps`)."""

# The host is a hash, not the name: host names may hold dots and dashes and be long.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[0-9a-z_]+\.(?P<what>.+)")
# Longest output name kept inside a temporary name, so the temporary stays within the usual 255-byte limit.
_WHAT_MAX = 160


class Terminated(SystemExit):
    """Raised by :func:`cleanup_on_signals` on a signal other than SIGINT, once the temporaries are removed.

    A :class:`SystemExit` (so code that does not know it exits as before) with ``code`` ``128 + signum``
    (143 for SIGTERM, the shell's convention); the ``scisr`` command reports it as one ``error:`` line.

    Parameters
    ----------
    signum : int
        The signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum
        self.signal_name = signal.Signals(signum).name


# Live temporaries of this process. Re-entrant: a signal handler runs in the main thread and may interrupt
# that same thread while it holds the lock.
_LIVE: set[Path] = set()
_LIVE_LOCK = threading.RLock()
# Folders this process has already cleaned of stale temporaries (remove_stale_temps(..., once=True)).
_SWEPT: set[Path] = set()


def register_temp(path: str | os.PathLike) -> Path:
    """Record a temporary file or folder as live, so that :func:`remove_live_temps` removes it on a signal.

    Parameters
    ----------
    path : str or os.PathLike
        A temporary this process created; pass it to :func:`unregister_temp` once it is moved or removed.

    Returns
    -------
    pathlib.Path
        ``path`` made absolute.
    """
    p = Path(path).absolute()
    with _LIVE_LOCK:
        _LIVE.add(p)
    return p


def unregister_temp(path: str | os.PathLike) -> None:
    """Forget a temporary registered with :func:`register_temp` (it was moved into place or removed)."""
    with _LIVE_LOCK:
        _LIVE.discard(Path(path).absolute())


def live_temps() -> list[Path]:
    """The temporaries this process has registered and not yet unregistered."""
    with _LIVE_LOCK:
        return sorted(_LIVE)


def remove_path(path: Path) -> None:
    """Remove a file or folder if it is still there; a symbolic link is removed, never followed."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_live_temps() -> None:
    """Remove every registered temporary of this process and forget it (called on SIGINT/SIGTERM)."""
    with _LIVE_LOCK:
        doomed = list(_LIVE)
        _LIVE.clear()
    for path in doomed:
        remove_path(path)


def new_temp(folder: str | os.PathLike, what: str, *, directory: bool = False, create: bool = True) -> Path:
    """Create and register a temporary ``folder/.scisr-<pid>-<host>-<random>.<what>``.

    The name tells a later run which process on which host owns it (:func:`remove_stale_temps`).

    Parameters
    ----------
    folder : str or os.PathLike
        Where the temporary goes (an existing folder).
    what : str
        End of the name, e.g. ``"out.part.nii.gz"`` (writers pick formats by the suffix); a long name is cut
        at the front.
    directory : bool
        Create a folder (mode 0700) instead of a file (mode 0600).
    create : bool
        False: remove the file again and return its (unused, registered) name, for writers that create it.

    Returns
    -------
    pathlib.Path
        The absolute temporary path, registered with :func:`register_temp`.
    """
    prefix = f"{TEMP_PREFIX}{os.getpid()}-{_HOST}-"
    suffix = "." + what[-_WHAT_MAX:]
    while True:
        # Registered before it exists: a signal at any moment finds every temporary on disk in the registry
        # (mkstemp first and register after left a window in which a SIGTERM orphaned the file).
        tmp = register_temp(Path(folder) / f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            if directory:
                os.mkdir(tmp, 0o700)
            else:
                os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            unregister_temp(tmp)
            continue
        except BaseException:
            unregister_temp(tmp)
            raise
        break
    if not directory and not create:
        os.unlink(tmp)
    return tmp


def discard_temp(path: str | os.PathLike) -> None:
    """Remove a temporary made by :func:`new_temp` (if still there) and unregister it."""
    remove_path(Path(path))
    unregister_temp(path)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:  # not a possible PID: no such process
        return False
    return True


def remove_stale_temps(folder: str | os.PathLike, *, min_age_s: float = STALE_AFTER_S,
                       once: bool = False) -> list[Path]:
    """Remove the temporaries that killed sciSR processes left in ``folder``.

    Only names :func:`new_temp` makes are considered, and one is removed only when it was made on this host
    (a process on another host sharing the folder cannot be checked), its process no longer runs, and it has
    not changed for ``min_age_s`` seconds (a guard against a PID reused by a new sciSR process, or one seen
    from another PID namespace). A set-aside old output (``*.old``) is removed only once its replacement is
    in place. Nothing else is touched; errors (a folder that cannot be listed, a file removed meanwhile)
    are ignored.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to clean.
    min_age_s : float
        Seconds since the last modification before a dead process's temporary counts as stale.
    once : bool
        Do nothing if this process has already cleaned ``folder`` with ``once=True``: writers call it
        before every write, and a batch writing thousands of outputs into one folder must not list it
        thousands of times.

    Returns
    -------
    list of pathlib.Path
        What was removed.
    """
    removed: list[Path] = []
    if once:
        key = Path(folder).resolve()
        if key in _SWEPT:
            return removed
        _SWEPT.add(key)
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or match["host"] != _HOST or _alive(int(match["pid"])):
            continue
        what = match["what"]
        if what.endswith(".old") and not os.path.lexists(os.path.join(folder, what[: -len(".old")])):
            continue  # killed between setting the old output aside and moving the new one in: keep it
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime < min_age_s:
                continue
        except OSError:
            continue
        path = Path(entry.path)
        remove_path(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def cleanup_on_signals(signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Remove sciSR's temporaries when the process is interrupted or terminated during the block.

    For the duration of the block, each of ``signals`` gets a handler that removes every registered
    temporary (:func:`remove_live_temps`), puts the previous handler back (a second signal acts as it
    would have without sciSR) and then raises :class:`KeyboardInterrupt` for SIGINT, else
    :class:`Terminated` (a ``SystemExit(128 + signum)``: 143 for SIGTERM, the shell's convention). Previous
    handlers are restored when the block ends. Python runs signal handlers in the main thread only, so
    elsewhere (a napari worker, a thread pool) this does nothing; a signal that is ignored (``SIG_IGN``, e.g.
    SIGINT under ``nohup``) stays ignored.

    Parameters
    ----------
    signals : iterable of int
        Signal numbers to handle.

    Yields
    ------
    None
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, signal.Handlers | object] = {}

    def handler(signum: int, frame: object) -> None:
        signal.signal(signum, previous[signum])  # first, so a second signal still works if removal hangs
        remove_live_temps()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    for signum in signals:
        old = signal.getsignal(signum)
        if old is None or old == signal.SIG_IGN:  # installed outside Python (cannot be restored) or ignored
            continue
        previous[signum] = old
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
