"""Package list, generated: every ``sciSR`` subpackage, the training recipes and the napari plugin.

pyproject.toml holds everything else; setuptools cannot combine ``packages.find`` with folder mappings
(``configs/`` installed as ``sciSR.recipes``, ``napari_plugin/`` as ``napari_scisr``) in pyproject alone.
Recipe subfolders (``configs/shipped``) are listed as packages too, so their YAML files are package data.
"""

from setuptools import find_namespace_packages, find_packages, setup

RECIPE_FOLDERS = find_namespace_packages("configs", exclude=["__pycache__", "*.__pycache__"])

setup(packages=[*find_packages(include=["sciSR", "sciSR.*"]), "sciSR.recipes",
                *(f"sciSR.recipes.{folder}" for folder in RECIPE_FOLDERS), "napari_scisr"])
