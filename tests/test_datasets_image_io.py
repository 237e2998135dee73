"""Image reading: RGB order, and every broken file becomes a DataFileError naming it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from hoi_adapt.data import image_io as io
from hoi_adapt.utils.errors import DataFileError


def _write(path, bgr, params=()):
    assert cv2.imwrite(str(path), bgr, list(params))
    return path


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_read_image_returns_rgb(tmp_path, ext):
    bgr = np.zeros((12, 16, 3), np.uint8)
    bgr[:, :8] = (255, 0, 0)  # blue on the left in BGR
    img = io.read_image(_write(tmp_path / f"a{ext}", bgr, [cv2.IMWRITE_JPEG_QUALITY, 100] if ext == ".jpg" else []))
    assert img.shape == (12, 16, 3) and img.dtype == np.uint8
    assert img[6, 2, 2] > 240 and img[6, 2, 0] < 15  # blue channel is last in RGB


def test_grey_and_16bit_images_become_rgb(tmp_path):
    g = io.read_image(_write(tmp_path / "g.png", np.full((5, 7), 77, np.uint8)))
    assert g.shape == (5, 7, 3) and (g == 77).all()
    d = io.read_raw(_write(tmp_path / "d.png", np.full((5, 7), 4000, np.uint16)))
    assert d.dtype == np.uint16 and (d == 4000).all()
    np.testing.assert_allclose(io.read_depth_png16(tmp_path / "d.png", 0.001), 4.0)


def test_missing_empty_garbage(tmp_path):
    with pytest.raises(DataFileError, match="not found") as e:
        io.read_image(tmp_path / "nope.png")
    assert e.value.path == tmp_path / "nope.png"
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        io.read_image(tmp_path / "empty.jpg")
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(DataFileError, match="junk.png"):
        io.read_image(tmp_path / "junk.png")
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(DataFileError, match="regular file"):
        io.read_image(tmp_path / "dir.png")


@pytest.mark.parametrize("ext,keep", [(".jpg", 0.6), (".png", 0.6), (".jpg", 0.97), (".png", 0.97)])
def test_truncated_files_raise(tmp_path, ext, keep):
    rng = np.random.default_rng(0)
    path = _write(tmp_path / f"t{ext}", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataFileError, match="truncated|corrupt") as e:
        io.read_image(path)
    assert str(path) in str(e.value)


def test_trailing_bytes_after_jpeg_end_are_accepted(tmp_path):
    path = _write(tmp_path / "x.jpg", np.full((16, 16, 3), 128, np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00\x00extra-metadata")
    assert io.read_image(path).shape == (16, 16, 3)


def test_depth_two_channel_and_masks(tmp_path):
    code = np.arange(12 * 10).reshape(12, 10) * 97
    bgr = np.zeros((12, 10, 3), np.uint8)
    bgr[:, :, 2] = code % 256  # R low byte
    bgr[:, :, 1] = code // 256  # G high byte
    p = _write(tmp_path / "d.png", bgr)
    np.testing.assert_allclose(io.read_depth_two_channel(p, high="g", low="r", scale=0.5), code * 0.5)
    np.testing.assert_allclose(io.read_depth_two_channel(p, high="r", low="g", scale=1.0),
                               (code % 256) * 256.0 + code // 256)
    assert (io.read_mask(p, "g") == code // 256).all() and (io.read_mask(p, channel=0) == code % 256).all()
    lab = _write(tmp_path / "l.png", np.arange(20, dtype=np.uint8).reshape(4, 5))
    assert (io.read_mask(lab) == np.arange(20).reshape(4, 5)).all()
    with pytest.raises(DataFileError, match="8-bit RGB"):
        io.read_depth_two_channel(lab, "g", "r", 1.0)


def test_is_image_file():
    assert io.is_image_file("a/b/0001.PNG") and io.is_image_file("x.jpeg")
    assert not io.is_image_file("Thumbs.db") and not io.is_image_file(".hidden.png") and not io.is_image_file("a.txt")
