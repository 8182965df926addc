"""Any output voxel size (``spacing=`` / ``--spacing`` / ``--isotropic``): grid, geometry, values, refusals.

The field of view is kept: ``n' = round(n·s_in/s_out)`` voxels of ``FOV/n'``. A feature at a known world
position must be found at the same world position after upscaling, for non-integer ratios too.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.wcs import WCS

import sciSR
from sciSR.blocks import overlap_resample
from sciSR.cli import main
from sciSR.errors import SciSRError
from sciSR.geometry import grid_for_spacing, grid_scale, upscale_affine
from sciSR.image import SciImage
from sciSR.infer.interpolate import interpolate, resample_grid


def blob_volume(shape, spacing, centre_mm, sigma_mm=2.0):
    """A smooth Gaussian blob centred on ``centre_mm`` (world, affine = diag(spacing) + offset)."""
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (12.0, -7.0, 3.0)
    idx = np.indices(shape, dtype=np.float64)
    world = [affine[a, a] * idx[a] + affine[a, 3] for a in range(3)]
    r2 = sum((w - c) ** 2 for w, c in zip(world, centre_mm, strict=True))
    return SciImage.from_array(np.exp(-0.5 * r2 / sigma_mm**2).astype(np.float32), affine=affine,
                               spacing=tuple(spacing), domain="mri")


def world_centroid(img):
    w = np.clip(img.array.astype(np.float64), 0, None)
    idx = np.indices(w.shape, dtype=np.float64)
    voxel = np.array([(idx[a] * w).sum() / w.sum() for a in range(3)] + [1.0])
    return (img.affine @ voxel)[:3]


def test_grid_keeps_the_field_of_view():
    assert grid_for_spacing((40, 30, 12), (0.36, 0.36, 3.3), (0.36, 0.36, 0.36)) == (40, 30, 110)
    assert grid_for_spacing((10,), (1.0,), (0.4,)) == (25,)  # ×2.5
    assert grid_for_spacing((9,), (1.0,), (3 / 7,)) == (21,)  # ×7/3
    assert grid_scale((10, 9), (25, 18)) == (2.5, 2)
    affine = np.diag([0.36, 0.5, 3.3, 1.0])
    new = upscale_affine(affine, grid_scale((40, 30, 12), (40, 30, 110)))
    for corner_in, corner_out in (((-0.5,) * 3, (-0.5,) * 3), ((39.5, 29.5, 11.5), (39.5, 29.5, 109.5))):
        assert np.allclose(affine @ [*corner_in, 1], new @ [*corner_out, 1])


@pytest.mark.parametrize("spacing_in,target", [((1.0, 1.0, 2.5), 1.0), ((0.36, 0.36, 3.3), 0.36),
                                               ((0.7, 0.7, 1.0), (0.7, 0.7, 3 / 7))])
def test_a_feature_keeps_its_world_position(spacing_in, target):
    shape = (24, 22, 12)
    centre = (12.0 + 9.3 * spacing_in[0], -7.0 + 11.6 * spacing_in[1], 3.0 + 5.4 * spacing_in[2])
    img = blob_volume(shape, spacing_in, centre, sigma_mm=3 * max(spacing_in))
    out = sciSR.upscale(img, "cubic", spacing=target)
    expected = grid_for_spacing(shape, spacing_in, (target,) * 3 if np.isscalar(target) else target)
    assert out.array.shape == expected
    fov_in = np.array(shape) * np.array(spacing_in)
    assert np.allclose(np.array(out.array.shape) * np.array(out.spacing), fov_in)
    assert np.allclose(world_centroid(out), world_centroid(img), atol=0.02 * min(spacing_in))
    assert out.meta["provenance"][-1]["grid"]["method"] == "cubic (direct)"


def test_resample_grid_equals_interpolate_on_integer_grids_and_samples_the_fov_grid():
    rng = np.random.default_rng(0)
    x = rng.random((20, 15), dtype=np.float32)
    assert np.array_equal(resample_grid(x, (40, 45)), interpolate(x, (2, 3)))
    ramp = np.broadcast_to(np.arange(50, dtype=np.float32)[:, None], (50, 4))
    out = resample_grid(ramp, (125, 4), "linear")
    expected = (np.arange(125) + 0.5) / 2.5 - 0.5
    assert np.allclose(out[5:-5, 0], expected[5:-5], atol=1e-5)


def test_resample_grid_writes_into_out_and_refuses_a_wrong_one(tmp_path):
    x = np.random.default_rng(2).random((20, 15, 2), dtype=np.float32)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(33, 28, 2))
    result = resample_grid(x, (33, 28), out=out)
    assert result is out and np.array_equal(out, resample_grid(x, (33, 28)))
    with pytest.raises(SciSRError, match=r"out has shape \(33, 28\); the result has \(33, 28, 2\)"):
        resample_grid(x, (33, 28), out=np.empty((33, 28), np.float32))


def test_overlap_resampling_keeps_flux_exactly():
    rng = np.random.default_rng(1)
    counts = rng.poisson(50, (33, 29)).astype(np.float64)
    out = overlap_resample(counts, (80, 71), "conserve")
    assert out.sum() == pytest.approx(counts.sum(), rel=1e-12)
    # On a grid of whole multiples the overlap resample is block replication (mean) / splitting (counts).
    assert np.allclose(overlap_resample(counts, (66, 87), "mean"), np.kron(counts, np.ones((2, 3))))
    assert np.allclose(overlap_resample(np.ones((7, 5)), (16, 12), "mean"), 1.0)


def sky_frame(n=40, pixel_arcsec=1.0):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [n / 2 + 0.3, n / 2 - 0.7]
    wcs.wcs.cdelt = [-pixel_arcsec / 3600, pixel_arcsec / 3600]
    wcs.pixel_shape = (n, n)
    y, x = np.mgrid[:n, :n].astype(np.float64)
    star = 1000 * np.exp(-0.5 * ((x - 17.3) ** 2 + (y - 22.6) ** 2) / 1.5**2) + 10
    return SciImage.from_array(star.astype(np.float32), wcs=wcs, spacing=(pixel_arcsec / 3600,) * 2, domain="sky",
                               meta={"units": "count"})


def star_world(img):
    w = np.clip(img.array.astype(np.float64) - np.median(img.array), 0, None)
    y, x = np.indices(w.shape, dtype=np.float64)
    return img.wcs.all_pix2world(float((x * w).sum() / w.sum()), float((y * w).sum() / w.sum()), 0)


def test_sky_spacing_in_arcsec_conserves_counts_and_keeps_the_star():
    frame = sky_frame()
    out = sciSR.upscale(frame, "cubic", spacing=0.4 * u.arcsec)  # ×2.5
    assert out.array.shape == (100, 100)
    assert out.meta["flux_mode"] == "conserve"
    assert out.array.sum() == pytest.approx(frame.array.sum(), rel=1e-5)
    assert "pixel overlap" in out.meta["provenance"][-1]["grid"]["method"]
    ra0, dec0 = star_world(frame)
    ra1, dec1 = star_world(out)
    assert abs(ra1 - ra0) * np.cos(np.deg2rad(dec0)) * 3600 < 0.02 and abs(dec1 - dec0) * 3600 < 0.02
    with pytest.raises(SciSRError, match="not in units of deg"):
        sciSR.upscale(frame, "cubic", spacing=0.5 * u.mm)


def test_a_network_runs_at_its_factor_then_resamples_onto_the_grid():
    img = blob_volume((24, 20, 6), (0.8, 0.8, 3.0), (20.0, 0.0, 12.0), sigma_mm=3.0)
    out = sciSR.upscale(img, "mri-x2", spacing=(0.5, 0.5, 3.0), consistency="off")
    assert out.array.shape == (38, 32, 6)
    step = out.meta["provenance"][-1]
    assert step["scale"] == [2, 2, 1]
    assert step["grid"] == {"from_shape": [48, 40, 6], "to_shape": [38, 32, 6], "method": "cubic B-spline"}
    # A fifth of an output voxel: half a voxel misplaced (0.25 mm) fails, while the network's own intensity
    # changes move the intensity centroid by up to 0.05 mm (even along the axis it does not resample).
    assert np.allclose(world_centroid(out), world_centroid(img), atol=0.1)


@pytest.mark.parametrize("kwargs,message", [
    ({"spacing": 0.5, "scale": 2}, "either scale or spacing"),
    ({"spacing": 0.0}, "finite and positive"),
    ({"spacing": -1.0}, "finite and positive"),
    ({"spacing": float("nan")}, "finite and positive"),
    ({"spacing": (0.5, 0.5)}, "has 2 values but the image has 3"),
    ({"spacing": "fine"}, "or 'isotropic'"),
    ({"spacing": 2.0}, "coarser than the input"),
])
def test_bad_spacing_is_refused_with_one_line(kwargs, message):
    img = blob_volume((10, 10, 6), (1.0, 1.0, 2.5), (15.0, -2.0, 10.0))
    with pytest.raises(SciSRError, match=message):
        sciSR.upscale(img, "cubic", **kwargs)


def test_a_spacing_finer_than_the_network_reaches_is_refused():
    img = blob_volume((10, 10, 6), (1.0, 1.0, 2.5), (15.0, -2.0, 10.0))
    with pytest.raises(SciSRError, match=r"needs ×2.5 there; mri-x2 reaches ×1"):
        sciSR.upscale(img, "mri-x2", spacing="isotropic")
    # An ensemble on a voxel size runs too (test_ensemble.py checks non-integer grids).
    mean, spread = sciSR.upscale(img, "mri-x2", spacing=(0.5, 0.5, 2.5), ensemble=True, uncertainty=True)
    assert mean.array.shape == spread.array.shape == (20, 20, 6)


def test_masked_voxels_stay_masked_on_a_non_integer_grid():
    img = blob_volume((12, 12, 5), (1.0, 1.0, 2.5), (17.0, -1.0, 8.0))
    img.array[0, 0, 0] = np.nan
    out = sciSR.upscale(img, "cubic", spacing=1.0)
    assert out.array.shape == (12, 12, 12)
    assert np.isnan(out.array[0, 0, :2]).all() and not np.isnan(out.array[0, 0, 3])
    assert np.isfinite(out.array).sum() == out.array.size - 2


def test_self_supervised_trains_at_the_true_slice_ratio():
    img = blob_volume((28, 26, 8), (0.5, 0.5, 1.6), (18.0, -1.0, 9.0), sigma_mm=2.0)
    out = sciSR.self_supervised(img, spacing="isotropic", max_steps=3, time_budget_s=120, device="cpu")
    assert out.array.shape == (28, 26, 26)  # 8 slices × 1.6 mm / 0.5 mm = 25.6 → 26
    step = out.meta["provenance"][-1]
    assert step["ratio"] == pytest.approx(26 / 8)
    assert step["profile"]["width"] == pytest.approx(3.25)
    assert np.allclose(np.array(out.array.shape) * np.array(out.spacing), np.array(img.array.shape) * img.spacing)
    # Three steps leave the network untrained, so the geometry is checked on the grid: same outer corners.
    last_in, last_out = np.array(img.array.shape) - 0.5, np.array(out.array.shape) - 0.5
    assert np.allclose(out.affine @ [-0.5, -0.5, -0.5, 1], img.affine @ [-0.5, -0.5, -0.5, 1])
    assert np.allclose(out.affine @ [*last_out, 1], img.affine @ [*last_in, 1])
    with pytest.raises(SciSRError, match="upscales one axis of a volume"):
        sciSR.self_supervised(img, spacing=0.25, max_steps=1)
    with pytest.raises(SciSRError, match="either scale or spacing"):
        sciSR.self_supervised(img, 2, spacing=0.5, max_steps=1)


def test_cli_isotropic_and_spacing(tmp_path, capsys):
    import nibabel as nib

    img = blob_volume((16, 14, 6), (0.6, 0.6, 2.1), (16.0, -3.0, 9.0))
    source = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(img.array, img.affine), source)
    assert main(["upscale", str(source), str(tmp_path / "iso.nii.gz"), "--isotropic"]) == 0
    written = sciSR.read(tmp_path / "iso.nii.gz")
    assert written.array.shape == (16, 14, 21)
    assert np.allclose(written.spacing, (0.6, 0.6, 0.6))
    assert main(["upscale", str(source), str(tmp_path / "mm.nii.gz"), "--spacing", "0.6,0.6,1.05mm"]) == 0
    assert sciSR.read(tmp_path / "mm.nii.gz").array.shape == (16, 14, 12)
    for bad in (["--spacing", "0"], ["--spacing", "1", "--scale", "2"], ["--isotropic", "--spacing", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["upscale", str(source), str(tmp_path / "bad.nii.gz"), *bad])
        assert exit_info.value.code == 2
    capsys.readouterr()
    assert main(["upscale", str(source), str(tmp_path / "x.nii.gz"), "--model", "mri-x2", "--isotropic"]) == 1
    # In-process, torch's own deprecation warnings share stderr: the refusal is the one "error:" line.
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith(f"error: {source}") and "reaches ×1" in err[0]
    assert main(["upscale", str(source), str(tmp_path / "y.nii.gz"), "--spacing", "1arcsec"]) == 1
    assert "not in units of mm" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "bad.nii.gz").exists()
    assert not (tmp_path / "y.nii.gz").exists()


def test_a_through_plane_model_reaches_thick_slices_on_the_first_axis():
    from sciSR.infer.predict import plan_axes

    # Model scale (1, 4) and thick slices on axis 0: the plane (1, 0), i.e. transposed.
    assert plan_axes(2, (1, 4), (4, 1, 1), 3) == ((1, 0), (4, 1, 1))
    assert plan_axes(2, (1, 4), (1, 1, 4), 3) == ((0, 2), (1, 1, 4))


def test_self_supervised_frames_keep_masked_pixels_masked_with_a_spacing():
    rng = np.random.default_rng(3)
    frame = SciImage.from_array(rng.random((24, 20), dtype=np.float32), spacing=(1.0, 1.0))
    frame.array[0, 0] = np.nan
    for spacing, shape in ((0.5, (48, 40)), (0.4, (60, 50))):  # an integer grid, then a non-integer one
        out = sciSR.self_supervised(frame, spacing=spacing, max_steps=2, time_budget_s=60, device="cpu")
        assert out.array.shape == shape
        assert np.isnan(out.array[0, 0]) and np.isnan(out.array).sum() == out.meta["mask"].sum() > 0
