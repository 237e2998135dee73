"""Writing predictions: per-image JSON, OBJ and PNGs, and the folder index that records what a run owns."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hoi_adapt.data.image_io import write_png
from hoi_adapt.io.mesh_io import write_obj
from hoi_adapt.prediction.index import FolderIndex, write_json
from hoi_adapt.prediction.inputs import InputImage
from hoi_adapt.prediction.schema import EXTRA_KEYS, INDEX_FILE
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.viz.drawing import mesh_overlay


def output_names(name: str, adapt: bool) -> dict[str, str]:
    files = {"json": f"{name}.json", "obj": f"{name}.obj", "overlay": f"{name}_overlay.png"}
    if adapt:
        files["hand_only"] = f"{name}_hand_only.png"
    return files


def write_prediction(rec: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write one image's JSON, OBJ and PNGs into ``out_dir``; returns the file names."""
    files = output_names(rec["image"]["name"], rec["adapt"])
    rec["files"] = files
    write_obj(out_dir / files["obj"], rec["vertices"], rec["faces"], comments=[
        f"hoi_adapt predict: {rec['side']} hand of {rec['image']['path'] or rec['image']['name']}",
        "OpenCV camera frame of the original image (x right, y down, z forward), metres; faces wound outward"])
    write_png(out_dir / files["overlay"], mesh_overlay(rec["_image"], rec["vertices"], rec["faces"], rec["camera"]["K"], rec["joints2d"]))
    if "hand_only" in files:
        write_png(out_dir / files["hand_only"], rec["hand_only_image"])
    public = {k: v for k, v in rec.items() if k not in EXTRA_KEYS and not k.startswith("_")}
    public["files"] = files
    write_json(out_dir / files["json"], public)
    return files


def _check_outputs(out_dir: Path, items: Sequence[InputImage], adapt: bool) -> FolderIndex:
    """Never overwrite an input image, nor an existing file that an earlier run did not write (or that changed since)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(out_dir, "output path exists and is not a folder")
    index = FolderIndex.read(out_dir) if out_dir.is_dir() else FolderIndex(out_dir)
    inputs = {p.resolve() for p in (it.path for it in items) if p is not None}
    for item in items:
        for fname in (*output_names(item.name, adapt).values(), INDEX_FILE):
            target = out_dir / fname
            if target.resolve() in inputs:
                raise ConfigError(f"output {target} would overwrite an input image; choose another --out folder")
            if target.exists() and not index.owns(fname):
                raise DataFileError(target, "exists and was not written by 'hoi-adapt predict'; refusing to overwrite it",
                                    "choose another --out folder or move the file")
    return index
