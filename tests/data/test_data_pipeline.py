"""(LR, HR) pairs: shapes, normalisation as at inference, anisotropy-aware augmentation, splits, caches."""

import numpy as np
import pytest
import torch

import sciSR
from sciSR.data.dataset import PairSpec, find_items, fixed_dataset, make_loader, split_items, train_dataset
from sciSR.data.pair_transforms import LoadSciImaged, RandFlipRot90d, rotation_planes
from sciSR.degrade import bin_array, create_degradation
from sciSR.errors import SciSRError
from sciSR.intensity import denormalize, fit_normalization

KNEE = {"generate": "knee_phantom", "count": 3, "options": {"shape": [32, 32, 32]}}


def test_3d_thick_slice_pairs():
    spec = PairSpec(scale=(1, 1, 4), patch_size=(8, 8, 4), degradation="thick_slice",
                    degradation_options={"noise_std": [0, 10]}, margin=1)
    ds = train_dataset(find_items(**KNEE), spec, samples_per_epoch=5)
    sample = ds[3]
    assert set(sample) == {"lr", "hr"}
    assert sample["lr"].shape == (1, 8, 8, 4) and sample["hr"].shape == (1, 8, 8, 16)
    assert sample["lr"].dtype == torch.float32


def test_2d_slices_from_volumes_use_the_unscaled_axis():
    spec = PairSpec(scale=(2, 2, 1), patch_size=(8, 8), degradation="kspace")
    assert spec.slice_axis == 2 and spec.model_scale == (2, 2)
    sample = train_dataset(find_items(**KNEE), spec, cache="none")[0]
    assert sample["lr"].shape == (1, 8, 8) and sample["hr"].shape == (1, 16, 16)
    with pytest.raises(SciSRError, match="slice_axis"):
        PairSpec(scale=(2, 2, 1), patch_size=(8, 8), slice_axis=0)


def test_normalisation_is_fitted_on_the_lr_image_like_upscale_does():
    """sciSR.upscale fits the card's method on the LR it gets; training must give the net those units."""
    spec = PairSpec(scale=(2, 2), patch_size=(8, 8), degradation="ct", degradation_options={"fwhm": 1.5},
                    normalisation="percentile", margin=0)
    items = find_items(generate="ct_phantom", count=1)
    prepared = spec.transform(0).transforms[1](spec.transform(0).transforms[0](items[0]))
    hr = sciSR.data.phantoms.generate("ct_phantom", 0).array
    expected = fit_normalization(create_degradation("ct", (2, 2), fwhm=1.5)(hr[None]), "percentile")
    assert prepared["norm"] == pytest.approx(expected)


def test_summed_degradation_targets_lr_units_and_conserve_flux():
    """Block sums: the target is HR·∏s, so upscale's conserve mode (÷∏s) gives back HR counts."""
    spec = PairSpec(scale=(2, 2), patch_size=(8, 8), degradation="telescope",
                    degradation_options={"psf": None, "gain": None}, normalisation="asinh", margin=0,
                    flip=False, rot90=False)
    assert spec.hr_factor == 4.0
    sample = fixed_dataset(find_items(generate="star_field", count=1), spec, per_item=1)[0]
    norm = fit_normalization(spec.degradation_transform((2, 2))(sciSR.data.phantoms.generate("star_field", 0)
                                                                .array[None]), "asinh")
    lr = denormalize(sample["lr"][0].numpy(), norm)
    hr = denormalize(sample["hr"][0].numpy(), norm) / 4.0
    np.testing.assert_allclose(bin_array(hr, (2, 2), "sum"), lr, rtol=1e-4)


def test_rotations_only_where_scale_and_spacing_agree():
    assert rotation_planes((1, 1, 4), (0.5, 0.5, 0.5)) == [(0, 1)]
    assert rotation_planes((2, 2, 2), (0.5, 0.5, 3.0)) == [(0, 1)]
    assert rotation_planes((2, 2), (1.0, 1.0)) == [(0, 1)]
    assert rotation_planes((2, 1), (1.0, 1.0)) == []


@pytest.mark.parametrize("scale, spacing", [((1, 2, 4), (1.0, 1.0, 1.0)), ((2, 2, 2), (1.0, 1.0, 2.0))])
def test_augmentation_keeps_pairs_consistent(scale, spacing):
    rng = np.random.default_rng(0)
    hr = rng.random((1, 8, 12, 16)).astype(np.float32)
    hr = hr[:, : 8 - 8 % scale[0], : 12 - 12 % scale[1], : 16 - 16 % scale[2]]
    lr = np.moveaxis(bin_array(np.moveaxis(hr, 0, -1), scale), -1, 0)
    aug = RandFlipRot90d(("lr", "hr"), scale)
    for seed in range(12):
        out = aug.set_random_state(seed)({"lr": lr, "hr": hr, "spacing": spacing})
        assert out["hr"].shape[1:] == tuple(n * s for n, s in zip(out["lr"].shape[1:], scale, strict=True))
        again = np.moveaxis(bin_array(np.moveaxis(out["hr"], 0, -1), scale), -1, 0)
        np.testing.assert_allclose(again, out["lr"], rtol=1e-6)


def test_split_is_by_subject_and_reproducible(tmp_path):
    for subject in ("01", "02", "03", "04"):
        for run in (1, 2):
            (tmp_path / f"sub-{subject}_run-{run}.nii.gz").touch()
    items = find_items(folder=tmp_path, pattern="*.nii.gz", subject_pattern=r"sub-(\d+)")
    assert len(items) == 8 and {it["subject"] for it in items} == {"01", "02", "03", "04"}
    train, val = split_items(items, 0.25, seed=1)
    assert {it["subject"] for it in train}.isdisjoint({it["subject"] for it in val})
    assert len(val) == 2 and split_items(items, 0.25, seed=1) == (train, val)
    _, chosen = split_items(items, val_subjects=["03"])
    assert {it["subject"] for it in chosen} == {"03"}
    with pytest.raises(SciSRError, match="at least 2 subjects"):
        split_items(items[:1], 0.5)


def test_dicom_slices_of_one_study_are_one_subject(tmp_path):
    """A scanner's one-file-per-slice export must not put slices of one scan on both sides of the split."""
    import shutil

    from pydicom.data import get_testdata_file

    for name in ("IM-0001-0002.dcm", "IM-0001-0001.dcm"):
        shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / name)
    shutil.copy(get_testdata_file("CT_small.dcm"), tmp_path / "IM-0002-0001.dcm")
    sciSR.write(sciSR.data.phantoms.generate("knee_phantom", 0, shape=(8, 8, 4)), tmp_path / "knee.nii.gz")
    items = find_items(folder=tmp_path)
    assert [it["subject"] for it in items] == ["IM-0001-0001", "IM-0001-0001", "IM-0002-0001", "knee"]
    train, val = split_items(items, 0.5, seed=0)
    assert {it["subject"] for it in train}.isdisjoint({it["subject"] for it in val})
    named = find_items(folder=tmp_path, subject_pattern=r"(IM-\d+|knee)")
    assert [it["subject"] for it in named] == ["IM-0001", "IM-0001", "IM-0002", "knee"]


def test_a_zero_filled_mr_truth_is_reduced_to_its_measured_lines():
    from pydicom.data import get_testdata_file

    from sciSR.data.pair_transforms import measured_band
    from sciSR.infer.interpolate import zerofill

    # Zero-filled ×2 by a scanner, then reduced to the measured half: the measured image again.
    measured = sciSR.data.phantoms.generate("knee_phantom", 0, shape=(31, 31, 4)).array[..., 2] + 1.0
    again, spacing = measured_band(zerofill(measured, (2, 2)), (0.5, 0.5), (0.5, 0.5))
    np.testing.assert_allclose(again, measured, rtol=0, atol=1e-4 * float(measured.max()))
    assert spacing == pytest.approx((1.0, 1.0))
    # pydicom's Siemens reformat measured 256 × 134 lines for 484 × 484 pixels (53 % × 37 %).
    d = LoadSciImaged()({"image": get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm")})
    assert d["hr"].shape == (1, 256, 179) and d["measured_shape"] == [256, 179]
    assert d["spacing"] == pytest.approx((0.7231 * 484 / 256, 0.7231 * 484 / 179), rel=1e-3)
    assert "measured_shape" not in LoadSciImaged()({"image": get_testdata_file("MR_small.dcm")})


def test_files_of_any_format_are_read(tmp_path):
    img = sciSR.data.phantoms.generate("knee_phantom", 0, shape=(16, 16, 8))
    sciSR.write(img, tmp_path / "knee.nii.gz")
    items = find_items(files=[tmp_path / "knee.nii.gz"])
    d = LoadSciImaged()(items[0])
    assert d["hr"].shape == (1, 16, 16, 8)
    np.testing.assert_allclose(d["hr"][0], img.array, rtol=1e-5, atol=1e-3)
    with pytest.raises(SciSRError, match="no such training image"):
        find_items(files=[tmp_path / "missing.nii.gz"])


def test_caches_agree_and_multiworker_loading(tmp_path):
    spec = PairSpec(scale=(2, 2), patch_size=(8, 8), degradation="bicubic", degradation_options={"noise_std": 0.01})
    items = find_items(generate="generic_scene", count=2, options={"shape": [48, 48]})
    batches = []
    for cache in ("memory", "disk", "none"):
        ds = train_dataset(items, spec, cache=cache, cache_dir=tmp_path / "cache", samples_per_epoch=8)
        batches.append(next(iter(make_loader(ds, batch_size=4, shuffle=True, seed=5))))
    for other in batches[1:]:
        torch.testing.assert_close(other["lr"], batches[0]["lr"])
        torch.testing.assert_close(other["hr"], batches[0]["hr"])
    ds = train_dataset(items, spec, samples_per_epoch=8)
    loaded = list(make_loader(ds, batch_size=4, shuffle=True, num_workers=2, seed=5))
    assert len(loaded) == 2 and loaded[0]["hr"].shape == (4, 1, 16, 16)
    assert not torch.equal(loaded[0]["lr"], loaded[1]["lr"])


def test_patch_larger_than_image_is_a_clear_error():
    spec = PairSpec(scale=(2, 2), patch_size=(40, 40), degradation="bin")
    ds = train_dataset(find_items(generate="generic_scene", count=1, options={"shape": [32, 32]}), spec)
    with pytest.raises(SciSRError, match="smaller than the patch"):
        ds[0]
