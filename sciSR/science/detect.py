"""Background, source detection, centroids, aperture and PSF photometry for the science report.

photutils is the engine (the ``astro`` extra, ``pip install scisr[astro]``):

- background: :class:`photutils.background.Background2D` (3σ-clipped median per mesh, median-filtered)
  when the frame holds at least 3 × 3 meshes, else one 3σ-clipped level and σ over the valid pixels;
- detection: image segmentation (:func:`photutils.segmentation.detect_sources` on the background-subtracted
  image, threshold ``nsigma`` × the background RMS map) and :class:`~photutils.segmentation.SourceCatalog`;
- aperture photometry: :func:`photutils.aperture.aperture_photometry` with exact pixel/circle overlaps;
- PSF photometry: :class:`photutils.psf.PSFPhotometry` with a pixel-integrated circular Gaussian whose
  FWHM is fitted per source.

Only the windowed centroid (:func:`refine_centroids`) is computed here: it measures the same light on the
LR and the SR grid, which footprint-based centroids do not.
"""

from __future__ import annotations

import dataclasses
import math
from types import ModuleType

import numpy as np

from sciSR.errors import SciSRError

_MESHES = 3  # Background2D needs this many meshes per axis to interpolate; fewer: one global level
_MIN_BOX = 16  # pixels per mesh side below which the clipped statistics of a mesh get too noisy


def require_photutils() -> ModuleType:
    """Import photutils, or fail with the one-line install hint.

    Returns
    -------
    module
        The ``photutils`` package.
    """
    try:
        import photutils
        import photutils.aperture
        import photutils.background
        import photutils.psf
        import photutils.segmentation
    except ImportError:
        raise SciSRError("the science report needs photutils: pip install scisr[astro]") from None
    return photutils


@dataclasses.dataclass
class Background:
    """Background of an image, in the image's units per pixel.

    Attributes
    ----------
    level : float
        Median of the background map over the valid pixels.
    sigma : float
        3σ-clipped standard deviation of the image minus the background map: the pixel noise.
    map, rms : numpy.ndarray or None
        ``(H, W)`` float64 background and photutils RMS (per mesh, so it includes structure within a
        mesh: the detection threshold errs on the safe side); None where only the scalars are known.
    """

    level: float
    sigma: float
    map: np.ndarray | None = dataclasses.field(default=None, repr=False)
    rms: np.ndarray | None = dataclasses.field(default=None, repr=False)


@dataclasses.dataclass
class Sources:
    """Detected sources of one image.

    Attributes
    ----------
    x, y : numpy.ndarray
        ``(N,)`` float64 centroids, 0-based pixel coordinates (``array[y, x]``).
    peak : numpy.ndarray
        ``(N,)`` peak value above the background.
    npix : numpy.ndarray
        ``(N,)`` pixels in each source's footprint.
    fwhm : numpy.ndarray
        ``(N,)`` circularised FWHM of each footprint's light (second moments), pixels.
    background : Background
        The background the threshold was set on.
    detector : str
        ``"photutils"``.
    """

    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray
    npix: np.ndarray
    fwhm: np.ndarray
    background: Background
    detector: str = "photutils"

    def __len__(self) -> int:
        return int(self.x.size)


@dataclasses.dataclass
class PSFFit:
    """PSF photometry of given sources; NaN where a fit failed or left the frame.

    Attributes
    ----------
    x, y : numpy.ndarray
        ``(N,)`` fitted centres, 0-based pixels.
    flux : numpy.ndarray
        ``(N,)`` fitted total flux (image units × pixels).
    fwhm : numpy.ndarray
        ``(N,)`` fitted FWHM of the circular Gaussian before pixel integration, pixels.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    fwhm: np.ndarray


def background_stats(array: np.ndarray, mask: np.ndarray | None = None, *, box_size: int | None = None) -> Background:
    """Background and RMS maps (photutils ``Background2D``) or, on small frames, sigma-clipped scalars.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image.
    mask : numpy.ndarray, optional
        ``(H, W)`` bool, True where pixels are invalid; NaN/inf are always excluded.
    box_size : int, optional
        Mesh side in pixels; default ``max(16, min(H, W) // 4)``. A frame with fewer than 3 meshes
        per axis, or one ``Background2D`` refuses (too many masked meshes), gets one 3σ-clipped
        (5 iterations) level and σ.

    Returns
    -------
    Background
        ``sigma`` is never 0 (falls back to the unclipped standard deviation, then 1); on small frames the
        maps are constant.
    """
    require_photutils()
    from astropy.stats import SigmaClip, sigma_clipped_stats
    from photutils.background import Background2D

    bad = ~np.isfinite(array) if mask is None else (~np.isfinite(array) | mask)
    if bad.all():
        raise SciSRError("no valid pixels to measure the background on")
    data = array.astype(np.float64)
    box = box_size or max(_MIN_BOX, min(array.shape) // 4)
    level_map = rms_map = None
    if min(array.shape) >= _MESHES * box:
        try:
            bkg = Background2D(np.where(bad, 0.0, data), box, mask=bad, sigma_clip=SigmaClip(sigma=3.0, maxiters=5))
        except ValueError:  # too many meshes masked: one global level below still holds
            pass
        else:
            level_map, rms_map = np.asarray(bkg.background, np.float64), np.asarray(bkg.background_rms, np.float64)
    if level_map is None:
        _, median, _ = sigma_clipped_stats(data[~bad], sigma=3.0, maxiters=5)
        level_map = np.full(array.shape, float(median))
    _, _, std = sigma_clipped_stats((data - level_map)[~bad], sigma=3.0, maxiters=5)
    sigma = float(std) if std > 0 else float(np.std(data[~bad])) or 1.0
    if rms_map is None or not (rms_map[~bad] > 0).all():
        rms_map = np.full(array.shape, sigma)
    return Background(float(np.median(level_map[~bad])), sigma, level_map, rms_map)


def detect_sources(array: np.ndarray, *, nsigma: float = 5.0, min_pixels: int = 3, mask: np.ndarray | None = None,
                   box_size: int | None = None) -> Sources:
    """Find sources above ``nsigma`` times the background RMS (photutils segmentation).

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image.
    nsigma : float
        Detection threshold in background RMS above the background map.
    min_pixels : int
        Smallest footprint (8-connected pixels above the threshold) counted as a source.
    mask : numpy.ndarray, optional
        ``(H, W)`` bool, True on invalid pixels (never part of a source).
    box_size : int, optional
        Background mesh side in pixels (see :func:`background_stats`).

    Returns
    -------
    Sources
    """
    if array.ndim != 2:
        raise SciSRError(f"source detection needs a 2D frame, got shape {array.shape}")
    require_photutils()
    import warnings

    from photutils.segmentation import SourceCatalog
    from photutils.segmentation import detect_sources as segment
    from photutils.utils import NoDetectionsWarning

    bad = ~np.isfinite(array) if mask is None else (~np.isfinite(array) | mask)
    background = background_stats(array, bad, box_size=box_size)
    data = np.where(bad, 0.0, array.astype(np.float64) - background.map)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty frame is a valid answer: no sources
        # Positional: photutils 3 renamed the keyword npixels to n_pixels.
        segm = segment(data, nsigma * background.rms, min_pixels, mask=bad)
    if segm is None:
        none = np.zeros(0)
        return Sources(none, none, none, np.zeros(0, int), none, background)
    cat = SourceCatalog(data, segm, mask=bad)
    xy = np.atleast_2d(np.asarray(cat.centroid, np.float64))
    return Sources(xy[:, 0], xy[:, 1], np.asarray(cat.max_value, np.float64),
                   np.asarray(cat.area.value).astype(int), np.asarray(cat.fwhm.value, np.float64), background)


def refine_centroids(array: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float, background: float | np.ndarray,
                     iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor's XWIN_IMAGE/YWIN_IMAGE scheme).

    Iterates ``x ← x + 2·Σ wI(x_i − x) / Σ wI`` with ``w = exp(−r²/(2σ_w²))``, ``σ_w = radius/2``. A
    smooth window of the same sky size measures the same light on the LR and the SR grid; a hard
    circle would not (which pixels it cuts depends on the grid), nor would threshold footprints.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image.
    x, y : numpy.ndarray
        ``(N,)`` starting centroids (0-based pixels).
    radius : float
        Window size in this image's pixels (``2σ_w``).
    background : float or numpy.ndarray
        Level (scalar or ``(H, W)`` map) subtracted before weighting.
    iterations : int
        Most iterations (stops earlier below 1e-5 pixel).

    Returns
    -------
    tuple of numpy.ndarray
        Refined ``x``, ``y`` (``(N,)`` float64); NaN where the window holds no positive flux or the
        iteration leaves the frame.
    """
    data = np.nan_to_num(array.astype(np.float64) - background, nan=0.0, posinf=0.0, neginf=0.0)
    xs, ys = np.array(x, dtype=np.float64), np.array(y, dtype=np.float64)
    sigma = radius / 2.0
    r = int(np.ceil(4.0 * sigma))
    for k in range(xs.size):
        for _ in range(iterations):
            if not (np.isfinite(xs[k]) and np.isfinite(ys[k])):
                break
            x0, y0 = round(float(xs[k])), round(float(ys[k]))
            if not (0 <= x0 < data.shape[1] and 0 <= y0 < data.shape[0]):
                xs[k] = ys[k] = np.nan
                break
            ylo, yhi = max(y0 - r, 0), min(y0 + r + 1, data.shape[0])
            xlo, xhi = max(x0 - r, 0), min(x0 + r + 1, data.shape[1])
            yy, xx = np.mgrid[ylo:yhi, xlo:xhi]
            w = np.exp(-((xx - xs[k]) ** 2 + (yy - ys[k]) ** 2) / (2 * sigma**2)) * data[ylo:yhi, xlo:xhi]
            total = w.sum()
            if total <= 0:
                xs[k] = ys[k] = np.nan
                break
            dx, dy = 2 * (w * (xx - xs[k])).sum() / total, 2 * (w * (yy - ys[k])).sum() / total
            xs[k], ys[k] = xs[k] + dx, ys[k] + dy
            if abs(dx) < 1e-5 and abs(dy) < 1e-5:
                break
    return xs, ys


def aperture_sums(array: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Sum of pixel values inside circles (photutils, exact pixel/circle overlap).

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image (background already subtracted); NaN pixels count as 0.
    x, y : numpy.ndarray
        ``(N,)`` centres, 0-based pixels.
    radius : float
        Radius in pixels.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` sums (image units × pixels); NaN when the centre is not finite or the circle leaves the frame.
    """
    require_photutils()
    from photutils.aperture import CircularAperture, aperture_photometry

    cx, cy = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    sums = np.full(cx.shape, np.nan)
    inside = (np.isfinite(cx) & np.isfinite(cy) & (cx - radius >= -0.5) & (cy - radius >= -0.5)
              & (cx + radius <= array.shape[1] - 0.5) & (cy + radius <= array.shape[0] - 0.5))
    if inside.any():
        data = np.nan_to_num(array.astype(np.float64), nan=0.0)
        table = aperture_photometry(data, CircularAperture(np.c_[cx[inside], cy[inside]], r=radius), method="exact")
        sums[inside] = np.asarray(table["aperture_sum"], np.float64)
    return sums


def psf_photometry(array: np.ndarray, x: np.ndarray, y: np.ndarray, *, fwhm: float, fit_radius: int | None = None,
                   mask: np.ndarray | None = None) -> PSFFit:
    """Fit a pixel-integrated circular Gaussian (flux, centre, FWHM free) at each position.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image, background already subtracted.
    x, y : numpy.ndarray
        ``(N,)`` starting centres, 0-based pixels (non-finite ones are not fitted).
    fwhm : float
        Starting FWHM in pixels.
    fit_radius : int, optional
        The fitted box is ``2·fit_radius + 1`` pixels square; default ``ceil(2·fwhm)``.
    mask : numpy.ndarray, optional
        ``(H, W)`` bool, True on pixels left out of the fits.

    Returns
    -------
    PSFFit
    """
    require_photutils()
    import warnings

    from astropy.table import QTable
    from astropy.utils.exceptions import AstropyUserWarning
    from photutils.psf import CircularGaussianPRF, PSFPhotometry

    cx, cy = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    out = PSFFit(*(np.full(cx.shape, np.nan) for _ in range(4)))
    ok = np.isfinite(cx) & np.isfinite(cy)
    if not ok.any():
        return out
    model = CircularGaussianPRF(fwhm=fwhm)
    model.fwhm.fixed = False
    size = 2 * (fit_radius or math.ceil(2.0 * fwhm)) + 1
    bad = ~np.isfinite(array) if mask is None else (~np.isfinite(array) | mask)
    init = QTable({"x": cx[ok], "y": cy[ok]})
    with warnings.catch_warnings():
        # Fits that do not converge are flagged per source and become NaN below; no need to warn.
        warnings.simplefilter("ignore", AstropyUserWarning)
        table = PSFPhotometry(model, (size, size), aperture_radius=fwhm)(
            np.where(bad, 0.0, array.astype(np.float64)), mask=bad, init_params=init)
    fit = {name: np.asarray(table[col], np.float64) for name, col in
           (("x", "x_fit"), ("y", "y_fit"), ("flux", "flux_fit"), ("fwhm", "fwhm_fit"))}
    # photutils.psf flags 2 (centre outside the image), 4 (flux <= 0), 8 (no convergence): not a measurement.
    good = (np.asarray(table["flags"]) & (2 | 4 | 8)) == 0
    for name, values in fit.items():
        getattr(out, name)[np.flatnonzero(ok)] = np.where(good, values, np.nan)
    return out
