"""Robust image, mask and depth reading (every failure a ``DataFileError`` naming the file), and image encoding.

Real dataset copies contain missing, empty and truncated files (interrupted downloads or unzips).
OpenCV silently decodes a truncated JPEG into a half-grey image and PIL raises deep tracebacks, so
all image reads of hoi_adapt go through this module:

* files are read as bytes (unicode paths work) and decoded with ``cv2.imdecode`` (fast);
* completeness is checked structurally: a JPEG must end with its end-of-image marker and a PNG with
  its ``IEND`` chunk. Only when that check fails is the file fully decoded again with PIL (which
  raises on premature end of data); if PIL also fails the file is reported as truncated. So a file
  with harmless trailing bytes still loads, and a cut-off file never yields a silently grey image;
* colour images come back as ``(H, W, 3) uint8`` **RGB**.

Channel names (``"r"``, ``"g"``, ``"b"``) are always RGB names, whatever the on-disk order.
"""
from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import write_bytes_atomic

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_CHANNELS = {"r": 0, "g": 1, "b": 2}


def read_bytes(path: str | Path) -> bytes:
    """Whole file as bytes; missing, unreadable or empty files raise ``DataFileError``."""
    p = Path(path)
    if not p.exists():
        raise DataFileError(p, "file not found")
    if not p.is_file():
        raise DataFileError(p, "not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataFileError(p, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise DataFileError(p, "empty file (0 bytes)", "re-extract or re-download it")
    return data


def _structurally_complete(data: bytes) -> bool:
    if data.startswith(_JPEG_SOI):
        return data.rstrip(b"\x00\r\n\t ").endswith(b"\xff\xd9")
    if data.startswith(_PNG_SIGNATURE):
        # IEND chunk: length 0, type IEND, CRC AE 42 60 82.
        return data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return True  # other formats: rely on the decoder


def _pil_decodes_fully(data: bytes) -> bool:
    from PIL import Image, ImageFile

    if getattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False):
        return False  # someone switched PIL to lenient mode: it cannot vouch for the file
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - any decoder failure means "not decodable"
        return False


def _decode(path: Path, data: bytes, flags: int) -> np.ndarray:
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:  # pragma: no cover - cv2 returns None for almost every bad input
        raise DataFileError(path, f"cannot decode image ({exc})") from None
    if img is None or img.size == 0:
        kind = "truncated or corrupt image file" if data[:2] == _JPEG_SOI or data[:8] == _PNG_SIGNATURE else "not a readable image"
        raise DataFileError(path, f"{kind} ({len(data)} bytes)", "re-extract or re-download it")
    if not _structurally_complete(data) and not _pil_decodes_fully(data):
        raise DataFileError(path, f"truncated image file ({len(data)} bytes, no end-of-image marker)",
                            "re-extract or re-download it")
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Colour image as ``(H, W, 3) uint8`` RGB (grey images are replicated, 16-bit scaled to 8-bit)."""
    p = Path(path)
    img = _decode(p, read_bytes(p), cv2.IMREAD_COLOR)
    if img.ndim != 3 or img.shape[2] != 3:  # pragma: no cover - IMREAD_COLOR always gives 3 channels
        raise DataFileError(p, f"expected a 3-channel image, got shape {img.shape}")
    return np.ascontiguousarray(img[:, :, ::-1])


def read_raw(path: str | Path, rgb: bool = True) -> np.ndarray:
    """Image exactly as stored (8 or 16 bit, 1/3/4 channels); colour channels in RGB(A) order if ``rgb``.

    With ``rgb=False`` colour channels stay in OpenCV's BGR(A) order, for formats documented that way.
    """
    p = Path(path)
    img = _decode(p, read_bytes(p), cv2.IMREAD_UNCHANGED)
    if rgb and img.ndim == 3 and img.shape[2] >= 3:
        img = np.concatenate([img[:, :, 2::-1], img[:, :, 3:]], axis=2)
    return np.ascontiguousarray(img)


def read_three_channel(path: str | Path, rgb: bool = True, what: str = "colour") -> np.ndarray:
    """:func:`read_raw` of a file that must have at least three channels (segmentations, packed depth)."""
    p = Path(path)
    img = read_raw(p, rgb=rgb)
    if img.ndim != 3 or img.shape[2] < 3:
        raise DataFileError(p, f"expected a 3-channel {what} image, got shape {img.shape}")
    return img


def read_mask(path: str | Path, channel: str | int | None = None) -> np.ndarray:
    """Label/mask image as ``(H, W)`` (dtype as stored).

    Args:
        channel: for multi-channel files, the channel to use: ``"r"``, ``"g"``, ``"b"`` or an RGB index.
            ``None`` takes the first (red) channel, which is right for grey masks saved as RGB.
    """
    p = Path(path)
    img = read_raw(p, rgb=True)
    if img.ndim == 2:
        return img
    idx = _CHANNELS[channel] if isinstance(channel, str) else (0 if channel is None else int(channel))
    if idx >= img.shape[2]:
        raise DataFileError(p, f"mask has {img.shape[2]} channels, channel {channel!r} requested")
    return np.ascontiguousarray(img[:, :, idx])


def read_depth_two_channel(path: str | Path, high: str, low: str, scale: float) -> np.ndarray:
    """Depth packed into two 8-bit colour channels: ``(high * 256 + low) * scale`` as float32 ``(H, W)``.

    HO-3D: ``high="g", low="r", scale=0.00012498664727900177`` (metres); STB: ``high="g", low="r"``
    (mm); RHD: ``high="r", low="g", scale=5/65535`` (metres).
    """
    img = read_three_channel(path, what="8-bit RGB depth")
    if img.dtype != np.uint8:
        raise DataFileError(Path(path), f"expected an 8-bit RGB depth image, got dtype {img.dtype}")
    hi = img[:, :, _CHANNELS[high]].astype(np.float32)
    lo = img[:, :, _CHANNELS[low]].astype(np.float32)
    return (hi * 256.0 + lo) * np.float32(scale)


def read_depth_png16(path: str | Path, scale: float) -> np.ndarray:
    """Single-channel 16-bit depth PNG times ``scale`` as float32 ``(H, W)``."""
    p = Path(path)
    img = read_raw(p)
    if img.ndim != 2:
        raise DataFileError(p, f"expected a single-channel depth image, got shape {img.shape}")
    return img.astype(np.float32) * np.float32(scale)


def is_image_file(path: str | Path) -> bool:
    """True for visible files with a known image extension (skips ``Thumbs.db``, ``.DS_Store`` ...)."""
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _encode(image: np.ndarray, ext: str, params: list[int] | None = None) -> bytes:
    arr = np.ascontiguousarray(image[:, :, ::-1] if image.ndim == 3 else image)  # RGB -> OpenCV's BGR
    ok, buf = cv2.imencode(ext, arr, params or [])
    if not ok:  # pragma: no cover - encoding a uint8 array does not fail
        raise RuntimeError(f"{ext} encoding failed")
    return buf.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H,W,3) RGB or (H,W) grey uint8 image."""
    return _encode(image, ".png")


def encode_jpeg(image: np.ndarray, quality: int = 95) -> bytes:
    """JPEG bytes of an (H,W,3) RGB or (H,W) grey uint8 image."""
    return _encode(image, ".jpg", [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB/grey uint8 image as PNG atomically (a reader never sees half a file)."""
    write_bytes_atomic(path, encode_png(image))
    return Path(path)
