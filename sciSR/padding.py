"""Voxels outside the reconstructed field of view: CT padding, which is not image data (docs/architecture.md §4).

A CT scanner reconstructs a disc; the corners of the stored square hold a fill value far below air
(−2000 or −3024 HU are common), named by DICOM's PixelPaddingValue when the file says so. Fed to a network
as if it were anatomy, that fill lies outside every value the network learned (ct-x2 lost 11 dB to cubic
on a held-out head CT with −2000 HU corners) and its edge rings into the image. The pipeline treats such
voxels like masked ones: the network and the interpolators see their nearest field-of-view neighbour (air),
and the result gets the fill value back on the voxels that lie in them, so the output has the input's
format.
"""

from __future__ import annotations

import numpy as np

from sciSR.image import SciImage

CT_OUTSIDE_HU = -1500.0
"""CT numbers below this are no attenuation (air is −1000 HU, noise reaches a few hundred HU below in the
worst low-dose scans; scanners store −1024 as their floor) but a fill outside the reconstructed field."""


def outside_field(image: SciImage) -> np.ndarray | None:
    """Where ``image`` holds padding rather than data: None when nowhere.

    Parameters
    ----------
    image : SciImage
        Of domain ``"ct"``: values below :data:`CT_OUTSIDE_HU`, and those within ``meta["padding"]`` =
        ``(low, high)`` in the image's units (DICOM PixelPaddingValue, through PixelPaddingRangeLimit when
        given, as the reader calibrates them). Other domains have none: MR files that name a padding value
        name 0, which their air holds too, and masking it would cut tissue edges into the input's blocks.

    Returns
    -------
    numpy.ndarray or None
        bool, ``image.array``'s shape.
    """
    if image.domain != "ct":
        return None
    values = np.asarray(image.array)
    outside = values < CT_OUTSIDE_HU
    padding = image.meta.get("padding")
    if padding is not None:
        outside |= (values >= float(padding[0])) & (values <= float(padding[1]))
    if not outside.any() or outside.all():  # an image of padding only has nothing to keep apart
        return None
    return outside


def padding_value(image: SciImage, outside: np.ndarray) -> float:
    """The value the result's voxels outside the field take: the input's (its median, when fills differ)."""
    return float(np.median(np.asarray(image.array)[outside]))
