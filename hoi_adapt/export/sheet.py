"""``sheet.png`` of an export: what went in and what came out, for the first samples, at a glance.

One row per sample: source crop | exported image | exported mask | skeleton overlay (final skeleton in
finger colours on the exported image, the first-pass skeleton in grey beneath it when adapted), with the
sample key and its confidence written on the overlay.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from hoi_adapt.data.formats.adapted import sha256_bytes
from hoi_adapt.data.image_io import encode_png
from hoi_adapt.utils.io import write_bytes_atomic
from hoi_adapt.viz.drawing import draw_skeleton, to_uint8

COLUMNS: tuple[str, ...] = ("source", "exported", "mask", "skeleton")
HEADER = 18
MIN_CELL = 128


@dataclass
class SheetRow:
    key: str
    source: np.ndarray
    """(H,W,3) uint8 source crop."""
    exported: np.ndarray
    """(H,W,3) uint8 exported image."""
    mask: np.ndarray
    """(H,W) uint8 exported mask."""
    joints2d: np.ndarray
    """(21,2) final skeleton in exported-image pixels."""
    confidence: float
    first_joints2d: np.ndarray | None = None


def _fit(image: np.ndarray, cell: int) -> np.ndarray:
    img = to_uint8(image)
    if img.shape[:2] == (cell, cell):
        return img
    interp = cv2.INTER_NEAREST if cell >= max(img.shape[:2]) else cv2.INTER_AREA
    return cv2.resize(img, (cell, cell), interpolation=interp)


def _scale_points(uv: np.ndarray, src: int, cell: int) -> np.ndarray:
    s = cell / float(src)
    return (np.asarray(uv, dtype=np.float64) + 0.5) * s - 0.5  # pixel-centre convention


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.4) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def make_sheet(rows: Sequence[SheetRow], cell: int | None = None) -> np.ndarray:
    """The sheet as an (H, W, 3) uint8 RGB image (column titles on top)."""
    if not rows:
        raise ValueError("no rows for the sheet")
    side = max(rows[0].exported.shape[:2])
    cell = int(cell or max(MIN_CELL, side))
    sheet = np.full((HEADER + cell * len(rows), cell * len(COLUMNS), 3), 255, dtype=np.uint8)
    for c, title in enumerate(COLUMNS):
        cv2.putText(sheet, title, (c * cell + 4, HEADER - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    thickness = max(1, cell // 128)
    for r, row in enumerate(rows):
        src_side = max(row.exported.shape[:2])
        overlay = _fit(row.exported, cell)
        if row.first_joints2d is not None:
            overlay = draw_skeleton(overlay, _scale_points(row.first_joints2d, src_side, cell), thickness=thickness,
                                    dashed_color=(150, 150, 150))
        overlay = draw_skeleton(overlay, _scale_points(row.joints2d, src_side, cell), thickness=thickness)
        _text(overlay, f"{row.key} c={row.confidence:.2f}", (3, cell - 5))
        cells = [_fit(row.source, cell), _fit(row.exported, cell), _fit(row.mask, cell), overlay]
        y = HEADER + r * cell
        for c, img in enumerate(cells):
            sheet[y:y + cell, c * cell:(c + 1) * cell] = img
    return sheet


def write_sheet(path: str | Path, rows: Sequence[SheetRow], cell: int | None = None) -> str:
    """Write the sheet PNG atomically; returns its sha256."""
    data = encode_png(make_sheet(rows, cell))
    write_bytes_atomic(path, data)
    return sha256_bytes(data)


__all__ = ["SheetRow", "make_sheet", "write_sheet", "COLUMNS"]
