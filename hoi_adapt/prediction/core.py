"""The predict API: two passes (automatic crop, then the estimate), mapped back to each original image and camera."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.checkpoints.format import CHECKPOINT_KEY
from hoi_adapt.checkpoints.load import checkpoint_input_size, checkpoint_sha256, read_checkpoint
from hoi_adapt.checkpoints.predictor import load_predictor
from hoi_adapt.data import crop as C
from hoi_adapt.hand import joint_maps
from hoi_adapt.prediction.geometry import CROP_SCALE, box_from_mask, mirror_affine
from hoi_adapt.prediction.inputs import (
    DEFAULT_FOCAL_FACTOR,
    InputImage,
    _box_spec,
    _check_box_in_image,
    _K_spec,
    _warn,
    collect_inputs,
    default_intrinsics,
)
from hoi_adapt.prediction.schema import IDENTITY_FIELDS, SCHEMA, SCHEMA_VERSION
from hoi_adapt.prediction.writer import _check_outputs, write_prediction
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError
from hoi_adapt.utils.results import check_same_result
from hoi_adapt.viz.drawing import to_uint8

DEFAULT_INPUT_SIZE = 128
MIN_INPUT_SIZE = 32


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
    for job, A, prob in zip(todo, As, out["mask_prob"], strict=True):
        h, w = job.net_image.shape[:2]
        box = box_from_mask(prob[0], A, size, h, w)
        job.box, job.box_source = (box, "auto") if box is not None else (C.full_image_box(h, w), "full_image")


def _result(job: _Job, out: dict[str, np.ndarray], i: int, A_net: np.ndarray, crop: np.ndarray, K_crop: np.ndarray,
            ctx: dict[str, Any]) -> dict[str, Any]:
    """Map one image's network outputs back to its original image and camera."""
    height, width = job.image.shape[:2]
    faces = ctx["faces"]
    joints3d = out["joints3d"][i].astype(np.float64)
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
        first3d = out["first_joints3d"][i].astype(np.float64)
        first3d = C.flip_points_3d(first3d) if job.left else first3d
        rec["first_pass"] = {"joints3d": first3d, "joints2d": project(first3d, job.K)}
    # In-memory extras (not in the JSON): mesh arrays and what the network saw.
    rec["vertices"], rec["faces"] = vertices, np.asarray(faces, dtype=np.int64)
    rec["crop_image"], rec["crop_K"] = crop, K_crop
    rec["crop_joints2d"] = out["joints2d"][i].astype(np.float64)
    if ctx["adapt"]:
        hand_only = to_uint8(out["translated"][i].transpose(1, 2, 0))
        rec["hand_only_image"] = C.flip_image(hand_only) if job.left else hand_only
    return rec


def iter_predictions(ckpt: str | Path, inputs: Any, out_dir: str | Path | None = None, K: Any = None,
                     boxes: Any = None, adapt: bool = False, left: bool = False, batch_size: int = 8,
                     device: str = "cpu", mano_path: str | None = None, input_size: int | None = None,
                     progress: bool = False, overwrite: bool = False) -> Iterator[dict[str, Any]]:
    """Like :func:`predict`, one result at a time (constant memory for large folders)."""
    from tqdm.auto import tqdm

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
        "hand_model": hand_model.describe(),
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
