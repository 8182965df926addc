"""Every degradation keeps the FOV-preserving grid: LR voxel n sits on HR s·n + (s−1)/2 (docs/architecture.md §4)."""

import numpy as np
import pytest

from sciSR.degrade import (
    bicubic_downsample,
    bin_array,
    ct_downsample,
    kspace_downsample,
    psf_kernel,
    telescope_downsample,
    thick_slice,
)
from sciSR.infer.interpolate import interpolate

DEGRADATIONS = {
    "thick_slice_gaussian": lambda x, s: thick_slice(x, s, "gaussian"),
    "thick_slice_boxcar_gap": lambda x, s: thick_slice(x, s, "boxcar", gap=1.0),
    "kspace": lambda x, s: kspace_downsample(x, s),
    "kspace_hamming": lambda x, s: kspace_downsample(x, s, "hamming"),
    "kspace_tukey": lambda x, s: kspace_downsample(x, s, "tukey"),
    "ct": lambda x, s: ct_downsample(x, s, fwhm=2.0),
    "telescope": lambda x, s: telescope_downsample(x, s, psf_kernel("moffat", 3.0, ndim=2)),
    "bicubic": lambda x, s: bicubic_downsample(x, s),
}


def centroid(a: np.ndarray) -> np.ndarray:
    grid = np.indices(a.shape).reshape(a.ndim, -1)
    return (grid * a.ravel()).sum(axis=1) / a.sum()


def blob(shape, centre, sigma):
    grids = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    return np.exp(-sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) / (2 * sigma**2)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(DEGRADATIONS))
@pytest.mark.parametrize("scale", [(2, 2), (4, 2), (1, 4)])
def test_blob_centroid_stays_put(name, scale):
    hr = blob((96, 96), (45.3, 50.8), 4.0)
    lr = DEGRADATIONS[name](hr, scale)
    assert lr.shape == (96 // scale[0], 96 // scale[1])
    # The LR centroid mapped through i_HR = s·n + (s−1)/2 …
    mapped = centroid(lr) * np.array(scale) + (np.array(scale) - 1) / 2
    np.testing.assert_allclose((mapped - centroid(hr)) / np.array(scale), 0, atol=0.01)
    # … and an FOV-grid cubic upscale of the LR puts the blob back where it was (well under 0.1 LR pixel).
    up = interpolate(lr, scale, "cubic")
    np.testing.assert_allclose((centroid(up) - centroid(hr)) / np.array(scale), 0, atol=0.02)


@pytest.mark.parametrize("name", ["thick_slice_gaussian", "kspace", "ct", "bicubic"])
def test_3d_per_axis_factors(name):
    hr = blob((32, 40, 48), (15.2, 20.7, 23.1), 3.0)
    lr = DEGRADATIONS[name](hr, (1, 2, 4))
    assert lr.shape == (32, 20, 12)
    scale = np.array([1, 2, 4])
    mapped = centroid(lr) * scale + (scale - 1) / 2
    np.testing.assert_allclose((mapped - centroid(hr)) / scale, 0, atol=0.02)  # LR pixels


def test_check_is_sensitive_to_the_half_pixel_shift():
    """Strided slicing sits at s·n: the test above would see a (s−1)/2 HR-pixel shift."""
    hr = blob((96, 96), (45.3, 50.8), 4.0)
    strided = hr[::2, ::2]
    mapped = centroid(strided) * 2 + 0.5
    np.testing.assert_allclose(mapped - centroid(hr), 0.5, atol=0.01)


def test_boxcar_thick_slice_without_gap_is_the_block_mean():
    x = np.random.default_rng(0).random((8, 12, 16)).astype(np.float32)
    np.testing.assert_allclose(thick_slice(x, (1, 3, 4), "boxcar"), bin_array(x, (1, 3, 4)), rtol=1e-6)
