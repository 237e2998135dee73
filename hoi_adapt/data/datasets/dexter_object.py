"""Dexter+Object (Sridhar et al., ECCV 2016): 6 test sequences, 3D fingertip labels only.

Format (datasets.md §3)::

    <root>/data/<Seq>/color/*                       Seq in Grasp1 Grasp2 Occlusion Rigid Pinch Rotate
    <root>/data/<Seq>/depth/*
    <root>/data/<Seq>/annotations/<Seq>3D.txt       one line per frame: "x, y, z;x, y, z;..." (mm)
    <root>/data/<Seq>/annotations/<Seq>2D.txt       (depth-image pixels; not used)

The i-th colour image (sorted) pairs with line i of ``<Seq>3D.txt``. Only the first 5 entries of a line
are used (thumb, index, middle, ring, little tips); lines hold more entries, whose meaning is unknown.
The 3D tips are in mm in the depth-camera frame and are moved to the colour camera with the
depth->colour extrinsics after negating x and y (``negate_xy``), the Minimal-Hand-pytorch convention,
then projected with the colour intrinsics. Samples have 5 valid joints (OpenPose 4, 8, 12, 16, 20).

Uncertainties and how they are handled ([U] in datasets.md):

* image names/extensions: any image file in ``color/``, sorted *naturally* (``2.png`` before ``10.png``;
  identical to plain sorting for zero-padded names); a count mismatch with the annotation lines pairs
  the first ``min`` of both and warns;
* the x/y negation is not documented by the dataset: ``negate_xy=True`` (default) follows the only known
  working projection; set False for raw labels that are already in the colour convention;
* invalid markers: a tip is invalid if any coordinate is 32001 (the marker of the cleaned labels), NaN/inf,
  or all three are 0; a line with fewer than 5 entries (or an empty line) marks the whole frame missing;
  a non-numeric entry among the first 5 raises ``DataFileError`` naming file and line;
* the hands are left hands (a code comment, not a dataset statement): ``flip_left=True`` by default;
* the cleaned labels ``my_<Seq>3D.txt`` (Minimal-Hand-pytorch "DO_supp") are looked for in
  ``annotations/``, the sequence folder and ``data/``; ``use_cleaned`` = False (default: original labels),
  True (required) or "auto" (when present);
* fingertips alone under-cover the hand (palm and wrist lie beyond their box), so the default crop scale
  is 2.2 rather than 1.5.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.datasets.base import (
    HandDataset,
    LayoutEntry,
    RawRecord,
    _str_column,
    list_images,
    read_text_lines,
    rigid,
)
from hoi_adapt.utils.errors import ConfigError, DataFileError

SEQUENCES: tuple[str, ...] = ("Grasp1", "Grasp2", "Occlusion", "Rigid", "Pinch", "Rotate")
K_COLOR = np.array([[587.45209, 0.0, 325.0], [0.0, 600.67456, 249.0], [0.0, 0.0, 1.0]])
K_DEPTH = np.array([[224.502, 0.0, 160.0], [0.0, 230.494, 120.0], [0.0, 0.0, 1.0]])
EXTR_DEPTH_TO_COLOR = np.array([[0.9999, 0.0034, 0.0161, 19.0473],
                                [-0.0033, 1.0000, -0.0079, -1.8514],
                                [-0.0162, 0.0079, 0.9998, -4.7501]])
"""Depth->colour ``[R | t]``, t in mm."""
INVALID_MARKER = 32001.0
NUM_TIPS = 5
PUBLISHED_FRAMES = 3014


# ---------------------------------------------------------------------- fingertip text format (D+O, ED)
def parse_tip_line(line: str, dim: int, *, path: str | Path = "<text>", line_no: int = 0, n_points: int = NUM_TIPS,
                   invalid_values: Sequence[float] = (), zero_invalid: bool = False) -> np.ndarray:
    """Parse one ``"a, b[, c];a, b[, c];..."`` line into ``(n_points, dim)`` floats, NaN = invalid.

    Entries are separated by ``;`` (a trailing ``;`` is allowed), numbers by ``,``; spaces are ignored.
    Entries beyond ``n_points`` are ignored. A line with fewer than ``n_points`` entries is a missing
    frame (all NaN). A point is invalid when any value is NaN/inf or in ``invalid_values``, or (with
    ``zero_invalid``) when all its values are 0. An empty entry is an invalid point.

    Raises:
        DataFileError: an entry among the first ``n_points`` that is not ``dim`` numbers (names file and line).
    """
    out = np.full((n_points, dim), np.nan)
    text = line.strip()
    if not text:
        return out
    fields = [f.strip() for f in text.split(";")]
    while fields and fields[-1] == "":
        fields.pop()
    points: list[np.ndarray | None] = []
    for k, entry in enumerate(fields[:n_points]):
        if entry == "":
            points.append(None)
            continue
        parts = "".join(entry.split()).split(",")
        if len(parts) != dim:
            raise DataFileError(path, f"line {line_no}: entry {k + 1} {entry[:40]!r} has {len(parts)} values, expected {dim}")
        try:
            points.append(np.array([float(p) for p in parts]))
        except ValueError:
            raise DataFileError(path, f"line {line_no}: entry {k + 1} {entry[:40]!r} is not numeric") from None
    if len(fields) < n_points:
        return out
    bad = np.asarray(list(invalid_values), dtype=np.float64)
    for k, p in enumerate(points):
        if p is None or not np.isfinite(p).all() or np.isin(p, bad).any():
            continue
        if zero_invalid and np.all(np.abs(p) < 1e-6):
            continue
        out[k] = p
    return out


def read_tip_file(path: Path, dim: int, errors: list[str] | None = None, **kwargs: Any) -> np.ndarray:
    """All lines of a fingertip file as ``(N, n_points, dim)``; trailing blank lines are not frames.

    With ``errors`` given, malformed lines are appended there (and become missing frames) instead of raising.
    """
    lines = read_text_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    n_points = kwargs.get("n_points", NUM_TIPS)
    rows = []
    for no, line in enumerate(lines, start=1):
        try:
            rows.append(parse_tip_line(line, dim, path=path, line_no=no, **kwargs))
        except DataFileError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            rows.append(np.full((n_points, dim), np.nan))
    return np.stack(rows) if rows else np.zeros((0, n_points, dim))


def check_sequences(sequences: Sequence[str] | None, known: Sequence[str], dataset: str) -> tuple[str, ...]:
    seqs = tuple(known) if sequences is None else tuple(sequences)
    unknown = [s for s in seqs if s not in known]
    if unknown or not seqs:
        raise ConfigError(f"{dataset}: unknown or empty sequences {unknown or list(seqs)}; known: {', '.join(known)}")
    return seqs


# ---------------------------------------------------------------------------------------- dataset
class DexterObject(HandDataset):
    """Dexter+Object test set (fingertips only; left hands mirrored by default).

    Args:
        sequences: subset of :data:`SEQUENCES` (default all 6).
        negate_xy: negate x and y of the raw 3D tips before the depth->colour transform.
        use_cleaned: False, True or ``"auto"`` for the ``my_<Seq>3D.txt`` cleaned labels.
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "dexter_object"
    SPLITS = {"test": "test", "all": "test"}
    DEFAULT_CROP_SCALE = 2.2
    INDEX_VERSION = 1

    def __init__(self, root: str | Path, split: str = "test", *, sequences: Sequence[str] | None = None,
                 negate_xy: bool = True, use_cleaned: bool | str = False, **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        self.sequences = check_sequences(sequences, SEQUENCES, self.name)
        if use_cleaned not in (False, True, "auto"):
            raise ConfigError(f"use_cleaned must be False, True or 'auto', got {use_cleaned!r}")
        self.negate_xy = bool(negate_xy)
        self.use_cleaned = use_cleaned
        self.data_dir = self.root / "data"
        for seq in self.sequences:
            if not (self.data_dir / seq).is_dir():
                hint = ("pass the parent folder (the one holding data/)" if (self.root / seq).is_dir()
                        else "expected <root>/data/<Seq>/{color,depth,annotations}")
                raise DataFileError(self.data_dir / seq, "sequence folder not found", hint)
        self._init_index()

    def annotation_path(self, seq: str) -> Path:
        """The 3D annotation file used for ``seq`` (original or cleaned, per ``use_cleaned``)."""
        seq_dir = self.data_dir / seq
        original = seq_dir / "annotations" / f"{seq}3D.txt"
        if self.use_cleaned is False:
            return original
        name = f"my_{seq}3D.txt"
        for cand in (seq_dir / "annotations" / name, seq_dir / name, self.data_dir / name):
            if cand.is_file():
                return cand
        if self.use_cleaned is True:
            raise DataFileError(seq_dir / "annotations" / f"my_{seq}3D.txt", "cleaned annotation file not found",
                                "get DO_supp from Minimal-Hand-pytorch or use use_cleaned=False/'auto'")
        return original

    def _index_options(self) -> dict[str, Any]:
        return {"sequences": self.sequences, "cleaned": [str(self.annotation_path(s)) for s in self.sequences]}

    def _watched_paths(self) -> list[Path]:
        out: list[Path] = []
        for seq in self.sequences:
            out += [self.annotation_path(seq), self.data_dir / seq / "color"]
        return out

    def _build_index(self) -> dict[str, np.ndarray]:
        images: list[str] = []
        seqs: list[str] = []
        frames: list[int] = []
        tips: list[np.ndarray] = []
        for seq in self.sequences:
            files = list_images(self.data_dir / seq / "color")
            ann = self.annotation_path(seq)
            errors: list[str] | None = None if self.strict else []
            rows = read_tip_file(ann, 3, errors=errors, invalid_values=(INVALID_MARKER,), zero_invalid=True)
            self.problems += errors or []
            if len(files) != len(rows):
                self._warn(f"{seq}: {len(files)} colour images but {len(rows)} annotation lines in {ann}; "
                           f"using the first {min(len(files), len(rows))}")
            n = min(len(files), len(rows))
            images += [str(f.relative_to(self.root)) for f in files[:n]]
            seqs += [seq] * n
            frames += list(range(n))
            tips.append(rows[:n])
        return {"image": _str_column(images), "sequence": _str_column(seqs), "frame": np.asarray(frames, dtype=np.int64),
                "tips": np.concatenate(tips).astype(np.float64) if tips else np.zeros((0, NUM_TIPS, 3))}

    def to_camera(self) -> np.ndarray:
        """``[R | t]`` (t in metres) taking metre-scaled raw tips into the colour-camera frame."""
        negate = np.diag([-1.0, -1.0, 1.0]) if self.negate_xy else np.eye(3)
        return rigid(EXTR_DEPTH_TO_COLOR[:, :3] @ negate, EXTR_DEPTH_TO_COLOR[:, 3] / 1000.0)

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        return RawRecord(image=self.root / str(ix["image"][i]), K=K_COLOR, joints3d=ix["tips"][i], order="tips",
                         unit_scale=1e-3, to_camera=self.to_camera(), is_left=True, is_hand_object=1.0,
                         sequence=str(ix["sequence"][i]), frame=int(ix["frame"][i]))

    def size_checks(self) -> list[tuple[str, int, int]]:
        if set(self.sequences) != set(SEQUENCES):
            return []
        return [("frames (all 6 sequences)", len(self), PUBLISHED_FRAMES)]

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        out = [LayoutEntry("calibration", required=False, note="present in the release; not parsed"),
               LayoutEntry("data/*/color", count_glob="*", expected_count=PUBLISHED_FRAMES,
                           note="colour frames of the 6 sequences (3,014 published)")]
        for seq in SEQUENCES:
            out += [LayoutEntry(f"data/{seq}/color", count_glob="*"),
                    LayoutEntry(f"data/{seq}/depth", required=False, count_glob="*"),
                    LayoutEntry(f"data/{seq}/annotations/{seq}3D.txt", kind="file"),
                    LayoutEntry(f"data/{seq}/annotations/{seq}2D.txt", kind="file", required=False,
                                note="depth-image pixels; not used"),
                    LayoutEntry(f"data/{seq}/annotations/my_{seq}3D.txt", kind="file", required=False,
                                note="cleaned labels (Minimal-Hand-pytorch DO_supp), use_cleaned=True/'auto'")]
        return out
