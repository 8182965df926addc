"""FITS images: read one image HDU into a :class:`~sciSR.image.SciImage`, write it back in place.

Reading applies BSCALE/BZERO and BLANK (astropy does it), keeps NaNs as NaN and marks them in
``meta["mask"]``, picks the HDU by EXTNAME/index or the first HDU holding an image (tile-compressed
ones included) and keeps the celestial WCS (with SIP) as ``img.wcs``. Writing puts the (upscaled)
array back at the same HDU position with the original header cards, the WCS cards of ``img.wcs``, a
HISTORY card naming the model, its uncertainty/quality HDUs (ERR, VAR, DQ...) upscaled with it, and
every other HDU of the source file copied unchanged.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from sciSR.errors import SciSRError
from sciSR.geometry import upscale_wcs
from sciSR.image import DOMAINS, SciImage
from sciSR.io.validate import SKY_SPACING_DEG, check_memory, check_spacing, printable, reader_boundary
from sciSR.paging import is_disk_backed, release_pages, row_chunks
from sciSR.version import __version__

SUFFIXES: tuple[str, ...] = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz")

HduSelector = int | str | tuple[str, int]

# Keywords that describe the data layout, not the observation: astropy rewrites them from the array.
# BSCALE/BZERO/BLANK go because the output is float with NaN; CHECKSUM/DATASUM would be stale.
_STRUCTURAL = frozenset(
    {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT", "GROUPS",
     "BSCALE", "BZERO", "BLANK", "CHECKSUM", "DATASUM"}
)
_NAXIS_N = re.compile(r"^NAXIS\d+$")

# WCS cards whose values depend on the pixel grid (or are rewritten with them by astropy's to_header):
# axis cards CRPIXia..., matrix cards CDi_ja / PCi_ja / PVi_ma / PSi_ma, and SIP (primary WCS only).
_AXIS_CARD = re.compile(r"^(CRPIX|CRVAL|CDELT|CTYPE|CUNIT|CROTA)(\d{1,2})([A-Z]?)$")
_MATRIX_CARD = re.compile(r"^(CD|PC|PV|PS)(\d{1,2})_(\d{1,2})([A-Z]?)$")
_AIPS_MATRIX_CARD = re.compile(r"^(CD|PC)(\d{3})(\d{3})$")  # PC001002: old form wcslib still reads
_SIP_CARD = re.compile(r"^(A|B|AP|BP)_(\d{1,2}_\d{1,2}|ORDER)$|^(A|B)_DMAX$")
# Paper IV distortion records (CPDISja/CQDISia and their DPja/DQia records) that wcslib writes.
_DISTORTION_CARD = re.compile(r"^(CPDIS|CQDIS|CPERR|CQERR|DP|DQ)(\d{1,2})([A-Z]?)$")
# Digitized Sky Survey plate solution: wcslib turns it into a TPD distortion and prefers it to CRPIX/CD.
_DSS_CARDS = frozenset(
    {"PLTRAH", "PLTRAM", "PLTRAS", "PLTDECSN", "PLTDECD", "PLTDECM", "PLTDECS", "CNPIX1", "CNPIX2",
     "XPIXELSZ", "YPIXELSZ", "PLTSCALE", *(f"PPO{i}" for i in range(1, 7)),
     *(f"AMD{axis}{i}" for axis in "XY" for i in range(1, 21))}
)
# A written header must reproduce the image's WCS to this many pixels (wcslib prints ~15 digits).
_WCS_TOLERANCE_PX = 1e-6

# wcslib's axis_types // 1000 % 10 -> what the axis is; only celestial and linear axes are spatial.
_AXIS_KINDS = {0: "linear", 1: "stokes", 2: "celestial", 3: "spectral", 4: "time"}
_NON_SPATIAL = ("stokes", "spectral", "time")
# CTYPEs of celestial longitude/latitude axes (RA/DEC, GLON/GLAT, ELON/ELAT, xxLN/xxLT ...).
_CELESTIAL_CTYPE = re.compile(r"^(RA|DEC|[A-Z]{1,2}LON|[A-Z]{1,2}LAT|[A-Z]{2}LN|[A-Z]{2}LT)(-|$)")

_BITPIX_DTYPES = {8: "uint8", 16: "int16", 32: "int32", 64: "int64", -32: "float32", -64: "float64"}
# An integer BITPIX with BSCALE=1 and this BZERO stores the unsigned (or, for 8, signed) type.
_OFFSET_DTYPES = {8: (-128, "int8"), 16: (2**15, "uint16"), 32: (2**31, "uint32"), 64: (2**63, "uint64")}


def sniff(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a plain FITS file (its first card is ``SIMPLE  =``).

    Parameters
    ----------
    path : str or os.PathLike
        Any file.

    Returns
    -------
    bool
        True when the first 80 bytes start with ``SIMPLE  =``; gzipped FITS are recognised by suffix.
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(80).startswith(b"SIMPLE  =")
    except OSError:
        return False


def read(
    path: str | os.PathLike,
    *,
    hdu: HduSelector | None = None,
    domain: str | None = None,
    series: Any = None,
) -> SciImage:
    """Read one image HDU of a FITS file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.fits``, ``.fit``, ``.fts``, ``.fits.gz`` or tile-compressed ``.fz`` file.
    hdu : int, str or (str, int), optional
        HDU index, EXTNAME (case-insensitive) or ``(EXTNAME, EXTVER)``. Default: the first HDU that
        holds an image (primary or extension, tile-compressed included).
    domain : str, optional
        Overrides the domain, ``"sky"`` by default.
    series : object, optional
        Accepted for the common reader signature; FITS files have no series.

    Returns
    -------
    SciImage
        ``array``: float32 (float64 for BITPIX −64) calibrated values, ``[y, x]`` for 2D or
        ``[z, y, x]`` for cubes (numpy order, the reverse of FITS NAXISn); NaN where the file holds
        NaN or BLANK. ``wcs``: the celestial astropy WCS (SIP included), else None. ``spacing``: per
        numpy axis, pixel scale from the WCS (deg/pixel on celestial axes, the axis unit elsewhere)
        when celestial, else 1.0. ``meta``: ``format``, ``source``, ``units`` (BUNIT or None),
        ``fits_header`` (copy of the chosen HDU's header, as stored), ``hdu``, ``stored_dtype``,
        ``bscale``/``bzero`` when present, ``mask`` (bool, ``array.shape``, True on NaN/inf),
        ``other_hdus`` (what :func:`write` needs to copy the rest of the file), ``fits_companions``
        (uncertainty/quality HDUs of the same shape: ``index``, ``extname``, ``kind`` — ``sigma``
        (EXTNAME ERR/SIGMA/STDDEV/UNC...), ``variance`` (VAR), ``ivar`` (IVAR/WHT), ``dq``
        (DQ/MASK/FLAGS/BPM), or by HDUCLAS2/3; EXTVER must match the science HDU's), ``notes``,
        ``provenance``.

    Non-spatial axes (spectral, Stokes, time by their CTYPE) are never spatial: they must follow the
    spatial FITS axes and become ONE trailing channel axis (several are flattened, the last FITS axis
    slowest), ``meta["fits_axes"]`` records them (``spatial``: FITS axis numbers; ``channels``: one
    dict per non-spatial axis with ``axis``, ``ctype``, ``kind``, ``size``; ``channel_shape``: their
    sizes in numpy order) so :func:`write` restores order, shape and WCS cards, and ``img.wcs`` is the
    WCS of the spatial axes only.

    Raises
    ------
    SciSRError
        Unreadable file, no such HDU, no image HDU, a 1D HDU, or every pixel invalid; a BUNIT card
        that is not a quoted string; a celestial WCS that astropy cannot use or whose pixel scale is
        not finite or outside 1e-9..180 deg; non-spatial axes before spatial ones; an image larger
        than half the available memory.
    """
    del series  # one FITS file is one image; the argument exists for the common reader signature
    if domain is not None and domain not in DOMAINS:
        raise SciSRError(f"domain must be one of {DOMAINS}, got {domain!r}", path)
    with reader_boundary("FITS", path):
        return _read(path, hdu, domain)


def _read(path: str | os.PathLike, hdu: HduSelector | None, domain: str | None) -> SciImage:
    """:func:`read` without the exception boundary."""
    source = os.fspath(path)
    notes: list[str] = []
    try:
        hdul = fits.open(source)
    except Exception as err:  # astropy raises OSError, ValueError, TypeError... for damaged files
        raise SciSRError(f"not a readable FITS file ({_bad_card(source) or _one_line(err)})", path) from None
    with hdul:
        index = _choose_hdu(hdul, hdu, path)
        chosen = hdul[index]
        # astropy drops BSCALE/BZERO/BLANK from hdu.header once the data are scaled: copy it first.
        header = chosen.header.copy()
        shape = tuple(int(n) for n in getattr(chosen, "shape", ()) or ())
        check_memory(shape, 8 if header.get("BITPIX") == -64 else 4, path, field="NAXISn")
        raw_header = _raw_header(source, hdul, index)
        for key in ("BSCALE", "BZERO"):
            try:
                value = header.get(key, 1.0)
            except Exception:  # astropy's VerifyError for a value it cannot parse
                value = None
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or (
                    key == "BSCALE" and value == 0):
                raise SciSRError(f"{key} = {printable(str(value))} is not a usable scale (zero or not a finite "
                                 "number): every pixel would be wrong", path)
        _check_data_size(source, hdul, index, shape, raw_header, path)
        try:
            raw = chosen.data
        except Exception as err:
            raise SciSRError(f"cannot read the pixels of HDU {index} ({_one_line(err)})", path) from None
        if raw is None or raw.ndim < 2:
            raise SciSRError(f"HDU {index} holds {'no' if raw is None else 'a 1-D'} array, not an image", path)
        dtype = np.float64 if header.get("BITPIX") == -64 else np.float32
        array = np.array(raw, dtype=dtype)
        wcs, spacing, layout = _read_wcs(header, hdul, array.shape, notes, path)
        n_hdus = len(hdul)
        compressed = isinstance(chosen, fits.CompImageHDU)
        companions = _find_companions(hdul, index, array.shape)
        paired = {c["index"] for c in companions}
        same_grid = [f"{i} ({h.name or 'unnamed'})" for i, h in enumerate(hdul)
                     if i != index and i not in paired and _holds_image(h) and tuple(h.shape) == array.shape]
    if companions:
        notes.append("uncertainty/quality HDUs " + ", ".join(f"{c['index']} ({c['extname']}: {c['kind']})"
                                                             for c in companions) + " are upscaled with the image")
    if same_grid:
        notes.append(f"HDUs {', '.join(same_grid)} share the image grid but are copied unchanged on write, "
                     "not upscaled")

    if array.size == 0:
        raise SciSRError(f"HDU {index} is empty (shape {array.shape}): no pixel to read", path)
    if layout is not None:
        # Non-spatial axes (numpy's leading ones) go last, flattened into the one channel axis.
        n_channels = len(layout["channel_shape"])
        array = np.moveaxis(array, list(range(n_channels)), list(range(-n_channels, 0)))
        array = np.ascontiguousarray(array).reshape(*array.shape[: array.ndim - n_channels], -1)
        if array.shape[-1] == 1:
            # Degenerate axes (radio images are often RA x DEC x 1 x 1): a plain 2D image, restored on write.
            array = array[..., 0]
    mask = ~np.isfinite(array)
    if mask.all():
        raise SciSRError(f"every pixel of HDU {index} is NaN, inf or BLANK; nothing to read", path)
    if mask.any():
        notes.append(f"{int(mask.sum())} pixels are NaN/inf/BLANK: kept as NaN and masked")
    meta: dict[str, Any] = {
        "format": "fits",
        "source": source,
        "units": _units(header, raw_header, path),
        "fits_header": header,
        "hdu": hdu if hdu is not None else index,
        "stored_dtype": _stored_dtype(header),
        "mask": mask,
        "other_hdus": {"path": os.path.abspath(source), "index": index, "count": n_hdus},
        "fits_companions": companions,
        "notes": notes,
        "provenance": [],
    }
    for key in ("BSCALE", "BZERO"):
        if key in header:
            meta[key.lower()] = float(header[key])
    if "bscale" in meta or "bzero" in meta:
        notes.append(f"BSCALE={meta.get('bscale', 1.0)}, BZERO={meta.get('bzero', 0.0)} applied")
    if compressed:
        notes.append("tile-compressed HDU: written uncompressed unless meta['fits_compress'] is True")
    if layout is not None:
        meta["fits_axes"] = layout
        described = ", ".join(f"{c['ctype'] or '?'} ({c['kind']}, {c['size']})" for c in layout["channels"])
        if array.ndim > len(layout["spatial"]):
            meta.update(channel_axis=array.ndim - 1, channel_name="+".join(c["kind"] for c in layout["channels"]))
            notes.append(f"non-spatial axes {described} kept as one channel axis, never scaled")
        else:
            notes.append(f"non-spatial axes {described} of length 1 dropped, restored on write")
    return SciImage(
        array=array,
        wcs=wcs,
        spacing=spacing,
        domain=domain or "sky",
        meta=meta,
    )


def write(img: SciImage, path: str | os.PathLike) -> None:
    """Write ``img`` as FITS at ``path`` (a temporary path chosen by the caller).

    Parameters
    ----------
    img : SciImage
        Typically an upscaled image read from FITS. ``meta["fits_header"]`` must already have its
        grid keywords (LTV/LTM, DATASEC, PIXAR, ...) updated; only the WCS cards are rewritten here.
    path : str or os.PathLike
        Output file; a ``.gz`` suffix gzips it (astropy decides from the name).

    Notes
    -----
    - Data: float32 (float64 when ``img.array`` is float64), NaN where ``meta["mask"]`` (same shape
      as the array) is True; BSCALE/BZERO/BLANK/CHECKSUM/DATASUM dropped; DATAMIN/DATAMAX, when
      present, set to the written values. A channel axis (last in numpy) becomes the first numpy
      axis, i.e. FITS NAXIS3.
    - WCS: the primary WCS cards are replaced by ``img.wcs.to_header(relax=True)`` (SIP included).
      WCS descriptions the image does not carry (alternates ``A``–``Z``, or a non-celestial primary
      WCS) are rescaled when the array is an integer multiple of the header's NAXISn, and removed
      with a HISTORY note when it is not. A DSS plate solution (CNPIXn, XPIXELSZ, ...), which
      wcslib prefers to CRPIX/CD, is rescaled too. The finished header is checked to reproduce
      ``img.wcs`` at the grid corners and centre to 1e-6 pixel; if other conventions in it override
      the new cards (e.g. a DSS solution of a cropped image), they are replaced by wcslib's complete
      description of ``img.wcs``, and if that fails too, nothing is written.
    - Layout: the image goes back to its HDU position; the HDUs of ``meta["fits_companions"]`` are
      upscaled with it by :func:`propagate_companion` (factors and flux mode from ``meta["grid_factors"]``
      and ``meta["flux_mode"]``, which the upscale records) with their WCS
      and grid keywords rescaled; the other HDUs of ``meta["other_hdus"]["path"]`` are copied
      unchanged (tile-compressed ones stay compressed, byte for byte). The image is
      written uncompressed unless ``meta["fits_compress"]`` is True (lossless GZIP_2) or a dict of
      :class:`astropy.io.fits.CompImageHDU` options, or ``path`` ends in ``.fz``.
    - A HISTORY card names the model, scale and flux mode of the last ``meta["provenance"]`` entry
      that has a ``"model"``.
    - ``meta["fits_extensions"]`` (EXTNAME → SciImage on the same grid, e.g. ``SR_STD``, the spread of an
      ensemble upscale) are appended as image extensions with their own WCS; an HDU of the same EXTNAME in
      the source file is not copied.

    Raises
    ------
    SciSRError
        Non-numeric data, a missing source file for the other HDUs, or astropy failing to write.
    """
    path = Path(path)
    data, mask = _output_arrays(img)
    # A disk-backed result (larger than RAM) is streamed to the file in slabs instead of being copied.
    stream = is_disk_backed(data) and not (img.meta.get("fits_compress") or path.name.lower().endswith((".fz", ".gz")))
    if mask is not None and not stream:
        data[mask] = np.nan
    try:
        header = _output_header(img, data)
    except SciSRError as err:
        raise SciSRError(err.message, err.path or img.meta.get("source") or path) from None
    compress = img.meta.get("fits_compress") or path.name.lower().endswith(".fz")
    other = img.meta.get("other_hdus")
    try:
        extensions = _extension_hdus(img.meta.get("fits_extensions") or {})
        if other is None:
            _write_hdus(path, [], data, mask, header, compress, 0, extensions, stream)
            return
        source, index = other["path"], int(other["index"])
        if not os.path.isfile(source):
            raise SciSRError("source FITS file is gone; its other HDUs cannot be copied", source)
        # Raw HDUs: compressed extensions stay binary tables and scaled data stay integers, so the
        # copies are exact.
        with fits.open(source, disable_image_compression=True, do_not_scale_image_data=True) as src:
            if index >= len(src):
                raise SciSRError(f"source FITS file has no HDU {index} any more", source)
            upscaled = _upscaled_companions(img, src, data.shape)
            # An extension written anew (e.g. SR_STD of an earlier upscale) replaces the source's copy.
            replaced = {h.name.upper() for h in extensions}
            kept = [upscaled.get(i, hdu) for i, hdu in enumerate(src)
                    if i == index or str(hdu.name).upper() not in replaced]
            index -= sum(str(h.name).upper() in replaced for h in src[:index])
            _write_hdus(path, kept[:index], data, mask, header, compress, index, [*kept[index + 1 :], *extensions],
                        stream)
    except SciSRError:
        raise
    except Exception as err:  # astropy's verify/IO errors: report them as one line
        raise SciSRError(f"cannot write FITS ({_one_line(err)})", path) from None


# --- reading helpers -------------------------------------------------------------------------------


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _holds_image(hdu: Any) -> bool:
    # Random groups are a PrimaryHDU subclass with is_image False; tables are never images.
    return bool(hdu.is_image) and int(hdu.header.get("NAXIS", 0)) > 0


def _describe(index: int, hdu: Any) -> str:
    return f"{index}: {hdu.name or 'unnamed'} {type(hdu).__name__}{'' if hdu.header.get('NAXIS') else ' (empty)'}"


def _choose_hdu(hdul: fits.HDUList, selector: HduSelector | None, path: str | os.PathLike) -> int:
    if selector is None:
        for index, hdu in enumerate(hdul):
            if _holds_image(hdu):
                return index
        found = "; ".join(_describe(i, h) for i, h in enumerate(hdul))
        raise SciSRError(f"no HDU holds an image (found {found})", path)
    if isinstance(selector, bool) or not isinstance(selector, int | str | tuple):
        raise SciSRError(f"hdu must be an index, an EXTNAME or (EXTNAME, EXTVER), got {selector!r}", path)
    if isinstance(selector, int):
        if not -len(hdul) <= selector < len(hdul):
            raise SciSRError(f"no HDU {selector}: the file has {len(hdul)} HDUs (0 to {len(hdul) - 1})", path)
        selector = selector % len(hdul)
    try:
        index = hdul.index_of(selector)
    except (KeyError, IndexError):
        # A CLI passes indices as text: "1" means HDU 1 unless an HDU is named "1".
        if isinstance(selector, str) and selector.isdigit() and int(selector) < len(hdul):
            index = int(selector)
        else:
            names = ", ".join(f"{i}: {h.name or 'unnamed'}" for i, h in enumerate(hdul))
            raise SciSRError(f"no HDU {selector!r} (HDUs are {names})", path) from None
    if not _holds_image(hdul[index]):
        raise SciSRError(f"HDU {selector!r} holds no image ({_describe(index, hdul[index])})", path)
    return index


def _read_wcs(
    header: fits.Header, hdul: fits.HDUList, shape: tuple[int, ...], notes: list[str], path: str | os.PathLike
) -> tuple[Any, tuple[float, ...], dict[str, Any] | None]:
    """The WCS of the spatial axes (celestial, else None), their spacing and the non-spatial axis layout.

    ``shape`` is the array's (numpy order). The layout is None when every axis is spatial; spacing has
    one entry per spatial numpy axis.
    """
    ndim = len(shape)
    _check_wcs_numbers(header, path)
    celestial = [k for k in range(1, ndim + 1) if _CELESTIAL_CTYPE.match(str(header.get(f"CTYPE{k}", "")).upper())]
    try:
        with warnings.catch_warnings():
            # FITSFixedWarning reports harmless normalisations (DATE-OBS formats, RADECSYS, ...);
            # VerifyWarning, malformed non-WCS cards met while handing the header to wcslib.
            warnings.simplefilter("ignore", FITSFixedWarning)
            warnings.simplefilter("ignore", VerifyWarning)
            # naxis=ndim: SIP needs exactly 2 axes, and upscale_wcs needs one axis per array axis.
            wcs = WCS(header, fobj=hdul, naxis=ndim)
            wcs.wcs.set()  # a singular CD/PC matrix or bad projection parameters surface here
    except Exception as err:  # wcslib rejects malformed headers with several exception types
        if celestial:
            # A sky image whose WCS cannot be used would be upscaled without its geometry.
            cards = "/".join(f"CTYPE{k}" for k in celestial)
            raise SciSRError(f"the celestial WCS ({cards}, CDELT/CD/PC, CRPIX) cannot be used: {_one_line(err)}",
                             path) from None
        notes.append(f"WCS not usable ({_one_line(err)}): kept in the header only, spacing 1.0")
        return None, (1.0,) * ndim, None
    kinds = [_AXIS_KINDS.get(int(t) // 1000 % 10, "linear") for t in wcs.wcs.axis_types]
    layout = _channel_layout(wcs, kinds, shape, path)
    n_spatial = ndim - (0 if layout is None else len(layout["channels"]))
    if layout is not None:
        wcs = wcs.sub(list(range(1, n_spatial + 1)))
    if celestial and not wcs.has_celestial:
        raise SciSRError(f"CTYPE {list(wcs.wcs.ctype)} name a celestial axis but do not form a usable "
                         "longitude/latitude pair", path)
    if not wcs.has_celestial:
        if _wcs_keys(header):
            notes.append(f"WCS is not celestial (CTYPE {list(wcs.wcs.ctype)}): kept in the header, spacing 1.0")
        return None, (1.0,) * n_spatial, layout
    sky = wcs.celestial.pixel_scale_matrix
    check_spacing(proj_plane_pixel_scales(wcs.celestial), path, field="CDELT/CD (celestial pixel scale)",
                  unit="deg", limits=SKY_SPACING_DEG)
    singular = np.linalg.svd(sky, compute_uv=False)
    if not singular[-1] > 1e-9 * singular[0]:
        raise SciSRError("the celestial CD/PC matrix is singular (the two sky axes are parallel)", path)
    scales = proj_plane_pixel_scales(wcs)
    if not np.all(np.isfinite(scales)) or not np.all(scales > 0):
        raise SciSRError(f"CDELT/CD give a pixel scale of {scales.tolist()} (zero or not finite)", path)
    return wcs, tuple(float(s) for s in scales[::-1]), layout


def _check_wcs_numbers(header: fits.Header, path: str | os.PathLike) -> None:
    """Refuse a numeric WCS card (CRPIX, CRVAL, CDELT, CROTA, CD, PC) that is not a finite number.

    wcslib ignores a CDELT it cannot parse and uses 1, so ``CDELT1 = NaN`` would become 1 deg/pixel.
    """
    for card in header.cards:
        axis, matrix = _AXIS_CARD.match(card.keyword), _MATRIX_CARD.match(card.keyword)
        numeric = (axis and axis[1] not in ("CTYPE", "CUNIT")) or (matrix and matrix[1] in ("CD", "PC"))
        if not numeric:
            continue
        try:
            value = card.value
        except Exception:  # astropy's VerifyError for a value it cannot parse (e.g. NaN, 0,5)
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
            raise SciSRError(f"WCS card {card.keyword} is not a finite number: {printable(card.image.strip())}", path)


def _channel_layout(
    wcs: Any, kinds: list[str], shape: tuple[int, ...], path: str | os.PathLike
) -> dict[str, Any] | None:
    """Which FITS axes are non-spatial (spectral, Stokes, time), or None when all are spatial."""
    ndim = len(shape)
    channels = [k for k in range(ndim) if kinds[k] in _NON_SPATIAL]
    if not channels:
        return None
    n_spatial = ndim - len(channels)
    if channels != list(range(n_spatial, ndim)):
        names = ", ".join(f"CTYPE{k + 1} = {wcs.wcs.ctype[k]!r} ({kinds[k]})" for k in channels)
        raise SciSRError(f"non-spatial axes must follow the spatial ones (FITS axes 1..n): {names}", path)
    if n_spatial < 2:
        raise SciSRError(f"only {n_spatial} spatial axis besides {len(channels)} spectral/Stokes/time axes: "
                         "not an image", path)
    sizes = [int(shape[ndim - 1 - k]) for k in range(ndim)]  # FITS axis order
    return {
        "spatial": list(range(1, n_spatial + 1)),
        "channels": [{"axis": k + 1, "ctype": str(wcs.wcs.ctype[k]), "kind": kinds[k], "size": sizes[k]}
                     for k in channels],
        # numpy order: the last FITS axis first.
        "channel_shape": [sizes[k] for k in reversed(channels)],
    }


def _bad_card(source: str) -> str | None:
    """"card KEY cannot be parsed: <card>" for the first unparsable card of the primary header, else None.

    astropy reports a malformed BZERO/BSCALE/NAXISn only as "Empty or corrupt FITS file".
    """
    if not sniff(source):
        return None
    with open(source, "rb") as fh:
        head = fh.read(2880 * 20)
    for start in range(0, len(head) - 79, 80):
        text = head[start:start + 80].decode("ascii", "replace")
        if text.startswith("END") and not text[3:].strip():
            return None
        card = fits.Card.fromstring(text)
        try:
            _ = card.value
            card.verify("exception")
        except Exception:  # astropy's VerifyError/ValueError: this is the card to name
            return f"card {card.keyword or text[:8].strip()} cannot be parsed: {printable(text.strip())}"
    return None


def _raw_header(source: str, hdul: fits.HDUList, index: int) -> bytes | None:
    """The header bytes of HDU ``index`` as stored (astropy repairs cards on access), None for gzip/compressed."""
    info = hdul.fileinfo(index)
    if not info or info.get("filemode") is None or not sniff(source) or isinstance(hdul[index], fits.CompImageHDU):
        return None
    with open(source, "rb") as fh:
        fh.seek(int(info["hdrLoc"]))
        return fh.read(int(info["datLoc"]) - int(info["hdrLoc"]))


def _check_data_size(source: str, hdul: fits.HDUList, index: int, shape: tuple[int, ...], raw_header: bytes | None,
                     path: str | os.PathLike) -> None:
    """Refuse a plain image HDU whose NAXISn x BITPIX need more bytes than the file holds after its header."""
    if raw_header is None or not shape:
        return
    need = int(np.prod(shape)) * abs(int(hdul[index].header.get("BITPIX", 8))) // 8
    have = os.path.getsize(source) - int(hdul.fileinfo(index)["datLoc"])
    if have < need:
        dims = "x".join(str(n) for n in reversed(shape))
        raise SciSRError(f"NAXISn/BITPIX declare {dims} pixels ({need} bytes) but the file holds {max(have, 0)} bytes "
                         f"of data for HDU {index} (truncated file or corrupt NAXISn)", path)


def _units(header: fits.Header, raw_header: bytes | None, path: str | os.PathLike) -> str | None:
    """BUNIT, refusing a card astropy cannot parse or one that is not a quoted string.

    An unquoted ``BUNIT = Jy/beam`` reads as ``Jy`` with the comment ``beam``: silently wrong units.
    The stored card is checked, since astropy rewrites such a card when it is first read.
    """
    if "BUNIT" not in header:
        return None
    card = header.cards["BUNIT"]
    raw = printable(next((raw_header[i:i + 80].decode("ascii", "replace") for i in range(0, len(raw_header or b""), 80)
                if raw_header[i:i + 10] == b"BUNIT   = "), card.image))
    try:
        unit = card.value
        card.verify("exception")
    except Exception as err:  # astropy's VerifyError and ValueError for malformed cards
        raise SciSRError(f"BUNIT card cannot be parsed ({_one_line(err)}): {raw.strip()}", path) from None
    if not isinstance(unit, str) or not raw[10:].lstrip().startswith("'"):
        raise SciSRError(f"BUNIT must be a quoted string (e.g. BUNIT = 'Jy/beam'), the card reads {raw.strip()}",
                         path)
    return unit.strip() or None


def _stored_dtype(header: fits.Header) -> str:
    bitpix = int(header.get("BITPIX", -32))
    offset = _OFFSET_DTYPES.get(bitpix)
    if offset and float(header.get("BSCALE", 1.0)) == 1.0 and float(header.get("BZERO", 0.0)) == offset[0]:
        return offset[1]
    return _BITPIX_DTYPES.get(bitpix, "float32")


# --- writing helpers -------------------------------------------------------------------------------


def _output_arrays(img: SciImage) -> tuple[np.ndarray, np.ndarray | None]:
    """Float array in FITS layout (channel axis first) and the matching mask, if one fits."""
    array = np.asarray(img.array)
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool) or np.iscomplexobj(array):
        raise SciSRError(f"FITS images here are real numbers; got dtype {array.dtype}", img.meta.get("source"))
    dtype = np.float64 if array.dtype.kind == "f" and array.dtype.itemsize == 8 else np.float32
    # A copy, since masking must not touch img.array; a disk-backed array is masked slab by slab instead.
    data = array.astype(dtype, copy=False) if is_disk_backed(array) else np.array(array, dtype=dtype)
    mask = img.meta.get("mask")
    mask = np.asarray(mask, dtype=bool) if mask is not None and np.shape(mask) == array.shape else None
    layout = img.meta.get("fits_axes")
    shape = list(layout["channel_shape"]) if layout else []
    if img.channel_axis is not None and shape and int(np.prod(shape)) == array.shape[-1]:
        # Spectral/Stokes/time axes read as one flattened channel axis: back to their own FITS axes.
        def unflatten(values: np.ndarray) -> np.ndarray:
            values = values.reshape(*values.shape[:-1], *shape)
            return np.moveaxis(values, list(range(-len(shape), 0)), list(range(len(shape))))

        data = unflatten(data)
        mask = None if mask is None else unflatten(mask)
    elif img.channel_axis is None and shape and int(np.prod(shape)) == 1 and array.ndim == len(layout["spatial"]):
        # Length-1 spectral/Stokes axes the reader dropped: back as NAXIS3.. = 1.
        data = data.reshape(*shape, *data.shape)
        mask = None if mask is None else mask.reshape(*shape, *mask.shape)
    elif img.channel_axis is not None:
        # FITS cubes keep the image plane in NAXIS1/NAXIS2: the channel axis becomes NAXIS3.
        data = np.moveaxis(data, -1, 0)
        mask = None if mask is None else np.moveaxis(mask, -1, 0)
    return np.ascontiguousarray(data), mask


def _output_header(img: SciImage, data: np.ndarray) -> fits.Header:
    stored = img.meta.get("fits_header")
    header = stored.copy() if isinstance(stored, fits.Header) else fits.Header()
    old_shape = _header_shape(header)
    for key in [k for k in header if k in _STRUCTURAL or _NAXIS_N.match(k)]:
        del header[key]
    if not isinstance(stored, fits.Header) and isinstance(img.meta.get("units"), str):
        header["BUNIT"] = img.meta["units"]
    factors = _grid_factors(img, old_shape, data.shape)
    _update_wcs_cards(header, img.wcs, factors, data.shape)
    if "DATAMIN" in header or "DATAMAX" in header:
        low, high = _finite_range(data)
        for key, value in (("DATAMIN", low), ("DATAMAX", high)):
            if key in header and np.isfinite(value):
                header[key] = value
    step = next((p for p in reversed(img.meta.get("provenance", [])) if isinstance(p, dict) and "model" in p), None)
    if step is not None:
        scale = "x".join(str(s) for s in step.get("scale", [])) or "?"
        mode = img.meta.get("flux_mode", "none")
        flux = f", flux {mode}" if mode != "none" else ""
        header.add_history(f"sciSR {__version__}: upscaled {scale} (numpy axis order) by model {step['model']}{flux}; "
                           "field of view and WCS preserved")
    return header


def _finite_range(data: np.ndarray) -> tuple[float, float]:
    """Smallest and largest finite value (NaN, NaN if none), read in slabs."""
    low, high = np.inf, -np.inf
    for lo, hi in row_chunks(data.shape[0], data[:1].nbytes):
        slab = data[lo:hi]
        finite = slab[np.isfinite(slab)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
        release_pages(data)
    return (low, high) if low <= high else (np.nan, np.nan)


def _header_shape(header: fits.Header) -> tuple[int, ...] | None:
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0 or any(f"NAXIS{k}" not in header for k in range(1, naxis + 1)):
        return None
    return tuple(int(header[f"NAXIS{k}"]) for k in range(naxis, 0, -1))


def _grid_factors(img: SciImage, old: tuple[int, ...] | None, new: tuple[int, ...]) -> tuple[float, ...] | None:
    """Factor per axis of the written array ``new`` over the stored header's grid ``old``, or None: unknown.

    The upscale records its factors in ``meta["grid_factors"]`` (spatial axes, relative to the header the
    reader stored); an image without that record is on the header's grid when the shapes agree.
    """
    recorded = img.meta.get("grid_factors")
    if recorded is None:
        return (1,) * len(new) if old == tuple(new) else None
    # Integer for scale=, any ratio n'/n for a grid chosen by voxel size (spacing=).
    factors = tuple(int(f) if float(f).is_integer() else float(f) for f in recorded)
    # FITS puts a channel axis first (NAXIS3): it is never scaled.
    return (1,) * (len(new) - len(factors)) + factors if img.channel_axis is not None else factors


def _is_grid_card(keyword: str, key: str, naxis: int | None) -> bool:
    """Whether ``keyword`` is a pixel-grid WCS card of WCS ``key`` on axes ``≤ naxis`` (None: any)."""
    m = _AXIS_CARD.match(keyword)
    if m:
        return m[3] == key and (naxis is None or int(m[2]) <= naxis)
    m = _MATRIX_CARD.match(keyword)
    if m:
        # PVi_m / PSi_m: i is an axis, m a parameter number.
        return m[4] == key and (naxis is None or (int(m[2]) <= naxis and (m[1] in ("PV", "PS") or int(m[3]) <= naxis)))
    m = _AIPS_MATRIX_CARD.match(keyword)
    if m:
        return key == "" and (naxis is None or max(int(m[2]), int(m[3])) <= naxis)
    return key == "" and _SIP_CARD.match(keyword) is not None


def _is_distortion_card(keyword: str, key: str) -> bool:
    m = _DISTORTION_CARD.match(keyword)
    return m is not None and m[3] == key


def _wcs_keys(header: fits.Header) -> set[str]:
    """Letters ("" for the primary) of the WCS descriptions present in ``header``."""
    keys = set()
    for keyword in header:
        m = _AXIS_CARD.match(keyword) or _MATRIX_CARD.match(keyword)
        if m:
            keys.add(m.groups()[-1])
        elif _SIP_CARD.match(keyword) or _AIPS_MATRIX_CARD.match(keyword):
            keys.add("")
    return keys


def _replace_wcs(header: fits.Header, wcs: Any, key: str, *, complete: bool = False) -> None:
    """Put ``wcs`` into ``header`` as WCS ``key``.

    A header that already described this WCS gets only its pixel-grid cards replaced and keeps its
    own other cards (DATE-OBS as written, RADESYS, WCSAXES...). With ``complete`` (or when the header
    had no such WCS), everything else wcslib uses for it goes too (DSS plate solutions, distortion
    records) and all of ``wcs.to_header`` is written.
    """
    complete = complete or key not in _wcs_keys(header)
    doomed = [k for k in header if _is_grid_card(k, key, wcs.naxis)]
    if complete:
        doomed += [k for k in header if (key == "" and k in _DSS_CARDS) or _is_distortion_card(k, key)]
    for keyword in dict.fromkeys(doomed):
        del header[keyword]
    for card in wcs.to_header(relax=True, key=key or None).cards:
        if _is_distortion_card(card.keyword, key):
            if complete:
                header.append(card)  # record-valued cards (DQ1 = 'AXIS.1: 1') repeat their keyword
        elif _is_grid_card(card.keyword, key, wcs.naxis) or (complete and card.keyword not in header):
            header[card.keyword] = (card.value, card.comment)


def _wcs_scale(factors: Sequence[float], naxis: int) -> tuple[float, ...]:
    """Factors in numpy order for a WCS with ``naxis`` axes over an array with ``len(factors)`` axes."""
    ndim = len(factors)
    # Entry j of upscale_wcs's scale is WCS axis naxis-1-j, i.e. numpy axis ndim-naxis+j.
    return tuple(factors[ndim - naxis + j] if 0 <= ndim - naxis + j < ndim else 1 for j in range(naxis))


def _scale_dss(header: fits.Header, factors: tuple[int, ...]) -> None:
    """Rescale a DSS plate solution, which wcslib reads in preference to CRPIX/CD.

    Plate x (mm) is ``PPO3 − XPIXELSZ·(CNPIX1 + x − 0.5)`` for 1-based pixel x; with
    ``x = (x' − 0.5)/s + 0.5`` that is ``XPIXELSZ/s · (s·CNPIX1 + x' − 0.5)``.
    """
    if len(factors) != 2 or not {"CNPIX1", "CNPIX2", "XPIXELSZ", "YPIXELSZ"} <= set(header):
        return
    sy, sx = factors
    for axis, size, s in (("1", "XPIXELSZ", sx), ("2", "YPIXELSZ", sy)):
        header[f"CNPIX{axis}"] = header[f"CNPIX{axis}"] * s
        header[size] = float(header[size]) / s


def _load_wcs(header: fits.Header, key: str, naxis: int) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", VerifyWarning)
        return WCS(header, key=key or " ", naxis=naxis)


def _wcs_error(header: fits.Header, wcs: Any, shape: tuple[int, ...]) -> float:
    """Largest world-coordinate difference, in pixels, between ``header``'s WCS and ``wcs``.

    Checked at the grid corners and centre (``shape`` is numpy order), through the full forward
    transform; inf when the header cannot be parsed.
    """
    # FITS axis k spans shape[-1-k]; WCS axes beyond the array's are probed at pixel 0.
    extent = [shape[-1 - k] if k < len(shape) else 1 for k in range(wcs.naxis)]
    corners = np.array(np.meshgrid(*[[-0.5, n - 0.5] for n in extent], indexing="ij")).reshape(wcs.naxis, -1)
    pixels = np.c_[corners, [(n - 1) / 2 for n in extent]].T
    try:
        written = _load_wcs(header, "", wcs.naxis)
        want, got = wcs.all_pix2world(pixels, 0), written.all_pix2world(pixels, 0)
    except Exception:  # a header wcslib rejects reproduces nothing
        return np.inf
    diff = np.abs(got - want)
    if wcs.has_celestial:
        lng, lat = wcs.wcs.lng, wcs.wcs.lat
        diff[:, lng] = np.abs((got[:, lng] - want[:, lng] + 180) % 360 - 180) * np.cos(np.deg2rad(want[:, lat]))
    # World units per pixel along each world axis (deg on the sky, Hz on a spectral axis, ...).
    per_pixel = np.linalg.norm(wcs.pixel_scale_matrix, axis=1)
    return float((diff / np.maximum(per_pixel, np.finfo(float).tiny)).max())


def _update_wcs_cards(header: fits.Header, wcs: Any, factors: tuple[int, ...] | None, shape: tuple[int, ...]) -> None:
    """Make the header's WCS cards describe the array's grid (see :func:`write`)."""
    ndim = len(shape)
    updates: dict[str, Any] = {} if wcs is None else {"": wcs}
    removals: dict[str, str] = {}
    if factors is None or any(f != 1 for f in factors):
        # WCS descriptions only the header holds: rescale them, or drop them rather than lie.
        for key in sorted(_wcs_keys(header) - set(updates)):
            try:
                if factors is None:
                    raise ValueError("the array is not an integer multiple of the header's NAXISn")
                old = _load_wcs(header, key, min(ndim, int(header.get(f"WCSAXES{key}", ndim))))
                if key:
                    old.sip = None  # SIP belongs to the primary WCS only
                updates[key] = upscale_wcs(old, _wcs_scale(factors, old.wcs.naxis))
            except Exception as err:  # unparsable WCS or a grid change we cannot express
                removals[key] = _one_line(err)
        if factors is not None:
            _scale_dss(header, factors)
    for key, new in updates.items():
        _replace_wcs(header, new, key)
    for key, why in removals.items():
        for keyword in [k for k in header if _is_grid_card(k, key, None)]:
            del header[keyword]
        header.add_history(f"sciSR: WCS '{key or 'primary'}' removed, pixel grid changed ({why})")
    tables = ("cpdis1", "cpdis2", "det2im1", "det2im2")
    if wcs is None or any(getattr(wcs, table, None) is not None for table in tables):
        return  # lookup-table distortions live in other HDUs: the header alone cannot be checked
    # Other conventions wcslib reads (DSS plate solutions, distortion records) can override the cards
    # just written: check, then fall back to the complete wcslib description.
    if _wcs_error(header, wcs, shape) > _WCS_TOLERANCE_PX:
        _replace_wcs(header, wcs, "", complete=True)
        error = _wcs_error(header, wcs, shape)
        if error > _WCS_TOLERANCE_PX:
            raise SciSRError(f"the FITS header cannot reproduce the image's WCS (off by {error:.3g} pixels)")


def _write_hdus(path: Path, before: list[Any], data: np.ndarray, mask: np.ndarray | None, header: fits.Header,
                compress: Any, index: int, after: list[Any], stream: bool) -> None:
    """Write ``before``, the image at position ``index``, then ``after``; ``stream``: the image in slabs."""
    if not stream:
        fits.HDUList([*before, *_image_hdus(data, header, compress, index), *after]).writeto(
            path, output_verify="silentfix")
        return
    if before:
        fits.HDUList(before).writeto(path, output_verify="silentfix")
    # The header astropy would write for this array (BITPIX, NAXISn), built without touching the data.
    layout = fits.PrimaryHDU if index == 0 else fits.ImageHDU
    full = layout(data=np.empty((0,) * data.ndim, data.dtype), header=header).header
    for axis, n in enumerate(reversed(data.shape), start=1):
        full[f"NAXIS{axis}"] = n
    streamed = fits.StreamingHDU(os.fspath(path), full)
    big_endian = data.dtype.newbyteorder(">")
    for lo, hi in row_chunks(data.shape[0], data[:1].nbytes):
        slab = np.array(data[lo:hi], dtype=big_endian)
        if mask is not None:
            slab[mask[lo:hi]] = np.nan
        streamed.write(slab)
        release_pages(data)
    streamed.close()
    if after:
        with fits.open(path, mode="append") as out:
            for hdu in after:
                out.append(hdu)


def _extension_hdus(extensions: dict[str, SciImage]) -> list[fits.ImageHDU]:
    """``meta["fits_extensions"]``: maps on the image's grid (e.g. ``SR_STD``), each with its own WCS header."""
    hdus = []
    for name, extra in extensions.items():
        data, mask = _output_arrays(extra)
        if mask is not None:
            data[mask] = np.nan
        header = _output_header(extra, data)
        header["EXTNAME"] = name
        hdus.append(fits.ImageHDU(data, header))
    return hdus


def _image_hdus(data: np.ndarray, header: fits.Header, compress: Any, index: int) -> list[Any]:
    """The HDU(s) that take the image's place at position ``index`` of the output file."""
    if compress:
        options = dict(compress) if isinstance(compress, dict) else {}
        if not options and np.issubdtype(data.dtype, np.floating):
            # The astropy default quantizes floats (lossy); science pixels must come back exactly.
            options = {"compression_type": "GZIP_2", "quantize_level": 0.0}
        hdu = fits.CompImageHDU(data, header, **options)
        # A compressed image cannot be the primary HDU: it follows an empty one.
        return [fits.PrimaryHDU(), hdu] if index == 0 else [hdu]
    return [fits.PrimaryHDU(data, header) if index == 0 else fits.ImageHDU(data, header)]


# --- uncertainty and quality extensions --------------------------------------------------------------

# EXTNAMEs of per-pixel uncertainty/quality maps, by what they hold (case-insensitive).
_COMPANION_NAMES = {
    "sigma": ("ERR", "ERROR", "SIGMA", "STDDEV", "STDEV", "UNC", "UNCERT", "NOISE", "RMS"),
    "variance": ("VAR", "VARIANCE"),
    "ivar": ("IVAR", "INVVAR", "WHT", "WEIGHT"),  # weight maps (drizzle WHT) are inverse variances
    "dq": ("DQ", "MASK", "FLAGS", "BPM", "QUALITY"),
}
# The HDUCLAS convention (HDUCLAS2 = ERROR / QUALITY, HDUCLAS3 = what the error holds).
_HDUCLAS_KINDS = {("ERROR", "STDDEV"): "sigma", ("ERROR", "RMSE"): "sigma", ("ERROR", "VARIANCE"): "variance",
                  ("ERROR", "INVVAR"): "ivar", ("QUALITY", ""): "dq", ("DQ", ""): "dq"}


def _companion_kind(header: fits.Header) -> str | None:
    name = str(header.get("EXTNAME", "")).strip().upper()
    for kind, names in _COMPANION_NAMES.items():
        if name in names:
            return kind
    clas2 = str(header.get("HDUCLAS2", "")).strip().upper()
    clas3 = str(header.get("HDUCLAS3", "")).strip().upper()
    return _HDUCLAS_KINDS.get((clas2, clas3 if clas2 == "ERROR" else ""))


def science_hdus(path: str | os.PathLike) -> list[int]:
    """Indices of the science images of a FITS file: image HDUs that are not uncertainty/quality maps.

    A multi-extension exposure (e.g. ``SCI,1 ERR,1 DQ,1 SCI,2 ERR,2 DQ,2``) lists each ``SCI``; the
    ``ERR``/``DQ`` HDUs travel with their science image (see :func:`read`).

    Raises
    ------
    SciSRError
        Unreadable file or no image HDU.
    """
    try:
        with fits.open(os.fspath(path)) as hdul:
            found = [i for i, hdu in enumerate(hdul)
                     if _holds_image(hdu) and len(hdu.shape) >= 2 and _companion_kind(hdu.header) is None]
    except Exception as err:
        raise SciSRError(f"not a readable FITS file ({_one_line(err)})", path) from None
    if not found:
        raise SciSRError("no image HDU", path)
    return found


def _find_companions(hdul: fits.HDUList, index: int, shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """Uncertainty/quality HDUs of the science HDU ``index``: same shape, same EXTVER where both have one."""
    extver = hdul[index].header.get("EXTVER")
    found = []
    for i, hdu in enumerate(hdul):
        if i == index or not _holds_image(hdu) or tuple(hdu.shape) != shape:
            continue
        kind = _companion_kind(hdu.header)
        if kind is None or (extver is not None and hdu.header.get("EXTVER", extver) != extver):
            continue
        found.append({"index": i, "extname": hdu.name, "kind": kind})
    return found


def propagate_companion(values: np.ndarray, kind: str, scale: Sequence[int], flux: str) -> np.ndarray:
    """Upscale an uncertainty or quality map with its science image (docs/architecture.md §4).

    Parameters
    ----------
    values : numpy.ndarray
        ``(*spatial)`` map on the input grid.
    kind : str
        ``"sigma"`` (1σ errors), ``"variance"``, ``"ivar"`` (inverse variance or weight) or ``"dq"``
        (bit flags / masks).
    scale : sequence of int
        Factor per axis.
    flux : str
        Flux mode of the science upscale. ``"conserve"``: a pixel's counts are split over ``n = ∏s``
        sub-pixels, so variance ÷ n, σ ÷ √n, inverse variance × n (sub-pixel errors treated as
        independent: their block sum has the input variance). ``"mean"`` and ``"none"``: a sub-pixel
        carries the block's value, so the map is replicated; σ then is the error of the block mean,
        which the sub-pixels share (they are correlated, not independent measurements).

    Returns
    -------
    numpy.ndarray
        ``(*spatial·scale)``: float32 for error maps, the input dtype for ``"dq"`` (nearest).
    """
    from sciSR.blocks import replicate

    out = replicate(np.asarray(values), scale)
    if kind == "dq":
        return out
    out = out.astype(np.float32)
    n = float(np.prod(scale))
    if flux == "conserve":
        factor = {"sigma": 1.0 / np.sqrt(n), "variance": 1.0 / n, "ivar": n}[kind]
        out *= np.float32(factor)
    return out


def _upscaled_companions(img: SciImage, src: fits.HDUList, shape: tuple[int, ...]) -> dict[int, Any]:
    """New HDUs for ``img.meta["fits_companions"]`` on the array's grid, by HDU index (empty: no upscale)."""
    companions = img.meta.get("fits_companions") or []
    stored = img.meta.get("fits_header")
    factors = _grid_factors(img, _header_shape(stored), shape) if isinstance(stored, fits.Header) else None
    if not companions or factors is None or all(f == 1 for f in factors) or img.channel_axis is not None:
        return {}
    flux = img.meta.get("flux_mode", "none")
    from sciSR.geometry import upscale_fits_grid_keywords

    out = {}
    with fits.open(img.meta["other_hdus"]["path"]) as scaled:  # physical values (BSCALE applied)
        for companion in companions:
            i, kind = int(companion["index"]), companion["kind"]
            data = propagate_companion(scaled[i].data, kind, factors, flux)
            header = src[i].header.copy()
            for key in [k for k in header if k in _STRUCTURAL or _NAXIS_N.match(k)]:
                del header[key]
            _update_wcs_cards(header, None, factors, data.shape)
            if data.ndim == 2:
                upscale_fits_grid_keywords(header, factors)
            rule = "nearest" if kind == "dq" else {"conserve": {"sigma": "/ sqrt(n)", "variance": "/ n",
                                                                "ivar": "* n"}[kind]}.get(flux, "replicated")
            header.add_history(f"sciSR: {kind} map upscaled {'x'.join(map(str, factors))} with the science "
                               f"image ({rule}, n = {int(np.prod(factors))}, flux {flux})")
            out[i] = fits.ImageHDU(data, header)
    return out
