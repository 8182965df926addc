"""MONAI transforms for every degradation: array and dictionary versions, fixed and seedable random.

Array transforms take channel-first images ``(C, *spatial)`` (numpy or torch; the type is kept) and
return ``(C, *spatial / scale)`` float32 on the FOV-preserving grid. ``scale`` is one integer per spatial
axis (or one for all), e.g. ``(1, 1, 4)``. Random versions draw each parameter given as a
``(low, high)`` pair uniformly per call from ``self.R`` (seed with ``set_random_state``); a number fixes
it. Dictionary versions read ``keys`` and write ``output_keys`` (default: in place), so
``ThickSliced(keys="hr", output_keys="lr", scale=(1, 1, 4))`` adds the LR image beside the HR one.

``flux_reduce`` tells how LR values relate to HR values: ``"mean"`` (intensities: an LR voxel is a
weighted mean of HR voxels) or ``"sum"`` (counts: an LR pixel is the sum of its HR block).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform, Transform
from monai.utils import TransformBackends, convert_data_type, convert_to_dst_type
from scipy import ndimage

from sciSR.blocks import bin_array
from sciSR.degrade.ct import ct_downsample
from sciSR.degrade.generic import bicubic_downsample
from sciSR.degrade.mri import kspace_downsample, thick_slice
from sciSR.degrade.noise import gaussian_noise
from sciSR.degrade.telescope import load_psf, psf_kernel, telescope_downsample
from sciSR.errors import SciSRError
from sciSR.geometry import ScaleLike, normalize_scale

Range = float | Sequence[float]


def _as_range(value: Range, name: str) -> tuple[float, float]:
    low, high = (float(value), float(value)) if np.isscalar(value) else (float(v) for v in value)
    if high < low:
        raise SciSRError(f"{name} range must be (low, high) with low ≤ high, got {value!r}")
    return low, high


def _channel_first(degrade: Callable[[np.ndarray, tuple[int, ...]], np.ndarray], img: NdarrayOrTensor,
                   scale: ScaleLike) -> NdarrayOrTensor:
    """Run a ``(*spatial, C)`` numpy degradation on a ``(C, *spatial)`` image of any array type."""
    x = convert_data_type(img, np.ndarray, dtype=np.float32)[0]
    if x.ndim < 2:
        raise SciSRError(f"degradations take channel-first images (C, *spatial), got shape {x.shape}")
    factors = normalize_scale(scale, x.ndim - 1)
    out = np.ascontiguousarray(np.moveaxis(degrade(np.moveaxis(x, 0, -1), factors), -1, 0), dtype=np.float32)
    return convert_to_dst_type(out, img, dtype=np.float32)[0]


class Degradation(Transform):
    """Base of the fixed degradations: ``degrade((*spatial, C), scale) -> (*spatial / scale, C)``."""

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.NUMPY, TransformBackends.TORCH]
    flux_reduce = "mean"

    def __init__(self, scale: ScaleLike) -> None:
        self.scale = scale

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        return _channel_first(self.degrade, img, self.scale)


class RandDegradation(RandomizableTransform):
    """Base of the random degradations: ``sample()`` draws this call's parameters from ``self.R``."""

    backend = Degradation.backend
    flux_reduce = "mean"

    def __init__(self, scale: ScaleLike) -> None:
        RandomizableTransform.__init__(self, prob=1.0)  # a degradation always happens: LR must be LR
        self.scale = scale

    def _draw(self, bounds: tuple[float, float]) -> float:
        return float(self.R.uniform(*bounds))

    def sample(self) -> None:
        raise NotImplementedError

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        self.sample()

    def changes_truth(self) -> bool:
        """Whether this call's draw replaces the HR patch by another truth (:meth:`truth`)."""
        return False

    def truth(self, x: np.ndarray) -> np.ndarray:
        """The training target of this call's draw from the HR patch ``(*spatial, C)``: ``x`` itself unless
        the degradation also varies the truth (:class:`RandKSpaceDownsample`'s ``smooth_prob``)."""
        return x

    def target(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """The training target of the last draw for a channel-first image ``(C, *spatial)``: ``img`` itself
        (not copied) unless the draw varies the truth (:meth:`truth`); call it after the transform."""
        if not self.changes_truth():
            return img
        return _channel_first(lambda x, _: self.truth(x), img, 1)

    def __call__(self, img: NdarrayOrTensor, randomize: bool = True) -> NdarrayOrTensor:
        """The low-resolution image of ``img`` under a new draw (``randomize``), made from the draw's truth:
        a pair for training is ``(transform(img), transform.target(img))``."""
        if randomize:
            self.randomize()
        return _channel_first(lambda x, scale: self.degrade(self.truth(x), scale), img, self.scale)


# --- fixed -------------------------------------------------------------------------------------------


class BinDownsample(Degradation):
    """Block mean (intensities) or block sum (counts): :func:`sciSR.degrade.bin_array`."""

    def __init__(self, scale: ScaleLike, reduce: str = "mean") -> None:
        super().__init__(scale)
        self.reduce = reduce
        self.flux_reduce = reduce

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return bin_array(x, scale, self.reduce)


class ThickSlice(Degradation):
    """MRI thick slices: :func:`sciSR.degrade.mri.thick_slice` (slice-profile blur, then decimate)."""

    def __init__(self, scale: ScaleLike, profile: str = "gaussian", gap: float | Sequence[float] = 0.0) -> None:
        super().__init__(scale)
        self.profile, self.gap = profile, gap

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return thick_slice(x, scale, self.profile, self.gap)


class KSpaceDownsample(Degradation):
    """MRI in-plane: k-space truncation to a magnitude image (:func:`sciSR.degrade.mri.kspace_downsample`)."""

    def __init__(self, scale: ScaleLike, window: str | None = None) -> None:
        super().__init__(scale)
        self.window = window

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return kspace_downsample(x, scale, self.window)


class CTDownsample(Degradation):
    """CT: Gaussian blur (FWHM in HR voxels) + block mean (:func:`sciSR.degrade.ct.ct_downsample`)."""

    def __init__(self, scale: ScaleLike, fwhm: float | Sequence[float] = 1.0) -> None:
        super().__init__(scale)
        self.fwhm = fwhm

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return ct_downsample(x, scale, self.fwhm)


class TelescopeDownsample(Degradation):
    """Telescope: PSF convolution + block sum (:func:`sciSR.degrade.telescope.telescope_downsample`).

    ``psf`` is ``"gaussian"``, ``"moffat"`` (with ``fwhm`` in HR pixels and ``beta``), a kernel array or
    a file (odd sizes, on the HR grid); it blurs the image plane (first two spatial axes) only.
    """

    flux_reduce = "sum"

    def __init__(self, scale: ScaleLike, psf: str | os.PathLike | np.ndarray | None = "gaussian",
                 fwhm: float = 2.0, beta: float = 4.765) -> None:
        super().__init__(scale)
        self.psf, self.fwhm, self.beta = psf, fwhm, beta

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return telescope_downsample(x, scale, _psf(self.psf, self.fwhm, self.beta, len(scale)))


class BicubicDownsample(Degradation):
    """Generic: antialiased bicubic (:func:`sciSR.degrade.generic.bicubic_downsample`)."""

    def __init__(self, scale: ScaleLike, antialias: bool = True) -> None:
        super().__init__(scale)
        self.antialias = antialias

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return bicubic_downsample(x, scale, self.antialias)


def _psf(psf: Any, fwhm: float, beta: float, spatial_ndim: int) -> np.ndarray | None:
    # The PSF lives in the image plane (the first two axes); further axes (a spectral axis) are not blurred.
    ndim = min(spatial_ndim, 2)
    if psf is None:
        return None
    if isinstance(psf, str) and psf in ("gaussian", "moffat"):
        return psf_kernel(psf, fwhm, ndim, beta)
    return load_psf(psf, ndim)


# --- random ------------------------------------------------------------------------------------------


class RandThickSlice(RandDegradation):
    """Random thick slices: slice ``gap`` (HR voxels) and Rician ``noise_std`` (image units) drawn per call;
    the slice profile is a boxcar with probability ``boxcar_prob``, else ``profile``."""

    def __init__(self, scale: ScaleLike, profile: str = "gaussian", gap: Range = 0.0, noise_std: Range = 0.0,
                 boxcar_prob: float = 0.0) -> None:
        super().__init__(scale)
        if not 0.0 <= boxcar_prob <= 1.0:
            raise SciSRError(f"boxcar_prob must lie in [0, 1], got {boxcar_prob}")
        self.base_profile, self.boxcar_prob = profile, float(boxcar_prob)
        self.profile = profile
        self.gap, self.noise_std = _as_range(gap, "gap"), _as_range(noise_std, "noise_std")
        self._gap = self._noise = 0.0

    def sample(self) -> None:
        self._gap, self._noise = self._draw(self.gap), self._draw(self.noise_std)
        self.profile = "boxcar" if self.boxcar_prob and self.R.uniform() < self.boxcar_prob else self.base_profile

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return thick_slice(x, scale, self.profile, self._gap, self._noise, self.R)


class RandKSpaceDownsample(RandDegradation):
    """Random k-space truncation, drawn per call: a Hamming window with probability ``window_prob``, a
    Tukey window with probability ``tukey_prob``, else sharp (Gibbs ringing); partial Fourier (fraction
    drawn from ``partial``) with probability ``partial_prob``; with probability ``noise_prob``, Rician noise
    σ = ``noise_std`` (image units) plus ``noise_rel`` × the 99th percentile of the HR image (a fraction of
    the bright foreground), else none (a high-SNR acquisition). With probability ``smooth_prob`` the truth
    itself is first smoothed by a Gaussian of σ drawn from ``smooth_sigma`` (HR pixels, periodic: each
    patch is its own field of view), both as the target and before the truncation: anatomy, or a template,
    smoother than its pixels, whose missing band the network must not fill with the energy of a sharp
    photograph's (see :meth:`truth`)."""

    def __init__(self, scale: ScaleLike, window_prob: float = 0.5, noise_std: Range = 0.0, tukey_prob: float = 0.0,
                 partial_prob: float = 0.0, partial: Range = (0.625, 0.875), noise_rel: Range = 0.0,
                 noise_prob: float = 1.0, smooth_prob: float = 0.0, smooth_sigma: Range = (0.3, 1.2)) -> None:
        super().__init__(scale)
        if (window_prob < 0 or tukey_prob < 0 or window_prob + tukey_prob > 1 or not 0 <= partial_prob <= 1
                or not 0 <= noise_prob <= 1 or not 0 <= smooth_prob <= 1):
            raise SciSRError(f"k-space probabilities must lie in [0, 1] with window_prob + tukey_prob ≤ 1, got "
                             f"window_prob={window_prob}, tukey_prob={tukey_prob}, partial_prob={partial_prob}, "
                             f"noise_prob={noise_prob}, smooth_prob={smooth_prob}")
        self.window_prob, self.tukey_prob = float(window_prob), float(tukey_prob)
        self.partial_prob, self.noise_prob = float(partial_prob), float(noise_prob)
        self.noise_std, self.noise_rel = _as_range(noise_std, "noise_std"), _as_range(noise_rel, "noise_rel")
        self.partial = _as_range(partial, "partial")
        self.smooth_prob, self.smooth_sigma = float(smooth_prob), _as_range(smooth_sigma, "smooth_sigma")
        self._window: str | None = None
        self._noise = self._rel = self._smooth = 0.0
        self._partial = 1.0

    def sample(self) -> None:
        u = self.R.uniform()
        tukey = u < self.window_prob + self.tukey_prob
        self._window = "hamming" if u < self.window_prob else "tukey" if tukey else None
        self._partial = self._draw(self.partial) if self.R.uniform() < self.partial_prob else 1.0
        self._noise, self._rel = self._draw(self.noise_std), self._draw(self.noise_rel)
        # Drawn only when it can matter, so recipes without noise_prob keep their random stream.
        if self.noise_prob < 1.0 and self.R.uniform() >= self.noise_prob:
            self._noise = self._rel = 0.0
        self._smooth = 0.0
        if self.smooth_prob > 0 and self.R.uniform() < self.smooth_prob:
            self._smooth = self._draw(self.smooth_sigma)

    def changes_truth(self) -> bool:
        return self._smooth > 0

    def truth(self, x: np.ndarray) -> np.ndarray:
        if self._smooth <= 0:
            return x
        spatial = [self._smooth] * len(normalize_scale(self.scale, x.ndim - 1)) + [0.0]
        return ndimage.gaussian_filter(np.asarray(x, dtype=np.float32), spatial, mode="wrap")

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        sigma = self._noise + (self._rel * float(np.percentile(x, 99)) if self._rel > 0 else 0.0)
        return kspace_downsample(x, scale, self._window, sigma, self.R, self._partial)


class RandCTDownsample(RandDegradation):
    """Random CT degradation: blur ``fwhm`` (HR voxels) and ``noise_std`` (HU) drawn per call."""

    def __init__(self, scale: ScaleLike, fwhm: Range = 1.0, noise_std: Range = 0.0) -> None:
        super().__init__(scale)
        self.fwhm, self.noise_std = _as_range(fwhm, "fwhm"), _as_range(noise_std, "noise_std")
        self._fwhm = self._noise = 0.0

    def sample(self) -> None:
        self._fwhm, self._noise = self._draw(self.fwhm), self._draw(self.noise_std)

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        return ct_downsample(x, scale, self._fwhm, self._noise, self.R)


class RandTelescopeDownsample(RandDegradation):
    """Random telescope degradation: seeing ``fwhm`` (HR pixels), Moffat ``beta``, ``read_noise`` (image
    units per LR pixel) and ``gain`` (e⁻ per image unit: a range varies the signal-to-noise ratio of the
    photon noise; None: no photon noise) drawn per call."""

    flux_reduce = "sum"

    def __init__(self, scale: ScaleLike, psf: str | os.PathLike | np.ndarray | None = "gaussian",
                 fwhm: Range = 2.0, beta: Range = 4.765, gain: Range | None = 1.0, read_noise: Range = 0.0) -> None:
        super().__init__(scale)
        self.psf = psf
        self.gain = None if gain is None else _as_range(gain, "gain")
        if self.gain is not None and self.gain[0] <= 0:
            raise SciSRError(f"gain must be positive (e⁻ per image unit), got {gain!r}")
        self.fwhm, self.beta = _as_range(fwhm, "fwhm"), _as_range(beta, "beta")
        self.read_noise = _as_range(read_noise, "read_noise")
        self._fwhm = self._beta = self._read = 0.0
        self._gain: float | None = None

    def sample(self) -> None:
        self._fwhm, self._beta, self._read = self._draw(self.fwhm), self._draw(self.beta), self._draw(self.read_noise)
        self._gain = None if self.gain is None else self._draw(self.gain)

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        psf = _psf(self.psf, self._fwhm, self._beta, len(scale))
        return telescope_downsample(x, scale, psf, self._gain, self._read, self.R)


class RandBicubicDownsample(RandDegradation):
    """Random generic degradation: antialiased bicubic, or with probability ``box_prob`` a block mean (a
    camera's bigger pixels: what the bicubic kernel's negative lobes never produce), plus Gaussian
    ``noise_std`` drawn per call."""

    def __init__(self, scale: ScaleLike, antialias: bool = True, noise_std: Range = 0.0, box_prob: float = 0.0) -> None:
        super().__init__(scale)
        if not 0 <= box_prob <= 1:
            raise SciSRError(f"box_prob must lie in [0, 1], got {box_prob}")
        self.antialias, self.noise_std = antialias, _as_range(noise_std, "noise_std")
        self.box_prob = float(box_prob)
        self._noise = 0.0
        self._box = False

    def sample(self) -> None:
        self._noise = self._draw(self.noise_std)
        self._box = bool(self.box_prob) and self.R.uniform() < self.box_prob

    def degrade(self, x: np.ndarray, scale: tuple[int, ...]) -> np.ndarray:
        if self._box:
            return gaussian_noise(bin_array(np.asarray(x, dtype=np.float32), scale, "mean"), self._noise, self.R)
        return bicubic_downsample(x, scale, self.antialias, self._noise, self.R)


# --- dictionary versions -----------------------------------------------------------------------------


class Degradationd(MapTransform):
    """Dictionary wrapper: ``d[output_key] = transform(d[key])`` for each key."""

    backend = Degradation.backend

    def __init__(self, keys: KeysCollection, transform: Degradation, output_keys: KeysCollection | None = None,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.transform = transform
        self.output_keys = self.keys if output_keys is None else tuple(
            [output_keys] if isinstance(output_keys, str) else output_keys)
        if len(self.output_keys) != len(self.keys):
            raise SciSRError(f"output_keys {self.output_keys} must pair with keys {self.keys}")

    @property
    def flux_reduce(self) -> str:
        return self.transform.flux_reduce

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[out_key] = self.transform(d[key])
        return d


class RandDegradationd(RandomizableTransform, Degradationd):
    """Dictionary wrapper of a random degradation; all keys share one parameter draw per call, and each key
    is first replaced by the draw's truth (:meth:`RandDegradation.truth`)."""

    def __init__(self, keys: KeysCollection, transform: RandDegradation, output_keys: KeysCollection | None = None,
                 allow_missing_keys: bool = False) -> None:
        Degradationd.__init__(self, keys, transform, output_keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob=1.0)

    def set_random_state(self, seed: int | None = None, state: np.random.RandomState | None = None
                         ) -> RandDegradationd:
        super().set_random_state(seed, state)
        self.transform.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.transform.randomize()
        for key, out_key in self.key_iterator(d, self.output_keys):
            d[key] = self.transform.target(d[key])
            d[out_key] = _channel_first(self.transform.degrade, d[key], self.transform.scale)
        return d


class BinDownsampled(Degradationd):
    """Dictionary version of :class:`BinDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, reduce: str = "mean",
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, BinDownsample(scale, reduce), output_keys, allow_missing_keys)


class ThickSliced(Degradationd):
    """Dictionary version of :class:`ThickSlice` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, profile: str = "gaussian",
                 gap: float | Sequence[float] = 0.0, output_keys: KeysCollection | None = None,
                 allow_missing_keys: bool = False) -> None:
        super().__init__(keys, ThickSlice(scale, profile, gap), output_keys, allow_missing_keys)


class KSpaceDownsampled(Degradationd):
    """Dictionary version of :class:`KSpaceDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, window: str | None = None,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, KSpaceDownsample(scale, window), output_keys, allow_missing_keys)


class CTDownsampled(Degradationd):
    """Dictionary version of :class:`CTDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, fwhm: float | Sequence[float] = 1.0,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, CTDownsample(scale, fwhm), output_keys, allow_missing_keys)


class TelescopeDownsampled(Degradationd):
    """Dictionary version of :class:`TelescopeDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, psf: str | os.PathLike | np.ndarray | None = "gaussian",
                 fwhm: float = 2.0, beta: float = 4.765,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, TelescopeDownsample(scale, psf, fwhm, beta), output_keys, allow_missing_keys)


class BicubicDownsampled(Degradationd):
    """Dictionary version of :class:`BicubicDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, antialias: bool = True,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, BicubicDownsample(scale, antialias), output_keys, allow_missing_keys)


class RandThickSliced(RandDegradationd):
    """Dictionary version of :class:`RandThickSlice` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, profile: str = "gaussian", gap: Range = 0.0,
                 noise_std: Range = 0.0, boxcar_prob: float = 0.0, output_keys: KeysCollection | None = None,
                 allow_missing_keys: bool = False) -> None:
        transform = RandThickSlice(scale, profile, gap, noise_std, boxcar_prob)
        super().__init__(keys, transform, output_keys, allow_missing_keys)


class RandKSpaceDownsampled(RandDegradationd):
    """Dictionary version of :class:`RandKSpaceDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, window_prob: float = 0.5, noise_std: Range = 0.0,
                 tukey_prob: float = 0.0, partial_prob: float = 0.0, partial: Range = (0.625, 0.875),
                 noise_rel: Range = 0.0, noise_prob: float = 1.0, smooth_prob: float = 0.0,
                 smooth_sigma: Range = (0.3, 1.2), output_keys: KeysCollection | None = None,
                 allow_missing_keys: bool = False) -> None:
        transform = RandKSpaceDownsample(scale, window_prob, noise_std, tukey_prob, partial_prob, partial, noise_rel,
                                         noise_prob, smooth_prob, smooth_sigma)
        super().__init__(keys, transform, output_keys, allow_missing_keys)


class RandCTDownsampled(RandDegradationd):
    """Dictionary version of :class:`RandCTDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, fwhm: Range = 1.0, noise_std: Range = 0.0,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, RandCTDownsample(scale, fwhm, noise_std), output_keys, allow_missing_keys)


class RandTelescopeDownsampled(RandDegradationd):
    """Dictionary version of :class:`RandTelescopeDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, psf: str | os.PathLike | np.ndarray | None = "gaussian",
                 fwhm: Range = 2.0, beta: Range = 4.765, gain: Range | None = 1.0, read_noise: Range = 0.0,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        transform = RandTelescopeDownsample(scale, psf, fwhm, beta, gain, read_noise)
        super().__init__(keys, transform, output_keys, allow_missing_keys)


class RandBicubicDownsampled(RandDegradationd):
    """Dictionary version of :class:`RandBicubicDownsample` (``d[output_key] = transform(d[key])``)."""

    def __init__(self, keys: KeysCollection, scale: ScaleLike, antialias: bool = True, noise_std: Range = 0.0,
                 output_keys: KeysCollection | None = None, allow_missing_keys: bool = False) -> None:
        super().__init__(keys, RandBicubicDownsample(scale, antialias, noise_std), output_keys, allow_missing_keys)


#: Config names of the degradations (random versions; a number instead of a range fixes a parameter).
DEGRADATIONS: dict[str, type] = {
    "bin": BinDownsample,
    "thick_slice": RandThickSlice,
    "kspace": RandKSpaceDownsample,
    "ct": RandCTDownsample,
    "telescope": RandTelescopeDownsample,
    "bicubic": RandBicubicDownsample,
}


def create_degradation(name: str, scale: ScaleLike, **options: Any) -> Degradation | RandDegradation:
    """Build a degradation by config name (:data:`DEGRADATIONS`) with its options checked.

    Raises
    ------
    SciSRError
        Unknown name or option (the message names it and lists the valid ones).
    """
    import inspect

    if name not in DEGRADATIONS:
        raise SciSRError(f"unknown degradation {name!r} (known: {', '.join(DEGRADATIONS)})")
    cls = DEGRADATIONS[name]
    known = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "scale")]
    unknown = [k for k in options if k not in known]
    if unknown:
        raise SciSRError(f"unknown option {unknown[0]!r} for degradation {name!r} (known: {', '.join(known)})")
    return cls(scale, **options)
