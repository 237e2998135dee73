"""Writing predictions: per-image JSON, OBJ and PNGs, and the folder index that records what a run owns."""
from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from hoi_adapt.data import crop as C
from hoi_adapt.utils.errors import ConfigError, DataFileError, HoiAdaptError
from hoi_adapt.utils.io import file_digest
from hoi_adapt.utils.results import check_same_result

from hoi_adapt.prediction.inputs import InputImage, _load_json
from hoi_adapt.prediction.schema import EXTRA_KEYS, INDEX_FILE, SCHEMA, SCHEMA_VERSION
from hoi_adapt.data.image_io import write_png
from hoi_adapt.io.mesh_io import write_obj
from hoi_adapt.utils.io import jsonable, write_bytes_atomic
from hoi_adapt.viz.drawing import mesh_overlay


_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]*?)\s+\]")


def _write_json(path: Path, obj: Any) -> None:
    """Indented JSON with innermost number lists on one line (a joint per line, not a number per line)."""
    from hoi_adapt.utils.io import write_bytes_atomic

    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(jsonable(obj), indent=1))
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def output_names(name: str, adapt: bool) -> dict[str, str]:
    files = {"json": f"{name}.json", "obj": f"{name}.obj", "overlay": f"{name}_overlay.png"}
    if adapt:
        files["hand_only"] = f"{name}_hand_only.png"
    return files


def write_prediction(rec: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write one image's JSON, OBJ and PNGs into ``out_dir``; returns the file names."""
    from hoi_adapt.io.mesh_io import write_obj

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
    _write_json(out_dir / files["json"], public)
    return files


class _Index:
    """``predictions.json``: which images were predicted into a folder and which files that wrote."""

    def __init__(self, folder: Path, entries: dict[str, dict[str, Any]] | None = None, header: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.entries = entries or {}
        self.header = header or {}

    @classmethod
    def read(cls, folder: Path) -> "_Index":
        path = folder / INDEX_FILE
        if not path.is_file():
            return cls(folder)
        data = _load_json(path, "predictions index")
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA or not isinstance(data.get("images"), list):
            raise DataFileError(path, "exists but was not written by 'hoi-adapt predict'; refusing to overwrite it",
                                "choose another --out folder")
        header = {k: v for k, v in data.items() if k not in ("schema", "schema_version", "images")}
        return cls(folder, {str(e.get("name")): dict(e) for e in data["images"] if isinstance(e, Mapping)}, header)

    def outputs(self) -> list[str]:
        """Every file a run recorded here (including files of earlier runs, e.g. an old ``_hand_only.png``)."""
        names = [INDEX_FILE]
        for e in self.entries.values():
            names += list((e.get("sha256") or {}).keys()) + list((e.get("files") or {}).values())
        return names

    def owns(self, fname: str) -> bool:
        """True if an earlier run wrote ``fname`` and nobody changed it since (its recorded sha256 matches)."""
        if fname == INDEX_FILE:
            return True
        for entry in self.entries.values():
            digest = (entry.get("sha256") or {}).get(fname)
            if digest is not None:
                return file_digest(self.folder / fname) == digest
        return False

    def clear(self) -> None:
        """Forget every earlier prediction and delete the files it wrote that nobody changed since.

        Used when predictions of another checkpoint or setting replace this folder's (``overwrite``): an old
        ``<stem>.json`` must not survive next to new ones as if the new run had written it.
        """
        for entry in self.entries.values():
            for fname, digest in (entry.get("sha256") or {}).items():
                path = self.folder / fname
                if path.is_file() and file_digest(path) == digest:
                    path.unlink()
        self.entries = {}

    def add(self, name: str, image: str | None, side: str, files: Mapping[str, str]) -> None:
        digests = dict((self.entries.get(name) or {}).get("sha256") or {})  # keep earlier files recognisable
        digests.update({f: file_digest(self.folder / f) for f in files.values()})
        self.entries[name] = {"name": name, "image": image, "side": side, "files": dict(files), "sha256": digests}

    def write(self) -> None:
        _write_json(self.folder / INDEX_FILE, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **self.header,
                                               "images": list(self.entries.values())})


def _check_outputs(out_dir: Path, items: Sequence[InputImage], adapt: bool) -> _Index:
    """Never overwrite an input image, nor an existing file that an earlier run did not write (or that changed since)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataFileError(out_dir, "output path exists and is not a folder")
    index = _Index.read(out_dir) if out_dir.is_dir() else _Index(out_dir)
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
