"""Science validation of a super-resolved sky frame: photometry, astrometry, noise, hallucinations."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from sciSR.blocks import replicate
from sciSR.errors import SciSRError
from sciSR.geometry import upscaled_index
from sciSR.image import SciImage
from sciSR.science.detect import aperture_sums, detect_sources, psf_photometry, refine_centroids, require_photutils

_ROBUST_SIGMA = 1.4826  # MAD → σ for a Gaussian


@dataclasses.dataclass
class ScienceReport:
    """What :func:`report` measured. Positions are 0-based pixels; shifts are SR − LR.

    Attributes
    ----------
    scale : list of int
        ``(sy, sx)``.
    flux_mode : str
        ``"conserve"`` (pixels are integrals: SR aperture sums compared as they are) or ``"mean"``
        (pixels are averages: SR aperture sums ÷ ``sx·sy``, the SR pixel area in LR pixels).
    detector : str
        ``"photutils"`` (see :mod:`sciSR.science.detect`).
    n_sources_lr, n_sources_sr : int
        Sources above ``nsigma`` in each frame.
    n_measured : int
        LR sources with photometry and centroids in both frames (inside the frame, isolated, S/N ≥ 10).
    flux_ratio_median, flux_ratio_scatter : float
        Median of SR/LR aperture flux and its robust scatter (1.4826·MAD); NaN with no source.
    centroid_shift_lr_px_median, centroid_shift_lr_px_max : float
        Distance between the LR centroid and the SR centroid mapped through both WCSs onto the LR
        grid, in LR pixels.
    centroid_shift_arcsec_median : float or None
        The same on the sky (None without a celestial WCS).
    background : dict
        ``lr_level``, ``lr_sigma``, ``sr_level``, ``sr_sigma`` (median of the photutils background map and
        clipped σ of the frame minus that map, image units per pixel) and ``sigma_ratio`` (SR/LR).
    hallucinated_sources : int or None
        Sources > ``nsigma``·σ in the model's output for pure Gaussian noise (LR background level and
        σ) with no LR detection within ``match_radius`` LR pixels; None when the test did not run.
    noise_test : dict or None
        ``shape``, ``level``, ``sigma``, ``seed``, ``n_lr``, ``n_sr`` of that test.
    sources : list of dict
        Per measured source: ``x_lr``, ``y_lr``, ``x_sr_on_lr``, ``y_sr_on_lr``, ``shift_lr_px``,
        ``shift_arcsec``, ``flux_lr``, ``flux_sr``, ``ratio`` (aperture), ``psf_flux_lr``, ``psf_flux_sr``,
        ``psf_ratio``, ``psf_fwhm_lr_px``, ``psf_fwhm_sr_lr_px`` (PSF fits; NaN where a fit failed).
    psf_flux_ratio_median : float
        Median SR/LR flux of PSF fits (a pixel-integrated circular Gaussian, FWHM free) on the measured
        sources; the same flux-mode rule as the aperture ratio.
    psf_fwhm_lr_px_median, psf_fwhm_sr_lr_px_median : float
        Median fitted FWHM on LR and on SR, both in LR pixels: SR below LR means the output is sharper
        than its input (deconvolution), above means it blurred.
    settings : dict
        ``nsigma``, ``aperture_lr_px``, ``centroid_radius_lr_px``, ``match_radius_lr_px``, ``wcs``.
    """

    scale: list[int]
    flux_mode: str
    detector: str
    n_sources_lr: int
    n_sources_sr: int
    n_measured: int
    flux_ratio_median: float
    flux_ratio_scatter: float
    centroid_shift_lr_px_median: float
    centroid_shift_lr_px_max: float
    centroid_shift_arcsec_median: float | None
    background: dict[str, float]
    hallucinated_sources: int | None
    noise_test: dict[str, Any] | None
    sources: list[dict[str, float | None]]
    psf_flux_ratio_median: float
    psf_fwhm_lr_px_median: float
    psf_fwhm_sr_lr_px_median: float
    settings: dict[str, Any]
    _frames: tuple[np.ndarray, np.ndarray] | None = dataclasses.field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (NaN becomes None)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        return _jsonable(out)

    def to_json(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> str:
        """The report as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.as_dict(), indent=2)
        if path is not None:
            from sciSR.io.atomic import atomic_output

            with atomic_output(path, overwrite=overwrite) as tmp:
                Path(tmp).write_text(text + "\n")
        return text

    def table(self) -> str:
        """A plain-text summary table."""
        bg = self.background

        def num(value: float | None, fmt: str) -> str:
            return "n/a" if value is None or not np.isfinite(value) else format(value, fmt)

        rows = [
            ("scale (y, x)", "x".join(map(str, self.scale))),
            ("flux mode", self.flux_mode),
            ("detector", f"{self.detector} (> {self.settings['nsigma']:g} sigma)"),
            ("sources LR / SR", f"{self.n_sources_lr} / {self.n_sources_sr}"),
            ("sources measured", str(self.n_measured)),
            ("flux ratio SR/LR median", num(self.flux_ratio_median, ".5f")),
            ("flux ratio robust scatter", num(self.flux_ratio_scatter, ".5f")),
            ("centroid shift median [LR px]", num(self.centroid_shift_lr_px_median, ".4f")),
            ("centroid shift max [LR px]", num(self.centroid_shift_lr_px_max, ".4f")),
            ("centroid shift median [arcsec]", num(self.centroid_shift_arcsec_median, ".5f")),
            ("PSF-fit flux ratio SR/LR median", num(self.psf_flux_ratio_median, ".5f")),
            ("PSF FWHM LR / SR [LR px]", f"{num(self.psf_fwhm_lr_px_median, '.4f')} / "
                                         f"{num(self.psf_fwhm_sr_lr_px_median, '.4f')}"),
            ("background LR level / sigma", f"{num(bg['lr_level'], '.5g')} / {num(bg['lr_sigma'], '.5g')}"),
            ("background SR level / sigma", f"{num(bg['sr_level'], '.5g')} / {num(bg['sr_sigma'], '.5g')}"),
            ("noise sigma ratio SR/LR", num(bg["sigma_ratio"], ".4f")),
            ("hallucinated sources (noise)", "not run" if self.hallucinated_sources is None
             else str(self.hallucinated_sources)),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def save_png(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a PNG, atomically: LR (replicated onto the SR grid) beside SR, measured sources circled,
        the summary table below.

        Drawn with Pillow (matplotlib is not a dependency); both frames share one asinh stretch
        fitted on the LR frame.
        """
        from PIL import Image, ImageDraw

        from sciSR.blocks import replicate
        from sciSR.io.atomic import atomic_output

        if self._frames is None:
            raise SciSRError("this report holds no frames to draw (it was rebuilt from JSON)")
        low, high = self._frames
        sy, sx = self.scale
        bg = self.background
        panels = []
        for k, frame in enumerate((replicate(np.asarray(low, np.float64), (sy, sx)), np.asarray(high, np.float64))):
            # Mean-mode frames share units per pixel; conserve-mode SR pixels hold 1/∏s of an LR pixel.
            per_lr = frame * (sy * sx) if k == 1 and self.flux_mode == "conserve" else frame
            stretch = np.arcsinh((np.nan_to_num(per_lr, nan=bg["lr_level"]) - bg["lr_level"]) / (3 * bg["lr_sigma"]))
            top = max(float(np.percentile(stretch, 99.8)), 1e-6)
            panels.append(np.clip(stretch / top * 255.0, 0, 255).astype(np.uint8)[::-1])  # north up
        h, w = panels[1].shape
        text = self.table().splitlines()
        canvas = Image.new("RGB", (2 * w + 10, h + 12 * len(text) + 10), "white")
        draw = ImageDraw.Draw(canvas)
        for k, panel in enumerate(panels):
            canvas.paste(Image.fromarray(panel).convert("RGB"), (k * (w + 10), 0))
            for source in self.sources:
                # LR pixel → SR pixel on the FOV-preserving grid: x' = (x + 0.5)·s − 0.5; y flipped.
                cx = (source["x_lr"] + 0.5) * sx - 0.5 + k * (w + 10)
                cy = h - 1 - ((source["y_lr"] + 0.5) * sy - 0.5)
                r = self.settings["aperture_lr_px"] * sx
                draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(220, 40, 40))
        for i, line in enumerate(text):
            draw.text((4, h + 5 + 12 * i), line, fill=(0, 0, 0))
        with atomic_output(path, overwrite=overwrite) as tmp:
            canvas.save(tmp, format="PNG")
        return Path(path)


def report(lr: SciImage, sr: SciImage, *, model: Any = None, noise_test: bool = True, flux: str | None = None,
           nsigma: float = 5.0, aperture: float = 5.0, centroid_radius: float = 2.0, match_radius: float = 1.0,
           min_snr: float = 10.0, noise_shape: tuple[int, int] = (128, 128), seed: int = 0,
           device: str = "cpu") -> ScienceReport:
    """Compare a super-resolved frame with its input the way an astronomer would.

    Parameters
    ----------
    lr : SciImage
        ``(H, W)`` input frame (WCS optional).
    sr : SciImage
        ``(H·sy, W·sx)`` output of :func:`sciSR.upscale` on ``lr``, with its WCS.
    model : optional
        What produced ``sr`` (anything :func:`sciSR.upscale` accepts); needed for the hallucination test.
    noise_test : bool
        Run ``model`` on pure Gaussian noise at the LR background level and σ and count SR sources
        above ``nsigma`` with no LR counterpart.
    flux : str, optional
        ``"conserve"`` or ``"mean"``; default: the flux mode in ``sr``'s provenance, else from BUNIT.
    nsigma : float
        Detection threshold in background σ.
    aperture : float
        Photometry radius in LR pixels (``aperture·s`` SR pixels on the SR frame). Small apertures
        (≲ 2 FWHM) cut steep profiles, where LR photometry (flux spread evenly over a pixel) and SR
        differ by ~1% even for a perfect upscale.
    centroid_radius : float
        Window radius of the centroids, LR pixels.
    match_radius : float
        LR pixels within which an SR detection counts as the same source.
    min_snr : float
        LR aperture S/N below which a source is detected but not measured.
    noise_shape : tuple of int
        Largest noise frame of the hallucination test (clipped to the LR shape).
    seed : int
        Seed of the noise frame.
    device : str
        Device for the hallucination test's model run.

    Returns
    -------
    ScienceReport

    Raises
    ------
    SciSRError
        Without photutils (``pip install scisr[astro]``), for non-2D frames or non-integer scales.
    """
    require_photutils()
    if lr.array.ndim != 2 or sr.array.ndim != 2:
        raise SciSRError(f"the science report needs 2D frames, got {lr.array.shape} and {sr.array.shape}",
                         lr.meta.get("source"))
    scale = _scale_between(lr.array.shape, sr.array.shape, lr.meta.get("source"))
    mode = _flux_mode(lr, sr, flux)
    n_sub = math.prod(scale)
    s_mean = math.sqrt(n_sub)  # radius factor; exact for equal factors
    lr_a, sr_a = lr.array.astype(np.float64), sr.array.astype(np.float64)
    lr_mask, sr_mask = _mask(lr), _mask(sr)

    found_lr = detect_sources(lr_a, nsigma=nsigma, mask=lr_mask)
    found_sr = detect_sources(sr_a, nsigma=nsigma, mask=sr_mask)
    bg_lr, bg_sr = found_lr.background, found_sr.background

    # The same light on both grids: windowed centroids in a circle of the same sky size.
    x_l, y_l = refine_centroids(lr_a, found_lr.x, found_lr.y, centroid_radius, bg_lr.map)
    x0, y0 = _map_positions(lr, sr, x_l, y_l, scale, to_lr=False)
    # One background for both frames: the projection keeps block means, so the true sky is the same;
    # a map re-measured on SR would differ only by how clipping treats the smoother histogram. The LR
    # map is smooth on the scale of a pixel, so replicating it onto the SR grid is exact enough.
    sky_sr = replicate(bg_lr.map, scale) / (n_sub if mode == "conserve" else 1)
    x_s, y_s = refine_centroids(sr_a, x0, y0, centroid_radius * s_mean, sky_sr)
    x_sl, y_sl = _map_positions(sr, lr, x_s, y_s, scale, to_lr=True)

    flux_lr = aperture_sums(lr_a - bg_lr.map, x_l, y_l, aperture)
    flux_sr = aperture_sums(sr_a - sky_sr, x_s, y_s, aperture * s_mean)
    if mode != "conserve":
        flux_sr = flux_sr / n_sub  # averages: an SR pixel covers 1/∏s of an LR pixel
    noise = bg_lr.sigma * math.sqrt(math.pi) * aperture
    isolated = _isolated(x_l, y_l, 2.0 * aperture)
    good = np.isfinite(flux_lr) & np.isfinite(flux_sr) & np.isfinite(x_sl) & isolated & (flux_lr >= min_snr * noise)

    shift = np.hypot(x_sl - x_l, y_sl - y_l)
    arcsec = _sky_separation(lr, sr, x_l, y_l, x_s, y_s)
    ratio = flux_sr / np.where(flux_lr == 0, np.nan, flux_lr)
    # PSF fits on the measured sources only (the others are too faint or blended to compare).
    idx = np.flatnonzero(good)
    fwhm0 = max(float(np.median(found_lr.fwhm)), 1.5) if len(found_lr) else 2.0
    # Boxes of the same sky size: a Gaussian fitted to a non-Gaussian star depends on how much wing it sees.
    radius = math.ceil(2.0 * fwhm0)
    psf_lr = psf_photometry(lr_a - bg_lr.map, x_l[idx], y_l[idx], fwhm=fwhm0, fit_radius=radius, mask=lr_mask)
    psf_sr = psf_photometry(sr_a - sky_sr, x_s[idx], y_s[idx], fwhm=fwhm0 * s_mean,
                            fit_radius=round(radius * s_mean), mask=sr_mask)
    psf_flux_sr = psf_sr.flux / (1 if mode == "conserve" else n_sub)
    psf_ratio = psf_flux_sr / np.where(psf_lr.flux == 0, np.nan, psf_lr.flux)
    fwhm_sr_lr = psf_sr.fwhm / s_mean
    sources = [{"x_lr": x_l[i], "y_lr": y_l[i], "x_sr_on_lr": x_sl[i], "y_sr_on_lr": y_sl[i],
                "shift_lr_px": shift[i], "shift_arcsec": None if arcsec is None else arcsec[i],
                "flux_lr": flux_lr[i], "flux_sr": flux_sr[i], "ratio": ratio[i],
                "psf_flux_lr": psf_lr.flux[k], "psf_flux_sr": psf_flux_sr[k], "psf_ratio": psf_ratio[k],
                "psf_fwhm_lr_px": psf_lr.fwhm[k], "psf_fwhm_sr_lr_px": fwhm_sr_lr[k]} for k, i in enumerate(idx)]
    r = ratio[good]
    median = float(np.median(r)) if r.size else math.nan

    hallucinated, noise_info = None, None
    if noise_test and model is not None:
        hallucinated, noise_info = _noise_test(lr, model, scale, mode, bg_lr.level, bg_lr.sigma, nsigma,
                                               match_radius, noise_shape, seed, device)
    return ScienceReport(
        scale=list(scale), flux_mode=mode, detector=found_lr.detector,
        n_sources_lr=len(found_lr), n_sources_sr=len(found_sr), n_measured=int(good.sum()),
        flux_ratio_median=median,
        flux_ratio_scatter=float(_ROBUST_SIGMA * np.median(np.abs(r - median))) if r.size else math.nan,
        centroid_shift_lr_px_median=float(np.median(shift[good])) if good.any() else math.nan,
        centroid_shift_lr_px_max=float(np.max(shift[good])) if good.any() else math.nan,
        centroid_shift_arcsec_median=None if arcsec is None or not good.any() else float(np.median(arcsec[good])),
        background={"lr_level": bg_lr.level, "lr_sigma": bg_lr.sigma, "sr_level": bg_sr.level,
                    "sr_sigma": bg_sr.sigma, "sigma_ratio": bg_sr.sigma / bg_lr.sigma},
        hallucinated_sources=hallucinated, noise_test=noise_info, sources=sources,
        psf_flux_ratio_median=_nanmedian(psf_ratio), psf_fwhm_lr_px_median=_nanmedian(psf_lr.fwhm),
        psf_fwhm_sr_lr_px_median=_nanmedian(fwhm_sr_lr),
        settings={"nsigma": nsigma, "aperture_lr_px": aperture, "centroid_radius_lr_px": centroid_radius,
                  "match_radius_lr_px": match_radius, "min_snr": min_snr, "wcs": _both_wcs(lr, sr)},
        _frames=(lr.array, sr.array),
    )


# --- helpers ---------------------------------------------------------------------------------------


def _nanmedian(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def _scale_between(lr_shape: tuple[int, ...], sr_shape: tuple[int, ...], source: Any) -> tuple[int, int]:
    if any(s % n for n, s in zip(lr_shape, sr_shape, strict=True)) or any(s < n for n, s in
                                                                          zip(lr_shape, sr_shape, strict=True)):
        raise SciSRError(f"SR shape {sr_shape} is not an integer multiple of LR shape {lr_shape}", source)
    return sr_shape[0] // lr_shape[0], sr_shape[1] // lr_shape[1]


def _flux_mode(lr: SciImage, sr: SciImage, flux: str | None) -> str:
    if flux is not None:
        if flux not in ("conserve", "mean", "none"):
            raise SciSRError(f"flux must be 'conserve', 'mean' or 'none', got {flux!r}")
        return "conserve" if flux == "conserve" else "mean"
    for step in reversed(sr.meta.get("provenance", [])):
        if isinstance(step, dict) and step.get("flux"):
            return "conserve" if step["flux"] == "conserve" else "mean"
    from sciSR.flux import flux_mode_for_units

    return flux_mode_for_units(lr.meta.get("units"))


def _mask(img: SciImage) -> np.ndarray | None:
    mask = img.meta.get("mask")
    return np.asarray(mask, bool) if mask is not None and np.shape(mask) == img.array.shape else None


def _both_wcs(lr: SciImage, sr: SciImage) -> bool:
    return lr.wcs is not None and sr.wcs is not None and lr.wcs.has_celestial and sr.wcs.has_celestial


def _map_positions(src: SciImage, dst: SciImage, x: np.ndarray, y: np.ndarray, scale: tuple[int, int],
                   to_lr: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions on ``src`` mapped onto ``dst``: through both WCSs when they are celestial, else
    by the FOV-preserving grid map (``to_lr``: ``src`` is the upscaled frame)."""
    ok = np.isfinite(x) & np.isfinite(y)
    if _both_wcs(src, dst) and ok.any():
        out_x, out_y = np.full_like(x, np.nan), np.full_like(y, np.nan)
        ra, dec = src.wcs.all_pix2world(x[ok], y[ok], 0)
        out_x[ok], out_y[ok] = dst.wcs.all_world2pix(ra, dec, 0)
        return out_x, out_y
    return (upscaled_index(x, scale[1], inverse=to_lr), upscaled_index(y, scale[0], inverse=to_lr))


def _sky_separation(lr: SciImage, sr: SciImage, x_l: np.ndarray, y_l: np.ndarray, x_s: np.ndarray,
                    y_s: np.ndarray) -> np.ndarray | None:
    """Angle between each LR centroid (through the LR WCS) and SR centroid (through the SR WCS), arcsec."""
    if not _both_wcs(lr, sr):
        return None
    from astropy.coordinates import angular_separation

    out = np.full(x_l.shape, np.nan)
    ok = np.isfinite(x_l) & np.isfinite(y_l) & np.isfinite(x_s) & np.isfinite(y_s)
    if ok.any():
        ra1, dec1 = lr.wcs.celestial.all_pix2world(x_l[ok], y_l[ok], 0)
        ra2, dec2 = sr.wcs.celestial.all_pix2world(x_s[ok], y_s[ok], 0)
        sep = angular_separation(*(np.deg2rad(v) for v in (ra1, dec1, ra2, dec2)))
        out[ok] = np.rad2deg(np.asarray(sep)) * 3600.0
    return out


def _isolated(x: np.ndarray, y: np.ndarray, distance: float) -> np.ndarray:
    """True for positions with no other position within ``distance`` (apertures would share light)."""
    if x.size < 2:
        return np.ones(x.shape, bool)
    from scipy.spatial import cKDTree

    pts = np.c_[np.nan_to_num(x, nan=-1e9), np.nan_to_num(y, nan=-1e9)]
    counts = np.array([len(n) for n in cKDTree(pts).query_ball_point(pts, distance)])
    return counts == 1


def _noise_test(lr: SciImage, model: Any, scale: tuple[int, int], mode: str, level: float, sigma: float,
                nsigma: float, match_radius: float, shape: tuple[int, int], seed: int,
                device: str) -> tuple[int, dict[str, Any]]:
    """Upscale pure Gaussian noise and count SR sources without an LR counterpart."""
    from sciSR.pipeline import UpscaleRequest, upscale_image

    h, w = min(shape[0], lr.array.shape[0]), min(shape[1], lr.array.shape[1])
    noise = np.random.default_rng(seed).normal(level, sigma, (h, w)).astype(np.float32)
    frame = SciImage.from_array(noise, wcs=None if lr.wcs is None else lr.wcs.deepcopy(),
                                domain=lr.domain, meta={"units": lr.meta.get("units")})
    out = upscale_image(frame, UpscaleRequest.build(frame, model, scale, flux=mode, device=device))
    lr_found = detect_sources(noise.astype(np.float64), nsigma=nsigma)
    sr_found = detect_sources(out.array.astype(np.float64), nsigma=nsigma)
    x, y = _map_positions(out, frame, sr_found.x, sr_found.y, scale, to_lr=True)
    if len(lr_found) and x.size:
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(np.c_[lr_found.x, lr_found.y]).query(np.c_[x, y])
        unmatched = int(np.sum(dist > match_radius))
    else:
        unmatched = int(x.size)
    info = {"shape": [h, w], "level": level, "sigma": sigma, "seed": seed, "n_lr": len(lr_found),
            "n_sr": len(sr_found)}
    return unmatched, info


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
