"""Dithered star fields (issue 20 item 5): drizzle, and fusion by sky position (an interpolation average or a
multi-input network): grid, flux, astrometry, units, PSNR, weight map, refusals."""

import sys
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from scipy.special import erf

import sciSR
from sciSR.errors import SciSRError
from sciSR.geometry import upscale_wcs
from sciSR.image import SciImage
from sciSR.infer.drizzle import drizzle_frames
from sciSR.science.detect import refine_centroids

SHAPE = (64, 64)
PIXEL_DEG = 0.2 / 3600
SIGMA = 0.7  # PSF σ in LR pixels: FWHM 1.65 px, undersampled as in a real dithered survey
DITHERS = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))  # CRPIX shifts, LR pixels


def _wcs(shift, shape=SHAPE, pixel_deg=PIXEL_DEG):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [shape[1] / 2 + 0.5 + shift[0], shape[0] / 2 + 0.5 + shift[1]]
    w.wcs.cdelt = [-pixel_deg, pixel_deg]
    w.pixel_shape = shape[::-1]
    return w


def _render(shape, x, y, flux, sigma):
    """Pixel-integrated circular Gaussians (exact, erf), ``flux`` = each source's total."""
    def profile(n, centre):
        cdf = 0.5 * (1 + erf((np.arange(n + 1)[None, :] - 0.5 - centre[:, None]) / (np.sqrt(2) * sigma)))
        return np.diff(cdf, axis=1)

    return np.einsum("n,ny,nx->yx", flux, profile(shape[0], y), profile(shape[1], x))


@pytest.fixture(scope="module")
def sky():
    """Isolated stars on a jittered 6×6 grid, 6+ LR pixels from the edges: world positions and fluxes (e⁻/s)."""
    rng = np.random.default_rng(0)
    gx, gy = np.meshgrid(np.linspace(8, 55, 6), np.linspace(8, 55, 6))
    x0, y0 = gx.ravel() + rng.uniform(-1, 1, 36), gy.ravel() + rng.uniform(-1, 1, 36)
    ra, dec = _wcs((0, 0)).all_pix2world(x0, y0, 0)
    return ra, dec, rng.uniform(20.0, 200.0, 36)


def _frames(sky, exptimes=(100.0,) * 4, units="electrons", sky_rate=0.0, seed=None):
    ra, dec, rate = sky
    rng = None if seed is None else np.random.default_rng(seed)
    frames = []
    for shift, t in zip(DITHERS, exptimes, strict=True):
        w = _wcs(shift)
        x, y = w.all_world2pix(ra, dec, 0)
        counts = _render(SHAPE, x, y, rate * t, SIGMA) + sky_rate * t
        if rng is not None:
            counts = rng.poisson(counts).astype(np.float64)
        header = fits.Header({"BUNIT": units, "EXPTIME": t, "SATURATE": 60000.0})
        frames.append(SciImage.from_array(counts.astype(np.float32), wcs=w, domain="sky",
                                          meta={"units": units, "fits_header": header, "source": f"f{len(frames)}"}))
    return frames


def _truth(sky, t, sky_rate=0.0):
    """The scene on the first frame's ×2 grid: e⁻ per HR pixel in ``t`` seconds."""
    ra, dec, rate = sky
    x, y = upscale_wcs(_wcs((0, 0)), (2, 2)).all_world2pix(ra, dec, 0)
    return _render((SHAPE[0] * 2, SHAPE[1] * 2), x, y, rate * t, 2 * SIGMA) + sky_rate * t / 4


def _psnr(image, truth):
    return 10 * np.log10(truth.max() ** 2 / np.mean((image.astype(np.float64) - truth) ** 2))


def test_grid_flux_and_astrometry(sky):
    frames = _frames(sky)
    out = drizzle_frames(frames, (2, 2))
    single = sciSR.upscale(frames[0], "cubic", 2, flux="conserve")
    # Exactly the single-image FOV-preserving grid.
    assert out.array.shape == single.array.shape == (128, 128)
    np.testing.assert_allclose(out.wcs.wcs.crpix, single.wcs.wcs.crpix)
    np.testing.assert_allclose(out.wcs.pixel_scale_matrix, single.wcs.pixel_scale_matrix)
    # Counts per output pixel: the total is a frame's total.
    total = out.array.astype(np.float64).sum()
    for frame in frames:
        assert abs(total / frame.array.astype(np.float64).sum() - 1) < 1e-6
    assert abs(total / _truth(sky, 100.0).sum() - 1) < 1e-6
    # Windowed centroids of the drizzled stars, through the output WCS, on the true sky positions.
    ra, dec, _ = sky
    x, y = out.wcs.all_world2pix(ra, dec, 0)
    xc, yc = refine_centroids(out.array, x + 0.3, y - 0.3, 4.0, 0.0)
    ra_c, dec_c = out.wcs.all_pix2world(xc, yc, 0)
    off_lr = np.hypot((ra_c - ra) * np.cos(np.deg2rad(dec)), dec_c - dec) / PIXEL_DEG
    assert np.all(off_lr < 0.05), off_lr.max()
    assert np.isfinite(out.array).all() and not out.meta["mask"].any()
    # Weight: Σ EXPTIME × the fraction of each drop in the pixel = 4 × 100 / 4 where all 4 frames cover it.
    weight = out.meta["weight"]
    assert weight.shape == out.array.shape and weight[10:-10, 10:-10] == pytest.approx(100.0)
    step = out.meta["provenance"][-1]
    assert step["model"] == "drizzle" and step["frames"] == 4 and step["scale"] == [2, 2]
    assert step["flux"] == "conserve" and step["sources"] == ["f0", "f1", "f2", "f3"]
    header = out.meta["fits_header"]
    assert header["SATURATE"] == pytest.approx(15000.0) and header["NCOMBINE"] == 4
    assert out.meta["grid_factors"] == (2, 2)


def test_exptime_weights_and_units(sky):
    exptimes = (100.0, 200.0, 100.0, 50.0)
    out = drizzle_frames(_frames(sky, exptimes), 2)
    # Counts for the mean exposure time: a frame's count rate × mean EXPTIME.
    assert out.meta["exptime"] == out.meta["fits_header"]["EXPTIME"] == pytest.approx(112.5)
    total = out.array.astype(np.float64).sum()
    for frame, t in zip(_frames(sky, exptimes), exptimes, strict=True):
        assert abs(total / 112.5 / (frame.array.astype(np.float64).sum() / t) - 1) < 1e-6
    assert out.meta["weight"][64, 64] == pytest.approx(sum(exptimes) / 4)
    # A rate keeps its scale per input pixel ÷ 4; surface brightness keeps its values.
    rates = [f.replace(array=f.array / t, meta={**f.meta, "units": "electrons/s"})
             for f, t in zip(_frames(sky, exptimes), exptimes, strict=True)]
    out_rate = drizzle_frames(rates, 2)
    assert abs(out_rate.array.astype(np.float64).sum() / rates[0].array.astype(np.float64).sum() - 1) < 1e-6
    flat = [f.replace(array=np.full(SHAPE, 3.0, np.float32), meta={**f.meta, "units": "MJy/sr"})
            for f in _frames(sky, exptimes)]
    out_flat = drizzle_frames(flat, 2)
    assert out_flat.meta["provenance"][-1]["flux"] == "mean"
    np.testing.assert_allclose(out_flat.array[2:-2, 2:-2], 3.0, rtol=1e-6)


def test_frame_of_another_pixel_size(sky):
    """A coarser exposure (0.4"/pixel, rotated 30°, covering the first frame) joins: counts still add up."""
    ra, dec, rate = sky
    coarse = _wcs((0.25, -0.25), (48, 48), 2 * PIXEL_DEG)
    angle = np.deg2rad(30.0)
    coarse.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    x, y = coarse.all_world2pix(ra, dec, 0)
    # In the rotated frame the stars stay circular: render in its own pixels (σ halves with 2× pixels).
    counts = _render((48, 48), x, y, rate * 100.0, SIGMA / 2)
    extra = SciImage.from_array(counts.astype(np.float32), wcs=coarse, domain="sky",
                                meta={"units": "electrons", "exptime": 100.0})
    frames = [_frames(sky)[0], extra]
    out = drizzle_frames(frames, 2)
    assert abs(np.nansum(out.array.astype(np.float64)) / frames[0].array.astype(np.float64).sum() - 1) < 1e-6
    assert out.meta["weight"][64, 64] == pytest.approx(100 / 4 + 100 / 16)


def test_better_than_one_frame_cubic(sky):
    """Sky-limited exposures (faint 2–20 e⁻/s stars on 2 e⁻/s sky, Poisson noise): four drizzled frames beat
    one cubic-upscaled frame (measured: 37.5 vs 33.9 dB). For bright stars the pixfrac=1 drop's blur costs
    more than the noise gain and one frame's cubic wins; benchmarks/drizzle.py tabulates both."""
    faint = (sky[0], sky[1], sky[2] / 10)
    frames = _frames(faint, sky_rate=2.0, seed=1)
    truth = _truth(faint, 100.0, sky_rate=2.0)
    psnr_drizzle = _psnr(drizzle_frames(frames, 2).array, truth)
    psnr_cubic = _psnr(sciSR.upscale(frames[0], "cubic", 2, flux="conserve").array, truth)
    assert psnr_drizzle > psnr_cubic + 2.0, (psnr_drizzle, psnr_cubic)


def test_masked_pixels_and_partial_coverage(sky):
    frames = _frames(sky)
    frames[1].array[30:34, 30:34] = np.nan  # a cosmic-ray hole: the other frames fill it
    frames[0].meta["mask"] = np.zeros(SHAPE, bool)
    frames[0].meta["mask"][:, :8] = True
    for frame in frames[1:]:
        frame.meta["mask"] = np.ones(SHAPE, bool)
        frame.meta["mask"][:, 8:] = False
    out = drizzle_frames(frames, 2)
    # Frames shifted by +0.5 LR pixel (CRPIX) reach half an LR pixel (one HR column) further left.
    assert out.meta["mask"][:, :15].all() and np.isnan(out.array[:, :15]).all()
    assert not out.meta["weight"][:, :15].any() and out.meta["weight"][20:-20, 15] == pytest.approx(50.0)
    assert np.isfinite(out.array[:, 15:]).all() and out.meta["weight"][62:66, 62:66] == pytest.approx(75.0)


def test_refusals(sky):
    frames = _frames(sky)
    with pytest.raises(SciSRError, match=r"at least 2 dithered frames.*single"):
        drizzle_frames(frames[:1], 2)
    with pytest.raises(SciSRError, match=r"celestial WCS.*frame 1"):
        drizzle_frames([frames[0], frames[1].replace(wcs=None)], 2)
    far = _wcs((0, 0))
    far.wcs.crpix = [5000.0, 5000.0]
    with pytest.raises(SciSRError, match="frame 1 does not overlap"):
        drizzle_frames([frames[0], frames[1].replace(wcs=far)], 2)
    with pytest.raises(SciSRError, match=r"one BUNIT.*frame 1"):
        drizzle_frames([frames[0], frames[1].replace(meta={**frames[1].meta, "units": "MJy/sr"})], 2)
    with pytest.raises(SciSRError, match="2D frames; frame 1"):
        drizzle_frames([frames[0], SciImage.from_array(np.zeros((2, *SHAPE), np.float32), wcs=frames[1].wcs)], 2)
    no_exptime = {k: v for k, v in frames[1].meta.items() if k != "fits_header"}
    with pytest.raises(SciSRError, match="frame 1 has no EXPTIME"):
        drizzle_frames([frames[0], frames[1].replace(meta=no_exptime)], 2)
    with pytest.raises(SciSRError, match="kernel"):
        drizzle_frames(frames, 2, kernel="box")
    with pytest.raises(SciSRError, match="pixfrac"):
        drizzle_frames(frames, 2, pixfrac=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pixfrac < 1 and another kernel run without complaint
        assert np.isfinite(drizzle_frames(frames, 2, pixfrac=0.8, kernel="turbo").array[20:-20, 20:-20]).all()


def test_science_report_on_drizzled_frames(sky):
    """photutils' view of the drizzled image against the first exposure: same fluxes and positions, and
    the pixfrac=1 drop's blur is visible as a wider fitted PSF."""
    from sciSR.science import report

    frames = _frames(sky, sky_rate=2.0, seed=1)
    result = report(frames[0], drizzle_frames(frames, 2), aperture=3.0)  # stars are ~9 LR pixels apart
    assert result.flux_mode == "conserve" and result.n_measured >= 30
    assert abs(result.flux_ratio_median - 1) < 0.005 and result.centroid_shift_lr_px_max < 0.05
    assert abs(result.psf_flux_ratio_median - 1) < 0.01
    # A pixfrac=1 drop is a box one LR pixel wide: it adds 1/12 px² to the PSF's variance, so the fitted FWHM
    # grows by at least sqrt(1 + 1/(12σ²)) (drizzle's overlap weighting widens it a little more).
    widening = np.sqrt(1 + 1 / (12 * SIGMA**2))
    ratio = result.psf_fwhm_sr_lr_px_median / result.psf_fwhm_lr_px_median
    assert widening - 0.03 < ratio < widening + 0.1, (ratio, widening)


def test_missing_drizzle_package_is_one_line(sky, monkeypatch):
    monkeypatch.setitem(sys.modules, "drizzle.resample", None)  # makes the import raise ImportError
    with pytest.raises(SciSRError, match=r"pip install scisr\[astro\]"):
        drizzle_frames(_frames(sky), 2)


def test_drizzle_through_upscale_and_list_models(sky):
    frames = _frames(sky)
    direct = drizzle_frames(frames, 2)
    via_api = sciSR.upscale(frames, "drizzle", 2)
    np.testing.assert_array_equal(np.nan_to_num(via_api.array), np.nan_to_num(direct.array))
    assert "drizzle" in sciSR.list_models()
    with pytest.raises(SciSRError, match="pass a list of frames"):
        sciSR.upscale(frames[0], "drizzle", 2)
    with pytest.raises(SciSRError, match="drizzle takes its flux mode from BUNIT"):
        sciSR.upscale(frames, "drizzle", 2, flux="mean")
    assert sciSR.upscale(frames, "drizzle", 2, flux="conserve").meta["flux_mode"] == "conserve"  # BUNIT's own


def test_a_fits_output_carries_the_weight_map_as_wht(sky, tmp_path):
    out = drizzle_frames(_frames(sky), (2, 2))
    path = sciSR.write(out, tmp_path / "drizzled.fits")
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "WHT"]
        assert hdul["WHT"].header["BUNIT"] == "s"
        np.testing.assert_array_equal(hdul["WHT"].data, out.meta["weight"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w_sci, w_wht = WCS(hdul[0].header), WCS(hdul["WHT"].header)
    corners = [[0, 0], [127, 127]]
    np.testing.assert_allclose(w_wht.all_pix2world(corners, 0), w_sci.all_pix2world(corners, 0))


def test_cli_drizzles_stacked_fits_frames(sky, tmp_path):
    from sciSR.cli import main

    paths = []
    for k, frame in enumerate(_frames(sky)):
        header = frame.meta["fits_header"].copy()
        header.update(frame.wcs.to_header())
        paths.append(tmp_path / f"f{k}.fits")
        fits.writeto(paths[-1], frame.array, header)
    stacks = [arg for path in paths for arg in ("--stack", str(path))]
    assert main(["upscale", *stacks, str(tmp_path / "out.fits"), "--model", "drizzle", "--scale", "2"]) == 0
    with fits.open(tmp_path / "out.fits") as hdul:
        assert hdul[0].data.shape == (128, 128) and hdul["WHT"].data.shape == (128, 128)
        assert abs(np.nansum(hdul[0].data, dtype=np.float64) / np.sum(fits.getdata(paths[0]), dtype=np.float64)
                   - 1) < 1e-5
    # The same frames fused by sky position (the cubic average; a multi-input model file takes the same path).
    assert main(["upscale", *stacks, str(tmp_path / "fused.fits"), "--model", "cubic", "--scale", "2",
                 "--flux", "conserve"]) == 0
    with fits.open(tmp_path / "fused.fits") as hdul:
        assert hdul["WHT"].data.shape == (128, 128) and hdul[0].header["NCOMBINE"] == 4
        np.testing.assert_allclose(hdul[0].data.sum(dtype=np.float64),
                                   np.mean([fits.getdata(p).sum(dtype=np.float64) for p in paths]), rtol=1e-6)


def _blocks(array, factors=(2, 2)):
    h, w = array.shape
    return array.astype(np.float64).reshape(h // factors[0], factors[0], w // factors[1], factors[1]).sum(axis=(1, 3))


def test_fusion_by_sky_position_grid_flux_and_weight(sky):
    """The cubic average of the frames placed by WCS: the first frame's ×2 grid, the frames' average total,
    drizzle's WHT convention — and sharper than drizzle, whose pixfrac-1 drops add a box blur."""
    frames = _frames(sky)
    fused = sciSR.upscale(frames, "cubic", 2)
    assert fused.array.shape == (128, 128) and fused.meta["flux_mode"] == "conserve"
    expected = upscale_wcs(frames[0].wcs, (2, 2))
    corners = [[0, 0], [127, 127], [31.5, 80.25]]
    np.testing.assert_allclose(fused.wcs.all_pix2world(corners, 0), expected.all_pix2world(corners, 0), atol=1e-12)
    # Each frame's flux projection, averaged: the total is the frames' average total, as drizzle's is.
    totals = [f.array.sum(dtype=np.float64) for f in frames]
    np.testing.assert_allclose(fused.array.sum(dtype=np.float64), np.mean(totals), rtol=1e-6)
    np.testing.assert_allclose(fused.meta["weight"][40:-40, 40:-40], 100.0)  # ΣEXPTIME / (2·2)
    one = sciSR.upscale(frames[:1], "cubic", 2)  # one frame: its exact block projection
    np.testing.assert_allclose(_blocks(one.array), frames[0].array, rtol=0, atol=1e-5 * frames[0].array.max())
    assert "WHT" in fused.meta["fits_extensions"] and fused.meta["fits_header"]["NCOMBINE"] == 4
    step = fused.meta["provenance"][-1]
    assert step["frames"] == 4 and step["model"].startswith("average of 4 stacks") and step["flux"] == "conserve"
    truth = _truth(sky, 100.0)
    assert _psnr(fused.array, truth) > _psnr(drizzle_frames(frames, 2).array, truth) + 1.0


def test_fusion_by_sky_position_respects_exptime(sky):
    """Frames of 100 and 200 s in electrons: each is put on the mean exposure (125 s) before fusing, so the
    result holds the frames' counts scaled to 125 s."""
    frames = _frames(sky, exptimes=(100.0, 200.0, 100.0, 100.0))
    fused = sciSR.upscale(frames, "linear", 2)
    assert fused.meta["exptime"] == pytest.approx(125.0)
    np.testing.assert_allclose(fused.array.sum(), frames[0].array.sum() * 1.25, rtol=1e-5)
    surface = [f.replace(meta={**f.meta, "units": "MJy/sr"}) for f in _frames(sky)]
    mean = sciSR.upscale(surface, "cubic", 2)
    assert mean.meta["flux_mode"] == "mean"
    np.testing.assert_allclose(mean.array.mean(dtype=np.float64), np.mean([f.array.mean(dtype=np.float64)
                                                                           for f in surface]), rtol=1e-6)
    none = sciSR.upscale(frames, "cubic", 2, flux="none")
    assert none.meta["flux_mode"] == "none"


def test_learned_fusion_of_sky_frames_is_flux_exact_and_tiles(sky):
    torch = pytest.importorskip("torch")
    from sciSR.models import create_model

    torch.manual_seed(0)
    net = create_model("oktay-multi", scale=(2, 2), spatial_dims=2, features=8, stream_layers=1,
                       refine_layers=2).eval()
    frames = _frames(sky, seed=3)  # Poisson noise, no sky: the frames' edges (which the dithers do not share) are empty
    whole = sciSR.upscale(frames, net, 2)
    tiled = sciSR.upscale(frames, net, 2, tile=48)
    assert whole.array.shape == (128, 128) and np.isfinite(whole.array).all()
    np.testing.assert_allclose(tiled.array, whole.array, atol=1e-4 * float(np.abs(whole.array).max()))
    np.testing.assert_allclose(whole.array.sum(dtype=np.float64),
                               np.mean([f.array.sum(dtype=np.float64) for f in frames]), rtol=1e-5)
    assert whole.meta["provenance"][-1]["model"] == "oktay-multi"


def test_fusion_by_sky_position_refusals(sky):
    frames = _frames(sky)
    far = _wcs((0, 0))
    far.wcs.crpix = [5000.0, 5000.0]
    with pytest.raises(SciSRError, match="stack 1 does not overlap"):
        sciSR.upscale([frames[0], frames[1].replace(wcs=far)], "cubic", 2)
    with pytest.raises(SciSRError, match=r"one BUNIT.*frame 1"):
        sciSR.upscale([frames[0], frames[1].replace(meta={**frames[1].meta, "units": "MJy/sr"})], "cubic", 2)
    placed = SciImage.from_array(frames[1].array, affine=np.eye(4))
    with pytest.raises(SciSRError, match="fuse stacks of one kind"):
        sciSR.upscale([frames[0], placed], "cubic", 2)
    with pytest.raises(SciSRError, match="neither an affine"):
        sciSR.upscale([frames[0], frames[1].replace(wcs=None)], "cubic", 2)
    no_exptime = {k: v for k, v in frames[1].meta.items() if k != "fits_header"}
    with pytest.raises(SciSRError, match="frame 1 has no EXPTIME"):
        sciSR.upscale([frames[0], frames[1].replace(meta=no_exptime)], "cubic", 2)
    with pytest.raises(SciSRError, match="flux must be one of"):
        sciSR.upscale(frames, "cubic", 2, flux="sum")
    medical = [SciImage.from_array(np.ones((8, 8, 8), np.float32), affine=np.eye(4)) for _ in range(2)]
    with pytest.raises(SciSRError, match="flux= applies to sky frames"):
        sciSR.upscale(medical, "cubic", 2, flux="conserve")
