"""EgoDexter (Mueller et al., ICCV 2017): 4 egocentric test sequences, fingertip labels only.

Format (datasets.md §4)::

    <root>/data/<Seq>/color/*                        Seq in Desk Fruits Kitchen Rotunda
    <root>/data/<Seq>/color_on_depth/image_{:05d}_color_on_depth.png   (optional)
    <root>/data/<Seq>/depth/image_{:05d}_depth.png
    <root>/data/<Seq>/annotation.txt                 "u,v;u,v;u,v;u,v;u,v;"       depth pixels, -1 invalid
    <root>/data/<Seq>/annotation.txt_3D.txt          "x, y, z;...;"               mm, depth frame, 0,0,0 invalid

Line i of both files pairs with the i-th colour image (sorted). 3D tips are moved to the colour camera
with the depth->colour extrinsics (**no** sign flip, unlike Dexter+Object) and projected with the colour
intrinsics. ``image_source="color_on_depth"`` instead uses the colour image registered to the depth
camera: the depth intrinsics, the 3D tips in the depth frame and the 2D labels of ``annotation.txt``.

Uncertainties and how they are handled ([U] in datasets.md):

* colour image names: any image in ``color/``, natural sort (see Dexter+Object); count mismatches
  between images and either annotation file pair the first ``min`` and warn;
* invalid markers: 2D ``-1``; 3D all-zero; NaN/inf; lines with fewer than 5 entries (a known quirk)
  are whole missing frames; non-numeric entries raise ``DataFileError`` naming file and line;
* handedness: only a third-party comment says "left hands"; ``flip_left=True`` by default, set False
  to keep the images as they are;
* cleaned labels ``my_annotation.txt_3D.txt`` (Minimal-Hand-pytorch): ``use_cleaned`` False/True/"auto";
* the Kitchen sequence has known bad labels: pass ``sequences=("Desk", "Fruits", "Rotunda")`` to drop it;
* fingertips under-cover the hand, so the default crop scale is 2.2.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry, RawRecord, _str_column, list_images, rigid
from hoi_adapt.data.datasets.dexter_object import NUM_TIPS, check_sequences, read_tip_file
from hoi_adapt.utils.errors import ConfigError, DataFileError

SEQUENCES: tuple[str, ...] = ("Desk", "Fruits", "Kitchen", "Rotunda")
K_COLOR = np.array([[617.173, 0.0, 315.453], [0.0, 617.173, 242.259], [0.0, 0.0, 1.0]])
K_DEPTH = np.array([[475.62, 0.0, 311.125], [0.0, 475.62, 245.965], [0.0, 0.0, 1.0]])
EXTR_DEPTH_TO_COLOR = np.array([[1.0000, 0.00090442, -0.0074, 20.2365],
                                [-0.00071933, 0.9997, 0.0248, 1.2846],
                                [0.0075, -0.0248, 0.9997, 5.7360]])
"""Depth->colour ``[R | t]``, t in mm."""
PUBLISHED_ANNOTATED_FRAMES = 1485


class EgoDexter(HandDataset):
    """EgoDexter test set (fingertips only).

    Args:
        sequences: subset of :data:`SEQUENCES` (default all 4).
        image_source: ``"color"`` (default) or ``"color_on_depth"``.
        use_cleaned: False, True or ``"auto"`` for ``my_annotation.txt_3D.txt``.
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "egodexter"
    SPLITS = {"test": "test", "all": "test"}
    DEFAULT_CROP_SCALE = 2.2
    INDEX_VERSION = 1

    def __init__(self, root: str | Path, split: str = "test", *, sequences: Sequence[str] | None = None,
                 image_source: str = "color", use_cleaned: bool | str = False, **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        self.sequences = check_sequences(sequences, SEQUENCES, self.name)
        if image_source not in ("color", "color_on_depth"):
            raise ConfigError(f"image_source must be 'color' or 'color_on_depth', got {image_source!r}")
        if use_cleaned not in (False, True, "auto"):
            raise ConfigError(f"use_cleaned must be False, True or 'auto', got {use_cleaned!r}")
        self.image_source = image_source
        self.use_cleaned = use_cleaned
        self.data_dir = self.root / "data"
        for seq in self.sequences:
            if not (self.data_dir / seq).is_dir():
                hint = ("pass the parent folder (the one holding data/)" if (self.root / seq).is_dir()
                        else "expected <root>/data/<Seq>/{color,annotation.txt,annotation.txt_3D.txt}")
                raise DataFileError(self.data_dir / seq, "sequence folder not found", hint)
        self._init_index()

    def annotation3d_path(self, seq: str) -> Path:
        seq_dir = self.data_dir / seq
        cleaned = seq_dir / "my_annotation.txt_3D.txt"
        if self.use_cleaned is True and not cleaned.is_file():
            raise DataFileError(cleaned, "cleaned annotation file not found", "use use_cleaned=False or 'auto'")
        if self.use_cleaned is not False and cleaned.is_file():
            return cleaned
        return seq_dir / "annotation.txt_3D.txt"

    def _index_options(self) -> dict[str, Any]:
        return {"sequences": self.sequences, "image_source": self.image_source,
                "ann3d": [str(self.annotation3d_path(s)) for s in self.sequences]}

    def _watched_paths(self) -> list[Path]:
        out: list[Path] = []
        for seq in self.sequences:
            out += [self.annotation3d_path(seq), self.data_dir / seq / "annotation.txt", self.data_dir / seq / self.image_source]
        return out

    def _build_index(self) -> dict[str, np.ndarray]:
        images: list[str] = []
        seqs: list[str] = []
        frames: list[int] = []
        tips3d: list[np.ndarray] = []
        tips2d: list[np.ndarray] = []
        for seq in self.sequences:
            seq_dir = self.data_dir / seq
            files = list_images(seq_dir / self.image_source)
            errors: list[str] | None = None if self.strict else []
            ann3d = self.annotation3d_path(seq)
            rows3d = read_tip_file(ann3d, 3, errors=errors, zero_invalid=True)
            rows2d = read_tip_file(seq_dir / "annotation.txt", 2, errors=errors, invalid_values=(-1.0,))
            self.problems += errors or []
            n = min(len(files), len(rows3d), len(rows2d))
            if not len(files) == len(rows3d) == len(rows2d):
                self._warn(f"{seq}: {len(files)} images, {len(rows3d)} lines in {ann3d.name}, {len(rows2d)} lines in "
                           f"annotation.txt; using the first {n}")
            images += [str(f.relative_to(self.root)) for f in files[:n]]
            seqs += [seq] * n
            frames += list(range(n))
            tips3d.append(rows3d[:n])
            tips2d.append(rows2d[:n])
        return {"image": _str_column(images), "sequence": _str_column(seqs), "frame": np.asarray(frames, dtype=np.int64),
                "tips3d": np.concatenate(tips3d) if tips3d else np.zeros((0, NUM_TIPS, 3)),
                "tips2d": np.concatenate(tips2d) if tips2d else np.zeros((0, NUM_TIPS, 2))}

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        common = dict(image=self.root / str(ix["image"][i]), joints3d=ix["tips3d"][i], order="tips", unit_scale=1e-3,
                      is_left=True, is_hand_object=1.0, sequence=str(ix["sequence"][i]), frame=int(ix["frame"][i]))
        if self.image_source == "color_on_depth":
            return RawRecord(K=K_DEPTH, joints2d=ix["tips2d"][i], **common)
        return RawRecord(K=K_COLOR, to_camera=rigid(EXTR_DEPTH_TO_COLOR[:, :3], EXTR_DEPTH_TO_COLOR[:, 3] / 1000.0), **common)

    def size_checks(self) -> list[tuple[str, int, int]]:
        if set(self.sequences) != set(SEQUENCES):
            return []
        annotated = int(np.isfinite(self._index["tips3d"]).all(axis=2).any(axis=1).sum())
        return [("frames with at least one valid 3D tip", annotated, PUBLISHED_ANNOTATED_FRAMES)]

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        out = [LayoutEntry("data/*/color", count_glob="*",
                           note=f"colour frames of the 4 sequences ({PUBLISHED_ANNOTATED_FRAMES} published with annotations)")]
        for seq in SEQUENCES:
            out += [LayoutEntry(f"data/{seq}/color", count_glob="*"),
                    LayoutEntry(f"data/{seq}/depth", required=False, count_glob="*"),
                    LayoutEntry(f"data/{seq}/color_on_depth", required=False, count_glob="*",
                                note="needed for image_source='color_on_depth'"),
                    LayoutEntry(f"data/{seq}/annotation.txt", kind="file"),
                    LayoutEntry(f"data/{seq}/annotation.txt_3D.txt", kind="file"),
                    LayoutEntry(f"data/{seq}/my_annotation.txt_3D.txt", kind="file", required=False,
                                note="cleaned labels (Minimal-Hand-pytorch), use_cleaned=True/'auto'")]
        return out
