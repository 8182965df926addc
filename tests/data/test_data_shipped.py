"""Collections of package-shipped images: non-empty, real files, exclusion, slices cached, config hook."""

import numpy as np
import pytest

import sciSR
from sciSR.data import shipped
from sciSR.data.dataset import find_items
from sciSR.errors import SciSRError
from sciSR.training.config import load_config


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    # One cache per test session: slices are cut once, and never into the user's home.
    monkeypatch.setenv("SCISR_CACHE", str(tmp_path_factory.getbasetemp() / "scisr-cache"))


@pytest.mark.parametrize("name", [n for n in shipped.COLLECTIONS if n != "mri-phantom-slices"])
def test_collection_is_nonempty_and_files_exist(name):
    files = shipped.collection(name)
    assert files and all(f.path.is_file() for f in files)
    assert shipped.licences(name) and all("licen" in text.lower() or "CC0" in text for text in shipped.licences(name))
    package = shipped.package_files(name)
    assert {f.source for f in files} <= {p.name for p in package}


def test_the_expected_images_are_there():
    names = lambda c: {f.source for f in shipped.collection(c)}  # noqa: E731
    assert {"camera.png", "moon.png", "coins.png"} <= names("skimage-gray")
    assert "astronaut.png" not in names("skimage-gray")  # RGB: not a grey-level image
    assert {"astronaut.png", "chelsea.png", "coffee.png"} <= names("skimage-color")
    assert "hubble_deep_field.jpg" not in names("skimage-color")  # reserved for outside evaluation
    assert {"anatomical.nii", "example4d.nii.gz", "emri_small.dcm"} <= names("mri-volumes")
    assert {"MR_small.dcm", "MR2_UNCR.dcm", "emri_small.dcm", "example4d.nii.gz"} <= names("mri-slices")
    assert {"CT_small.dcm", "eCT_Supplemental.dcm"} <= names("ct-slices")
    assert "dss.14.29.56-62.41.05.fits.gz" in names("sky-frames")


def test_slices_are_every_plane_of_each_volume():
    slices = [f for f in shipped.collection("mri-slices") if f.source == "example4d.nii.gz"]
    volume = sciSR.read(next(p for p in shipped.package_files("mri-volumes") if p.name == "example4d.nii.gz"))
    assert len(slices) == volume.array.shape[2] * volume.array.shape[3]  # 24 slices × 2 frames
    first = sciSR.read(slices[0].path)
    np.testing.assert_array_equal(first.array, volume.array[:, :, 0, 0])
    assert first.spacing == pytest.approx(volume.spacing[:2])
    # Too small for a training patch: anatomical.nii (33 × 41) gives no slices.
    assert not [f for f in shipped.collection("mri-slices") if f.source == "anatomical.nii"]


def test_colour_photographs_become_their_luminance():
    from PIL import Image

    (chelsea,) = [f for f in shipped.collection("skimage-color") if f.source == "chelsea.png"]
    grey = sciSR.read(chelsea.path).array
    rgb = np.asarray(Image.open(next(p for p in shipped.package_files("skimage-color") if p.name == "chelsea.png")))
    assert grey.shape == rgb.shape[:2] == (300, 451)
    np.testing.assert_allclose(grey, rgb[..., :3] @ np.array([0.2125, 0.7154, 0.0721]), rtol=1e-6)
    assert 0 <= grey.min() < grey.max() <= 255
    assert "astronaut.png" not in {f.source for f in shipped.collection("skimage-color", exclude=["astronaut.png"])}


def test_exclude_removes_files_and_their_slices():
    everything = shipped.collection("mri-slices")
    kept = shipped.collection("mri-slices", exclude=["MR_small.dcm", "emri_small*"])
    assert {f.source for f in everything} - {f.source for f in kept} == {"MR_small.dcm", "emri_small.dcm"}
    assert len(everything) - len(kept) == 1 + 10  # one 2D file, 10 slices of the multi-frame volume
    assert [p.name for p in shipped.held_out(["mri-slices"], ["MR_small.dcm", "emri_small*"])] == \
        ["MR_small.dcm", "emri_small.dcm"]
    with pytest.raises(SciSRError, match="no images left"):
        shipped.collection("sky-frames", exclude=["*"])
    with pytest.raises(SciSRError, match="unknown data collection 'mri'"):
        shipped.collection("mri")


def test_config_and_find_items_take_collections_with_phantoms(tmp_path):
    cfg = load_config({"scale": [2, 2], "data": {"collection": ["sky-frames"], "exclude": ["dss.*"],
                                                 "generate": "star_field", "count": 2, "patch_size": [8, 8]},
                       "train": {"max_time_s": 30}})
    assert cfg["train"]["max_time_s"] == 30
    data = cfg["data"]
    items = find_items(collection=data["collection"], exclude=data["exclude"], generate=data["generate"],
                       count=data["count"])
    subjects = [it["subject"] for it in items]
    assert "dss.14.29.56-62.41.05.fits.gz" not in subjects and "m13.fits" in subjects
    assert subjects[-2:] == ["star_field-0", "star_field-1"]
    with pytest.raises(SciSRError, match="max_time_s"):
        load_config({"scale": [2, 2], "data": {"collection": ["sky-frames"], "patch_size": [8, 8]},
                     "train": {"max_time_s": -1}})


def test_evaluation_files_are_real_slices_no_collection_holds():
    files = {p.name: p for p in shipped.evaluation_files()}
    assert {"J2K_pixelrep_mismatch.dcm", "s1045.ima.gz"} <= set(files)
    held = {p.name for name in shipped.COLLECTIONS if name != "mri-phantom-slices"
            for p in shipped.package_files(name)}
    assert not held & set(files)
    brain = shipped.read_raw_mri(files["s1045.ima.gz"])
    assert brain.shape == (256, 256) and brain.dtype == np.float32
    # A head in air: dark corners, a bright, structured middle.
    assert brain[:16, :16].mean() < 0.05 * brain[96:160, 96:160].mean()
    assert brain[96:160, 96:160].std() > 0.1 * brain[96:160, 96:160].mean()


def test_read_raw_mri_refuses_a_byte_count_that_is_no_square(tmp_path):
    path = tmp_path / "odd.ima"
    path.write_bytes(b"\x00" * 6)
    with pytest.raises(SciSRError, match="no square"):
        shipped.read_raw_mri(path)
