"""``predictions.json``: the folder index of predict, recording which files a run wrote (with their sha256), so a
rerun only overwrites its own unchanged files and resumes where it stopped."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hoi_adapt.prediction.schema import INDEX_FILE, SCHEMA, SCHEMA_VERSION
from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import file_digest, jsonable, read_json, write_bytes_atomic

_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]*?)\s+\]")


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON with innermost number lists on one line (a joint per line, not a number per line)."""
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(jsonable(obj), indent=1))
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))



class FolderIndex:
    """``predictions.json``: which images were predicted into a folder and which files that wrote."""

    def __init__(self, folder: Path, entries: dict[str, dict[str, Any]] | None = None, header: dict[str, Any] | None = None) -> None:
        self.folder = folder
        self.entries = entries or {}
        self.header = header or {}

    @classmethod
    def read(cls, folder: Path) -> FolderIndex:
        path = folder / INDEX_FILE
        if not path.is_file():
            return cls(folder)
        data = read_json(path, "predictions index")
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
        write_json(self.folder / INDEX_FILE, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **self.header,
                                               "images": list(self.entries.values())})


