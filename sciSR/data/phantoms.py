"""Small deterministic phantoms so every recipe trains on a fresh clone without data.

Each generator takes a ``seed`` (same seed, same image, on any machine) and returns a
:class:`~sciSR.image.SciImage` in calibrated units with spacing and domain set. They are built from
analytic shapes plus a little band-limited texture, so there is fine detail for a network to recover
along every axis; they are not anatomy atlases.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from sciSR.errors import SciSRError
from sciSR.image import SciImage


def _grid(shape: Sequence[int]) -> list[np.ndarray]:
    """Voxel-centre coordinates in [−1, 1] per axis (sparse, broadcastable)."""
    return np.meshgrid(*[(np.arange(n) + 0.5) / n * 2 - 1 for n in shape], indexing="ij", sparse=True)


def _texture(shape: Sequence[int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-σ Gaussian random field smoothed over ``sigma`` voxels."""
    field = ndimage.gaussian_filter(rng.standard_normal(tuple(shape)), sigma, mode="wrap")
    return field / (field.std() or 1.0)


def knee_phantom(shape: Sequence[int] = (64, 64, 64), seed: int = 0, spacing: Sequence[float] = (0.5, 0.5, 0.5)
                 ) -> SciImage:
    """A knee-like MRI volume (T1-ish contrast: bright fat and marrow, mid-grey muscle, dark cortex).

    Femur and tibia with trabecular texture, cortical rims, cartilage caps, joint fluid, patella,
    cruciate ligaments, a fat ring and vessels; the leg runs along the last axis, so thick slices
    along it (``scale = (1, 1, s)``) cut across the joint.

    Parameters
    ----------
    shape : sequence of int
        ``(i, j, k)`` voxels.
    seed : int
        Varies positions, sizes and texture.
    spacing : sequence of float
        Voxel size in mm.

    Returns
    -------
    SciImage
        float32 arbitrary MR units (0 to about 1000), domain ``"mri"``.
    """
    rng = np.random.default_rng(seed)
    u, v, w = _grid(shape)
    jitter = lambda scale: float(rng.uniform(-scale, scale))  # noqa: E731
    img = np.zeros(tuple(shape), dtype=np.float64)
    leg = (u / (0.86 + jitter(0.04))) ** 2 + (v / (0.8 + jitter(0.04))) ** 2
    img[np.broadcast_to(leg < 1.0, img.shape)] = 820.0  # subcutaneous fat
    img = np.where(leg < 0.8, 300.0, img)  # muscle
    joint = jitter(0.1)
    marrow = 650.0 * (1.0 + 0.12 * _texture(shape, 0.8, rng))  # trabecular pattern: detail on every axis

    def bone(cu: float, cv: float, ru: float, rv: float, flare: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = ((u - cu) / (ru * flare)) ** 2 + ((v - cv) / (rv * flare)) ** 2
        return r < 1.0, r < (1.0 - 0.12) ** 2  # whole bone, marrow inside the cortex

    femur_flare = 1.0 + 0.6 * np.exp(-np.clip(w - joint, 0, None) / 0.15)
    tibia_flare = 1.0 + 0.5 * np.exp(-np.clip(joint - w, 0, None) / 0.12)
    femur, femur_in = bone(jitter(0.05), 0.05, 0.3, 0.24, femur_flare)
    tibia, tibia_in = bone(jitter(0.05), 0.08, 0.28, 0.24, tibia_flare)
    femur &= w > joint + 0.05
    femur_in &= w > joint + 0.08
    tibia &= w < joint - 0.05
    tibia_in &= w < joint - 0.08
    cartilage = ((w > joint + 0.02) & (w <= joint + 0.05) & bone(0, 0.05, 0.3, 0.24, femur_flare)[0]) | (
        (w < joint - 0.02) & (w >= joint - 0.05) & bone(0, 0.08, 0.28, 0.24, tibia_flare)[0])
    fluid = (np.abs(w - joint) <= 0.02) & (leg < 0.5)
    img = np.where(femur | tibia, 60.0, img)  # cortical bone
    img = np.where(femur_in | tibia_in, marrow, img)
    img = np.where(cartilage, 480.0, img)
    img = np.where(fluid, 950.0, img)
    patella = ((u / 0.17) ** 2 + ((v + 0.6) / 0.07) ** 2 + ((w - joint - 0.22) / 0.16) ** 2) < 1.0
    patella_in = ((u / 0.14) ** 2 + ((v + 0.6) / 0.05) ** 2 + ((w - joint - 0.22) / 0.13) ** 2) < 1.0
    img = np.where(patella, 60.0, img)
    img = np.where(patella_in, marrow, img)
    for sign in (-1.0, 1.0):  # cruciate ligaments: oblique dark bands through the notch
        axis_u = sign * 0.06 + 0.25 * sign * (w - joint)
        ligament = ((u - axis_u) ** 2 + (v - 0.05 + 0.3 * (w - joint)) ** 2 < 0.04**2) & (np.abs(w - joint) < 0.25)
        img = np.where(ligament & ~(femur | tibia), 90.0, img)
    for cu, cv in ((0.15 + jitter(0.05), 0.55), (-0.12 + jitter(0.05), 0.6)):  # popliteal vessels
        img = np.where(((u - cu) ** 2 + (v - cv) ** 2 < 0.035**2) & (leg < 0.8), 700.0, img)
    img *= 1.0 + 0.03 * _texture(shape, 2.0, rng)  # coil shading / tissue inhomogeneity
    img = ndimage.gaussian_filter(img, 0.5)  # partial volume at edges
    return SciImage.from_array(img.astype(np.float32), spacing=tuple(spacing), domain="mri",
                               meta={"source": f"knee_phantom(seed={seed})", "units": None})


def blob_phantom(shape: Sequence[int] = (96, 96, 96), seed: int = 0, spacing: Sequence[float] = (1.0, 1.0, 1.0)
                 ) -> SciImage:
    """A statistically isotropic volume: overlapping spheres of every size (1.5 to 12 voxels) and contrast.

    No direction is special, so it is the test object for estimators that compare one axis with another
    (:func:`sciSR.consistency.estimate_slice_profile`), which an anatomical phantom with elongated
    structures (:func:`knee_phantom`) would bias.

    Parameters
    ----------
    shape : sequence of int
        ``(i, j, k)`` voxels.
    seed : int
        Varies the spheres.
    spacing : sequence of float
        Voxel size in mm.

    Returns
    -------
    SciImage
        float32 arbitrary MR units (around 500), domain ``"mri"``.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3:
        raise SciSRError(f"blob_phantom makes 3D volumes; shape must have 3 entries, got {shape}")
    rng = np.random.default_rng(seed)
    img = np.full(shape, 500.0)
    # About 1.7 spheres per 1000 voxels: enough overlap that every region has structure at every scale.
    for _ in range(max(1, round(1.7e-3 * np.prod(shape)))):
        centre = rng.uniform(0, shape)
        radius = float(np.exp(rng.uniform(np.log(1.5), np.log(12.0))))
        box = tuple(slice(max(int(c - radius), 0), min(int(c + radius) + 2, n))
                    for c, n in zip(centre, shape, strict=True))
        grid = np.ogrid[box]
        inside = sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)) < radius**2
        img[box][inside] += rng.normal(0.0, 100.0)
    img = ndimage.gaussian_filter(img, 0.6)  # partial volume at edges
    return SciImage.from_array(img.astype(np.float32), spacing=tuple(spacing), domain="mri",
                               meta={"source": f"blob_phantom(seed={seed})", "units": None})


def ct_phantom(shape: Sequence[int] = (128, 128), seed: int = 0, spacing: Sequence[float] = (0.7, 0.7),
               noise: float | Sequence[float] = 6.0, grain: float | Sequence[float] = 0.0,
               blur: float | Sequence[float] = 0.5) -> SciImage:
    """A chest-like CT slice in Hounsfield units.

    Air outside, fat ring, soft tissue, lungs with vessels and bronchi, heart and contrast-filled aorta,
    vertebra (cortex, trabecular bone, canal), ribs, small calcifications and quantum noise.

    Parameters
    ----------
    shape : sequence of int
        ``(rows, columns)``.
    seed : int
        Varies positions, sizes and vessels.
    spacing : sequence of float
        Pixel size in mm.
    noise : float or (float, float)
        Quantum-noise σ in HU; a range ``(low, high)`` draws one per slice from ``seed``.
    grain : float or (float, float)
        Correlation length of that noise, in pixels (Gaussian σ; 0: white). Real reconstructions carry
        correlated noise of 10–40 HU that is part of every truth a model is scored against (the held-out
        CT_small.dcm: 9.6 HU by :func:`sciSR.consistency.estimate_noise_sigma`), so a model trained on
        near-flat tissue learns to wipe texture out. A range is drawn like ``noise``.
    blur : float or (float, float)
        The reconstruction kernel's Gaussian σ in pixels, applied before the noise; a range is drawn like
        ``noise``. Real slices are softer than the default: CT_small.dcm's air–tissue edges rise from 10 % to
        90 % over 2.9–3.1 pixels, this phantom's over 1.5 at σ 0.5 and 2.9 at σ 1.1; a network trained on
        the sharper edges over-sharpens real ones.

    Returns
    -------
    SciImage
        float32 HU (−1000 air to about 1200 cortical bone), domain ``"ct"``.
    """
    if len(shape) != 2:
        raise SciSRError(f"ct_phantom makes 2D slices; shape must have 2 entries, got {tuple(shape)}")
    for label, value in (("noise", noise), ("grain", grain), ("blur", blur)):
        values = [value] if np.isscalar(value) else list(value)
        if len(values) not in (1, 2) or not all(np.isfinite(v) and v >= 0 for v in values) or values != sorted(values):
            raise SciSRError(f"ct_phantom {label} must be a value ≥ 0 or a range (low, high), got {value!r}")
    rng = np.random.default_rng(seed)
    noise, grain, blur = (float(v) if np.isscalar(v) else float(rng.uniform(*v)) for v in (noise, grain, blur))
    y, x = _grid(shape)
    jitter = lambda scale: float(rng.uniform(-scale, scale))  # noqa: E731

    def ellipse(cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
        return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 < 1.0

    img = np.full(tuple(shape), -1000.0)
    ry, rx = 0.62 + jitter(0.04), 0.88 + jitter(0.04)
    img[ellipse(0, 0, ry, rx)] = -100.0  # subcutaneous fat
    img[ellipse(0, 0, ry - 0.06, rx - 0.06)] = 40.0  # soft tissue
    for side in (-1.0, 1.0):
        lung = ellipse(-0.02 + jitter(0.03), side * (0.4 + jitter(0.03)), 0.42, 0.3)
        img[lung] = -850.0
        for _ in range(12):  # vessels (bright dots) and bronchi (dark rings) inside the lung
            cy, cx = rng.uniform(-0.35, 0.35), side * 0.4 + rng.uniform(-0.22, 0.22)
            r = rng.uniform(0.012, 0.03)
            if rng.uniform() < 0.7:
                img[lung & ellipse(cy, cx, r, r)] = 30.0
            else:
                img[lung & ellipse(cy, cx, r, r) & ~ellipse(cy, cx, 0.6 * r, 0.6 * r)] = 20.0
                img[lung & ellipse(cy, cx, 0.6 * r, 0.6 * r)] = -980.0
    img[ellipse(-0.12, 0.08, 0.22, 0.2)] = 50.0  # heart
    img[ellipse(-0.05, -0.12, 0.07, 0.07)] = 250.0  # contrast in the aorta
    img[ellipse(0.45, 0.0, 0.13, 0.13)] = 1100.0  # vertebral cortex
    img[ellipse(0.45, 0.0, 0.11, 0.11)] = 350.0 + 40.0 * _texture(shape, 0.7, rng)[ellipse(0.45, 0.0, 0.11, 0.11)]
    img[ellipse(0.6, 0.0, 0.04, 0.05)] = 20.0  # spinal canal
    for k in range(10):  # ribs around the chest wall
        angle = np.pi * (0.1 + 0.8 * k / 9) * (1 if k % 2 else -1) + jitter(0.05)
        cy, cx = 0.9 * (ry - 0.08) * np.sin(angle), 0.9 * (rx - 0.08) * np.cos(angle)
        img[ellipse(cy, cx, 0.025, 0.035)] = 800.0
    for _ in range(4):  # calcifications: sub-millimetre, high contrast
        cy, cx = rng.uniform(-0.2, 0.1), rng.uniform(-0.1, 0.25)
        img[ellipse(cy, cx, 0.012, 0.012)] = 900.0
    field = _texture(shape, grain, rng) if grain > 0 else rng.standard_normal(tuple(shape))
    img = ndimage.gaussian_filter(img, blur) + noise * field
    return SciImage.from_array(img.astype(np.float32), spacing=tuple(spacing), domain="ct",
                               meta={"source": f"ct_phantom(seed={seed})", "units": "HU"})


def star_field(shape: Sequence[int] = (128, 128), seed: int = 0, n_stars: int | Sequence[int] = 60,
               fwhm: float | Sequence[float] = 2.5, beta: float | Sequence[float] = 3.0, sky: float = 100.0,
               gain: float = 4.0, read_noise: float = 2.0,
               pixel_scale: float = 0.1 / 3600, saturation: float | Sequence[float] | None = None,
               nebula: float | Sequence[float] = 0.0, soft_saturation: float = 0.0) -> SciImage:
    """A star field: Moffat stars with power-law fluxes and a few galaxies on a sky, with noise.

    Real frames are often crowded (the Galactic plane), sit on structured background (nebulosity, scattered
    light) and have saturated bright stars (a CCD's full well, a photographic plate's density limit);
    ``n_stars``, ``nebula`` and ``saturation`` as ranges give a training set of such frames.

    Parameters
    ----------
    shape : sequence of int
        ``(y, x)`` pixels (FITS order).
    seed : int
        Varies positions, fluxes and noise.
    n_stars : int or (int, int)
        Number of stars, or a range ``[low, high)`` drawn log-uniformly per image from ``seed``.
    fwhm : float or (float, float)
        Stellar FWHM in pixels; a range ``(low, high)`` draws one per image from ``seed`` (a training set
        with varied seeing).
    beta : float or (float, float)
        Moffat power, or a range drawn like ``fwhm``.
    sky : float
        Sky level in counts per pixel.
    gain : float
        e⁻ per count for the photon noise (higher: less noise).
    read_noise : float
        Read-noise σ in counts.
    pixel_scale : float
        Degrees per pixel (the spacing).
    saturation : float or (float, float), optional
        Counts at which the detector saturates (values are clipped there after the noise), or a range
        drawn log-uniformly per image; None: no saturation.
    soft_saturation : float
        Probability that an image saturates softly, ``level·tanh(x / level)`` (a photographic plate's
        compressed cores, a CCD's non-linearity near full well), instead of being clipped at ``level``.
    nebula : float or (float, float)
        Standard deviation in counts of a smooth random background (Gaussian-filtered white noise on a
        scale of 2–16 pixels, clipped at −sky/2), or a range drawn per image; 0: a flat sky.

    Returns
    -------
    SciImage
        float32 counts, domain ``"sky"``, ``meta["units"] = "counts"`` (flux-conserving upscales), a
        north-up TAN ``wcs`` centred on RA 150°, Dec 2° with ``pixel_scale``.
    """
    if len(shape) != 2:
        raise SciSRError(f"star_field makes 2D images; shape must have 2 entries, got {tuple(shape)}")
    rng = np.random.default_rng(seed)
    fwhm, beta = (float(v) if np.isscalar(v) else float(rng.uniform(*v)) for v in (fwhm, beta))
    if not np.isscalar(n_stars):
        n_stars = int(np.exp(rng.uniform(*np.log(n_stars))))
    ny, nx = shape
    img = np.full((ny, nx), float(sky))
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    radius = int(np.ceil(4 * fwhm))
    offsets = np.arange(-radius, radius + 1)
    fluxes = 300.0 * (1.0 - rng.uniform(size=n_stars)) ** (-1.0 / 1.3)  # power law: many faint, few bright
    for flux, cy, cx in zip(fluxes, rng.uniform(0, ny - 1, n_stars), rng.uniform(0, nx - 1, n_stars), strict=True):
        iy, ix = round(cy), round(cx)
        py, px = iy + offsets, ix + offsets
        stamp = (1.0 + ((py[:, None] - cy) ** 2 + (px[None, :] - cx) ** 2) / alpha**2) ** (-beta)
        stamp *= min(flux, 2e5) / stamp.sum()
        inside_y, inside_x = (py >= 0) & (py < ny), (px >= 0) & (px < nx)
        img[np.ix_(py[inside_y], px[inside_x])] += stamp[np.ix_(inside_y, inside_x)]
    for _ in range(3):  # exponential-disc galaxies: extended, elliptical
        cy, cx = rng.uniform(0.2, 0.8) * ny, rng.uniform(0.2, 0.8) * nx
        q, theta, scale = rng.uniform(0.3, 0.9), rng.uniform(0, np.pi), rng.uniform(2.0, 5.0)
        dy, dx = yy - cy, xx - cx
        a = dx * np.cos(theta) + dy * np.sin(theta)
        b = (-dx * np.sin(theta) + dy * np.cos(theta)) / q
        img += rng.uniform(20, 80) * np.exp(-np.hypot(a, b) / scale)
    if not np.isscalar(nebula) or nebula > 0:
        amplitude = float(nebula) if np.isscalar(nebula) else float(rng.uniform(*nebula))
        field = ndimage.gaussian_filter(rng.normal(size=(ny, nx)), rng.uniform(2.0, 16.0), mode="wrap")
        img += np.maximum(amplitude * field / max(float(field.std()), 1e-12), -sky / 2)
    noisy = rng.poisson(img * gain) / gain + rng.normal(0.0, read_noise, img.shape)
    if saturation is not None:
        level = float(saturation) if np.isscalar(saturation) else float(np.exp(rng.uniform(*np.log(saturation))))
        soft = soft_saturation > 0 and rng.uniform() < soft_saturation
        noisy = level * np.tanh(noisy / level) if soft else np.minimum(noisy, level)
    from astropy.wcs import WCS

    # A north-up TAN frame so sky coordinates (and the science report's arcsec shifts) exist.
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    wcs.wcs.cdelt = [-pixel_scale, pixel_scale]
    wcs.pixel_shape = (nx, ny)
    return SciImage.from_array(noisy.astype(np.float32), spacing=(pixel_scale, pixel_scale), wcs=wcs, domain="sky",
                               meta={"source": f"star_field(seed={seed})", "units": "counts"})


def generic_scene(shape: Sequence[int] = (128, 128), seed: int = 0) -> SciImage:
    """A generic test scene in [0, 1]: gradient, discs, bars, thin lines and stripe textures.

    Parameters
    ----------
    shape : sequence of int
        ``(rows, columns)``.
    seed : int
        Varies every shape.

    Returns
    -------
    SciImage
        float32, domain ``"generic"``.
    """
    if len(shape) != 2:
        raise SciSRError(f"generic_scene makes 2D images; shape must have 2 entries, got {tuple(shape)}")
    rng = np.random.default_rng(seed)
    y, x = _grid(shape)
    img = 0.3 + 0.2 * (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1))
    img = np.broadcast_to(img, tuple(shape)).copy()
    for _ in range(8):
        cy, cx, r = rng.uniform(-0.8, 0.8), rng.uniform(-0.8, 0.8), rng.uniform(0.05, 0.25)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = rng.uniform(0, 1)
    for _ in range(6):  # rotated bars
        cy, cx, theta = rng.uniform(-0.7, 0.7), rng.uniform(-0.7, 0.7), rng.uniform(0, np.pi)
        a = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
        b = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
        img[(np.abs(a) < rng.uniform(0.1, 0.4)) & (np.abs(b) < rng.uniform(0.01, 0.06))] = rng.uniform(0, 1)
    for _ in range(3):  # stripe patches: frequencies near the LR Nyquist limit
        cy, cx, r = rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6), rng.uniform(0.1, 0.2)
        freq, theta = rng.uniform(8, 20), rng.uniform(0, np.pi)
        stripes = 0.5 + 0.5 * np.sin(np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)))
        patch = (np.abs(y - cy) < r) & (np.abs(x - cx) < r)
        img[patch] = np.broadcast_to(stripes, tuple(shape))[patch]
    img = ndimage.gaussian_filter(img, 0.4)
    return SciImage.from_array(img.astype(np.float32), domain="generic",
                               meta={"source": f"generic_scene(seed={seed})", "units": None})


PHANTOMS: dict[str, Callable[..., SciImage]] = {
    "knee_phantom": knee_phantom,
    "blob_phantom": blob_phantom,
    "ct_phantom": ct_phantom,
    "star_field": star_field,
    "generic_scene": generic_scene,
}


def _parameters(name: str) -> Mapping[str, inspect.Parameter]:
    """The generator parameters of phantom ``name``; an unknown name is an error."""
    if name not in PHANTOMS:
        raise SciSRError(f"unknown phantom {name!r} (known: {', '.join(PHANTOMS)})")
    return inspect.signature(PHANTOMS[name]).parameters


def phantom_ndim(name: str, options: Mapping[str, Any] | None = None) -> int:
    """Spatial axes of the images phantom ``name`` makes with generator ``options`` (their ``shape`` or the
    generator's default one), without building one.

    Raises
    ------
    SciSRError
        Unknown phantom.
    """
    shape = dict(options or {}).get("shape", _parameters(name)["shape"].default)
    return len(shape)


def generate(name: str, seed: int = 0, **options: Any) -> SciImage:
    """Build phantom ``name`` (:data:`PHANTOMS`) with ``seed`` and generator ``options``.

    Raises
    ------
    SciSRError
        Unknown phantom or option.
    """
    known = [p for p in _parameters(name) if p != "seed"]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise SciSRError(f"unknown option {unknown[0]!r} for phantom {name!r} (known: {', '.join(known)})")
    return PHANTOMS[name](seed=seed, **options)
