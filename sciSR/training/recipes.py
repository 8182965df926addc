"""The training recipes installed with sciSR, found by name.

The YAML files live in the repository's ``configs/`` folder, which is installed as the package
``sciSR.recipes`` (``[tool.setuptools] package-dir`` in ``pyproject.toml``), so a wheel install carries them
and they are read through :mod:`importlib.resources` wherever sciSR is installed. A recipe's name is its
path below that folder without the suffix: ``ct_x2``, ``shipped/mri-x2``.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from sciSR.errors import SciSRError

RECIPES_PACKAGE = "sciSR.recipes"
SUFFIXES = (".yaml", ".yml")


def _recipe_files(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    """``{name: file}`` of the recipes in ``folder`` and its subfolders (names joined with ``/``)."""
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_recipe_files(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(SUFFIXES):
            found[prefix + entry.name.rsplit(".", 1)[0]] = entry
    return found


def list_recipes() -> list[str]:
    """Names of the installed training recipes, sorted.

    Returns
    -------
    list of str
        E.g. ``["ct_x2", ..., "shipped/ct-x2", ...]``; each is accepted by :func:`recipe_path`,
        :func:`sciSR.training.load_config`, :func:`sciSR.training.run` and ``scisr train``.
    """
    return sorted(_recipe_files(resources.files(RECIPES_PACKAGE)))


def recipe_path(name: str) -> Path:
    """The YAML file of an installed recipe.

    Parameters
    ----------
    name : str
        A name from :func:`list_recipes`, e.g. ``"ct_x2"`` or ``"shipped/mri-x2"``.

    Returns
    -------
    pathlib.Path
        The recipe file inside the installed package.

    Raises
    ------
    SciSRError
        No installed recipe has that name (the message lists those that do).
    """
    files = _recipe_files(resources.files(RECIPES_PACKAGE))
    if name not in files:
        raise SciSRError(f"no recipe named {name!r} (installed: {', '.join(sorted(files))})")
    return Path(str(files[name]))
