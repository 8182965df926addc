"""Shared real frames for the astronomy tests: astropy's shipped FITS files and a SIP header."""

import warnings
from pathlib import Path

import astropy
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

ASTROPY = Path(astropy.__file__).parent
M13 = ASTROPY / "io/fits/hdu/compressed/tests/data/m13.fits"  # no BUNIT
AZP = ASTROPY / "modeling/tests/data/1904-66_AZP.fits"  # BUNIT Jy/beam
IRAC_SIP = ASTROPY / "wcs/tests/data/irac_sip.hdr"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            # Missing BUNIT on purpose (docs/architecture.md §4 warns); astropy's normalisations of old headers.
            item.add_marker(pytest.mark.filterwarnings("ignore:BUNIT"))
            item.add_marker(pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning"))
            item.add_marker(pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning"))


@pytest.fixture(scope="session")
def m13_path():
    return M13


@pytest.fixture(scope="session")
def azp_path():
    return AZP


@pytest.fixture(scope="session")
def sip_frame(tmp_path_factory):
    """A 160×160 count frame on the real IRAC SIP WCS (CRPIX moved into the frame), stars from star_field."""
    from sciSR.data.phantoms import star_field

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(IRAC_SIP.read_bytes())  # how astropy's own tests read this header
    assert wcs.sip is not None
    pixels = star_field((160, 160), seed=7, n_stars=50).array
    hdr = wcs.to_header(relax=True)
    # Put the reference pixel (and so the SIP origin) inside this smaller frame.
    hdr["CRPIX1"], hdr["CRPIX2"] = 80.5, 80.5
    hdr["BUNIT"] = "electrons"
    path = tmp_path_factory.mktemp("sip") / "irac_sip_field.fits"
    fits.PrimaryHDU(pixels.astype(np.float32), hdr).writeto(path)
    return path
