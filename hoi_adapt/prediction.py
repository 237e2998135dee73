"""``hoi-adapt predict``: 3D hand joints, MANO mesh and overlays for your own images.

Images of any size and aspect ratio go through the same crop geometry as training (``data/crop.py``,
exact OpenCV pixel-centre affines):

1. **Camera.** ``K`` from ``--K fx,fy,cx,cy`` / ``--K-file`` (one K or per-file entries). Without one the
   camera is unknown and the convention of COLMAP's image reader is used (``default_focal_length_factor``
   = 1.2: ``fx = fy = 1.2 * max(H, W)``, about a 45 degree field of view on the long side, a typical phone or
   webcam lens; principal point at the image centre ``((W-1)/2, (H-1)/2)``). A warning says that metric
   scale and depth are then approximate; the 2D joints and the root-relative 3D pose are (largely) not
   affected, because the network sees the same pixels whatever K is.
2. **Crop.** With a hand box ``[x0, y0, x1, y1]`` (``--box``, ``--boxes``) the crop is the square of side
   ``CROP_SCALE`` (1.3) times the box's longer side around its centre -- the middle of the synthetic
   world's crop margins (1.15-1.4 times the hand's extent). Without one the crop is found in two passes:
   the estimator runs on the whole image letterboxed to a square, the largest connected region of its
   hand-mask evidence (``mask_prob > 0.5``) gives a box (the whole image when empty), and the estimator
   runs again on that crop. The crop is resized to the network input size (recorded in the checkpoint, else
   ``--input-size``, default 128) and its intrinsics are ``K_crop = A @ K``.
3. **Back to the image.** ``K_crop`` describes the *same* camera frame as ``K`` (the crop only re-maps
   pixels), so 3D joints and mesh need no change: they are camera-frame metres of the original camera. The
   2D joints are ``project(joints3d, K)`` in original pixels, which equals the crop's 2D joints mapped by
   ``A^-1``.
4. **Left hands** (``--left``): the image is mirrored (``u -> W-1-u``, ``K -> flip_intrinsics``), a right
   hand is predicted and the results are mirrored back: 3D ``x -> -x``, 2D ``u -> W-1-u``, faces re-wound
   outward, MANO pose ``(x, y, z) -> (x, -y, -z)`` per joint and translation ``x -> -x`` -- i.e. MANO
   parameters of the *left* hand model (exact for mirror-symmetric left/right models, see ``crop.flip_*``).

Files written per image into ``--out`` (all atomically): ``<stem>.json`` (schema below), ``<stem>.obj``
(mesh, camera frame, metres, outward faces), ``<stem>_overlay.png`` (shaded mesh + skeleton on the original
image), with ``--adapt`` also ``<stem>_hand_only.png`` (the generator's hand-only translation of the crop, mirrored
back for left hands);
and ``predictions.json``, an index of the folder. No data is lost: an input image is never overwritten, and
an existing file only when an earlier ``hoi-adapt predict`` run wrote it and it is unchanged since (the
index records each file's sha256), so ``--out`` may be the input folder; files listed in the index are not
taken as input images on a rerun. A folder holding predictions of another checkpoint (or ``--adapt``,
``--input-size``) is refused, naming the folder and what differs, unless ``--overwrite`` (which deletes the
earlier run's unchanged files first); more images with the same checkpoint and settings are added to it.
Images sharing a stem (``a.jpg``, ``a.png``) get distinct output stems.
An unreadable image stops the run with an error naming it; results of finished batches stay indexed.

``--K-file``: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, ``[fx, fy, cx, cy]`` or ``{"fx":, "fy":, "cx":, "cy":}``
for every image, or an object mapping file names (or paths, stems; ``"*"``: any other image) to one of
these. ``--boxes``: an object mapping file names to ``[x0, y0, x1, y1]`` (pixels, ``null``: automatic).
A box must overlap the image (parts outside are padded black). Values starting with ``-`` need the
``--K=...`` / ``--box=...`` spelling.

``<stem>.json`` (``schema_version`` 1)::

    schema, schema_version, image {path, name, width, height}, side ("right"|"left"),
    camera {K (3x3), assumed (bool), source},
    crop {source ("box"|"auto"|"full_image"), center [cx, cy], side, xyxy, input_size, scale, mirrored,
          affine (3x3: original pixel -> network-input pixel, mirroring included)},
    joint_order ("openpose"), joint_names (21), joints3d (21x3, metres, OpenCV camera frame),
    joints2d (21x2, original pixels, pixel centre of column i at u=i),
    mano {side, global_orient (3), hand_pose (45, absolute axis-angle, flat_hand_mean=True), betas (10),
          transl (3, metres), flat_hand_mean},
    hand_model {type ("stand-in"|"MANO"), file, tip_preset}, mesh {num_vertices, num_faces, units, frame},
    checkpoint {path, sha256, kind}, adapt (bool), first_pass {joints3d, joints2d} (with adapt), files.
"""
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
from hoi_adapt.lit.load import checkpoint_input_size
from hoi_adapt.utils.errors import ConfigError, DataFileError, HoiAdaptError
from hoi_adapt.utils.io import file_digest
from hoi_adapt.utils.results import check_same_result

SCHEMA = "hoi_adapt.predict"
SCHEMA_VERSION = 1
INDEX_FILE = "predictions.json"
IDENTITY_FIELDS = ("checkpoint.sha256", "adapt", "input_size")
"""What makes two predict runs into one folder the same result (recorded in ``predictions.json``)."""
CROP_SCALE = 1.3
DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP ImageReaderOptions.default_focal_length_factor
DEFAULT_INPUT_SIZE = 128
MASK_THRESHOLD = 0.5
MIN_INPUT_SIZE = 32


class PredictWarning(UserWarning):
    """Something the user should know about a prediction (assumed camera, unused box entries, ...)."""


def _warn(message: str) -> None:
    warnings.warn(message, PredictWarning, stacklevel=3)


# ================================================================================== camera and boxes
def default_intrinsics(height: int, width: int) -> np.ndarray:
    """K for an unknown camera: ``fx = fy = 1.2 * max(H, W)`` (COLMAP's default), centred principal point."""
    f = DEFAULT_FOCAL_FACTOR * float(max(height, width))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def _numbers(text: str, count: int, what: str) -> np.ndarray:
    parts = [p for p in str(text).replace(";", ",").split(",") if p.strip()]
    try:
        values = np.array([float(p) for p in parts], dtype=np.float64)
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated numbers") from None
    if values.size != count:
        raise ConfigError(f"{what} {text!r}: expected {count} comma-separated numbers, got {values.size}")
    if not np.isfinite(values).all():
        raise ConfigError(f"{what} {text!r}: values must be finite")
    return values


def parse_K(text: str) -> np.ndarray:
    """``"fx,fy,cx,cy"`` -> 3x3 intrinsics (pixels)."""
    fx, fy, cx, cy = _numbers(text, 4, "--K")
    return _check_K(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), f"--K {text!r}")


def parse_box(text: str) -> np.ndarray:
    """``"x0,y0,x1,y1"`` -> box array (pixels, pixel-centre convention)."""
    return _check_box_shape(_numbers(text, 4, "--box"), f"--box {text!r}")


def _check_K(K: np.ndarray, where: str) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ConfigError(f"{where}: intrinsics must be a finite 3x3 matrix, got shape {K.shape}")
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise ConfigError(f"{where}: focal lengths must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0.0:
        raise ConfigError(f"{where}: not an intrinsic matrix (last row must be [0, 0, 1], K[1][0] = 0)")
    if abs(K[0, 1]) > 1e-9:
        raise ConfigError(f"{where}: non-zero skew K[0][1] = {K[0, 1]} is not supported")
    return K


def _K_from_value(value: Any, where: str) -> np.ndarray:
    """A K given as a 3x3 nested list, ``[fx, fy, cx, cy]``, ``"fx,fy,cx,cy"`` or ``{fx, fy, cx, cy}``."""
    if isinstance(value, str):
        fx, fy, cx, cy = _numbers(value, 4, where)
    elif isinstance(value, Mapping):
        try:
            fx, fy, cx, cy = (float(value[k]) for k in ("fx", "fy", "cx", "cy"))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"{where}: a K object needs numbers fx, fy, cx, cy, got keys {sorted(value)}") from None
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: not a 3x3 matrix or [fx, fy, cx, cy]: {value!r}") from None
        if arr.shape == (3, 3):
            return _check_K(arr, where)
        if arr.shape != (4,):
            raise ConfigError(f"{where}: expected a 3x3 matrix or [fx, fy, cx, cy], got shape {arr.shape}")
        fx, fy, cx, cy = arr
    return _check_K(np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), where)


def _check_box_shape(box: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a box must be 4 numbers [x0, y0, x1, y1], got {box!r}") from None
    if arr.size != 4 or not np.isfinite(arr).all():
        raise ConfigError(f"{where}: a box must be 4 finite numbers [x0, y0, x1, y1], got {box!r}")
    if not (arr[2] > arr[0] and arr[3] > arr[1]):
        raise ConfigError(f"{where}: box {arr.tolist()} needs x1 > x0 and y1 > y0 (format [x0, y0, x1, y1], not x, y, w, h?)")
    return arr


def _check_box_in_image(box: np.ndarray, height: int, width: int, where: str) -> None:
    """A box must overlap the image (pixel-centre extents ``[-0.5, W-0.5] x [-0.5, H-0.5]``)."""
    x0, y0, x1, y1 = box
    if x1 <= -0.5 or y1 <= -0.5 or x0 >= width - 0.5 or y0 >= height - 0.5:
        raise ConfigError(f"{where}: box {box.tolist()} lies outside the {width}x{height} image")


def _load_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, f"{what} file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(path, f"not a valid JSON {what} file ({exc})") from None


class _PerImage:
    """A value for all images, or per-image entries keyed by file name / path / stem (``"*"``: the rest)."""

    def __init__(self, single: Any = None, mapping: Mapping[str, Any] | None = None, source: str = "") -> None:
        self.single = single
        self.mapping = dict(mapping or {})
        self.source = source
        self.used: set[str] = set()

    def get(self, item: "InputImage") -> tuple[Any, str | None]:
        if self.single is not None:
            return self.single, self.source
        for key in item.keys():
            if key in self.mapping:
                self.used.add(key)
                return self.mapping[key], f"{self.source}[{key!r}]"
        if "*" in self.mapping:
            self.used.add("*")
            return self.mapping["*"], f"{self.source}['*']"
        return None, None

    def unused(self) -> list[str]:
        return sorted(set(self.mapping) - self.used - {"*"})


def _K_spec(K: Any) -> _PerImage:
    """Normalise the ``K`` argument: None, a K value, a JSON file path, or a mapping name -> K value."""
    if K is None:
        return _PerImage()
    if isinstance(K, Path) or (isinstance(K, str) and K.lower().endswith(".json")):
        data = _load_json(K, "intrinsics")
        where = str(K)
        if isinstance(data, Mapping) and not {"fx", "fy", "cx", "cy"} <= set(data):
            mapping = {str(k): _K_from_value(v, f"{where}: entry {k!r}") for k, v in data.items()}
            return _PerImage(mapping=mapping, source=where)
        return _PerImage(single=_K_from_value(data, where), source=where)
    if isinstance(K, Mapping) and not {"fx", "fy", "cx", "cy"} <= set(K):
        return _PerImage(mapping={str(k): _K_from_value(v, f"K[{k!r}]") for k, v in K.items()}, source="K")
    return _PerImage(single=_K_from_value(K, "K"), source="K")


def _box_spec(boxes: Any) -> _PerImage:
    """Normalise ``boxes``: None, one box, a JSON file path, or a mapping name -> box (or null: automatic)."""
    if boxes is None:
        return _PerImage()
    if isinstance(boxes, Path) or (isinstance(boxes, str) and boxes.lower().endswith(".json")):
        data = _load_json(boxes, "boxes")
        if not isinstance(data, Mapping):
            raise DataFileError(boxes, "a boxes file maps image file names to [x0, y0, x1, y1]")
        mapping = {str(k): (None if v is None else _check_box_shape(v, f"{boxes}: entry {k!r}")) for k, v in data.items()}
        return _PerImage(mapping=mapping, source=str(boxes))
    if isinstance(boxes, Mapping):
        mapping = {str(k): (None if v is None else _check_box_shape(v, f"boxes[{k!r}]")) for k, v in boxes.items()}
        return _PerImage(mapping=mapping, source="boxes")
    if isinstance(boxes, str):
        return _PerImage(single=parse_box(boxes), source="box")
    return _PerImage(single=_check_box_shape(boxes, "box"), source="box")


# ========================================================================================== inputs
@dataclass
class InputImage:
    """One input: a file or an in-memory array; ``name`` is the stem of its output files."""

    name: str
    path: Path | None = None
    array: np.ndarray | None = None
    given: str | None = None  # the path as the user wrote it

    def keys(self) -> list[str]:
        """Names a K / box mapping may use for this image (most specific first)."""
        if self.path is None:
            return [self.name]
        keys = [self.given] if self.given else []
        return keys + [str(self.path), self.path.name, self.path.stem]

    def load(self) -> np.ndarray:
        if self.array is not None:
            return self.array
        from hoi_adapt.data.image_io import read_image

        assert self.path is not None
        return read_image(self.path)


def _image_files(folder: Path) -> list[Path]:
    from hoi_adapt.data.image_io import IMAGE_EXTENSIONS

    ours = set(_Index.read(folder).outputs()) if (folder / INDEX_FILE).is_file() else set()
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and p.name not in ours]
    if not files:
        raise DataFileError(folder, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return files


def _check_array(arr: Any, i: int) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ConfigError(f"input array {i}: expected an (H, W, 3) uint8 RGB image, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def collect_inputs(inputs: Any) -> list[InputImage]:
    """Image files / arrays from a path, a folder, an array or a list of these; unique output stems."""
    if isinstance(inputs, (str, Path, np.ndarray)):
        inputs = [inputs]
    items: list[InputImage] = []
    for i, entry in enumerate(inputs):
        if isinstance(entry, np.ndarray):
            items.append(InputImage(name=f"image_{i:04d}", array=_check_array(entry, i)))
            continue
        path = Path(entry).expanduser()
        if path.is_dir():
            items += [InputImage(name=p.stem, path=p, given=str(p)) for p in _image_files(path)]
        elif path.is_file():
            items.append(InputImage(name=path.stem, path=path, given=str(entry)))
        else:
            raise DataFileError(path, "input image or folder not found")
    if not items:
        raise ConfigError("no input images given")
    seen: dict[str, int] = {}
    for item in items:  # a.jpg and a.png (or same names in two folders) must not share output files
        base = item.name
        if base in seen and item.path is not None:
            base = f"{item.path.stem}_{item.path.suffix.lstrip('.').lower()}"
        name, k = base, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen[name] = 1
        item.name = name
    return items


# ======================================================================================== geometry
def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection ``(..., 3) -> (..., 2)`` in float64."""
    uvw = np.asarray(points, dtype=np.float64) @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]


def mirror_affine(width: int) -> np.ndarray:
    """3x3 affine of a left-right mirror: ``u -> W - 1 - u``."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def box_from_mask(mask_prob: np.ndarray, A: np.ndarray, input_size: int, height: int, width: int,
                  threshold: float = MASK_THRESHOLD, scale: float = CROP_SCALE) -> C.Box | None:
    """Square crop box (original pixels) around the largest hand-mask region of a first pass, or None.

    ``mask_prob`` (h, w) is the estimator's mask evidence of a crop made with the 3x3 affine ``A`` (original
    -> crop pixels, scale and translation only) at ``input_size``. Mask pixel ``i`` covers crop pixels
    ``[i*s - 0.5, (i+1)*s - 0.5]`` with stride ``s = input_size / w`` (training targets are area-pooled).
    Pixels whose centre falls outside the image (letterbox padding) are ignored.
    """
    import cv2

    prob = np.asarray(mask_prob, dtype=np.float64)
    h, w = prob.shape
    sx, sy = input_size / w, input_size / h
    Ainv = np.linalg.inv(A)
    cu = Ainv[0, 0] * ((np.arange(w) + 0.5) * sx - 0.5) + Ainv[0, 2]
    cv_ = Ainv[1, 1] * ((np.arange(h) + 0.5) * sy - 0.5) + Ainv[1, 2]
    inside = ((cv_ >= -0.5) & (cv_ <= height - 0.5))[:, None] & ((cu >= -0.5) & (cu <= width - 0.5))[None, :]
    mask = (prob > threshold) & inside
    if not mask.any():
        return None
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x0, y0 = stats[best, cv2.CC_STAT_LEFT], stats[best, cv2.CC_STAT_TOP]
    x1, y1 = x0 + stats[best, cv2.CC_STAT_WIDTH], y0 + stats[best, cv2.CC_STAT_HEIGHT]
    corners = np.array([[x0 * sx - 0.5, y0 * sy - 0.5], [x1 * sx - 0.5, y1 * sy - 0.5]])
    (u0, v0), (u1, v1) = C.transform_points(Ainv, corners)
    xyxy = np.array([max(u0, -0.5), max(v0, -0.5), min(u1, width - 0.5), min(v1, height - 0.5)])
    return C.crop_box_from_xyxy(xyxy, scale, min_size=max(height, width) / 8.0)


# ============================================================================ model and checkpoint
def _resolve_device(device: Any) -> Any:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


@dataclass
class _Job:
    """One image on its way through the two passes (``net_*``: the mirrored image for left hands)."""

    item: InputImage
    image: np.ndarray
    K: np.ndarray
    K_assumed: bool
    K_source: str
    box_xyxy: np.ndarray | None
    left: bool
    net_image: np.ndarray = field(init=False)
    net_K: np.ndarray = field(init=False)
    box: C.Box | None = None  # (cx, cy, side) in net-image pixels
    box_source: str = ""

    def __post_init__(self) -> None:
        width = self.image.shape[1]
        self.net_image = C.flip_image(self.image) if self.left else self.image
        self.net_K = C.flip_intrinsics(self.K, width) if self.left else self.K
        if self.box_xyxy is not None:
            xyxy = C.flip_xyxy(self.box_xyxy, width) if self.left else self.box_xyxy
            self.box = C.crop_box_from_xyxy(xyxy, CROP_SCALE, min_size=8.0)
            self.box_source = "box"


def _run_batch(net: Any, crops: list[np.ndarray], Ks: list[np.ndarray], device: Any) -> dict[str, np.ndarray]:
    import torch

    image = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(255.0).to(device)
    K = torch.from_numpy(np.stack(Ks)).float().to(device)
    with torch.inference_mode():
        out = net(image, K)
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


def _first_pass_boxes(predictor: Any, jobs: list[_Job], size: int, device: Any) -> None:
    """Automatic crops: estimator on the letterboxed image -> largest mask region -> box."""
    import torch

    todo = [j for j in jobs if j.box is None]
    if not todo:
        return
    crops, Ks, As = [], [], []
    for job in todo:
        h, w = job.net_image.shape[:2]
        crop, A = C.crop_and_resize(job.net_image, C.full_image_box(h, w), size)
        crops.append(crop)
        Ks.append(C.crop_intrinsics(job.net_K, A))
        As.append(A)
    estimator = predictor.estimator
    out = _run_batch(lambda im, K: {"mask_prob": torch.sigmoid(estimator(im, K).mask_logits)}, crops, Ks, device)
    for job, A, prob in zip(todo, As, out["mask_prob"]):
        h, w = job.net_image.shape[:2]
        box = box_from_mask(prob[0], A, size, h, w)
        job.box, job.box_source = (box, "auto") if box is not None else (C.full_image_box(h, w), "full_image")


# ======================================================================================= results
def _hand_model_info(hand_model: Any) -> dict[str, Any]:
    return {"type": "stand-in" if getattr(hand_model, "is_standin", False) else "MANO",
            "file": str(getattr(hand_model, "source_path", "")), "tip_preset": str(getattr(hand_model, "tip_preset", ""))}


def _result(job: _Job, out: dict[str, np.ndarray], i: int, A_net: np.ndarray, crop: np.ndarray, K_crop: np.ndarray,
            ctx: dict[str, Any]) -> dict[str, Any]:
    """Map one image's network outputs back to its original image and camera."""
    from hoi_adapt.hand import joint_maps

    height, width = job.image.shape[:2]
    perm = ctx["to_openpose"]
    faces = ctx["faces"]
    joints3d = out["joints3d"][i].astype(np.float64)[perm]
    vertices = out["vertices"][i].astype(np.float64)
    pose = np.concatenate([out["global_orient"][i], out["hand_pose"][i]]).astype(np.float64)
    transl = out["transl"][i].astype(np.float64)
    cx, cy, side = (float(v) for v in job.box)
    A = A_net
    if job.left:
        joints3d, vertices = C.flip_points_3d(joints3d), C.flip_points_3d(vertices)
        faces = faces[:, [0, 2, 1]]  # mirroring turns the winding inside out
        pose, transl = C.flip_mano_pose(pose), C.flip_mano_transl(transl)
        cx = (width - 1) - cx
        A = A_net @ mirror_affine(width)
    rec: dict[str, Any] = {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "image": {"path": str(job.item.path) if job.item.path is not None else None, "name": job.item.name,
                  "width": width, "height": height},
        "side": "left" if job.left else "right",
        "camera": {"K": job.K, "assumed": job.K_assumed, "source": job.K_source},
        "crop": {"source": job.box_source, "center": np.array([cx, cy]), "side": side,
                 "xyxy": np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]),
                 "input_size": ctx["size"], "scale": CROP_SCALE if job.box_source != "full_image" else None,
                 "mirrored": job.left, "affine": A},
        "joint_order": "openpose", "joint_names": list(joint_maps.OPENPOSE_NAMES),
        "joints3d": joints3d, "joints2d": project(joints3d, job.K),
        "mano": {"side": "left" if job.left else "right", "global_orient": pose[:3], "hand_pose": pose[3:],
                 "betas": out["betas"][i].astype(np.float64), "transl": transl, "flat_hand_mean": True},
        "hand_model": ctx["hand_model"],
        "mesh": {"num_vertices": int(len(vertices)), "num_faces": int(len(faces)), "units": "metres",
                 "frame": "OpenCV camera (x right, y down, z forward) of the original image"},
        "checkpoint": ctx["checkpoint"], "adapt": ctx["adapt"],
    }
    if ctx["adapt"]:
        first3d = out["first_joints3d"][i].astype(np.float64)[perm]
        first3d = C.flip_points_3d(first3d) if job.left else first3d
        rec["first_pass"] = {"joints3d": first3d, "joints2d": project(first3d, job.K)}
    # In-memory extras (not in the JSON): mesh arrays and what the network saw.
    rec["vertices"], rec["faces"] = vertices, np.asarray(faces, dtype=np.int64)
    rec["crop_image"], rec["crop_K"] = crop, K_crop
    rec["crop_joints2d"] = out["joints2d"][i].astype(np.float64)[perm]
    if ctx["adapt"]:
        from hoi_adapt.callbacks.visuals import to_uint8

        hand_only = to_uint8(out["translated"][i].transpose(1, 2, 0))
        rec["hand_only_image"] = C.flip_image(hand_only) if job.left else hand_only
    return rec


EXTRA_KEYS = ("vertices", "faces", "crop_image", "crop_K", "crop_joints2d", "hand_only_image", "files")


_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]*?)\s+\]")


def _write_json(path: Path, obj: Any) -> None:
    """Indented JSON with innermost number lists on one line (a joint per line, not a number per line)."""
    from hoi_adapt.utils.io import write_bytes_atomic

    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", json.dumps(_jsonable(obj), indent=1))
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# ========================================================================================= writing
def output_names(name: str, adapt: bool) -> dict[str, str]:
    files = {"json": f"{name}.json", "obj": f"{name}.obj", "overlay": f"{name}_overlay.png"}
    if adapt:
        files["hand_only"] = f"{name}_hand_only.png"
    return files


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from hoi_adapt.utils.io import write_bytes_atomic

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:  # pragma: no cover - PNG encoding of a uint8 image does not fail
        raise DataFileError(path, "PNG encoding failed")
    write_bytes_atomic(path, buf.tobytes())


def render_overlay(rec: Mapping[str, Any]) -> np.ndarray:
    """Original image with the shaded mesh and the skeleton drawn over it."""
    from hoi_adapt.callbacks.visuals import draw_skeleton
    from hoi_adapt.render.overlay import overlay

    image = rec["_image"]
    out = overlay(image, rec["vertices"], rec["faces"], rec["camera"]["K"])
    thickness = max(1, int(round(max(image.shape[:2]) / 300)))
    return draw_skeleton(out, rec["joints2d"], thickness=thickness)


def write_prediction(rec: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write one image's JSON, OBJ and PNGs into ``out_dir``; returns the file names."""
    from hoi_adapt.io.mesh_io import write_obj

    files = output_names(rec["image"]["name"], rec["adapt"])
    rec["files"] = files
    write_obj(out_dir / files["obj"], rec["vertices"], rec["faces"], comments=[
        f"hoi_adapt predict: {rec['side']} hand of {rec['image']['path'] or rec['image']['name']}",
        "OpenCV camera frame of the original image (x right, y down, z forward), metres; faces wound outward"])
    _write_png(out_dir / files["overlay"], render_overlay(rec))
    if "hand_only" in files:
        _write_png(out_dir / files["hand_only"], rec["hand_only_image"])
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


# ============================================================================================ API
def iter_predictions(ckpt: str | Path, inputs: Any, out_dir: str | Path | None = None, K: Any = None,
                     boxes: Any = None, adapt: bool = False, left: bool = False, batch_size: int = 8,
                     device: str = "cpu", mano_path: str | None = None, input_size: int | None = None,
                     progress: bool = False, overwrite: bool = False) -> Iterator[dict[str, Any]]:
    """Like :func:`predict`, one result at a time (constant memory for large folders)."""
    from tqdm.auto import tqdm

    from hoi_adapt.hand import joint_maps
    from hoi_adapt.inference import load_predictor
    from hoi_adapt.lit.checkpointing import CHECKPOINT_KEY
    from hoi_adapt.lit.load import checkpoint_sha256, read_checkpoint

    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    dev = _resolve_device(device)
    items = collect_inputs(inputs)
    K_spec, box_spec = _K_spec(K), _box_spec(boxes)
    if box_spec.single is not None and len(items) > 1:
        raise ConfigError(f"a single box applies to one image, but {len(items)} images were given; "
                          "use a boxes mapping (--boxes FILE.json: file name -> [x0, y0, x1, y1])")
    out_path = Path(out_dir).expanduser() if out_dir is not None else None
    index = _check_outputs(out_path, items, adapt) if out_path is not None else None

    ckpt_dict = read_checkpoint(ckpt)
    recorded = checkpoint_input_size(ckpt_dict)
    size = int(input_size) if input_size is not None else (recorded or DEFAULT_INPUT_SIZE)
    if input_size is not None and recorded is not None and int(input_size) != recorded:
        _warn(f"--input-size {input_size} differs from the size the checkpoint was trained at ({recorded})")
    if size < MIN_INPUT_SIZE:
        raise ConfigError(f"input size must be >= {MIN_INPUT_SIZE} pixels, got {size}")
    predictor = load_predictor(ckpt, adapt=adapt, mano_path=mano_path, device=dev)
    hand_model = predictor.estimator.hand_model
    ctx = {
        "size": size, "adapt": bool(adapt), "faces": hand_model.faces.detach().cpu().numpy().astype(np.int64),
        "to_openpose": joint_maps.permutation(hand_model.joint_order, "openpose"),
        "hand_model": _hand_model_info(hand_model),
        "checkpoint": {"path": str(ckpt), "sha256": checkpoint_sha256(ckpt),
                       "kind": str(ckpt_dict[CHECKPOINT_KEY].get("kind", "unknown"))},
    }
    del ckpt_dict
    if index is not None:  # the folder itself appears with the first written file
        header = {"checkpoint": ctx["checkpoint"], "adapt": ctx["adapt"], "input_size": size}
        if check_same_result(out_path, index.header if index.entries else None, header, IDENTITY_FIELDS,
                             what="set of predictions", overwrite=overwrite):
            index.clear()
        index.header = header

    warned = False
    bar = tqdm(total=len(items), unit="img", desc="predict", disable=not progress)
    try:
        for start in range(0, len(items), int(batch_size)):
            jobs = []
            for item in items[start:start + int(batch_size)]:
                image = item.load()
                h, w = image.shape[:2]
                K_img, K_src = K_spec.get(item)
                is_assumed = K_img is None
                if is_assumed:
                    K_img, K_src = default_intrinsics(h, w), f"assumed: fx=fy={DEFAULT_FOCAL_FACTOR}*max(H,W), centred"
                    if not warned:
                        warned = True
                        _warn(f"no camera intrinsics given for {item.path or item.name} (and maybe others): assuming "
                              f"fx=fy={DEFAULT_FOCAL_FACTOR}*max(H,W) with a centred principal point. 3D scale and depth "
                              "are then only approximate; the 2D joints and the root-relative 3D pose are not affected. "
                              "Pass --K fx,fy,cx,cy or --K-file for metric results.")
                box, box_src = box_spec.get(item)
                if box is not None:
                    _check_box_in_image(box, h, w, f"{item.path or item.name} ({box_src})")
                jobs.append(_Job(item, image, K_img, is_assumed, str(K_src), box, bool(left)))
            _first_pass_boxes(predictor, jobs, size, dev)
            crops, Ks, As = [], [], []
            for job in jobs:
                crop, A = C.crop_and_resize(job.net_image, job.box, size)
                crops.append(crop)
                As.append(A)
                Ks.append(C.crop_intrinsics(job.net_K, A))
            out = _run_batch(predictor, crops, Ks, dev)
            for i, job in enumerate(jobs):
                rec = _result(job, out, i, As[i], crops[i], Ks[i], ctx)
                if out_path is not None and index is not None:
                    rec["_image"] = job.image
                    rec["files"] = write_prediction(rec, out_path)
                    del rec["_image"]
                    index.add(job.item.name, rec["image"]["path"], rec["side"], rec["files"])
                bar.update(1)
                yield rec
            if index is not None:
                index.write()
    finally:
        bar.close()
    for spec, what in ((K_spec, "intrinsics"), (box_spec, "boxes")):
        if spec.unused():
            _warn(f"{what} entries matched no input image: {', '.join(spec.unused())}")


def predict(ckpt: str | Path, inputs: Any, out_dir: str | Path | None = None, K: Any = None, boxes: Any = None,
            adapt: bool = False, left: bool = False, batch_size: int = 8, device: str = "cpu",
            mano_path: str | None = None, input_size: int | None = None, progress: bool = False,
            overwrite: bool = False) -> list[dict[str, Any]]:
    """Predict hand joints and mesh on images; writes files only when ``out_dir`` is given.

    Args:
        ckpt: estimator or adaptation checkpoint.
        inputs: an image path, a folder of images, an (H, W, 3) uint8 RGB array, or a list of these.
        out_dir: folder for the per-image JSON/OBJ/PNGs and ``predictions.json`` (None: nothing written).
        K: intrinsics of the original images: a 3x3 matrix, ``[fx, fy, cx, cy]``, ``"fx,fy,cx,cy"``, a
            ``.json`` file, or a mapping file name (or path, stem; ``"*"`` for the rest) -> K. None: assumed
            (see :func:`default_intrinsics`).
        boxes: hand box ``[x0, y0, x1, y1]`` for a single image, a ``.json`` file or mapping file name -> box
            (null: automatic). Images without a box get the automatic two-pass crop.
        adapt: run the adapted pipeline (needs an adaptation checkpoint).
        left: the images show left hands (mirror, predict a right hand, mirror back).
        batch_size: images per network batch.
        device: torch device.
        mano_path: MANO folder/file replacing the checkpoint's hand model.
        input_size: network input size; default: the checkpoint's recorded size, else 128.
        progress: show a progress bar.
        overwrite: replace predictions of another checkpoint, ``adapt`` or input size already in ``out_dir``
            (their unchanged files are deleted); without it such a folder is refused.

    Returns:
        One dict per image: the JSON record (module doc) with numpy arrays, plus ``vertices`` (778, 3),
        ``faces``, ``crop_image``/``crop_K``/``crop_joints2d`` (what the network saw), ``hand_only_image``
        (adapt) and ``files`` (when written).
    """
    return list(iter_predictions(ckpt, inputs, out_dir, K, boxes, adapt, left, batch_size, device, mano_path,
                                 input_size, progress, overwrite))


# ============================================================================================ CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hoi-adapt predict",
        description="3D hand joints (JSON), MANO mesh (.obj) and overlays (PNG) for your images.",
        epilog="Without --K the camera is assumed (fx=fy=1.2*max(H,W)); 3D scale/depth are then approximate. "
               "Without a box the hand is found automatically (two passes).")
    p.add_argument("--ckpt", required=True, help="estimator or adaptation checkpoint (.ckpt)")
    p.add_argument("--input", required=True, nargs="+", help="image file(s) or a folder of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace predictions of another checkpoint (or --adapt / --input-size) already in --out")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--K", dest="K", metavar="fx,fy,cx,cy", help="intrinsics of the images (pixels)")
    cam.add_argument("--K-file", metavar="FILE.json", help="one K (3x3 or {fx,fy,cx,cy}) or file name -> K")
    box = p.add_mutually_exclusive_group()
    box.add_argument("--box", metavar="x0,y0,x1,y1", help="hand box of a single image (pixels)")
    box.add_argument("--boxes", metavar="FILE.json", help="file name -> [x0, y0, x1, y1] (null: automatic)")
    p.add_argument("--adapt", action="store_true", help="adapted pipeline: translate to hand-only, then estimate")
    p.add_argument("--left", action="store_true", help="the images show left hands")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--mano", default=None, help="MANO folder or file (default: the checkpoint's hand model)")
    p.add_argument("--input-size", type=int, default=None, help="network input size (default: from the checkpoint, else 128)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"hoi-adapt predict: warning: {message}", file=sys.stderr)

    inputs: Any = args.input if len(args.input) > 1 else args.input[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", PredictWarning)
            warnings.showwarning = show
            K = parse_K(args.K) if args.K else (Path(args.K_file) if args.K_file else None)
            boxes = parse_box(args.box) if args.box else (Path(args.boxes) if args.boxes else None)
            n = 0
            for _ in iter_predictions(args.ckpt, inputs, args.out, K=K, boxes=boxes, adapt=args.adapt, left=args.left,
                                      batch_size=args.batch_size, device=args.device, mano_path=args.mano,
                                      input_size=args.input_size, progress=not args.no_progress,
                                      overwrite=args.overwrite):
                n += 1
    except HoiAdaptError as exc:
        print(f"hoi-adapt predict: error: {exc}", file=sys.stderr)
        return 1
    print(f"hoi-adapt predict: {n} image(s) -> {Path(args.out) / INDEX_FILE}")
    return 0
