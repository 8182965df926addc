"""Exceptions that reach the user as one clear line."""

from __future__ import annotations

import os


class SciSRError(Exception):
    """A data, model or usage problem that the user can fix.

    ``str(err)`` is one line: ``"<path>: <what is wrong>"`` when a file is involved.

    Parameters
    ----------
    message : str
        What is wrong, in words a user understands.
    path : str or os.PathLike, optional
        The file or folder the problem is about.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.message = message
        self.path = None if path is None else os.fspath(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class Cancelled(SciSRError):  # noqa: N818 - the public name is fixed by the API contract
    """The caller set the cancel event; nothing was written."""

    def __init__(self, message: str = "cancelled by the user", path: str | os.PathLike | None = None) -> None:
        super().__init__(message, path)
