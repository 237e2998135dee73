"""Procedural backgrounds (and user background folders) for the hand-object images.

Backgrounds are generated in numpy at the output resolution, seeded per sample, so they are cheap next
to rasterisation and bit-reproducible.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hoi_adapt.data.image_io import read_image
from hoi_adapt.utils.errors import DataFileError

KINDS: tuple[str, ...] = ("gradient", "blobs", "noise", "stripes", "clutter", "checker")


def _smooth_noise(size: int, cells: int, rng: np.random.Generator, channels: int = 3) -> np.ndarray:
    grid = rng.uniform(0, 1, (cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return out.reshape(size, size, channels)  # cv2 drops a single channel axis


def procedural_background(kind: str, size: int, rng: np.random.Generator, palette: np.ndarray) -> np.ndarray:
    """(size,size,3) float32 image in [0,1] of the given kind, colours drawn around ``palette``."""
    c0, c1 = palette[rng.integers(len(palette))], palette[rng.integers(len(palette))]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    if kind == "gradient":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    elif kind == "blobs":
        n = _smooth_noise(size, int(rng.integers(2, 5)), rng, 1)
        img = c0 * (1 - n) + c1 * n
    elif kind == "noise":
        n = 0.6 * _smooth_noise(size, int(rng.integers(6, 16)), rng) + 0.4 * _smooth_noise(size, int(rng.integers(24, 48)), rng)
        img = c0 * 0.5 + (n - 0.5) * 0.9 + c1 * 0.5
    elif kind == "stripes":
        angle = rng.uniform(0, np.pi)
        freq = rng.uniform(4, 14)
        t = 0.5 + 0.5 * np.sign(np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * freq * np.pi))
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    elif kind == "checker":
        k = rng.integers(3, 9)
        t = ((np.floor(xx * k) + np.floor(yy * k)) % 2).astype(np.float32)
        img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    elif kind == "clutter":
        img = procedural_background("blobs", size, rng, palette)
        for _ in range(int(rng.integers(4, 10))):
            colour = np.clip(palette[rng.integers(len(palette))] + rng.normal(0, 0.15, 3), 0, 1)
            cx, cy = rng.uniform(0, 1, 2)
            w, h = rng.uniform(0.08, 0.45, 2)
            if rng.uniform() < 0.5:
                m = (np.abs(xx - cx) < w / 2) & (np.abs(yy - cy) < h / 2)
            else:
                m = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 < 1
            img = np.where(m[..., None], colour, img)
    else:
        raise ValueError(f"unknown background kind {kind!r}; known: {', '.join(KINDS)}")
    return np.clip(img, 0, 1).astype(np.float32)


class BackgroundFolder:
    """Random crops from a folder of user images (jpg/png), resized to the output size."""

    SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise DataFileError(self.folder, "background folder not found")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in self.SUFFIXES)
        if not self.files:
            raise DataFileError(self.folder, f"no images ({', '.join(self.SUFFIXES)}) in background folder")

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        img = read_image(self.files[int(rng.integers(len(self.files)))]).astype(np.float32) / 255.0
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = img[y0 : y0 + side, x0 : x0 + side]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
