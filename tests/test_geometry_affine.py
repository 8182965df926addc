"""FOV-preserving affine math: a world point lands on the same place before and after upscaling.

Old index ``i`` and new index ``i' = (i + 0.5)·s − 0.5`` are the same point; the outer edge of the
first voxel (index −0.5) and of the last voxel (index n − 0.5) do not move.
"""

import numpy as np
import pytest

from sciSR import geometry
from sciSR.errors import SciSRError


def rotation(axis, degrees):
    """3×3 rotation about a coordinate axis."""
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def make_affine(rot, zooms, origin):
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(zooms)
    affine[:3, 3] = origin
    return affine


AFFINES = {
    "axis-aligned": make_affine(np.eye(3), (0.9, 0.9, 5.0), (-100.0, 20.0, 7.5)),
    # radiological x flip (as in FSL files) and a tilt about x
    "flipped-tilted": make_affine(np.diag([-1.0, 1, 1]) @ rotation(0, 9.3), (2.0, 2.0, 2.2), (117.9, -35.7, -7.2)),
    "oblique": make_affine(rotation(2, 31.0) @ rotation(1, -17.0) @ rotation(0, 5.0), (0.7, 1.3, 3.0),
                           (12.0, -250.0, 33.0)),
}
SHAPE = (11, 7, 5)


def world(affine, index):
    return (affine @ np.append(np.asarray(index, float), 1.0))[:3]


@pytest.mark.parametrize("name", sorted(AFFINES))
@pytest.mark.parametrize("scale", [(1, 1, 4), (2, 3, 1), (2, 2, 2), (3, 5, 7)])
def test_matched_points_keep_world_position(name, scale):
    affine = AFFINES[name]
    new = geometry.upscale_affine(affine, scale)
    s = np.asarray(scale, float)
    n = np.asarray(SHAPE, float)
    rng = np.random.default_rng(0)
    points = [
        np.full(3, -0.5),  # outer corner of the first voxel
        n - 0.5,  # outer corner of the last voxel
        (n - 1) / 2,  # centre of the field of view
        *rng.uniform(-0.5, n - 0.5, size=(5, 3)),
    ]
    for old_index in points:
        new_index = (old_index + 0.5) * s - 0.5
        np.testing.assert_allclose(world(new, new_index), world(affine, old_index), atol=1e-9)
    # New voxel size = old / s along each (possibly oblique) axis; the direction is unchanged.
    np.testing.assert_allclose(np.linalg.norm(new[:3, :3], axis=0), np.linalg.norm(affine[:3, :3], axis=0) / s)
    np.testing.assert_allclose(new[:3, :3] * s, affine[:3, :3], atol=1e-12)
    np.testing.assert_array_equal(new[3], [0, 0, 0, 1])


def test_scale_one_is_identity():
    for affine in AFFINES.values():
        np.testing.assert_allclose(geometry.upscale_affine(affine, (1, 1, 1)), affine, atol=1e-12)


def test_fewer_factors_leave_trailing_axes_alone():
    affine = AFFINES["oblique"]
    np.testing.assert_allclose(geometry.upscale_affine(affine, (2, 3)), geometry.upscale_affine(affine, (2, 3, 1)))
    with pytest.raises(SciSRError, match="3 spatial axes"):
        geometry.upscale_affine(affine, (2, 2, 2, 2))


def test_spacing_and_translate_match_the_affine():
    spacing, scale = (0.9, 0.9, 5.0), (1, 1, 4)
    assert geometry.upscale_spacing(spacing, scale) == pytest.approx((0.9, 0.9, 1.25))
    translate = geometry.upscale_translate(spacing, scale)
    # (1/s − 1)/2 of the old spacing: 0 for unscaled axes, −3/8 of 5 mm for s = 4.
    assert translate == pytest.approx((0.0, 0.0, -1.875))
    affine = np.diag([*spacing, 1.0])
    new = geometry.upscale_affine(affine, scale)
    np.testing.assert_allclose(new[:3, 3] - affine[:3, 3], translate)
    np.testing.assert_allclose(np.diag(new)[:3], geometry.upscale_spacing(spacing, scale))


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_source_coordinates(factor):
    n_old = 6
    src = geometry.source_coordinates(n_old * factor, factor)
    assert src.shape == (n_old * factor,) and src.dtype == np.float64
    assert src[0] == pytest.approx(0.5 / factor - 0.5)
    # Each block of `factor` new voxels is centred on the old voxel it came from.
    np.testing.assert_allclose(src.reshape(n_old, factor).mean(axis=1), np.arange(n_old), atol=1e-12)
    np.testing.assert_allclose(np.diff(src), 1.0 / factor)
    # Same mapping as the affine: new voxel i' sits where old index src[i'] sits.
    affine = AFFINES["oblique"]
    new = geometry.upscale_affine(affine, (factor, 1, 1))
    for i_new in (0, 5, n_old * factor - 1):
        np.testing.assert_allclose(world(new, (i_new, 2, 3)), world(affine, (src[i_new], 2, 3)), atol=1e-9)


def test_upscaled_shape():
    assert geometry.upscaled_shape((10, 20, 3), (1, 1, 4)) == (10, 20, 12)


@pytest.mark.parametrize(
    ("scale", "ndim", "expected"),
    [(2, 3, (2, 2, 2)), ((1, 1, 4), 3, (1, 1, 4)), ([2, 3], 2, (2, 3)), (np.int64(3), 2, (3, 3)),
     ((2.0, 1), 2, (2, 1)), (np.array([1, 4]), 2, (1, 4))],
)
def test_normalize_scale_accepts(scale, ndim, expected):
    out = geometry.normalize_scale(scale, ndim)
    assert out == expected and all(type(f) is int for f in out)


@pytest.mark.parametrize(
    ("scale", "ndim", "match"),
    [
        (0, 3, "positive integers"),
        (-2, 2, "positive integers"),
        ((2, 0, 1), 3, "positive integers"),
        (1.5, 2, "positive integers"),
        ((2, 2.5), 2, "positive integers"),
        (True, 2, "positive integers"),
        ((2, 2), 3, "2 factors but the image has 3 spatial axes"),
        ((1, 1, 4, 1), 3, "channel axes are never scaled"),
    ],
)
def test_normalize_scale_rejects(scale, ndim, match):
    with pytest.raises(SciSRError, match=match) as info:
        geometry.normalize_scale(scale, ndim)
    assert "\n" not in str(info.value)
