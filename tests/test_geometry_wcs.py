"""upscale_wcs and upscale_fits_grid_keywords: the same star before and after, to 1e-6 LR pixels.

Input pixel (x, y) (0-based) and output pixel ((x + 0.5)·sx − 0.5, (y + 0.5)·sy − 0.5) must have the
same world coordinates through the full forward transform (all_pix2world, SIP included). Scale
tuples are numpy order (sy, sx): scale[1] applies to CRPIX1.
"""

import os
import warnings

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning, Sip
from astropy.wcs.utils import proj_plane_pixel_scales

from sciSR.errors import SciSRError
from sciSR.geometry import upscale_fits_grid_keywords, upscale_wcs

WCS_DATA = os.path.join(os.path.dirname(astropy.__file__), "wcs", "tests", "data")
SCALES = [(2, 2), (3, 3), (2, 3), (4, 1), (1, 5)]


def load_wcs(header, fobj=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, fobj)


def tan_header(**cards):
    header = fits.Header()
    header.update(NAXIS=2, NAXIS1=120, NAXIS2=90, CTYPE1="RA---TAN", CTYPE2="DEC--TAN",
                  CRVAL1=150.1, CRVAL2=2.2, CRPIX1=61.3, CRPIX2=44.7)
    header.update(cards)
    return header


def tan_cd():
    # Rotated and slightly skewed, so a wrong column/row division shows up.
    return load_wcs(tan_header(CD1_1=-2.1e-4, CD1_2=0.6e-4, CD2_1=0.5e-4, CD2_2=2.0e-4))


def tan_pc():
    return load_wcs(tan_header(CDELT1=-2.5e-4, CDELT2=2.5e-4, PC1_1=0.9, PC1_2=-0.35, PC2_1=0.4, PC2_2=0.95))


def tan_crota():
    return load_wcs(tan_header(CDELT1=-3e-4, CDELT2=3e-4, CROTA2=25.0))


def sip_irac():
    """A real Spitzer/IRAC header: CD matrix and 3rd-order SIP with its inverse."""
    header = fits.Header.fromfile(os.path.join(WCS_DATA, "irac_sip.hdr"), sep="", endcard=False, padding=False)
    wcs = load_wcs(header)
    assert wcs.sip is not None and wcs.wcs.has_cd()
    return wcs


def sip_pc():
    """astropy's sip.fits: PC + CDELT with SIP, no image size in the header."""
    with fits.open(os.path.join(WCS_DATA, "sip.fits")) as hdul:
        wcs = load_wcs(hdul[0].header)
    wcs.pixel_shape = (256, 256)
    assert wcs.sip is not None and not wcs.wcs.has_cd()
    return wcs


def sip_synthetic():
    """Strong, asymmetric SIP built through astropy.wcs.Sip, so every coefficient matters."""
    wcs = tan_pc()
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 2], a[3, 0], a[1, 2] = 2e-4, -3e-4, 1.5e-4, 4e-7, -6e-7
    b[2, 0], b[1, 1], b[0, 2], b[0, 3], b[2, 1] = -1e-4, 2.5e-4, 3e-4, -5e-7, 8e-7
    wcs.sip = Sip(a, b, None, None, wcs.wcs.crpix)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    wcs.wcs.set()
    return wcs


def lr_points(wcs, n=400, seed=0):
    """0-based LR pixel positions: the four FOV corners, edge midpoints, centre and random points."""
    nx, ny = wcs.pixel_shape[:2] if wcs.pixel_shape is not None else (120, 90)
    rng = np.random.default_rng(seed)
    x = np.r_[-0.5, nx - 0.5, -0.5, nx - 0.5, (nx - 1) / 2, -0.5, (nx - 1) / 2, rng.uniform(-0.5, nx - 0.5, n)]
    y = np.r_[-0.5, -0.5, ny - 0.5, ny - 0.5, -0.5, (ny - 1) / 2, (ny - 1) / 2, rng.uniform(-0.5, ny - 0.5, n)]
    return x, y


def mapped(x, y, scale):
    sy, sx = scale
    return (x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5


def lr_pixel_error(w_lr, w_hr, scale):
    """Largest sky distance between matched points, in LR pixels."""
    x, y = lr_points(w_lr)
    ra0, dec0 = w_lr.all_pix2world(x, y, 0)
    ra1, dec1 = w_hr.all_pix2world(*mapped(x, y, scale), 0)
    # Small-angle separation in degrees (the points are within a degree of each other).
    sep = np.hypot((ra1 - ra0) * np.cos(np.deg2rad(dec0)), dec1 - dec0)
    return float(sep.max() / proj_plane_pixel_scales(w_lr.celestial).min())


@pytest.mark.parametrize("make", [tan_cd, tan_pc, tan_crota, sip_irac, sip_pc, sip_synthetic])
@pytest.mark.parametrize("scale", SCALES)
def test_world_coordinates_of_matched_points(make, scale):
    w_lr = make()
    w_hr = upscale_wcs(w_lr, scale)
    assert lr_pixel_error(w_lr, w_hr, scale) <= 1e-6
    # What the FITS writer stores must describe the same grid (header precision, SIP cards).
    assert lr_pixel_error(w_lr, load_wcs(w_hr.to_header(relax=True)), scale) <= 1e-6
    assert w_hr.pixel_shape == (w_lr.pixel_shape[0] * scale[1], w_lr.pixel_shape[1] * scale[0])
    assert (w_hr.sip is None) == (w_lr.sip is None)


def test_input_wcs_is_not_modified():
    w_lr = sip_irac()
    before = w_lr.to_header(relax=True)
    upscale_wcs(w_lr, (2, 3))
    assert w_lr.to_header(relax=True) == before


@pytest.mark.parametrize("scale", SCALES)
def test_crpix_and_linear_terms(scale):
    sy, sx = scale
    w_lr = tan_cd()
    w_hr = upscale_wcs(w_lr, scale)
    np.testing.assert_allclose(w_hr.wcs.crpix, [(61.3 - 0.5) * sx + 0.5, (44.7 - 0.5) * sy + 0.5], rtol=1e-14)
    np.testing.assert_allclose(w_hr.wcs.crval, w_lr.wcs.crval, rtol=0)
    # CD columns are pixel axes: column 1 (x) ÷ sx, column 2 (y) ÷ sy.
    np.testing.assert_allclose(w_hr.wcs.cd, w_lr.wcs.cd / [sx, sy], rtol=1e-14)
    np.testing.assert_allclose(w_hr.pixel_scale_matrix, w_lr.pixel_scale_matrix / [sx, sy], rtol=1e-14)


def test_pc_cdelt_equal_factors_divide_cdelt():
    w_lr = tan_pc()
    w_hr = upscale_wcs(w_lr, (4, 4))
    np.testing.assert_allclose(w_hr.wcs.cdelt, w_lr.wcs.cdelt / 4, rtol=1e-14)
    np.testing.assert_allclose(w_hr.wcs.get_pc(), w_lr.wcs.get_pc(), rtol=1e-14)
    np.testing.assert_allclose(w_hr.wcs.crpix, (w_lr.wcs.crpix - 0.5) * 4 + 0.5, rtol=1e-14)


def test_sip_coefficients_follow_the_guide():
    # A'_pq = A_pq·sx^(1-p)·sy^(-q), B'_pq = B_pq·sx^(-p)·sy^(1-q); same for AP, BP.
    sy, sx = 2.0, 3.0
    w_lr = sip_irac()
    w_hr = upscale_wcs(w_lr, (2, 3))
    p, q = np.indices(w_lr.sip.a.shape)
    np.testing.assert_allclose(w_hr.sip.a, w_lr.sip.a * sx ** (1 - p) * sy ** (-q), rtol=1e-14)
    np.testing.assert_allclose(w_hr.sip.b, w_lr.sip.b * sx ** (-p) * sy ** (1 - q), rtol=1e-14)
    p, q = np.indices(w_lr.sip.ap.shape)
    np.testing.assert_allclose(w_hr.sip.ap, w_lr.sip.ap * sx ** (1 - p) * sy ** (-q), rtol=1e-14)
    np.testing.assert_allclose(w_hr.sip.bp, w_lr.sip.bp * sx ** (-p) * sy ** (1 - q), rtol=1e-14)
    np.testing.assert_allclose(w_hr.sip.crpix, w_hr.wcs.crpix)


def test_sip_inverse_is_approximately_right():
    # The inverse polynomial (AP/BP) is itself an approximation (~1e-4 px): only check it stays one.
    w_lr = sip_irac()
    w_hr = upscale_wcs(w_lr, (2, 2))
    x, y = lr_points(w_lr, n=50)
    xx, yy = w_hr.all_world2pix(*w_lr.all_pix2world(x, y, 0), 0, tolerance=1e-10)
    hx, hy = mapped(x, y, (2, 2))
    assert np.abs(np.r_[xx - hx, yy - hy]).max() / 2 <= 1e-6


def test_cube_spectral_axis_untouched():
    header = tan_header(CD1_1=-2e-4, CD2_2=2e-4, NAXIS=3, NAXIS3=16, CTYPE3="FREQ", CUNIT3="Hz",
                        CRVAL3=1.4e9, CD3_3=1e6, CRPIX3=1.0)
    w_lr = load_wcs(header)
    scale = (1, 2, 3)  # numpy (freq, y, x)
    w_hr = upscale_wcs(w_lr, scale)
    x, y = lr_points(w_lr, n=20)
    z = np.linspace(0, 15, x.size)
    before = np.array(w_lr.all_pix2world(x, y, z, 0))
    after = np.array(w_hr.all_pix2world((x + 0.5) * 3 - 0.5, (y + 0.5) * 2 - 0.5, z, 0))
    np.testing.assert_allclose(after[2], before[2], rtol=1e-14)
    assert np.abs(after[:2] - before[:2]).max() / 2e-4 <= 1e-6
    assert w_hr.pixel_shape == (360, 180, 16)


def test_wrong_number_of_factors():
    with pytest.raises(SciSRError, match="3 factors but the WCS has 2 axes"):
        upscale_wcs(tan_cd(), (1, 2, 2))


def test_lookup_table_distortion_is_refused():
    with fits.open(os.path.join(WCS_DATA, "dist_lookup.fits.gz")) as hdul:
        wcs = load_wcs(hdul[1].header, hdul)
    assert wcs.cpdis1 is not None or wcs.det2im1 is not None
    with pytest.raises(SciSRError, match="CPDIS/D2IM"):
        upscale_wcs(wcs, (2, 2))


# --- upscale_fits_grid_keywords ------------------------------------------------------------------


def grid_header():
    header = fits.Header()
    header.update(NAXIS=2, NAXIS1=100, NAXIS2=60, LTV1=-20.0, LTV2=-10.0, LTM1_1=0.5, LTM2_2=0.5,
                  LTM1_2=0.1, DATASEC="[1:100,1:60]", TRIMSEC="[3:98,5:56]", BIASSEC="[101:110,1:60]",
                  PIXAR=2.5e-11, PIXSCALE=0.2, OBJECT="M51")
    return header


def physical_to_logical(header, px, py):
    """IRAF: logical (1-based image pixel) = LTM · physical + LTV."""
    lx = header["LTM1_1"] * px + header.get("LTM1_2", 0.0) * py + header["LTV1"]
    ly = header.get("LTM2_1", 0.0) * px + header["LTM2_2"] * py + header["LTV2"]
    return lx, ly


@pytest.mark.parametrize("scale", [(2, 2), (2, 3), (3, 1)])
def test_ltv_ltm_map_physical_pixels_to_the_new_grid(scale):
    sy, sx = scale
    old = grid_header()
    new = old.copy()
    changed = upscale_fits_grid_keywords(new, scale)
    assert {"LTV1", "LTV2", "LTM1_1", "LTM2_2", "LTM1_2", "DATASEC", "PIXAR"} <= set(changed)
    px, py = np.meshgrid(np.linspace(40, 240, 7), np.linspace(20, 140, 5))
    lx, ly = physical_to_logical(old, px, py)
    nx, ny = physical_to_logical(new, px, py)
    # 1-based FITS pixel x maps to (x - 0.5)·s + 0.5.
    np.testing.assert_allclose(nx, (lx - 0.5) * sx + 0.5, rtol=1e-13)
    np.testing.assert_allclose(ny, (ly - 0.5) * sy + 0.5, rtol=1e-13)


def test_sections_pixar_pixscale():
    header = grid_header()
    upscale_fits_grid_keywords(header, (2, 3))
    assert header["DATASEC"] == "[1:300,1:120]"
    assert header["TRIMSEC"] == "[7:294,9:112]"
    assert header["BIASSEC"] == "[301:330,1:120]"
    assert header["PIXAR"] == pytest.approx(2.5e-11 / 6, rel=1e-14)
    # PIXSCALE is one number: anisotropic pixels get one scale per axis instead (scale is (sy, sx)).
    assert "PIXSCALE" not in header
    assert header["PIXSCAL1"] == pytest.approx(0.2 / 3) and header["PIXSCAL2"] == pytest.approx(0.1)
    assert header["OBJECT"] == "M51"

    header = grid_header()
    changed = upscale_fits_grid_keywords(header, (4, 4))
    assert header["PIXSCALE"] == pytest.approx(0.05) and "PIXSCALE" in changed


def test_grid_keywords_absent_or_unparsable_are_left_alone():
    header = fits.Header()
    header.update(OBJECT="x", DATASEC="whole chip")
    assert upscale_fits_grid_keywords(header, (2, 2)) == []
    assert header["DATASEC"] == "whole chip"


# Grids chosen by voxel size (spacing=) have factors n'/n that are not integers: 2.5, 3.3/0.36, 7/3.
@pytest.mark.parametrize("make", [tan_cd, tan_pc, sip_irac, sip_synthetic])
@pytest.mark.parametrize("scale", [(2.5, 2.5), (3.3 / 0.36, 7 / 3), (1.0, 2.5)])
def test_world_coordinates_of_matched_points_for_non_integer_factors(make, scale):
    w_lr = make()
    w_hr = upscale_wcs(w_lr, scale)
    assert lr_pixel_error(w_lr, w_hr, scale) <= 1e-6
    assert lr_pixel_error(w_lr, load_wcs(w_hr.to_header(relax=True)), scale) <= 1e-6
