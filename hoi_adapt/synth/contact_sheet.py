"""A PNG contact sheet of a synthetic world, for people to check it at a glance.

Per domain style a few samples (spread from low to high occlusion), each row showing the hand-object
image, its hand-only twin, the masks colour-coded (visible hand / occluded part of the full hand / object)
and the stored 2D keypoints drawn over the hand-object image, with style, split, occlusion, object family
and pose kind written beside it. Images are shown as stored (left hands are not mirrored).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hoi_adapt.data.formats import world as fmt
from hoi_adapt.data.image_io import read_image
from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import atomic_path
from hoi_adapt.viz.drawing import draw_skeleton

CELL = 176  # displayed side of every image (pixels)
LABEL_W = 190
PAD = 6
BG = (255, 255, 255)
INK = (20, 20, 20)
FONT = cv2.FONT_HERSHEY_SIMPLEX
#: Mask colours (RGB): what each pixel class of the stored RGB mask PNG is drawn as.
MASK_COLORS: dict[str, tuple[int, int, int]] = {
    "visible hand": (60, 200, 80),
    "occluded hand (full - visible)": (235, 60, 60),
    "object": (60, 120, 240),
    "background": (25, 25, 25),
}
COLUMNS = ("hand-object image", "hand-only twin", "masks", "2D keypoints")


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.48, thickness: int = 1,
          color: tuple[int, int, int] = INK) -> None:
    cv2.putText(img, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


def _read_rgb(path: Path) -> np.ndarray:
    return read_image(path)


def mask_colors(mask_rgb: np.ndarray) -> np.ndarray:
    """Colour-code a stored mask PNG (R visible hand, G full hand, B object) with :data:`MASK_COLORS`."""
    visible, full, obj = (mask_rgb[..., k] > 127 for k in range(3))
    out = np.empty(mask_rgb.shape[:2] + (3,), np.uint8)
    out[:] = MASK_COLORS["background"]
    out[obj] = MASK_COLORS["object"]
    out[full & ~visible] = MASK_COLORS["occluded hand (full - visible)"]
    out[visible] = MASK_COLORS["visible hand"]
    return out


def _upscale(img: np.ndarray, nearest: bool = False) -> np.ndarray:
    return cv2.resize(img, (CELL, CELL), interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_CUBIC)


def _keypoint_panel(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    s = CELL / img.shape[1]
    big = (_upscale(img).astype(np.float32) * 0.75 + 255 * 0.25).astype(np.uint8)  # lighten: bones stand out
    return draw_skeleton(big, (np.asarray(uv, np.float64) + 0.5) * s - 0.5, thickness=2)


def pick_samples(occlusion: np.ndarray, count: int) -> list[int]:
    """``count`` row indices spread evenly over the occlusion-sorted samples (low to high)."""
    n = len(occlusion)
    if n == 0 or count <= 0:
        return []
    order = np.argsort(occlusion, kind="stable")
    picks = np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(int))
    return [int(order[p]) for p in picks]


def _split_for_style(config: dict[str, Any], style: str, root: Path) -> dict[str, Any] | None:
    """The first finished split of ``style``, preferring ones with objects."""
    done = [s for s in config["splits"] if s["style"] == style and (root / s["name"] / fmt.ANNOTATIONS_FILE).exists()]
    done.sort(key=lambda s: not s["with_object"])
    return done[0] if done else None


def _row(root: Path, split: dict[str, Any], ann: dict[str, np.ndarray], i: int) -> np.ndarray:
    idx = int(ann["index"][i])
    name = split["name"]
    hand = _read_rgb(fmt.image_path(root, name, "hand", idx))
    hoi = _read_rgb(fmt.image_path(root, name, "hoi", idx)) if split["with_object"] else hand
    mask = _read_rgb(fmt.image_path(root, name, "mask", idx))
    panels = [_upscale(hoi), _upscale(hand), _upscale(mask_colors(mask), nearest=True),
              _keypoint_panel(hoi, ann["joints2d"][i])]
    if not split["with_object"]:
        panels[0] = np.full_like(panels[0], 235)
        _text(panels[0], "(hand-only split)", (18, CELL // 2), 0.45)
    row = np.full((CELL + 2 * PAD, LABEL_W + len(panels) * (CELL + PAD) + PAD, 3), 255, np.uint8)
    family = str(ann["object_family"][i]) or "-"
    lines = [
        (f"{ann['style'][i]} style", 0.58, 2),
        (f"{name} #{idx}", 0.45, 1),
        (f"occlusion {float(ann['occlusion'][i]):.2f}", 0.5, 1),
        (f"object: {family}", 0.5, 1),
        (f"pose: {ann['pose_kind'][i]}", 0.45, 1),
        (f"{ann['side'][i]} hand", 0.45, 1),
    ]
    y = PAD + 24
    for text, scale, thick in lines:
        _text(row, text, (PAD + 4, y), scale, thick)
        y += 26
    for k, p in enumerate(panels):
        x = LABEL_W + k * (CELL + PAD)
        row[PAD:PAD + CELL, x:x + CELL] = p
    return row


def _header(width: int, title: str) -> np.ndarray:
    head = np.full((78, width, 3), 255, np.uint8)
    _text(head, title, (PAD + 4, 22), 0.6, 2)
    x = PAD + 4
    _text(head, "masks:", (x, 50), 0.48)
    x += 62
    for label, color in MASK_COLORS.items():
        if label == "background":
            continue
        cv2.rectangle(head, (x, 38), (x + 16, 54), color, -1)
        cv2.rectangle(head, (x, 38), (x + 16, 54), INK, 1)
        _text(head, label, (x + 22, 50), 0.48)
        x += 32 + cv2.getTextSize(label, FONT, 0.48, 1)[0][0]
    _text(head, "keypoints: stored joints2d (OpenPose order; thumb red .. pinky violet)", (PAD + 4, 72), 0.45)
    return head


def _column_titles(width: int) -> np.ndarray:
    band = np.full((26, width, 3), 255, np.uint8)
    for k, col in enumerate(COLUMNS):
        cx = LABEL_W + k * (CELL + PAD)
        w = cv2.getTextSize(col, FONT, 0.5, 1)[0][0]
        _text(band, col, (cx + (CELL - w) // 2, 19), 0.5, 1)
    return band


def _section(width: int, text: str) -> np.ndarray:
    band = np.full((30, width, 3), 225, np.uint8)
    _text(band, text, (PAD + 4, 21), 0.55, 2)
    return band


def write_contact_sheet(world_root: str | Path, out_png: str | Path, rows_per_style: int = 4) -> Path:
    """Write a contact sheet of ``world_root`` (both domain styles) to ``out_png``; returns its path.

    Raises:
        DataFileError: the folder holds no world record, or no finished split at all.
    """
    root = Path(world_root)
    record_path = root / fmt.WORLD_FILE
    try:
        record = json.loads(record_path.read_text())
        config = record["config"]
    except (OSError, ValueError, KeyError):
        raise DataFileError(record_path, "no readable synthetic-world record", "generate the world with 'hoi-adapt synth'") from None
    styles = list(config.get("styles", {})) or sorted({s["style"] for s in config["splits"]})
    width = LABEL_W + len(COLUMNS) * (CELL + PAD) + PAD
    title = (f"synthetic world {root.name}: {config['image_size']} px, seed {config['seed']}, "
             f"hand model: {record.get('hand_model', '?')}")
    blocks = [_header(width, title), _column_titles(width)]
    shown = 0
    for style in styles:
        split = _split_for_style(config, style, root)
        if split is None:
            blocks.append(_section(width, f"{style} style: no finished split"))
            continue
        ann = fmt.load_annotations(root, split["name"])
        rows = pick_samples(ann["occlusion"], rows_per_style)
        kind = "hand-object" if split["with_object"] else "hand-only"
        blocks.append(_section(width, f"{style} style - split {split['name']} ({kind}, {len(ann['index'])} samples; "
                                      "rows from low to high occlusion)"))
        blocks += [_row(root, split, ann, i) for i in rows]
        shown += len(rows)
    if shown == 0:
        raise DataFileError(root, "no finished split to show", "generate the world with 'hoi-adapt synth'")
    sheet = np.concatenate(blocks, axis=0)
    out = Path(out_png)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataFileError(out, "PNG encoding failed")
    with atomic_path(out) as tmp:
        tmp.write_bytes(buf.tobytes())
    return out
