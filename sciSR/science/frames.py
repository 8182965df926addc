"""Real sky frames that astropy ships with its tests, usable as training or validation data offline."""

from __future__ import annotations

from pathlib import Path

# 2D image HDUs among astropy's test files (path relative to the astropy package, HDU, what it is).
# Other 2D test images there are blank, tiny (< 48 px) or hold lookup tables rather than sky.
SHIPPED_SKY_FRAMES: tuple[tuple[str, int, str], ...] = (
    ("io/fits/hdu/compressed/tests/data/m13.fits", 0, "M13, 300×300 SkyView/DSS optical, int16, no BUNIT, TAN"),
    ("wcs/tests/data/dss.14.29.56-62.41.05.fits.gz", 0, "DSS plate scan, 100×100, no BUNIT, DSS plate solution"),
    ("modeling/tests/data/1904-66_AZP.fits", 0, "radio map, 192×192, BUNIT Jy/beam, AZP projection"),
    ("io/fits/tests/data/o4sp040b0_raw.fits", 1, "HST/STIS raw SCI 44×62, BUNIT COUNTS (ERR/DQ HDUs empty)"),
)


def shipped_sky_frames(min_size: int = 0) -> list[Path]:
    """Paths of astropy's shipped 2D sky frames that exist in this installation.

    Parameters
    ----------
    min_size : int
        Leave out frames with a side shorter than this many pixels (a training patch must fit).

    Returns
    -------
    list of pathlib.Path
        Readable with :func:`sciSR.read` (first image HDU); usable as ``data.files`` of a recipe.
    """
    import astropy
    from astropy.io import fits

    root = Path(astropy.__file__).parent
    found = []
    for relative, hdu, _ in SHIPPED_SKY_FRAMES:
        path = root / relative
        if not path.is_file():
            continue
        with fits.open(path) as hdul:
            if min(hdul[hdu].shape) >= min_size:
                found.append(path)
    return found
