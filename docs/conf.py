"""Sphinx configuration of the sciSR documentation (``make docs``; warnings are errors there).

Nothing is fetched at build time: no intersphinx, no remote images. The gallery (sphinx-gallery) runs
``examples/gallery/plot_*.py`` and keeps the figures they draw; ``-D plot_gallery=0`` skips running them
while a page is being written.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The checkout's sciSR (not another installed copy) and the local extension of this folder.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

# Figures are drawn off-screen; napari (the napari example) brings its own Qt window.
os.environ.setdefault("MPLBACKEND", "Agg")

import sciSR  # noqa: E402

project = "sciSR"
author = "the sciSR developers"
copyright = "2026, the sciSR developers"
version = release = sciSR.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "scisr_docs",
]

templates_path = ["_templates"]  # autosummary: a class page documents its own methods
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# --- API reference -------------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # numpydoc's "Parameters" already give the types, in words
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# --- Markdown (docs/architecture.md stays the file contributors read) ---------------------------------
myst_heading_anchors = 3  # its table of contents links to "#1-layout-and-data-flow" and friends
myst_enable_extensions = ["colon_fence"]

# --- Gallery --------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),  # every figure is matplotlib; napari's screenshot is shown with imshow
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    # A failing example fails the build (issue 21: each one runs, and must stay under a minute).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "write_computation_times": True,
}

# --- HTML -----------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"sciSR {release}"
html_static_path: list[str] = []
html_show_sourcelink = True
nitpicky = False
smartquotes = False  # option names such as --batch in the CLI reference must keep their two hyphens
