"""The npe2 manifest is valid and every contribution imports."""

from __future__ import annotations

from pathlib import Path

import napari_scisr
from npe2 import PluginManifest


def test_napari_manifest_validates_and_imports() -> None:
    # Same checks as `npe2 validate scisr --imports` (the distribution is "scisr").
    manifest = PluginManifest.from_distribution("scisr")
    manifest.validate_imports()
    assert manifest.name == "scisr"
    assert PluginManifest.from_file(Path(napari_scisr.__file__).parent / "napari.yaml") == manifest
    contributions = manifest.contributions
    patterns = contributions.readers[0].filename_patterns
    assert {"*.dcm", "*.nii", "*.nii.gz", "*.fits", "*.fz"} <= set(patterns)
    assert contributions.readers[0].accepts_directories
    extensions = {ext for writer in contributions.writers for ext in writer.filename_extensions}
    assert {".nii", ".nii.gz", ".fits", ".dcm"} <= extensions
    assert [w.display_name for w in contributions.widgets] == ["Super-resolution", "Train"]
    assert {s.key for s in contributions.sample_data} == {"knee_mri", "ct_slice", "telescope_frame"}
