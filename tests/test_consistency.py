"""Data-consistency projections: degrade(project(x, y)) == y, minimal change, noise behaviour, operator choice."""

import dataclasses
import json

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from scipy import ndimage

import sciSR
from sciSR.consistency import (
    ForwardModel,
    acquired_lines,
    degrade,
    estimate_noise_sigma,
    estimate_slice_profile,
    estimate_window,
    forward_model_for,
    project,
    recorrupted_pair,
    strongest_baseline,
    through_plane,
    without_rician_floor,
)
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.mri import kspace_downsample, thick_slice
from sciSR.errors import SciSRError
from sciSR.flux import enforce_flux
from sciSR.infer.interpolate import interpolate

# (HR shape, factors): 2D/3D, even and odd LR sizes, factors 2 and 3, anisotropic, a channel axis.
CASES = [
    ((24, 24), (2, 2)),
    ((27, 33), (3, 3)),
    ((20, 16), (1, 2)),
    ((8, 10, 16), (1, 1, 4)),
    ((9, 12, 10), (3, 2, 2)),
    ((16, 18, 3), (2, 2)),
]
OPERATORS = [
    dict(kind="kspace"),
    dict(kind="slice_profile"),
    dict(kind="slice_profile", profile="boxcar", fwhm=1.5),
    dict(kind="ct"),
    dict(kind="ct", fwhm=2.5),
    dict(kind="flux", flux="conserve"),
    dict(kind="flux", flux="mean"),
]


def _smooth(shape, seed, offset=5.0):
    """Positive structured image: blurred noise plus a gradient (k-space magnitudes then equal values)."""
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random(shape), 1.5) * 10
    return base + offset + np.linspace(0, 2, shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))


def _op(spec, factors):
    spec = dict(spec)
    if isinstance(spec.get("fwhm"), float):
        # A thickness or blur only on the degraded axes; 1.0 elsewhere (unused there).
        spec["fwhm"] = tuple(spec["fwhm"] if s > 1 else 1.0 for s in factors)
    return ForwardModel(factors=factors, **spec)


@pytest.mark.parametrize("shape,factors", CASES)
@pytest.mark.parametrize("spec", OPERATORS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_projection_reproduces_the_input(shape, factors, spec):
    op = _op(spec, factors)
    truth = _smooth(shape, 0)
    y = degrade(truth, op)
    x = np.random.default_rng(1).random(shape) * 20  # a poor estimate: noise, far from consistent
    p = project(x, y, op)
    assert p.dtype == np.float64 and p.shape == x.shape
    assert np.abs(degrade(x, op) - y).max() > 0.1 * np.abs(y).max()  # the estimate was inconsistent
    assert np.abs(degrade(p, op) - y).max() <= 1e-5 * np.abs(y).max()


@pytest.mark.parametrize("shape,factors", CASES)
@pytest.mark.parametrize("spec", OPERATORS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_projection_keeps_the_truth_and_moves_estimates_closer(shape, factors, spec):
    op = _op(spec, factors)
    truth = _smooth(shape, 2)
    y = degrade(truth, op)
    assert np.abs(project(truth, y, op) - truth).max() <= 1e-5 * np.abs(truth).max() or op.kind == "kspace"
    # A magnitude image of an even LR size lost the phase of its Nyquist line, so the truth is only nearly
    # consistent with it (see the MR test below); its projection is exactly consistent and serves as truth.
    truth = project(truth, y, op)
    y = degrade(truth, op)
    assert np.abs(project(truth, y, op) - truth).max() <= 1e-5 * np.abs(truth).max()
    # An orthogonal projection onto a set holding the truth never moves an estimate away from it.
    x = truth + np.random.default_rng(3).normal(0, 2, shape)
    p = project(x, y, op)
    assert np.linalg.norm(p - truth) <= np.linalg.norm(x - truth) * (1 + 1e-6)
    np.testing.assert_allclose(project(p, y, op), p, atol=1e-4 * np.abs(truth).max())


@pytest.mark.parametrize("spec,factors", [
    (dict(kind="kspace", noise_sigma=0.3, window="hamming"), (2, 2, 1)),
    (dict(kind="kspace", noise_sigma=0.0, acquired=(0.75, 1.0, 1.0)), (2, 1, 2)),
    (dict(kind="ct", noise_sigma=0.3), (2, 2, 1)),
    (dict(kind="slice_profile", noise_sigma=0.3), (1, 2, 1)),
], ids=lambda v: v["kind"] if isinstance(v, dict) else "x".join(map(str, v)))
def test_projection_is_separable_along_unscaled_axes(spec, factors):
    """What lets a result be projected slab by slab: each plane of an unscaled axis is projected alone,
    noise weights included (a multi-slice scan's slices each have their own k-space)."""
    op = ForwardModel(factors=factors, **spec)
    clean = degrade(_smooth((16, 12, 6), seed=3), op)
    lr = clean + np.random.default_rng(0).normal(0, 0.3, clean.shape)
    estimate = interpolate(lr, factors, "cubic")
    whole = project(estimate, lr, op)
    flat = next(a for a, f in enumerate(factors) if f == 1)
    for i in range(lr.shape[flat]):
        index = (slice(None),) * flat + (slice(i, i + 1),)
        np.testing.assert_allclose(project(estimate[index], lr[index], op), whole[index], rtol=0, atol=1e-9)


def test_kspace_projection_of_an_mr_slice_barely_moves_it():
    truth = sciSR.read(get_testdata_file("MR_small.dcm")).array.astype(np.float64)
    # Even LR sizes: only the Nyquist line's lost phase moves the truth (measured 0.7 % RMS, 2.5 % at most).
    for factors in ((2, 2), (1, 2)):
        op = ForwardModel("kspace", factors)
        change = project(truth, degrade(truth, op), op) - truth
        assert np.sqrt(np.mean(change**2)) <= 0.01 * truth.max() and np.abs(change).max() <= 0.04 * truth.max()
    odd = truth[:63, :63]
    op = ForwardModel("kspace", (3, 3))
    assert np.abs(project(odd, degrade(odd, op), op) - odd).max() <= 1e-5 * odd.max()


@pytest.mark.parametrize("spec", OPERATORS[:5], ids=lambda s: "-".join(str(v) for v in s.values()))
def test_degrade_calls_the_degradation_functions(spec):
    hr = _smooth((12, 18), 4)
    op = _op(spec, (2, 3))
    if op.kind == "kspace":
        expected = kspace_downsample(hr, (2, 3))
    elif op.kind == "slice_profile":
        expected = thick_slice(hr, (2, 3), op.profile, gap=[2 - op.fwhm[0], 3 - op.fwhm[1]])
    else:
        expected = ct_downsample(hr, (2, 3), op.fwhm)
    np.testing.assert_array_equal(degrade(hr, op), expected)


def test_flux_projection_is_enforce_flux_with_its_mask():
    rng = np.random.default_rng(5)
    x, y = rng.random((12, 12)), rng.random((6, 6)) * 4
    mask = np.zeros((6, 6), dtype=bool)
    mask[1, 2] = True
    y_nan = y.copy()
    y_nan[1, 2] = np.nan  # a masked sample may be NaN: it must not leak
    p = project(x, y_nan, ForwardModel("flux", (2, 2), flux="conserve"), mask=mask)
    np.testing.assert_allclose(p, enforce_flux(x, y, (2, 2), "conserve", mask=mask), atol=1e-6)
    np.testing.assert_array_equal(p[2:4, 4:6], x[2:4, 4:6])


@pytest.mark.parametrize("kind", ["kspace", "ct", "slice_profile"])
def test_mask_everywhere_changes_nothing(kind):
    x = _smooth((16, 16), 6)
    y = np.full((8, 8), np.nan)
    p = project(x, y, ForwardModel(kind, (2, 2)), mask=np.ones((8, 8), dtype=bool))
    np.testing.assert_allclose(p, x, atol=1e-9)


def test_windowed_noisy_projection_does_not_amplify_noise():
    rng = np.random.default_rng(7)
    truth = _smooth((64, 64), 8)
    sigma = 0.2
    y = kspace_downsample(truth, (2, 2), "hamming", sigma, rng)
    x = interpolate(y, (2, 2), "cubic").astype(np.float64)

    def error(noise_sigma):
        op = ForwardModel("kspace", (2, 2), window="hamming", noise_sigma=noise_sigma)
        return np.sqrt(np.mean((project(x, y, op) - truth) ** 2))

    exact, wiener, estimated = error(0.0), error(sigma), error(None)
    cubic = np.sqrt(np.mean((x - truth) ** 2))
    # Dividing by the window's corner weight (0.08²) blows the noise up; the weighted projection does not.
    assert exact > 10 * cubic
    assert wiener < 1.5 * cubic and estimated < 1.5 * cubic
    # Pure noise in, the weighted projection's output stays at the input's level.
    noise = rng.normal(0.0, 1.0, (32, 32))
    out = project(interpolate(noise, (2, 2), "cubic"), noise,
                  ForwardModel("kspace", (2, 2), window="hamming", noise_sigma=1.0))
    assert np.sqrt(np.mean(out**2)) < 1.5


def test_windowed_magnitude_projection_leaves_out_the_rician_floor():
    # An object on an empty background, acquired windowed with Rician noise: where there is no signal
    # the magnitude's noise has mean 1.25 σ, which a projection onto the input would put back.
    rng = np.random.default_rng(3)
    truth = np.zeros((64, 64))
    truth[16:48, 20:44] = ndimage.gaussian_filter(rng.random((32, 24)), 1.0) * 40 + 60
    sigma = 4.0
    y = kspace_downsample(truth, (2, 2), "hamming", sigma, rng).astype(np.float64)
    x = np.where(truth > 0, truth, 0.0)  # an estimate without floor, e.g. a network trained on Rician inputs
    background = truth == 0
    op = ForwardModel("kspace", (2, 2), window="hamming", noise_sigma=sigma)
    projected = project(x, y, op)
    assert abs(projected[background].mean()) < 0.5 * sigma
    # Without it (no window: σ then is no measure of the floor) the floor returns.
    floor = project(x, y, dataclasses.replace(op, window=None))[background].mean()
    assert floor > 0.9 * sigma
    assert without_rician_floor(np.array([0.0, sigma, 100.0]), sigma) == pytest.approx([0.0, 0.0, np.sqrt(1e4 - 32)])
    # Noise-free or signed inputs are projected as they are (degrade(project) == y).
    signed = y - y.mean()
    exact = dataclasses.replace(op, noise_sigma=0.0)
    np.testing.assert_allclose(degrade(project(x, y, exact), exact), y, atol=1e-6 * np.abs(y).max())
    assert not np.allclose(project(x, signed, op), project(x, without_rician_floor(signed, sigma), op))


@pytest.mark.parametrize("kind,width", [("ct", 2.5), ("slice_profile", 2.0)])
def test_noisy_blur_projection_does_not_deconvolve_the_noise(kind, width):
    # Pure noise in: the exact correction divides it by the blur's small singular values (measured RMS
    # 4.6 for the CT blur, 1.7 for the slice profile); the weighted one keeps it at the input's level.
    noise = np.random.default_rng(1).normal(0.0, 1.0, (32, 32))
    x = interpolate(noise, (2, 2), "cubic").astype(np.float64)
    op = ForwardModel(kind, (2, 2), fwhm=(width, width))

    def rms(noise_sigma):
        return np.sqrt(np.mean(project(x, noise, dataclasses.replace(op, noise_sigma=noise_sigma)) ** 2))

    exact, wiener, estimated = rms(0.0), rms(1.0), rms(None)
    assert wiener < 1.2 and estimated < 1.2
    assert exact > 1.4 * wiener


def test_default_ct_operator_estimates_its_noise():
    ct = sciSR.SciImage.from_array(np.zeros((8, 8)) - 1000, domain="ct")
    assert forward_model_for(ct, 2).noise_sigma is None
    # A noise-free input estimates σ = 0: the projection stays exact.
    truth = np.kron(np.arange(16.0).reshape(4, 4) % 5, np.ones((16, 16)))
    op = ForwardModel("ct", (2, 2), fwhm=1.75, noise_sigma=None)
    y = degrade(truth, op)
    assert estimate_noise_sigma(y, 2) == 0.0
    p = project(np.zeros_like(truth), y, op)
    assert np.abs(degrade(p, op) - y).max() <= 1e-5 * np.abs(y).max()


@pytest.mark.parametrize("window", ["hamming", "tukey"])
def test_windowed_noise_free_projection_is_exact(window):
    truth = _smooth((30, 24), 9)
    op = ForwardModel("kspace", (3, 2), window=window, noise_sigma=0.0)
    y = degrade(truth, op)
    p = project(np.zeros_like(truth), y, op)
    assert np.abs(degrade(p, op) - y).max() <= 1e-5 * y.max()


def test_zero_filled_acquisition_projects_on_its_measured_lines_only():
    truth = _smooth((32, 40), 12)
    op = ForwardModel("kspace", (2, 2), noise_sigma=0.0, acquired=(0.75, 0.5))
    y = degrade(truth, op)
    spectrum = np.fft.fft2(y)
    assert np.abs(spectrum[~acquired_lines(y.shape, op.acquired)]).max() <= 1e-9 * np.abs(spectrum).max()
    p = project(np.zeros_like(truth), y, op)
    assert np.abs(degrade(p, op) - y).max() <= 1e-5 * np.abs(y).max()
    # Lines the scanner never measured pull nothing: an estimate's content there survives the projection.
    every_line = kspace_downsample(truth, (2, 2))
    assert np.abs(every_line - y).max() > 0.01 * np.abs(y).max()  # the empty lines would have held this
    kept = degrade(project(truth, y, op), ForwardModel("kspace", (2, 2), noise_sigma=0.0))
    assert np.abs(kept - every_line).max() <= 1e-5 * np.abs(y).max()
    assert ForwardModel("kspace", (2, 2), acquired=(1, 1)).acquired is None
    for bad in ((0.0, 1.0), (1.2, 1.0), (0.5,)):
        with pytest.raises(SciSRError, match="acquired"):
            ForwardModel("kspace", (2, 2), acquired=bad)
    with pytest.raises(SciSRError, match="acquired"):
        ForwardModel("ct", (2, 2), acquired=(0.5, 0.5))


def test_noise_sigma_estimate():
    rng = np.random.default_rng(10)
    image = _smooth((96, 96), 11) + rng.normal(0.0, 0.5, (96, 96))
    assert estimate_noise_sigma(image, 2) == pytest.approx(0.5, rel=0.15)
    # A slice held as a volume (n, m, 1) and masked (NaN) samples: the same estimate, not NaN.
    assert estimate_noise_sigma(image[..., None], 3) == pytest.approx(estimate_noise_sigma(image, 2))
    holed = image.copy()
    holed[:10] = np.nan
    assert estimate_noise_sigma(holed, 2) == pytest.approx(0.5, rel=0.15)
    assert estimate_noise_sigma(np.ones((1, 1)), 2) == 0.0


def test_recorrupted_pair_has_independent_noises():
    rng = np.random.default_rng(11)
    clean = _smooth((256, 256), 11)
    noise = rng.normal(0.0, 0.5, clean.shape)
    source, reference, sigma = recorrupted_pair(clean + noise, 2, seed=3)
    assert sigma == pytest.approx(0.5, rel=0.15)
    n_source, n_reference = source - clean, reference - clean
    # Each carries more noise than the input (1 + α² and 1 + 1/α² times its variance), but uncorrelated.
    assert np.var(n_source) == pytest.approx(0.25 * 1.25, rel=0.1)
    assert np.var(n_reference) == pytest.approx(0.25 * 5.0, rel=0.1)
    assert abs(np.corrcoef(n_source.ravel(), n_reference.ravel())[0, 1]) < 0.05
    # Scored against the reference, keeping the source's noise no longer beats removing it (against the
    # input itself it would: there the two noises are one).
    assert np.mean((source - reference) ** 2) > np.mean((clean - reference) ** 2)
    assert np.mean((source - (clean + noise)) ** 2) < np.mean((clean - (clean + noise)) ** 2) * 1.3
    blocks = np.kron(np.arange(16.0).reshape(4, 4) % 5, np.ones((16, 16)))  # noise-free
    same, again, none = recorrupted_pair(blocks, 2, seed=3)
    assert none == 0.0 and np.array_equal(same, again)


def test_forward_model_validation_and_provenance():
    op = ForwardModel("slice_profile", (1, 1, 4), source="header")
    assert op.fwhm == (1.0, 1.0, 4.0) and op.axes == (2,)
    assert ForwardModel("ct", (2, 2)).fwhm == (1.0, 1.0)
    assert ForwardModel("kspace", (2, 2), window="none").window is None
    data = json.loads(json.dumps(op.to_dict()))
    assert data["kind"] == "slice_profile" and data["factors"] == [1, 1, 4] and data["source"] == "header"
    for bad in (dict(kind="blur"), dict(kind="kspace", window="kaiser"), dict(kind="kspace", noise_sigma=-1.0),
                dict(kind="flux", flux="sum"), dict(kind="ct", source="guess"), dict(kind="ct", fwhm=(1.0,))):
        with pytest.raises(SciSRError):
            ForwardModel(factors=(2, 2), **bad)
    with pytest.raises(SciSRError):
        ForwardModel("ct", 2)
    with pytest.raises(SciSRError):
        project(np.zeros((10, 10)), np.zeros((4, 4)), ForwardModel("ct", (2, 2)))


def _mri(array, spacing, meta=None):
    return sciSR.SciImage.from_array(array, spacing=spacing, domain="mri", meta=meta)


def test_forward_model_for_mri_in_plane():
    mr = sciSR.read(get_testdata_file("MR_small.dcm"))
    op = forward_model_for(mr, 2)
    # σ is estimated from the image (None): a noise-free image gets ≈ 0 (the exact projection), a noisy one
    # a Wiener-weighted projection that does not re-inject its noise.
    assert (op.kind, op.window, op.noise_sigma, op.source) == ("kspace", None, None, "default")
    # No guess from the spectrum: a windowed image without a card still gets the sharp default.
    windowed = _mri(kspace_downsample(mr.array, (2, 2), "hamming"), (0.6, 0.6))
    assert forward_model_for(windowed, (2, 2)).source == "default"
    op = forward_model_for(windowed, 2, card_degradation={"type": "kspace", "window_prob": 0.8})
    assert (op.window, op.noise_sigma, op.source) == ("hamming", None, "card")
    assert forward_model_for(windowed, 2, card_degradation={"type": "ct", "fwhm": [1, 2]}).source == "default"
    volume = _mri(np.ones((16, 16, 16)), (1.0, 1.0, 1.0))
    assert forward_model_for(volume, (2, 2, 1)).kind == "kspace"
    # The reader's share of measured lines (DICOM AcquisitionMatrix) goes to the scaled axes.
    zipped = sciSR.SciImage.from_array(mr.array, spacing=mr.spacing, domain="mri", meta={"acquired": (0.5, 0.75)})
    assert forward_model_for(zipped, (2, 2)).acquired == (0.5, 0.75)
    assert forward_model_for(zipped, (1, 2)).acquired == (1.0, 0.75)


def test_forward_model_for_thick_slices():
    stack = np.ones((16, 16, 6))
    op = forward_model_for(_mri(stack, (1.0, 1.0, 4.0)), (1, 1, 4))
    assert (op.kind, op.fwhm, op.source) == ("slice_profile", (1.0, 1.0, 4.0), "default")
    # What the DICOM reader records for SliceThickness 3 mm.
    recorded = _mri(stack, (1.0, 1.0, 4.0),
                    {"slice_thickness": 3.0, "slice_thickness_source": "dicom", "slice_axis": 2})
    op = forward_model_for(recorded, (1, 1, 4))
    assert (op.fwhm[2], op.source) == (pytest.approx(3.0), "header")  # 3 mm on a 1 mm HR grid
    assert op.slice_profile["gap_mm"] == pytest.approx(1.0)
    card = {"type": "thick_slice", "gap": [0.0, 1.0], "profile": "boxcar"}
    op = forward_model_for(_mri(stack, (1.0, 1.0, 4.0)), (1, 1, 4), card_degradation=card)
    assert (op.fwhm[2], op.profile, op.source) == (3.5, "boxcar", "card")
    # A 2D slice reformatted across 4 mm slices is upscaled across them too; one with 2:1 pixels
    # upscaled along one axis stays in k-space; a single plane of a volume gives no estimate.
    reformat = _mri(np.ones((16, 8)), (1.0, 4.0))
    assert through_plane(reformat, (1, 4)) and forward_model_for(reformat, (1, 4)).kind == "slice_profile"
    assert not through_plane(_mri(np.ones((16, 8)), (0.4, 0.8)), (1, 2))  # 2:1 acquired pixels
    assert forward_model_for(_mri(np.ones((16, 8, 1)), (1.0, 4.0, 1.0)), (1, 4, 1)).source == "default"
    with pytest.raises(SciSRError, match="single plane"):
        estimate_slice_profile(_mri(np.ones((64, 16, 1)), (1.0, 4.0, 1.0)), axis=1)


def test_forward_model_for_other_domains():
    ct = sciSR.SciImage.from_array(np.zeros((8, 8)) - 1000, domain="ct")
    assert forward_model_for(ct, 2).fwhm == (1.0, 1.0)
    op = forward_model_for(ct, 2, card_degradation={"type": "ct", "fwhm": [1.0, 2.5]})
    assert (op.kind, op.fwhm, op.source) == ("ct", (1.75, 1.75), "card")
    sky = sciSR.SciImage.from_array(np.zeros((8, 8)), domain="sky", meta={"units": "counts"})
    assert (forward_model_for(sky, 2).flux, forward_model_for(sky, 2).source) == ("conserve", "header")
    unitless = sciSR.SciImage.from_array(np.zeros((8, 8)), domain="sky")
    assert (forward_model_for(unitless, 2).flux, forward_model_for(unitless, 2).source) == ("mean", "default")
    assert forward_model_for(sciSR.SciImage.from_array(np.zeros((8, 8))), 2) is None
    assert forward_model_for(ct, 1) is None


def test_strongest_baseline():
    assert strongest_baseline("mri", (2, 2), through_plane=False) == "zerofill"
    assert strongest_baseline("mri", (1, 1, 4), through_plane=True) == "cubic"
    assert strongest_baseline("mri", 1, through_plane=False) == "cubic"
    for domain in ("ct", "sky", "generic"):
        assert strongest_baseline(domain, 2, through_plane=False) == "cubic"


def test_window_guess_needs_enough_voxels():
    assert estimate_window(np.ones((8, 64)), (0, 1)) is None
    assert estimate_window(np.ones((64, 64)), ()) is None


def test_kspace_window_from_the_dicom_header(tmp_path):
    """KSpaceFiltering (top level, or the enhanced-MR shared MR Modifier group) picks the window."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.KSpaceFiltering = "HAMMING"
    ds.save_as(tmp_path / "top.dcm")
    image = sciSR.read(tmp_path / "top.dcm")
    assert image.meta["kspace_filtering"] == "HAMMING"
    op = forward_model_for(image, 2, card_degradation={"type": "kspace", "window_prob": 0.0})
    assert (op.window, op.source) == ("hamming", "header")
    del ds.KSpaceFiltering
    modifier, shared = Dataset(), Dataset()
    modifier.KSpaceFiltering = "NONE"
    shared.MRModifierSequence = Sequence([modifier])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.save_as(tmp_path / "enhanced.dcm")
    op = forward_model_for(sciSR.read(tmp_path / "enhanced.dcm"), 2,
                           card_degradation={"type": "kspace", "window_prob": 0.9})
    assert (op.window, op.source) == (None, "header")
    # A window without an exact counterpart here falls back to the card rather than to a near miss.
    other = sciSR.read(tmp_path / "top.dcm")
    other.meta["kspace_filtering"] = "FERMI"
    assert forward_model_for(other, 2, card_degradation={"type": "kspace", "window_prob": 0.9}).source == "card"
    # A result of an upscale is no longer on the scanner's grid: the header's window does not describe it.
    up = sciSR.upscale(image, "linear", 2)
    assert up.meta["kspace_filtering"] == "HAMMING"
    op = forward_model_for(up, 2, card_degradation={"type": "kspace", "window_prob": 0.0})
    assert (op.window, op.source) == (None, "card")


def test_window_from_reference_tells_hamming_from_sharp_and_tukey():
    """Against the object itself (what a de-windowing network estimates), only a Hamming input reads as Hamming."""
    from skimage import data

    from sciSR.consistency import window_from_reference
    from sciSR.degrade.mri import kspace_downsample

    truth = data.camera()[128:384, 128:384].astype(np.float64)
    rng = np.random.default_rng(0)
    answers = {}
    for window in (None, "hamming", "tukey"):
        for noise in (0.0, 2.0):
            low = kspace_downsample(truth, (2, 2), window, noise_std=noise, rng=rng)
            answers[window, noise] = window_from_reference(low, truth, (2, 2))
    assert answers[None, 0.0] == answers[None, 2.0] == "none"
    assert answers["hamming", 0.0] == answers["hamming", 2.0] == "hamming"
    assert answers["tukey", 0.0] != "hamming" and answers["tukey", 2.0] != "hamming"
    # A window lives in k-space: a reduction of another object, or too few lines, says nothing.
    assert window_from_reference(np.ones((8, 64)), np.ones((16, 128)), (2, 2)) is None
    assert window_from_reference(kspace_downsample(truth, (2, 2), "hamming"), truth, (1, 1)) is None
