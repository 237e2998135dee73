"""``predictions.json``: the folder index of predict. It records which files a run wrote (with their sha256), so a
rerun only overwrites its own unchanged files; which images are finished (with the input's fingerprint and the
settings they were predicted with), so a rerun skips them; and which files failed, with the reason."""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hoi_adapt.prediction.schema import INDEX_FILE, SCHEMA, SCHEMA_VERSION
from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import file_digest, jsonable, read_json, write_bytes_atomic

if TYPE_CHECKING:  # inputs reads the index to tell outputs from input images
    from hoi_adapt.prediction.inputs import InputImage

_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]*?)\s+\]")


def write_json(path: Path, obj: Any) -> None:
    """Indented JSON with innermost number lists on one line (a joint per line, not a number per line)."""
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(jsonable(obj), indent=1))
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def _same(a: Any, b: Any) -> bool:
    return json.dumps(jsonable(a), sort_keys=True) == json.dumps(jsonable(b), sort_keys=True)


def _file_names(files: Any) -> list[str]:
    """File names of an entry's ``files``: a list (schema 2) or a mapping kind -> name (schema 1)."""
    if isinstance(files, Mapping):
        return [str(v) for v in files.values()]
    return [str(v) for v in files or ()]


class FolderIndex:
    """``predictions.json``: which images were predicted into a folder, which files that wrote, what failed."""

    def __init__(self, folder: Path, entries: dict[str, dict[str, Any]] | None = None,
                 header: dict[str, Any] | None = None, failures: dict[str, dict[str, Any]] | None = None) -> None:
        self.folder = folder
        self.entries = entries or {}
        self.header = header or {}
        self.failures = failures or {}
        self._pending: dict[str, tuple[str | None, list[str]]] = {}  # images whose files are being written now
        self._verified: dict[str, bool] = {}  # owns() answers: a rerun hashes each output once

    @classmethod
    def read(cls, folder: Path) -> FolderIndex:
        path = folder / INDEX_FILE
        if not path.is_file():
            return cls(folder)
        data = read_json(path, "predictions index")
        if not isinstance(data, Mapping) or data.get("schema") != SCHEMA or not isinstance(data.get("images"), list):
            raise DataFileError(path, "exists but was not written by 'hoi-adapt predict'; refusing to overwrite it",
                                "choose another --out folder")
        header = {k: v for k, v in data.items() if k not in ("schema", "schema_version", "images", "failures")}
        entries = {str(e.get("name")): dict(e) for e in data["images"] if isinstance(e, Mapping)}
        failures = {str(f.get("name")): dict(f) for f in data.get("failures") or [] if isinstance(f, Mapping)}
        return cls(folder, entries, header, failures)

    # ------------------------------------------------------------------------------------------- ownership
    def _digests(self) -> dict[str, str]:
        return {f: d for e in self.entries.values() for f, d in (e.get("sha256") or {}).items()}

    def outputs(self) -> list[str]:
        """Every file a run recorded here (including files of earlier runs, e.g. an old ``<stem>.obj``)."""
        names = [INDEX_FILE]
        for e in self.entries.values():
            names += list((e.get("sha256") or {}).keys()) + _file_names(e.get("files"))
        return names

    def owns(self, fname: str, digests: Mapping[str, str] | None = None) -> bool:
        """True if an earlier run wrote ``fname`` and nobody changed it since (its recorded sha256 matches)."""
        if fname == INDEX_FILE:
            return True
        if fname not in self._verified:
            digest = (self._digests() if digests is None else digests).get(fname)
            path = self.folder / fname
            self._verified[fname] = digest is not None and path.is_file() and file_digest(path) == digest
        return self._verified[fname]

    def finished(self, item: InputImage, settings: Mapping[str, Any], digests: Mapping[str, str] | None = None) -> bool:
        """True if an earlier run predicted this input, unchanged since, with these settings, and its files are intact."""
        e = self.entries.get(item.name)
        if not e or e.get("finished") is not True or not _same(e.get("settings"), settings):
            return False
        if e.get("image") != (str(item.path) if item.path is not None else None) or not item.unchanged(e.get("input")):
            return False
        return all(self.owns(f, digests) for f in _file_names(e.get("files")))

    def _forget(self, names: Iterable[str]) -> None:
        for name in names:
            self._verified.pop(name, None)

    def _remove_if_unchanged(self, fname: str, digest: str) -> None:
        path = self.folder / fname
        if path.is_file() and file_digest(path) == digest:
            path.unlink()
        self._forget([fname])

    def clear(self) -> None:
        """Forget every earlier prediction and delete the files it wrote that nobody changed since.

        Used when predictions of another checkpoint or setting replace this folder's (``overwrite``): an old
        ``<stem>.json`` must not survive next to new ones as if the new run had written it.
        """
        for entry in self.entries.values():
            for fname, digest in (entry.get("sha256") or {}).items():
                self._remove_if_unchanged(fname, digest)
        self.entries, self.failures = {}, {}

    # ------------------------------------------------------------------------------------------- recording
    def begin(self, name: str, image: str | None, files: Iterable[str]) -> None:
        """Files of ``name`` are about to be written: if the run stops before :meth:`finish`, :meth:`write` still
        records those that were written (so a rerun may overwrite them) and the image is redone."""
        self._pending[name] = (image, list(files))

    def finish(self, name: str, image: str | None, input_fingerprint: Mapping[str, Any], settings: Mapping[str, Any],
               sides: list[str], files: list[str]) -> None:
        """Record a finished image; files of its earlier prediction that this one did not write again (fewer hands,
        an older schema) are deleted when unchanged."""
        digests = {f: file_digest(self.folder / f) for f in files}
        for fname, digest in ((self.entries.get(name) or {}).get("sha256") or {}).items():
            if fname not in digests:
                self._remove_if_unchanged(fname, digest)
        self.entries[name] = {"name": name, "image": image, "finished": True, "input": dict(input_fingerprint),
                              "settings": jsonable(settings), "sides": list(sides), "files": list(files),
                              "sha256": digests}
        self.failures.pop(name, None)
        self._pending.pop(name, None)
        self._forget(files)

    def fail(self, name: str, path: str | None, reason: str) -> None:
        self.failures[name] = {"name": name, "path": path, "reason": reason}

    def write(self) -> None:
        for name, (image, files) in self._pending.items():  # interrupted while writing: own what exists, redo it
            digests = dict((self.entries.get(name) or {}).get("sha256") or {})
            digests.update({f: file_digest(self.folder / f) for f in files if (self.folder / f).is_file()})
            self.entries[name] = {"name": name, "image": image, "finished": False,
                                  "files": sorted(digests), "sha256": digests}
            self._forget(files)
        self._pending = {}
        write_json(self.folder / INDEX_FILE, {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **self.header,
                                               "images": list(self.entries.values()),
                                               "failures": list(self.failures.values())})
