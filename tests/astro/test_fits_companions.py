"""ERR/VAR/IVAR/DQ extensions follow the science HDU (docs/architecture.md §4), WCS rescaled, other HDUs copied."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

import sciSR


@pytest.fixture()
def mef(tmp_path, m13_path):
    """A multi-extension file on real pixels (M13) with σ, variance, weight and DQ maps."""
    with fits.open(m13_path) as src:
        sci = src[0].data[:40, :50].astype(np.float32)
        wcs_cards = WCS(src[0].header).to_header()
    sigma = np.sqrt(sci)
    def ext(data, name, ver=1):
        return fits.ImageHDU(data, fits.Header([("EXTNAME", name), ("EXTVER", ver), *wcs_cards.items()]))
    sci_hdu = ext(sci, "SCI")
    sci_hdu.header["BUNIT"] = "counts"
    hdus = [fits.PrimaryHDU(), sci_hdu, ext(sigma, "ERR"), ext(sigma**2, "VAR"), ext(1 / sigma**2, "WHT"),
            ext((sci > 200).astype(np.int16) * 4, "DQ"), ext(sigma, "ERR", ver=2),
            fits.ImageHDU(np.arange(12.0).reshape(3, 4), name="SMALL")]
    path = tmp_path / "mef.fits"
    fits.HDUList(hdus).writeto(path)
    return path, sigma


@pytest.mark.parametrize("flux", ["conserve", "mean"])
def test_companions_propagate(tmp_path, mef, flux):
    path, sigma = mef
    img = sciSR.read(path)
    kinds = {c["extname"]: c["kind"] for c in img.meta["fits_companions"]}
    assert kinds == {"ERR": "sigma", "VAR": "variance", "WHT": "ivar", "DQ": "dq"}  # EXTVER 2 is not ours
    sr = sciSR.upscale(img, "cubic", (2, 3), flux=flux)
    sciSR.write(sr, tmp_path / "sr.fits")
    n = 6.0
    with fits.open(tmp_path / "sr.fits") as out, fits.open(path) as src:
        rep = np.ones((2, 3))
        gain = {"sigma": 1 / np.sqrt(n), "variance": 1 / n, "ivar": n} if flux == "conserve" else \
            {"sigma": 1.0, "variance": 1.0, "ivar": 1.0}
        np.testing.assert_allclose(out["ERR", 1].data, np.kron(sigma, rep) * gain["sigma"], rtol=1e-6)
        np.testing.assert_allclose(out["VAR"].data, np.kron(sigma**2, rep) * gain["variance"], rtol=1e-6)
        np.testing.assert_allclose(out["WHT"].data, np.kron(1 / sigma**2, rep) * gain["ivar"], rtol=1e-6)
        if flux == "conserve":  # summed over a block, sub-pixel variances give back the input variance
            block_var = out["VAR"].data.reshape(40, 2, 50, 3).sum(axis=(1, 3))
            np.testing.assert_allclose(block_var, sigma**2, rtol=1e-5)
        assert out["DQ"].data.dtype.kind == "i"
        np.testing.assert_array_equal(out["DQ"].data, np.kron(src["DQ"].data, rep.astype(int)))
        assert out["ERR", 2].header == src["ERR", 2].header and out["ERR", 2].data.shape == (40, 50)
        assert out["SMALL"].header == src["SMALL"].header
        # Same sky on the science and the error grid: WCS rescaled by the same geometry function.
        w_sci, w_err = WCS(out["SCI"].header), WCS(out["ERR", 1].header)
        ys, xs = np.mgrid[0:80:7, 0:150:11]
        np.testing.assert_allclose(w_sci.all_pix2world(xs.ravel(), ys.ravel(), 0),
                                   w_err.all_pix2world(xs.ravel(), ys.ravel(), 0), atol=1e-10)
        w_lr = WCS(src["SCI"].header)
        lr_world = w_lr.all_pix2world([10.0], [7.0], 0)
        sr_world = w_err.all_pix2world([(10 + 0.5) * 3 - 0.5], [(7 + 0.5) * 2 - 0.5], 0)
        np.testing.assert_allclose(np.ravel(sr_world), np.ravel(lr_world), atol=1e-9)
