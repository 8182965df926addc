"""PNG/TIFF reader and writer: skimage's bundled images, files made here with Pillow/tifffile."""

import os
import struct
import zlib

import numpy as np
import pytest
import skimage.data
import tifffile
from nibabel.testing import data_path
from PIL import Image

import sciSR.io
from sciSR import geometry
from sciSR.errors import SciSRError
from sciSR.image import SciImage
from sciSR.io import raster

SKIMAGE = os.path.dirname(skimage.data.__file__)  # files bundled with scikit-image (no download)
CAMERA = os.path.join(SKIMAGE, "camera.png")  # 8-bit grey
ASTRONAUT = os.path.join(SKIMAGE, "astronaut.png")  # 8-bit RGB
MULTIPAGE = os.path.join(SKIMAGE, "multipage.tif")  # 2 pages, uint8


def png_bytes(array, bit_depth, colour_type):
    """A minimal PNG (Pillow cannot write 16-bit colour ones)."""
    height = array.shape[0]
    dtype = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + array[y].astype(dtype).tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", array.shape[1], height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_png_8bit_grey():
    img = raster.read(CAMERA)
    assert img.array.shape == (512, 512) and img.array.dtype == np.float32
    np.testing.assert_array_equal(img.array, skimage.data.camera())
    assert img.spacing == (1.0, 1.0) and img.affine is None and img.domain == "generic"
    assert img.meta["format"] == "png" and img.meta["stored_dtype"] == "uint8"
    assert img.meta["units"] is None and img.meta["provenance"] == [] and img.meta["source"] == CAMERA
    assert img.channel_axis is None


def test_png_rgb_and_rgba(tmp_path):
    img = raster.read(ASTRONAUT)
    assert img.array.shape == (512, 512, 3) and img.channel_axis == 2 and img.meta["channel_name"] == "rgb"
    np.testing.assert_array_equal(img.array, skimage.data.astronaut())
    assert img.spatial_shape == (512, 512) and img.spacing == (1.0, 1.0)
    rgba = np.random.default_rng(0).integers(0, 256, (6, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    img = raster.read(tmp_path / "rgba.png")
    assert img.meta["channel_name"] == "rgba"
    np.testing.assert_array_equal(img.array, rgba)


def test_png_16bit_grey(tmp_path):
    data = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000 + 7).astype(np.uint16)
    Image.fromarray(data).save(tmp_path / "grey16.png")
    img = raster.read(tmp_path / "grey16.png")
    assert img.meta["stored_dtype"] == "uint16"
    np.testing.assert_array_equal(img.array, data)
    raster.write(img, tmp_path / "copy.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "copy.png")), data)


def test_png_16bit_colour_is_refused(tmp_path):
    path = tmp_path / "rgb16.png"
    path.write_bytes(png_bytes(np.full((2, 3, 3), 40000, np.uint16), 16, 2))
    with pytest.raises(SciSRError, match="16-bit colour PNG"):
        raster.read(path)
    img = SciImage.from_array(np.full((2, 3, 3), 40000, np.uint16), meta={"channel_axis": 2, "channel_name": "rgb"})
    with pytest.raises(SciSRError, match="write TIFF"):
        raster.write(img, tmp_path / "out.png")


def test_palette_png_is_expanded(tmp_path):
    Image.fromarray(np.array([[0, 1], [2, 0]], np.uint8), mode="L").convert("P").save(tmp_path / "pal.png")
    img = raster.read(tmp_path / "pal.png")
    assert img.meta["channel_name"] == "rgb" and "palette" in img.meta["notes"][0]


def test_tiff_16bit_and_float(tmp_path):
    data = np.arange(30, dtype=np.uint16).reshape(5, 6) * 2000
    tifffile.imwrite(tmp_path / "u16.tif", data)
    img = raster.read(tmp_path / "u16.tif")
    assert img.meta["format"] == "tiff" and img.meta["stored_dtype"] == "uint16"
    np.testing.assert_array_equal(img.array, data)
    assert img.spacing == (1.0, 1.0) and img.meta["spacing_unit"] is None
    floats = np.linspace(-1.5, 2.5, 30, dtype=np.float32).reshape(5, 6)
    tifffile.imwrite(tmp_path / "f32.tif", floats)
    img = raster.read(tmp_path / "f32.tif")
    np.testing.assert_array_equal(img.array, floats)
    raster.write(img, tmp_path / "f32_copy.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "f32_copy.tif"), floats)


def test_ome_tiff_physical_size(tmp_path):
    data = np.zeros((3, 4, 5), np.uint16)
    tifffile.imwrite(
        tmp_path / "stack.ome.tif", data, photometric="minisblack",
        metadata={"axes": "ZYX", "PhysicalSizeX": 0.2, "PhysicalSizeY": 0.3, "PhysicalSizeXUnit": "µm",
                  "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 1500.0, "PhysicalSizeZUnit": "nm"},
    )
    img = raster.read(tmp_path / "stack.ome.tif")
    assert img.array.shape == (3, 4, 5)
    assert img.spacing == pytest.approx((1.5, 0.3, 0.2))  # array order z, y, x; z converted nm → µm
    assert img.meta["spacing_unit"] == "µm"


def test_imagej_tiff_physical_size(tmp_path):
    data = np.zeros((4, 6, 7), np.float32)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, resolution=(1 / 0.65, 1 / 0.5),
                     metadata={"axes": "ZYX", "unit": "micron", "spacing": 2.0})
    img = raster.read(tmp_path / "ij.tif")
    assert img.spacing == pytest.approx((2.0, 0.5, 0.65), rel=1e-9)
    assert img.meta["spacing_unit"] == "µm"


def test_imagej_channels_and_time(tmp_path):
    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    tifffile.imwrite(tmp_path / "zcyx.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    img = raster.read(tmp_path / "zcyx.tif")
    assert img.array.shape == (2, 4, 5, 3) and img.meta["channel_name"] == "channel"
    np.testing.assert_array_equal(img.array, np.moveaxis(data, 1, -1))
    raster.write(img, tmp_path / "copy.tif")
    np.testing.assert_array_equal(raster.read(tmp_path / "copy.tif").array, img.array)
    tifffile.imwrite(tmp_path / "tyx.tif", data[:, 0], imagej=True, metadata={"axes": "TYX"})
    img = raster.read(tmp_path / "tyx.tif")
    assert img.array.shape == (4, 5, 2) and img.meta["channel_name"] == "time" and img.spatial_ndim == 2


def test_nifti_time_series_to_tiff(tmp_path):
    """A 4D NIfTI (z = i, y = j, x = k, time last) goes to an ImageJ TZYX stack in mm."""
    img = sciSR.io.read(os.path.join(data_path, "functional.nii"))
    # Stored as int16 with scl_slope: the scaled values are not integers and must not be rounded.
    assert img.meta["stored_dtype"] == "int16" and not np.all(img.array == np.round(img.array))
    raster.write(img, tmp_path / "functional.tif")
    with tifffile.TiffFile(tmp_path / "functional.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "TZYX" and tif.series[0].dtype == np.float32
    back = raster.read(tmp_path / "functional.tif")
    np.testing.assert_array_equal(back.array, img.array)
    assert back.meta["channel_name"] == "time" and back.meta["spacing_unit"] == "mm"
    assert back.spacing == pytest.approx(img.spacing)


def test_multipage_stacks(tmp_path):
    img = raster.read(MULTIPAGE)
    assert img.array.shape == (2, 15, 10) and img.spacing == (1.0, 1.0, 1.0)
    assert "stacked as z" in img.meta["notes"][0]
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tif:
        tif.write(np.ones((4, 5), np.uint8), metadata=None)
        tif.write(np.zeros((6, 8), np.uint8), metadata=None)
    img = raster.read(tmp_path / "mixed.tif")
    assert img.array.shape == (4, 5) and "2 series" in img.meta["notes"][0]


def test_write_rounds_and_clips(tmp_path):
    values = np.array([[-3.2, 12.4, 12.6], [254.5, 300.0, np.nan]], np.float32)
    img = SciImage.from_array(values, meta={"format": "png", "stored_dtype": "uint8"})
    with pytest.warns(UserWarning, match=r"2 values clipped to the uint8 range \[0, 255\], 1 NaN"):
        raster.write(img, tmp_path / "clip.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "clip.png")), [[0, 12, 13], [254, 255, 0]])
    img16 = SciImage.from_array(np.array([[-1.0, 70000.0, 1234.4]]), meta={"format": "tiff", "stored_dtype": "uint16"})
    with pytest.warns(UserWarning, match="2 values clipped to the uint16 range"):
        raster.write(img16, tmp_path / "clip.tif")
    back = tifffile.imread(tmp_path / "clip.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, [[0, 65535, 1234]])


def test_default_dtype_without_stored_dtype(tmp_path):
    raster.write(SciImage.from_array(np.full((2, 2), 200.4)), tmp_path / "small.png")
    raster.write(SciImage.from_array(np.full((2, 2), 1000.0)), tmp_path / "large.png")
    raster.write(SciImage.from_array(np.full((2, 2), 0.25)), tmp_path / "float.tif")
    assert np.asarray(Image.open(tmp_path / "small.png")).dtype == np.uint8
    assert np.asarray(Image.open(tmp_path / "large.png")).dtype == np.uint16
    assert tifffile.imread(tmp_path / "float.tif").dtype == np.float32


@pytest.mark.parametrize("name", ["sr.tif", "sr.ome.tif"])
def test_upscaled_tiff_keeps_new_spacing(tmp_path, name):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, np.arange(60, dtype=np.uint16).reshape(3, 4, 5), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "ZYX", "unit": "um", "spacing": 3.0})
    img = raster.read(src)
    scale = (3, 2, 2)
    array = img.array
    for axis, factor in enumerate(scale):
        array = np.repeat(array, factor, axis=axis)
    sr = img.replace(array=array, spacing=geometry.upscale_spacing(img.spacing, scale))
    raster.write(sr, tmp_path / name)
    back = raster.read(tmp_path / name)
    assert back.array.shape == (9, 8, 10) and back.meta["stored_dtype"] == "uint16"
    assert back.spacing == pytest.approx((1.0, 0.25, 0.25), rel=1e-9)
    assert back.meta["spacing_unit"] == "µm"
    np.testing.assert_array_equal(back.array, array)


def test_rgb16_tiff_round_trip_via_ome(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    img = SciImage.from_array(rgb, spacing=(0.1, 0.2), meta={"channel_axis": 2, "channel_name": "rgb",
                                                              "spacing_unit": "mm"})
    raster.write(img, tmp_path / "rgb16.tif")  # ImageJ holds only 8-bit RGB: OME metadata instead
    back = raster.read(tmp_path / "rgb16.tif")
    np.testing.assert_array_equal(back.array, rgb)
    assert back.meta["channel_name"] == "rgb" and back.meta["stored_dtype"] == "uint16"
    assert back.spacing == pytest.approx((0.1, 0.2)) and back.meta["spacing_unit"] == "mm"


def test_png_write_limits(tmp_path):
    with pytest.raises(SciSRError, match="PNG holds 2D"):
        raster.write(SciImage.from_array(np.zeros((2, 3, 4), np.uint8)), tmp_path / "vol.png")


def test_corrupt_files(tmp_path):
    with open(CAMERA, "rb") as f:
        data = f.read()
    cases = {
        "garbage.png": b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
        "truncated.png": data[: len(data) // 3],
        "short.png": b"\x89PNG\r\n\x1a\n",
        "truncated.tif": b"II*\0" + b"\xff" * 12,
        "text.tif": b"hello, not an image",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(SciSRError) as info:
            raster.read(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "\n" not in message, message


def test_sniff_and_registry(tmp_path):
    assert raster.sniff(CAMERA) and raster.sniff(MULTIPAGE)
    (tmp_path / "x.dat").write_bytes(b"GIF89a")
    assert not raster.sniff(tmp_path / "x.dat") and not raster.sniff(tmp_path / "missing.png")
    img = sciSR.io.read(CAMERA)
    out = sciSR.io.write(img, tmp_path / "camera.ome.tiff")
    back = sciSR.io.read(out)
    np.testing.assert_array_equal(back.array, img.array)
    assert back.meta["format"] == "tiff"
