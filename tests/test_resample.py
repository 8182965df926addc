"""Resampling by world coordinates: thick-slice stacks land on the anatomy they were cut from."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.registration import phase_cross_correlation

from sciSR import geometry
from sciSR.data.phantoms import knee_phantom
from sciSR.degrade.mri import thick_slice
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.metrics import psnr
from sciSR.resample import resample_array, resample_to_grid

SCALES = ((4, 1, 1), (1, 4, 1), (1, 1, 4))


def _rotation(angle_deg: float, axis: int) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    rot = np.eye(4)
    rot[i, i], rot[i, j], rot[j, i], rot[j, j] = c, -s, s, c
    return rot


@pytest.fixture(scope="module")
def truth() -> SciImage:
    img = knee_phantom((48, 48, 48), seed=3, spacing=(0.8, 0.8, 0.8))
    # Band-limited a little, so ×4 decimation aliases less and the alignment measure sees geometry only.
    img = img.replace(array=ndimage.gaussian_filter(img.array, 1.0))
    # An oblique, off-centre scanner frame: only world coordinates can bring the stacks back.
    affine = _rotation(20.0, 2) @ _rotation(-10.0, 0) @ np.diag([0.8, 0.8, 0.8, 1.0])
    affine[:3, 3] = (-17.0, 5.5, 30.25)
    return img.replace(affine=affine)


def _stack(truth: SciImage, scale: tuple[int, ...]) -> SciImage:
    lr = thick_slice(truth.array, scale)
    return SciImage.from_array(lr, affine=geometry.downscale_affine(truth.affine, scale), domain="mri")


def test_downscale_affine_inverts_upscale_affine():
    affine = _rotation(33.0, 1) @ np.diag([0.7, 0.9, 3.0, 1.0])
    affine[:3, 3] = (1.0, -2.0, 3.0)
    down = geometry.downscale_affine(affine, (1, 2, 4))
    np.testing.assert_allclose(geometry.upscale_affine(down, (1, 2, 4)), affine, atol=1e-12)
    # Coarse voxel n is centred on fine voxel s·n + (s − 1)/2 (+ offset).
    shifted = geometry.downscale_affine(affine, (1, 2, 4), offset=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(shifted @ [0, 0, 2, 1], affine @ [0, 0.5, 2 * 4 + 1.5 + 1.0, 1], atol=1e-12)


def test_target_in_source_coordinates_rows_and_2d():
    target = np.diag([0.5, 0.5, 1.0, 1.0])
    source = np.diag([1.0, 2.0, 1.0, 1.0])
    coords = geometry.target_in_source_coordinates(target, (4, 6), source)
    assert coords.shape == (3, 4, 6)
    np.testing.assert_allclose(coords[0, :, 0], [0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(coords[1, 0, :], np.arange(6) * 0.25)
    np.testing.assert_allclose(coords[2], 0.0)
    part = geometry.target_in_source_coordinates(target, (4, 6), source, rows=slice(1, 3))
    np.testing.assert_allclose(part, coords[:, 1:3])


@pytest.mark.parametrize("scale", SCALES)
def test_orthogonal_stacks_align_with_truth(truth, scale):
    stack = _stack(truth, scale)
    on_hr, inside = resample_to_grid(stack, truth.affine, truth.spatial_shape, order=3)
    assert inside.all()  # the stacks cover the same FOV as the volume, edge to edge
    core = (slice(6, -6),) * 3
    # Sub-voxel alignment: the registration shift between resampled stack and truth (Hann-windowed, so
    # the wrap-around of the FFT does not bias it).
    window = np.hanning(36)
    window = window[:, None, None] * window[None, :, None] * window[None, None, :]
    shift, _, _ = phase_cross_correlation(truth.array[core] * window, on_hr[core] * window, upsample_factor=50,
                                          normalization=None)
    assert np.abs(shift).max() < 0.1, shift
    # A deliberately misplaced copy (1 voxel along the thick axis) is worse against the truth, and far
    # worse against the truth seen through the slice profile (what a perfect resampling could reach).
    axis = int(np.argmax(scale))
    wrong = geometry.downscale_affine(truth.affine, scale, offset=[1.0 if a == axis else 0.0 for a in range(3)])
    off, _ = resample_to_grid(stack.replace(affine=wrong), truth.affine, truth.spatial_shape, order=3)
    assert psnr(on_hr[core], truth.array[core]) > psnr(off[core], truth.array[core]) + 0.5
    profile = ndimage.gaussian_filter1d(truth.array, 4 / 2.3548, axis=axis)  # FWHM = slice thickness
    good, bad = psnr(on_hr[core], profile[core]), psnr(off[core], profile[core])
    assert good > bad + 6.0, (good, bad)


def test_bright_structure_centroid_is_kept(truth):
    grid = np.meshgrid(*[np.arange(48.0)] * 3, indexing="ij")
    centre = np.array([21.3, 25.7, 19.4])
    blob = np.exp(-sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) / (2 * 2.0**2)).astype(np.float32)
    img = truth.replace(array=blob)
    for scale in SCALES:
        on_hr, _ = resample_to_grid(_stack(img, scale), truth.affine, (48, 48, 48), order=1)
        weights = np.clip(on_hr, 0, None)
        found = np.array([(weights * g).sum() / weights.sum() for g in grid])
        assert np.abs(found - centre).max() < 0.1, (scale, found)


def _analytic(world: np.ndarray) -> np.ndarray:
    x, y, z = world
    return np.sin(0.21 * x + 0.3) * np.cos(0.17 * y - 0.1 * z) + 0.5 * np.exp(-((x - 3) ** 2 + (y + 2) ** 2) / 60.0)


def _sample(affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    index = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    world = np.tensordot(affine[:3, :len(shape)], index, axes=1) + affine[:3, 3].reshape(3, *([1] * len(shape)))
    return _analytic(world).astype(np.float32)


def test_oblique_anisotropic_source_on_axis_aligned_target():
    """Different orientation and voxel size: values land where the analytic image has them."""
    source = _rotation(30.0, 2) @ _rotation(15.0, 1) @ np.diag([1.2, 1.0, 2.5, 1.0])
    source[:3, 3] = (-20.0, -18.0, -25.0)
    src_shape = (34, 36, 20)
    target = np.diag([1.0, 1.0, 1.0, 1.0])
    target[:3, 3] = (-8.0, -8.0, -8.0)
    shape = (16, 16, 16)
    values, inside = resample_array(_sample(source, src_shape), source, target, shape, order=3, fill=np.nan)
    expected = _sample(target, shape)
    assert inside.mean() > 0.8
    assert np.isnan(values[~inside]).all()
    err = np.abs(values[inside] - expected[inside]).max()
    shifted = target.copy()
    shifted[:3, 3] += source[:3, 2] / 2.5  # one source voxel along its thick (oblique) axis
    wrong, _ = resample_array(_sample(source, src_shape), shifted, target, shape, order=3)
    assert err < 0.05, err
    assert np.abs(wrong[inside] - expected[inside]).max() > 5 * err


def test_stacks_with_different_voxel_sizes_and_2d():
    truth = _sample(np.diag([0.5, 0.5, 0.5, 1.0]), (40, 40))
    hr_affine = np.diag([0.5, 0.5, 0.5, 1.0])
    for scale in ((2, 1), (1, 4)):
        low = thick_slice(truth, scale)
        out, inside = resample_array(low, geometry.downscale_affine(hr_affine, scale), hr_affine, (40, 40), order=3)
        assert inside.all()
        assert psnr(out[4:-4, 4:-4], truth[4:-4, 4:-4]) > 35.0


def test_fov_mask_and_channels():
    affine = np.eye(4)
    x = np.stack([np.ones((8, 8, 8)), 2 * np.ones((8, 8, 8))], axis=-1).astype(np.float32)
    target = np.eye(4)
    target[0, 3] = 4.0  # half the target lies beyond the source's last voxel edge (index 7.5)
    values, inside = resample_array(x, affine, target, (8, 8, 8), order=1, fill=-1.0)
    assert values.shape == (8, 8, 8, 2)
    assert inside[:4].all() and not inside[4:].any()
    assert (values[:4, ..., 1] == 2).all() and (values[4:] == -1).all()


def test_errors():
    with pytest.raises(SciSRError, match="needs an image with an affine"):
        resample_to_grid(SciImage.from_array(np.zeros((4, 4, 4))), np.eye(4), (4, 4, 4))
    with pytest.raises(SciSRError, match="order"):
        resample_array(np.zeros((4, 4)), np.eye(4), np.eye(4), (4, 4), order=2)
    with pytest.raises(SciSRError, match="spatial axes"):
        resample_to_grid(SciImage.from_array(np.zeros((4, 4, 4)), affine=np.eye(4)), np.eye(4), (4, 4))
