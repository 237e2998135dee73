"""On-disk format of an exported (adapted) dataset: the one documented layout the writer and the readers share.

``hoi-adapt export`` runs the trained pipeline over a hand-object dataset and writes, per source sample,
a de-occluded hand-only image with pseudo-labels. Layout (``<key>`` = the sample's position in the source
dataset stream, zero-padded to 8 digits, e.g. ``00000042``)::

    <out>/manifest.json                  format, counts, resolved config, checkpoint sha256, source dataset,
                                         hand model, confidence summary, sha256 of every other file
    <out>/annotations.npz                all pseudo-labels, one row per sample, sorted by key (table below)
    <out>/images/<key>.png               the exported image (RGB, image_size x image_size): with adapt=True the
                                         generator's hand-only translation G(x, R(E(x))); with adapt=False the
                                         input crop itself (pseudo-labels only)
    <out>/masks/<key>.png                predicted hand mask (uint8 0/255): the hard silhouette of the *final*
                                         mesh rendered with K at the image's size (amodal, consistent with the
                                         MANO/joint pseudo-labels by construction)
    <out>/meshes/<key>.obj               optional (write_meshes): final mesh, camera frame, metres, outward faces
    <out>/freihand/training_{K,xyz,mano,scale}.json   FreiHAND-style variant for other tools (below)
    <out>/freihand/training/rgb/<key>.jpg             the exported images as JPEG (quality 95)
    <out>/freihand/training/mask/<key>.jpg            the masks as JPEG (hand where channel 0 > 240)
    <out>/sheet.png                      contact sheet: source crop | exported image | mask | skeleton overlay
    <out>/shards/<key>.npz               work in progress only: the annotations of one finished batch (named
                                         by its first key); merged into annotations.npz and removed at the end

``annotations.npz`` (N rows; float32 unless noted; camera frame = OpenCV, metres; joints in OpenPose order;
2D in pixels of the exported image, pixel centre of column i at u = i):

=========================== ============ ===============================================================
key                         shape        meaning
=========================== ============ ===============================================================
key                         (N,) str     sample key (file stem); = source position, zero-padded
K                           (N,3,3)      intrinsics of the exported image (= the source crop's)
joints3d                    (N,21,3)     final skeleton (regressed from the final mesh)
joints2d                    (N,21,2)     its projection with K
mano_global_orient          (N,3)        axis-angle
mano_hand_pose              (N,45)       axis-angle, absolute (flat_hand_mean=True convention)
mano_betas                  (N,10)
mano_transl                 (N,3)        MANO translation, camera frame (vertices = MANO(pose, betas) + transl)
first_joints3d / 2d         (N,21,3/2)   first-pass skeleton E(x) (adapt only; zeros with adapt=False)
confidence                  (N,)         in [0, 1], see below
mask_iou                    (N,)         IoU of the estimator's mask evidence and the final silhouette
skeleton_agreement          (N,)         first vs final pass agreement in [0, 1]; -1 with adapt=False
source_dataset              (N,) str     source loader name (e.g. "synthetic", "ho3d")
source_sequence             (N,) str     source sequence / split id
source_frame, source_index  (N,) int64   source frame and the loader's own sample index
source_was_flipped          (N,)         1 if the source was a left hand mirrored to a right hand
source_is_hand_object       (N,)         1 if the source image shows an object
source_joints3d             (N,21,3)     the source's own 3D labels where it has them (for checking
source_joints3d_valid       (N,21)       pseudo-labels), zeros / 0 elsewhere
=========================== ============ ===============================================================

**Confidence** (per sample, in [0, 1]): ``mask_iou * skeleton_agreement`` with the adapted pipeline,
``mask_iou`` alone without it. ``mask_iou`` compares two independent outputs of the estimator's final
pass: its 2D hand-mask evidence (bilinearly upsampled, > 0.5) and the silhouette of the mesh it regressed;
a mesh that does not explain the image scores low. ``skeleton_agreement = exp(-e / (0.05 * S))`` with ``e``
the mean 2D distance (pixels) between the first-pass and final-pass joints and ``S`` the image side: a
translation that changed the estimate a lot (``e`` = 5 % of the side gives 0.37) is suspect.

**FreiHAND variant** (datasets.md §9; JSON lists indexed by the sample id = the key as an integer, so the
project's ``freihand`` loader reads it with ``versions=("gs",)``): ``training_K.json`` (3x3 per sample),
``training_xyz.json`` (21x3 metres), ``training_scale.json`` (``||xyz[9] - xyz[10]||``),
``training_mano.json`` (a 1x61 list per sample as FreiHAND stores it: 48 pose values *relative to the
hand model's* ``hands_mean`` -- absolute minus ``[0, 0, 0, hands_mean]``, i.e. FreiHAND's
flat_hand_mean=False convention --, 10 shape, ``uv_root`` 2 = the projection of joint 9 (middle MCP, the
root FreiHAND's ``pose_by_root`` uses) and ``scale`` 1 = ``focal / z_root`` with ``focal = (fx + fy) / 2``,
so FreiHAND's ``backproject_ortho`` recovers the root). With the built-in stand-in hand the pose and shape
describe the stand-in, not MANO (``manifest.hand_model.type``). Images are ``image_size`` px, not 224.

**Writes and resume.** Every file is written to a temporary name and renamed (``hoi_adapt.utils.io``). A
batch is finished when its shard is committed, which happens after its images, masks and meshes; a rerun
with the same settings skips finished samples and redoes the rest, and gives the same bytes as an
uninterrupted run (batches are fixed groups of ``batch_size`` consecutive keys). ``.npz`` files are written
with fixed zip timestamps so equal arrays give equal bytes.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.utils.errors import DataFileError
from hoi_adapt.utils.io import atomic_path, file_digest, npz_bytes, write_bytes_atomic

FORMAT = "hoi_adapt.export"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ANNOTATIONS_FILE = "annotations.npz"
SHARDS_DIR = "shards"
IMAGES_DIR = "images"
MASKS_DIR = "masks"
MESHES_DIR = "meshes"
FREIHAND_DIR = "freihand"
SHEET_FILE = "sheet.png"
KEY_DIGITS = 8
JPEG_QUALITY = 95
AGREEMENT_TAU = 0.05
"""Scale of ``skeleton_agreement``, as a fraction of the image side."""
MASK_THRESHOLD = 0.5

MASK_DEFINITION = "hard silhouette of the final mesh rendered with K at the image size (amodal hand)"
CONFIDENCE_DEFINITION = ("mask_iou * skeleton_agreement (adapt) or mask_iou (no adapt); mask_iou = IoU(estimator mask "
                         "evidence > 0.5, final silhouette); skeleton_agreement = exp(-mean 2D first-vs-final joint "
                         f"distance / ({AGREEMENT_TAU} * image side))")

FLOAT_COLUMNS: dict[str, tuple[int, ...]] = {
    "K": (3, 3), "joints3d": (21, 3), "joints2d": (21, 2), "mano_global_orient": (3,), "mano_hand_pose": (45,),
    "mano_betas": (10,), "mano_transl": (3,), "first_joints3d": (21, 3), "first_joints2d": (21, 2),
    "confidence": (), "mask_iou": (), "skeleton_agreement": (), "source_was_flipped": (),
    "source_is_hand_object": (), "source_joints3d": (21, 3), "source_joints3d_valid": (21,),
}
STR_COLUMNS: tuple[str, ...] = ("key", "source_dataset", "source_sequence")
INT_COLUMNS: tuple[str, ...] = ("source_frame", "source_index")
ANNOTATION_COLUMNS: tuple[str, ...] = STR_COLUMNS[:1] + tuple(FLOAT_COLUMNS) + STR_COLUMNS[1:] + INT_COLUMNS
SHARD_FILE_COLUMNS: tuple[str, ...] = ("file_paths", "file_sha256")
"""Extra shard columns: relative path and sha256 of every file the batch wrote (flat lists)."""


# ----------------------------------------------------------------------------------------- names
def sample_key(position: int) -> str:
    """The file stem of the sample at ``position`` of the source stream."""
    return f"{int(position):0{KEY_DIGITS}d}"


def image_relpath(key: str) -> str:
    return f"{IMAGES_DIR}/{key}.png"


def mask_relpath(key: str) -> str:
    return f"{MASKS_DIR}/{key}.png"


def mesh_relpath(key: str) -> str:
    return f"{MESHES_DIR}/{key}.obj"


def freihand_rgb_relpath(key: str) -> str:
    return f"{FREIHAND_DIR}/training/rgb/{key}.jpg"


def freihand_mask_relpath(key: str) -> str:
    return f"{FREIHAND_DIR}/training/mask/{key}.jpg"


def shard_relpath(first_key: str) -> str:
    return f"{SHARDS_DIR}/{first_key}.npz"


# ---------------------------------------------------------------------------------- small helpers
def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def write_file(out: Path, rel: str, data: bytes) -> str:
    """Write ``data`` atomically to ``out/rel``; returns its sha256."""
    write_bytes_atomic(out / rel, data)
    return sha256_bytes(data)


def str_array(values: Iterable[Any]) -> np.ndarray:
    """A canonical numpy unicode array (width = the longest string), also for empty input."""
    items = [str(v) for v in values]
    return np.array(items, dtype=np.str_) if items else np.zeros(0, dtype="<U1")


def load_npz(path: Path, what: str = "annotations") -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (no pickles); unreadable files raise ``DataFileError``."""
    if not path.is_file():
        raise DataFileError(path, f"{what} file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile/npy errors come in many types
        raise DataFileError(path, f"not a readable .npz ({type(exc).__name__}: {exc})") from None


def npz_keys(path: Path) -> list[str]:
    """Only the ``key`` column of an annotations/shard file (cheap: one zip member)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return [str(k) for k in data["key"]]
    except Exception as exc:  # noqa: BLE001 - reported with the file name
        raise DataFileError(path, f"not a readable export shard ({type(exc).__name__}: {exc})") from None


def check_annotations(arrays: Mapping[str, np.ndarray], path: Path) -> int:
    """Validate the columns of ``annotations.npz`` (or a shard); returns the row count."""
    missing = [k for k in ANNOTATION_COLUMNS if k not in arrays]
    if missing:
        raise DataFileError(path, f"missing arrays {missing}")
    n = len(arrays["key"])
    for key, shape in FLOAT_COLUMNS.items():
        if arrays[key].shape != (n, *shape):
            raise DataFileError(path, f"array {key!r} has shape {arrays[key].shape}, expected {(n, *shape)}")
        if not np.isfinite(arrays[key]).all():
            raise DataFileError(path, f"array {key!r} contains NaN or inf")
    for key in STR_COLUMNS[1:] + INT_COLUMNS:
        if arrays[key].shape != (n,):
            raise DataFileError(path, f"array {key!r} has shape {arrays[key].shape}, expected ({n},)")
    return n


# ---------------------------------------------------------------------------------------- shards
def merge_shards(out: Path, expected_keys: list[str]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Rows of every shard (plus an earlier merged ``annotations.npz``), sorted by key, and the file checksums.

    Keys written twice (a batch redone after an interruption) keep one row; a missing key is an error.
    """
    rows: dict[str, dict[str, Any]] = {}
    files: dict[str, str] = {}
    sources: list[Path] = []
    if (out / ANNOTATIONS_FILE).is_file():
        sources.append(out / ANNOTATIONS_FILE)
    shard_dir = out / SHARDS_DIR
    if shard_dir.is_dir():
        sources += sorted(p for p in shard_dir.glob("*.npz") if not p.name.startswith("."))
    previous = read_manifest(out).get("files", {}) if (out / MANIFEST_FILE).is_file() else {}
    for path in sources:
        arrays = load_npz(path)
        n = check_annotations(arrays, path)
        for i in range(n):
            key = str(arrays["key"][i])
            rows.setdefault(key, {c: arrays[c][i] for c in ANNOTATION_COLUMNS})
        if "file_paths" in arrays:
            files.update(zip((str(p) for p in arrays["file_paths"]), (str(s) for s in arrays["file_sha256"]), strict=True))
        elif path.name == ANNOTATIONS_FILE:  # a finished export re-merged: its files are in the manifest
            files.update({k: v for k, v in previous.items() if k != ANNOTATIONS_FILE})
    missing = sorted(set(expected_keys) - set(rows))
    if missing:
        raise DataFileError(out, f"export incomplete: {len(missing)} of {len(expected_keys)} samples have no "
                                 f"annotations (first: {missing[:3]})", "run the same export command again to resume")
    keys = sorted(expected_keys)
    merged: dict[str, np.ndarray] = {}
    for col in ANNOTATION_COLUMNS:
        values = [rows[k][col] for k in keys]
        if col in STR_COLUMNS:
            merged[col] = str_array(values)
        elif col in INT_COLUMNS:
            merged[col] = np.asarray(values, dtype=np.int64).reshape(len(keys))
        else:
            merged[col] = np.asarray(values, dtype=np.float32).reshape(len(keys), *FLOAT_COLUMNS[col])
    return merged, files


def finished_keys(out: Path) -> set[str]:
    """Keys whose annotations are committed (merged file or shards)."""
    done: set[str] = set()
    if (out / ANNOTATIONS_FILE).is_file():
        done.update(npz_keys(out / ANNOTATIONS_FILE))
    shard_dir = out / SHARDS_DIR
    if shard_dir.is_dir():
        for path in sorted(shard_dir.glob("*.npz")):
            if not path.name.startswith("."):
                done.update(npz_keys(path))
    return done


def remove_shards(out: Path) -> None:
    """Delete the merged shards (our own intermediate files) and their folder."""
    shard_dir = out / SHARDS_DIR
    if not shard_dir.is_dir():
        return
    for path in shard_dir.glob("*.npz"):
        path.unlink(missing_ok=True)
    try:
        shard_dir.rmdir()
    except OSError:
        pass  # something else lives there: leave it


def remove_stale_temp_files(out: Path) -> int:
    """Delete temporary files an interrupted run left (``.<name>.<random>.tmp`` from ``atomic_path``)."""
    count = 0
    for sub in ("", IMAGES_DIR, MASKS_DIR, MESHES_DIR, SHARDS_DIR, FREIHAND_DIR, f"{FREIHAND_DIR}/training/rgb",
                f"{FREIHAND_DIR}/training/mask"):
        folder = out / sub if sub else out
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)
                count += 1
    return count


# -------------------------------------------------------------------------------------- manifest
def read_manifest(out: str | Path) -> dict[str, Any]:
    """``manifest.json`` of an export folder, checked to be one."""
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        raise DataFileError(path, "export manifest not found", "is this a 'hoi-adapt export' folder?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(path, f"not a valid JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataFileError(path, f"not a hoi_adapt export manifest (format {data.get('format') if isinstance(data, dict) else None!r})")
    if int(data.get("format_version", -1)) > FORMAT_VERSION:
        raise DataFileError(path, f"format version {data.get('format_version')} is newer than this hoi_adapt "
                                  f"understands ({FORMAT_VERSION}); update hoi_adapt")
    return data


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> None:
    """Indented JSON (one file checksum per line), atomically."""
    write_bytes_atomic(out / MANIFEST_FILE, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))


IDENTITY_FIELDS: tuple[str, ...] = (
    "format_version", "count", "checkpoint.sha256", "checkpoint.kind", "source.dataset", "source.root",
    "source.split", "source.image", "source.limit", "source.options", "config.adapt", "config.image_size",
    "config.write_meshes", "config.freihand", "config.mano_path", "hand_model.type",
)
"""Manifest fields that define *which* export a folder holds; a rerun must match them to resume."""


def remove_export(out: Path) -> None:
    """Delete an export's own files and folders (the format's names only; anything else in ``out`` stays).

    Used when a different export is to replace this one (``overwrite``): no file of the old export may
    survive to be mistaken for part of the new one.
    """
    import shutil

    for name in (IMAGES_DIR, MASKS_DIR, MESHES_DIR, FREIHAND_DIR, SHARDS_DIR):
        if (out / name).is_dir():
            shutil.rmtree(out / name)
    for name in (ANNOTATIONS_FILE, SHEET_FILE, MANIFEST_FILE):
        (out / name).unlink(missing_ok=True)
    remove_stale_temp_files(out)


def verify_export(out: str | Path) -> dict[str, Any]:
    """Recompute the sha256 of every file the manifest lists.

    Returns:
        ``{"ok", "checked", "missing", "mismatched", "extra"}``: files listed but absent, files whose content
        changed, and files present in the folder but not listed (temporary files included).
    """
    out = Path(out)
    manifest = read_manifest(out)
    listed: Mapping[str, str] = manifest.get("files", {})
    missing, mismatched = [], []
    for rel, digest in listed.items():
        path = out / rel
        if not path.is_file():
            missing.append(rel)
        elif sha256_file(path) != digest:
            mismatched.append(rel)
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    extra = sorted(present - set(listed) - {MANIFEST_FILE})
    ok = bool(manifest.get("complete")) and not (missing or mismatched or extra)
    return {"ok": ok, "complete": bool(manifest.get("complete")), "checked": len(listed), "missing": sorted(missing),
            "mismatched": sorted(mismatched), "extra": extra}


def read_export(out: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Manifest and annotations of a *finished* export (validated)."""
    out = Path(out)
    manifest = read_manifest(out)
    if not manifest.get("complete"):
        raise DataFileError(out / MANIFEST_FILE, "export is not finished",
                            "run the same 'hoi-adapt export' command again to resume it")
    arrays = load_npz(out / ANNOTATIONS_FILE)
    n = check_annotations(arrays, out / ANNOTATIONS_FILE)
    if n != int(manifest.get("count", -1)):
        raise DataFileError(out / ANNOTATIONS_FILE, f"{n} rows but the manifest says {manifest.get('count')}")
    return manifest, arrays


def write_npz_atomic(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    data = npz_bytes(arrays)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return sha256_bytes(data)


__all__ = [
    "FORMAT", "FORMAT_VERSION", "MANIFEST_FILE", "ANNOTATIONS_FILE", "ANNOTATION_COLUMNS", "IDENTITY_FIELDS",
    "sample_key", "image_relpath", "mask_relpath", "mesh_relpath", "read_manifest", "read_export", "verify_export",
    "merge_shards", "finished_keys", "npz_bytes", "remove_export",
]
