"""Writing predictions: per-image JSON and overlay, per-hand OBJ (and hand-only PNG), checked against the index."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.image_io import write_png
from hoi_adapt.io.mesh_io import write_obj
from hoi_adapt.prediction.index import FolderIndex, write_json
from hoi_adapt.prediction.inputs import InputImage
from hoi_adapt.prediction.schema import HAND_EXTRA_KEYS, INDEX_FILE, output_names, written_by
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.viz.drawing import hands_overlay


def public_record(rec: dict[str, Any]) -> dict[str, Any]:
    """The JSON part of a result: without the in-memory arrays of its hands."""
    hands = [{k: v for k, v in hand.items() if k not in HAND_EXTRA_KEYS} for hand in rec["hands"]]
    return {**{k: v for k, v in rec.items() if not k.startswith("_")}, "hands": hands}


def write_prediction(rec: dict[str, Any], image: np.ndarray, out_dir: Path) -> dict[str, Any]:
    """Write one image's OBJs, PNGs and (last, so a JSON means the rest is there) JSON; returns the file names.

    Sets ``rec["files"]`` (``json``, ``overlay``) and each hand's ``files`` (``obj``, ``hand_only``).
    """
    files = output_names(rec["image"]["name"], rec["adapt"], len(rec["hands"]))
    where = rec["image"]["path"] or rec["image"]["name"]
    for k, (hand, hand_files) in enumerate(zip(rec["hands"], files["hands"], strict=True)):
        hand["files"] = hand_files
        write_obj(out_dir / hand_files["obj"], hand["vertices"], hand["faces"], comments=[
            f"hoi_adapt predict: hand {k} ({hand['side']}) of {where}",
            "OpenCV camera frame of the original image (x right, y down, z forward), metres; faces wound outward"])
        if "hand_only" in hand_files:
            write_png(out_dir / hand_files["hand_only"], hand["hand_only_image"])
    drawn = [(h["vertices"], h["faces"], h["joints2d"]) for h in rec["hands"]]
    write_png(out_dir / files["overlay"], hands_overlay(image, drawn, rec["camera"]["K"]))
    rec["files"] = {"json": files["json"], "overlay": files["overlay"]}
    write_json(out_dir / files["json"], public_record(rec))
    return files


def check_outputs(out_dir: Path, items: Sequence[InputImage], adapt: bool) -> FolderIndex:
    """Never overwrite an input image, nor an existing file that an earlier run did not write (or that changed since).

    The number of hands is not known before detection, so every existing file that predicting these images
    could write (any ``<stem>_hand<k>.obj``) is checked.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(out_dir, "output path exists and is not a folder")
    index = FolderIndex.read(out_dir) if out_dir.is_dir() else FolderIndex(out_dir)
    if not out_dir.is_dir():
        return index
    inputs = {p.resolve() for p in (it.path for it in items) if p is not None}
    stems = {it.name for it in items}
    digests = {f: d for e in index.entries.values() for f, d in (e.get("sha256") or {}).items()}
    for target in sorted(out_dir.iterdir()):
        if target.name != INDEX_FILE and not written_by(target.name, stems, adapt):
            continue
        if target.resolve() in inputs:
            raise ConfigError(f"output {target} would overwrite an input image; choose another --out folder")
        if not index.owns(target.name, digests):
            raise DataFileError(target, "exists and was not written by 'hoi-adapt predict'; refusing to overwrite it",
                                "choose another --out folder or move the file")
    return index
