"""Source detection and aperture photometry for the science report.

photutils is used when it is importable (``detect_sources`` + ``SourceCatalog`` on the
background-subtracted image). Otherwise a simple detector with the same outputs runs:

1. background level and σ from sigma-clipped statistics (:func:`astropy.stats.sigma_clipped_stats`,
   3σ, 5 iterations) over the valid pixels;
2. pixels above ``background + nsigma·σ``, grouped into 8-connected components
   (:func:`scipy.ndimage.label`), components smaller than ``min_pixels`` dropped;
3. centroid = flux-weighted first moment of the background-subtracted pixels of each component.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from sciSR.errors import SciSRError


@dataclasses.dataclass
class Background:
    """Sigma-clipped background of an image: ``level`` and ``sigma`` in the image's units per pixel."""

    level: float
    sigma: float


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
    background : Background
        Level and σ used for the threshold.
    detector : str
        ``"photutils"`` or ``"simple"``.
    """

    x: np.ndarray
    y: np.ndarray
    peak: np.ndarray
    npix: np.ndarray
    background: Background
    detector: str

    def __len__(self) -> int:
        return int(self.x.size)


def background_stats(array: np.ndarray, mask: np.ndarray | None = None) -> Background:
    """Sigma-clipped (3σ, 5 iterations) median and standard deviation of the valid pixels.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image.
    mask : numpy.ndarray, optional
        ``(H, W)`` bool, True where pixels are invalid; NaN/inf are always excluded.

    Returns
    -------
    Background
        ``sigma`` is never 0 (falls back to the unclipped standard deviation, then 1).
    """
    from astropy.stats import sigma_clipped_stats

    valid = np.isfinite(array) if mask is None else np.isfinite(array) & ~mask
    if not valid.any():
        raise SciSRError("no valid pixels to measure the background on")
    _, median, std = sigma_clipped_stats(array[valid], sigma=3.0, maxiters=5)
    sigma = float(std) if std > 0 else float(np.std(array[valid])) or 1.0
    return Background(level=float(median), sigma=sigma)


def detect_sources(array: np.ndarray, *, nsigma: float = 5.0, min_pixels: int = 3,
                   mask: np.ndarray | None = None, use_photutils: bool = True) -> Sources:
    """Find sources above ``nsigma`` times the background noise.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image.
    nsigma : float
        Detection threshold in background σ above the background level.
    min_pixels : int
        Smallest footprint (8-connected pixels above the threshold) counted as a source.
    mask : numpy.ndarray, optional
        ``(H, W)`` bool, True on invalid pixels (never part of a source).
    use_photutils : bool
        Use photutils when importable; False forces the simple detector.

    Returns
    -------
    Sources
    """
    if array.ndim != 2:
        raise SciSRError(f"source detection needs a 2D frame, got shape {array.shape}")
    bad = ~np.isfinite(array) if mask is None else (~np.isfinite(array) | mask)
    background = background_stats(array, bad)
    data = np.where(bad, 0.0, array.astype(np.float64) - background.level)
    threshold = nsigma * background.sigma
    if use_photutils:
        try:
            from photutils.segmentation import SourceCatalog
            from photutils.segmentation import detect_sources as segment
        except ImportError:
            pass
        else:
            segm = segment(data, threshold, npixels=min_pixels, mask=bad)
            if segm is None:
                return _empty(background, "photutils")
            cat = SourceCatalog(data, segm, mask=bad)
            return Sources(np.asarray(cat.xcentroid, float), np.asarray(cat.ycentroid, float),
                           np.asarray(cat.max_value, float), np.asarray(cat.area.value, float).astype(int),
                           background, "photutils")
    labels, count = ndimage.label((data > threshold) & ~bad, structure=np.ones((3, 3), bool))
    if count == 0:
        return _empty(background, "simple")
    index = np.arange(1, count + 1)
    npix = np.asarray(ndimage.sum_labels(np.ones_like(data), labels, index), dtype=int)
    keep = npix >= min_pixels
    if not keep.any():
        return _empty(background, "simple")
    weights = np.clip(data, 0.0, None)
    yy, xx = np.indices(data.shape, dtype=np.float64)
    total = ndimage.sum_labels(weights, labels, index)
    x = ndimage.sum_labels(weights * xx, labels, index) / total
    y = ndimage.sum_labels(weights * yy, labels, index) / total
    peak = ndimage.maximum(data, labels, index)
    return Sources(x[keep], y[keep], np.asarray(peak)[keep], npix[keep], background, "simple")


def _empty(background: Background, detector: str) -> Sources:
    none = np.zeros(0)
    return Sources(none, none, none, np.zeros(0, int), background, detector)


def refine_centroids(array: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float, background: float,
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
    background : float
        Level subtracted before weighting.
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


def aperture_sums(array: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float, subsample: int = 5) -> np.ndarray:
    """Sum of pixel values inside circles, each pixel weighted by its area fraction in the circle.

    Parameters
    ----------
    array : numpy.ndarray
        ``(H, W)`` image (background already subtracted); NaN pixels count as 0.
    x, y : numpy.ndarray
        ``(N,)`` centres, 0-based pixels.
    radius : float
        Radius in pixels.
    subsample : int
        Each pixel is split ``subsample × subsample`` times to estimate its area fraction.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` sums (image units × pixels); NaN when the circle leaves the frame.
    """
    data = np.nan_to_num(array.astype(np.float64), nan=0.0)
    offsets = (np.arange(subsample) + 0.5) / subsample - 0.5
    sums = np.full(np.shape(x), np.nan)
    r = int(np.ceil(radius)) + 1
    for k, (cx, cy) in enumerate(zip(np.asarray(x, float), np.asarray(y, float), strict=True)):
        if not (np.isfinite(cx) and np.isfinite(cy)):
            continue
        if cx - radius < -0.5 or cy - radius < -0.5 or cx + radius > data.shape[1] - 0.5 or \
                cy + radius > data.shape[0] - 0.5:
            continue
        x0, y0 = round(float(cx)), round(float(cy))
        yy, xx = np.mgrid[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1]
        sub_y = yy[..., None, None] + offsets[:, None]
        sub_x = xx[..., None, None] + offsets[None, :]
        fraction = (((sub_x - cx) ** 2 + (sub_y - cy) ** 2) <= radius**2).mean(axis=(-2, -1))
        # Window pixels beyond the frame have fraction 0 (the circle is inside): clip only to index.
        values = data[np.clip(yy, 0, data.shape[0] - 1), np.clip(xx, 0, data.shape[1] - 1)]
        sums[k] = float((values * fraction).sum())
    return sums
