"""How well the slice profile is estimated from the image alone (sciSR.consistency.estimate_slice_profile).

    python benchmarks/slice_profile.py

Each row degrades a high-resolution phantom (1 mm voxels) through-plane with a known profile, Gaussian
(FWHM = thickness) or boxcar (width = thickness), at slice spacing ``s``: thickness ``t < s`` leaves a gap,
``t = s`` is contiguous, ``t > s`` overlaps. The estimate fits the same profile shape. Printed: the
estimate, its error in mm and %, the fit residual and whether :func:`sciSR.consistency.slice_profile_for`
would use it (residual ≤ ``RELIABLE_RESIDUAL_DB``), as a Markdown table.

- ``blob`` rows: :func:`sciSR.data.phantoms.blob_phantom` (isotropic), 120³ voxels; with ``noise`` the
  Gaussian noise σ is 5 % of the low-resolution image's standard deviation.
- ``blob 2 mm in-plane`` rows: the in-plane axes are block-averaged ×2 first, so the ratio slice spacing /
  in-plane spacing is 2.5 (not an integer) and the in-plane voxels have their own blur. The estimate is
  the blur that turns an in-plane axis into the through-plane one, i.e. what the slice profile adds to
  the in-plane voxel: for a Gaussian a little less than the thickness (widths add in quadrature), for a
  boxcar about the thickness minus the 2 mm voxel (widths add). That is the operator data consistency
  needs; the "error" against the nominal thickness is expected there.
- ``knee`` rows: :func:`sciSR.data.phantoms.knee_phantom` 96³, whose long bones run along axis 2. Sagittal
  slices (across axis 0: one in-plane axis runs along the leg) and axial slices (across axis 2: the
  slice axis runs along the leg, where the object changes slowly) show the bias of an anisotropic object,
  and that the residual flags it.

No training; about half a minute on one core.
"""

from __future__ import annotations

import numpy as np

import sciSR
from sciSR.blocks import bin_array
from sciSR.consistency.slice_profile import RELIABLE_RESIDUAL_DB, estimate_slice_profile
from sciSR.data.phantoms import blob_phantom, knee_phantom
from sciSR.degrade.mri import thick_slice

HEADER = ("| phantom | profile | spacing s (mm) | thickness t (mm) | t/s | estimate (mm) | error (mm) | error (%) "
          "| residual (dB) | used |")


def estimate_row(name: str, hr: np.ndarray, hr_spacing: tuple[float, ...], axis: int, kind: str, s: int,
                 t: float, noise: float, rng: np.random.Generator) -> tuple[str, float, bool]:
    """One table row: degrade ``hr`` across ``axis`` (spacing ``s`` HR voxels, thickness ``t`` HR voxels), estimate."""
    factors = tuple(s if a == axis else 1 for a in range(3))
    lr = thick_slice(hr, factors, kind, gap=[f - t if f > 1 else 0.0 for f in factors])
    if noise:
        lr = lr + rng.normal(0.0, noise * float(lr.std()), lr.shape).astype(np.float32)
    spacing = tuple(h * f for h, f in zip(hr_spacing, factors, strict=True))
    est = estimate_slice_profile(sciSR.SciImage.from_array(lr, spacing=spacing, domain="mri"), axis, kind=kind)
    truth = t * hr_spacing[axis]
    error = est.fwhm_mm - truth
    used = est.residual_db <= RELIABLE_RESIDUAL_DB
    line = (f"| {name} | {kind} | {spacing[axis]:g} | {truth:g} | {truth / spacing[axis]:.2f} | {est.fwhm_mm:.2f} "
            f"| {error:+.2f} | {100 * error / truth:+.0f} | {est.residual_db:.2f} | {'yes' if used else 'no'} |")
    return line, abs(100 * error / truth), used


def main() -> None:
    rng = np.random.default_rng(0)
    blob = blob_phantom((120, 120, 120), seed=0).array
    coarse = bin_array(blob_phantom((120, 120, 150), seed=1).array, (2, 2, 1), "mean")
    knee = knee_phantom((96, 96, 96), seed=1).array
    rows = []
    for kind in ("gaussian", "boxcar"):
        for noise in (0.0, 0.05):
            for s in (3, 4, 6):
                for ratio in (0.6, 0.8, 1.0, 1.25):
                    name = "blob" + (", noise 5 %" if noise else "")
                    rows.append(estimate_row(name, blob, (1.0, 1.0, 1.0), 2, kind, s, ratio * s, noise, rng))
        for t in (3.0, 4.0, 5.0, 6.0):
            rows.append(estimate_row("blob 2 mm in-plane", coarse, (2.0, 2.0, 1.0), 2, kind, 5, t, 0.0, rng))
    for axis, name in ((0, "knee, sagittal slices (axis 0)"), (2, "knee, axial slices (axis 2)")):
        for s in (3, 4):
            for ratio in (0.75, 1.0):
                rows.append(estimate_row(name, knee, (1.0, 1.0, 1.0), axis, "gaussian", s, ratio * s, 0.0, rng))
    print(HEADER)
    print("|" + " --- |" * HEADER.count(" | ") + " --- |")
    for line, _, _ in rows:
        print(line)
    fine = [error for line, error, _ in rows if line.startswith(("| blob |", "| blob, noise"))]
    knee = [(error, ok) for line, error, ok in rows if line.startswith("| knee")]
    print(f"\nblob, 1 mm in-plane: median |error| {np.median(fine):.0f} %, max {max(fine):.0f} % ({len(fine)} rows); "
          f"knee: {sum(ok for _, ok in knee)} of {len(knee)} estimates used, max |error| among them "
          f"{max(error for error, ok in knee if ok):.0f} %")


if __name__ == "__main__":
    main()
