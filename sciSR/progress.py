"""Progress reporting and cancellation shared by the API, the CLI and the napari plugin."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sciSR.errors import Cancelled

ProgressLike = bool | Callable[[float], None] | None


@contextmanager
def progress_callback(progress: ProgressLike, desc: str = "upscale") -> Iterator[Callable[[float], None]]:
    """Turn the ``progress`` argument of the public API into a callable ``f(fraction_done)``.

    Parameters
    ----------
    progress : bool or callable or None
        ``False``/``None``: silent. ``True``: a tqdm bar on stderr when it is a terminal. A callable
        receives the fraction done in ``[0, 1]``.
    desc : str
        Label of the tqdm bar.

    Yields
    ------
    callable
        ``f(fraction: float) -> None``; fractions never decrease.
    """
    if callable(progress):
        yield progress
        return
    if not progress or not sys.stderr.isatty():
        yield lambda fraction: None
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=desc, unit="‰", leave=False, file=sys.stderr)

    def update(fraction: float) -> None:
        bar.update(max(0, round(fraction * 1000) - bar.n))

    try:
        yield update
    finally:
        bar.close()


def cancel_checker(cancel: threading.Event | None) -> Callable[[], None]:
    """A function that raises :class:`sciSR.Cancelled` once ``cancel`` is set."""

    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()

    return check
