"""On-disk format of the synthetic world (the one documented layout its writer and readers share).

::

    <root>/world.json                      resolved generation config, format version, hand-model id
    <root>/contact_sheet.png               optional overview (``hoi-adapt synth --sheet``); not read back
    <root>/<split>/hand/000123.png         hand-only image: the hand alone on the hand-only background
    <root>/<split>/hoi/000123.png          hand-object image (splits with objects only)
    <root>/<split>/mask/000123.png         RGB mask PNG, 0/255 per channel:
                                              R = visible hand in the hand-object image,
                                              G = full (amodal) hand = the hand in the hand-only image,
                                              B = object
    <root>/<split>/chunks/00004.npz        annotations of one finished chunk (its completion marker)
    <root>/<split>/annotations.npz         all annotations of the split, written when every chunk is done

``annotations.npz`` holds, per sample i (arrays of length N):

=================== ============ ==============================================================
key                 shape        meaning
=================== ============ ==============================================================
index               (N,)         sample index (file stem)
K                   (N,3,3)      intrinsics of the 128-px (config ``image_size``) images, pixels
joints3d            (N,21,3)     camera frame (OpenCV: x right, y down, z forward), metres, OpenPose order
joints2d            (N,21,2)     pixels, OpenCV pixel-centre convention; = project(joints3d, K)
mano_global_orient  (N,3)        axis-angle
mano_hand_pose      (N,45)       axis-angle, absolute (flat_hand_mean=True convention)
mano_betas          (N,10)
mano_transl         (N,3)        metres, camera frame
side                (N,)         "right" / "left" (as rendered; loaders mirror left to right)
occlusion           (N,)         fraction of the full hand mask hidden by the object (0 without object)
has_object          (N,)         bool
pose_kind           (N,)         pose-sampler kind (open, relaxed, power, pinch, tripod, spread)
object_family       (N,)         object family ("" without object)
style               (N,)         domain style name ("source" / "target")
=================== ============ ==============================================================
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hoi_adapt.utils.errors import DataFileError

FORMAT_VERSION = 1
WORLD_FILE = "world.json"
ANNOTATIONS_FILE = "annotations.npz"
ANNOTATION_KEYS: tuple[str, ...] = (
    "index", "K", "joints3d", "joints2d", "mano_global_orient", "mano_hand_pose", "mano_betas", "mano_transl",
    "side", "occlusion", "has_object", "pose_kind", "object_family", "style",
)


def image_path(root: Path, split: str, kind: str, index: int) -> Path:
    """Path of ``kind`` in {"hand", "hoi", "mask"} for sample ``index``."""
    return Path(root) / split / kind / f"{index:06d}.png"


def chunk_path(root: Path, split: str, chunk: int) -> Path:
    return Path(root) / split / "chunks" / f"{chunk:05d}.npz"


def load_annotations(root: str | Path, split: str) -> dict[str, np.ndarray]:
    """Read a split's annotations; a missing or malformed file gets an error naming it."""
    path = Path(root) / split / ANNOTATIONS_FILE
    if not path.is_file():
        hint = "generate it with 'hoi-adapt synth' (an interrupted run is resumed by running it again)"
        raise DataFileError(path, "synthetic split annotations not found", hint)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # zipfile/npy errors come in many types
        raise DataFileError(path, f"not a readable annotations .npz ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ANNOTATION_KEYS if k not in arrays]
    if missing:
        raise DataFileError(path, f"missing arrays {missing}")
    n = len(arrays["index"])
    expected = {"K": (n, 3, 3), "joints3d": (n, 21, 3), "joints2d": (n, 21, 2), "mano_global_orient": (n, 3),
                "mano_hand_pose": (n, 45), "mano_betas": (n, 10), "mano_transl": (n, 3)}
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise DataFileError(path, f"array {key!r} has shape {arrays[key].shape}, expected {shape}")
        if not np.isfinite(arrays[key]).all():
            raise DataFileError(path, f"array {key!r} contains NaN or inf")
    return arrays
