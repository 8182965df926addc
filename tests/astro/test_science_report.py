"""Science report on real shipped frames, a SIP frame and a generated field (issue 8 items 3–5)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

import sciSR
from sciSR.data.phantoms import star_field
from sciSR.degrade import bin_array
from sciSR.errors import SciSRError
from sciSR.science import detect_sources, psf_photometry, report


def _check(lr, sr, result, mode):
    assert result.flux_mode == mode and result.n_measured >= 5
    assert result.centroid_shift_lr_px_median <= 0.02  # WCS-true output: sources stay on their stars
    assert abs(result.flux_ratio_median - 1.0) < 0.01
    # PSF photometry (photutils, FWHM fitted on each grid) agrees, and cubic keeps the pixel-deconvolved PSF.
    assert abs(result.psf_flux_ratio_median - 1.0) < 0.01
    assert abs(result.psf_fwhm_sr_lr_px_median / result.psf_fwhm_lr_px_median - 1.0) < 0.02
    assert all(np.isfinite(s["psf_flux_sr"]) for s in result.sources[:3])
    if mode == "conserve":  # block sums equal the input to 1e-6 of the frame's max |value|
        sums = bin_array(sr.array.astype(np.float64), result.scale, "sum")
        assert np.nanmax(np.abs(sums - lr.array)) <= 1e-6 * np.nanmax(np.abs(lr.array))


def test_real_frame_without_bunit(m13_path):
    lr = sciSR.read(m13_path)
    with pytest.warns(UserWarning, match="BUNIT"):
        sr = sciSR.upscale(lr, "cubic", 2)
    result = report(lr, sr, model="cubic")
    _check(lr, sr, result, "mean")
    means = bin_array(sr.array.astype(np.float64), (2, 2), "mean")
    assert np.abs(means - lr.array).max() <= 1e-6 * np.abs(lr.array).max()
    assert result.centroid_shift_arcsec_median is not None and result.hallucinated_sources == 0
    assert result.noise_test["n_sr"] >= 0 and result.detector == "photutils"


def test_real_jy_per_beam_frame(azp_path):
    lr = sciSR.read(azp_path)
    assert lr.meta["units"].lower() == "jy/beam"
    sr = sciSR.upscale(lr, "cubic", 2)
    assert sr.meta["provenance"][-1]["flux"] == "mean"
    means = bin_array(sr.array.astype(np.float64), (2, 2), "mean")
    assert np.isnan(lr.array).any()  # blank sky outside the map: masked, and it stays masked
    np.testing.assert_array_equal(np.isnan(means), np.isnan(lr.array))
    assert np.nanmax(np.abs(means - lr.array)) <= 1e-6 * np.nanmax(np.abs(lr.array))
    # Sky coordinates of the same point on both grids (forward transforms, AZP projection).
    x, y = np.array([20.0, 100.0, 150.0]), np.array([30.0, 95.0, 170.0])
    world_lr = lr.wcs.all_pix2world(x, y, 0)
    world_sr = sr.wcs.all_pix2world((x + 0.5) * 2 - 0.5, (y + 0.5) * 2 - 0.5, 0)
    np.testing.assert_allclose(world_sr, world_lr, atol=1e-9)


def test_sip_frame_and_generated_field(sip_frame, tmp_path):
    for lr in (sciSR.read(sip_frame), star_field((128, 128), seed=3, n_stars=70)):
        sr = sciSR.upscale(lr, "cubic", 2)
        result = report(lr, sr, model=None)
        _check(lr, sr, result, "conserve")
        assert result.hallucinated_sources is None
    assert sciSR.read(sip_frame).wcs.sip is not None
    data = json.loads(result.to_json(tmp_path / "r.json"))
    assert data["n_measured"] == result.n_measured and (tmp_path / "r.json").is_file()
    assert "flux ratio SR/LR median" in result.table()
    png = result.save_png(tmp_path / "r.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_detector_finds_injected_sources():
    rng = np.random.default_rng(1)
    sky = 100.0 + np.linspace(0.0, 20.0, 64)  # a gradient of 4σ across the frame
    frame = rng.normal(0.0, 5.0, (64, 64)) + sky
    frame[20:23, 30:33] += 200.0
    frame[50, 10] += 500.0  # a single hot pixel: below min_pixels
    found = detect_sources(frame)
    assert len(found) == 1 and abs(found.x[0] - 31) < 0.05 and abs(found.y[0] - 21) < 0.05
    assert abs(found.background.sigma - 5.0) < 0.5 and found.detector == "photutils"
    # Background2D follows the gradient: well under half the error of one global level.
    error_map = np.abs(found.background.map - sky).mean()
    assert error_map < 0.4 * np.abs(found.background.level - sky).mean()


def test_psf_photometry_recovers_a_gaussian_star():
    yy, xx = np.mgrid[0:48, 0:48]
    sigma = 3.0 / 2.3548
    star = 1000.0 / (2 * np.pi * sigma**2) * np.exp(-((xx - 20.3) ** 2 + (yy - 25.6) ** 2) / (2 * sigma**2))
    fit = psf_photometry(star, np.array([20.0, np.nan]), np.array([26.0, 5.0]), fwhm=2.5)
    assert abs(fit.x[0] - 20.3) < 0.01 and abs(fit.y[0] - 25.6) < 0.01
    assert abs(fit.flux[0] - 1000.0) < 5.0 and abs(fit.fwhm[0] - 3.0) < 0.1 and np.isnan(fit.flux[1])


def test_missing_photutils_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "photutils", None)  # makes `import photutils` raise ImportError
    frame = star_field((64, 64), seed=1)
    with pytest.raises(SciSRError, match=r"needs photutils: pip install scisr\[astro\]"):
        report(frame, sciSR.upscale(frame, "cubic", 2))


def test_cli_evaluate_science(tmp_path, sip_frame):
    out = subprocess.run([sys.executable, "-m", "sciSR.cli", "evaluate", "--science", "--model", "cubic",
                          "--scale", "2", "--report-dir", str(tmp_path), "--json", str(tmp_path / "all.json"),
                          str(sip_frame)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "centroid shift median [LR px]" in out.stdout
    rows = json.loads((tmp_path / "all.json").read_text())
    assert rows[0]["hallucinated_sources"] == 0 and rows[0]["centroid_shift_lr_px_median"] <= 0.02
    assert (tmp_path / "irac_sip_field.science.png").is_file()
    with fits.open(sip_frame) as hdul:
        assert hdul[0].header["BUNIT"] == "electrons"
