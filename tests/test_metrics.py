"""PSNR and SSIM: MONAI's definitions, and SSIM stable on patches whose range is small next to their mean."""

import numpy as np
import pytest
import torch
from monai.metrics import SSIMMetric

from sciSR.metrics import data_range, psnr, ssim


@pytest.mark.parametrize("shape", [(40, 33), (20, 24, 30)])
def test_ssim_equals_monais_on_ordinary_images(shape):
    rng = np.random.default_rng(0)
    hr = rng.random(shape)
    sr = hr + 0.1 * rng.standard_normal(shape)
    monai = SSIMMetric(len(shape), data_range=data_range(hr))(torch.from_numpy(sr)[None, None].float(),
                                                              torch.from_numpy(hr)[None, None].float())
    assert ssim(sr, hr) == pytest.approx(float(monai.mean()), abs=1e-5)


def test_ssim_of_a_flat_patch_stays_in_range():
    # A validation patch of air in CT: a range of 1e-5 about 0.5 (MONAI's float32 moments give about −100).
    rng = np.random.default_rng(1)
    hr = (0.5 + 1e-5 * rng.standard_normal((32, 32))).astype(np.float32)
    sr = (hr + 3e-6 * rng.standard_normal((32, 32))).astype(np.float32)
    value = ssim(sr, hr)
    assert 0.5 < value < 1.0
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)
    assert ssim(sr, hr, value_range=1.0) <= 1.0


def test_metrics_ignore_voxels_that_are_not_finite():
    rng = np.random.default_rng(2)
    hr = rng.random((24, 24))
    sr = hr + 0.05 * rng.standard_normal(hr.shape)
    holed = sr.copy()
    holed[3, 4] = np.nan
    # Both arrays get the reference's mean there: the voxel adds no error and no structure.
    sr_filled, hr_filled = sr.copy(), hr.copy()
    sr_filled[3, 4] = hr_filled[3, 4] = hr.mean()
    assert ssim(holed, hr) == pytest.approx(ssim(sr_filled, hr_filled))
    assert psnr(holed, hr) == pytest.approx(psnr(sr_filled, hr_filled), rel=1e-6)
