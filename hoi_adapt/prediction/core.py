"""The predict API: find the hands of each image, crop each one (mirrored for left hands), estimate all hands of a
batch of images together and map every result back to its original image and camera; skip what an earlier run
finished, report files that cannot be read and go on."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.checkpoints.format import CHECKPOINT_KEY
from hoi_adapt.checkpoints.load import checkpoint_input_size, checkpoint_sha256, read_checkpoint
from hoi_adapt.data import crop as C
from hoi_adapt.deploy.runtime import load_model_predictor, resolve_model
from hoi_adapt.hand import joint_maps
from hoi_adapt.prediction.detection import (
    DETECT_CHUNK,
    Detection,
    HandDetector,
    ImageDetections,
    resolve_detector,
)
from hoi_adapt.prediction.geometry import CROP_SCALE, MASK_THRESHOLD, box_from_region, mask_region_xyxy, mirror_affine
from hoi_adapt.prediction.index import FolderIndex
from hoi_adapt.prediction.inputs import (
    DEFAULT_FOCAL_FACTOR,
    InputImage,
    PredictNote,
    UserBox,
    _box_spec,
    _check_box_in_image,
    _K_spec,
    _PerImage,
    _warn,
    collect_inputs,
    default_intrinsics,
)
from hoi_adapt.prediction.schema import IDENTITY_FIELDS, SCHEMA, SCHEMA_VERSION, flat_names, output_names
from hoi_adapt.prediction.writer import check_outputs, write_prediction
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.io import jsonable
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
class RunReport:
    """What a run did: images predicted, hands found, images skipped as finished earlier, files that failed."""

    done: int = 0
    hands: int = 0
    skipped: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.done} image(s) done, {self.hands} hand(s) found, {self.skipped} skipped as already finished, "
                f"{len(self.failed)} failed")


@dataclass
class _Image:
    """One loaded image and what predict knows about it; ``net`` gives the (mirrored) image the network sees."""

    item: InputImage
    image: np.ndarray
    fingerprint: dict[str, Any]
    K: np.ndarray
    K_assumed: bool
    K_source: str
    detector: dict[str, Any]
    hands: list[_Hand] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _mirrored: tuple[np.ndarray, np.ndarray] | None = None

    def net(self, left: bool) -> tuple[np.ndarray, np.ndarray]:
        if not left:
            return self.image, self.K
        if self._mirrored is None:  # shared by all left hands of the image
            self._mirrored = (C.flip_image(self.image), C.flip_intrinsics(self.K, self.image.shape[1]))
        return self._mirrored


@dataclass
class _Hand:
    """One hand on its way through crop, estimate and map-back; ``box`` is in the network's (mirrored) pixels."""

    img: _Image
    left: bool
    side_source: str  # "box" (the boxes file), "left" (the left option), "detector" or "default" (right)
    score: float | None
    box_xyxy: np.ndarray | None  # original pixels; None until the first pass finds it
    box_scale: float
    crop_source: str  # "box", "detector", "auto" (first pass) or "full_image"
    box: C.Box | None = None

    def __post_init__(self) -> None:
        if self.box_xyxy is not None:
            width = self.img.image.shape[1]
            xyxy = C.flip_xyxy(self.box_xyxy, width) if self.left else self.box_xyxy
            self.box = C.crop_box_from_xyxy(xyxy, self.box_scale, min_size=8.0)


def _side(own: str | None, left: bool, own_source: str) -> tuple[bool, str]:
    """Is the hand left, and who said so: a box's own side, then the left option, then the detector; else right."""
    if own is not None and own_source == "box":
        return own == "left", "box"
    if left:
        return True, "left"
    if own is not None:
        return own == "left", own_source
    return False, "default"


def _run_batch(net: Any, crops: list[np.ndarray], Ks: list[np.ndarray], device: Any) -> dict[str, np.ndarray]:
    import torch

    image = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(255.0).to(device)
    K = torch.from_numpy(np.stack(Ks)).float().to(device)
    with torch.inference_mode():
        out = net(image, K)
    return {k: v.detach().float().cpu().numpy() for k, v in out.items()}


def _run_chunked(net: Any, crops: list[np.ndarray], Ks: list[np.ndarray], device: Any, batch_size: int) -> dict[str, np.ndarray]:
    """:func:`_run_batch` over at most ``batch_size`` crops at a time, outputs concatenated."""
    outs = [_run_batch(net, crops[s:s + batch_size], Ks[s:s + batch_size], device) for s in range(0, len(crops), batch_size)]
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]} if outs else {}


def _first_pass_boxes(predictor: Any, hands: list[_Hand], size: int, device: Any, batch_size: int) -> None:
    """Automatic crops: estimator on the letterboxed image -> largest mask region -> box."""
    import torch

    todo = [h for h in hands if h.box is None]
    if not todo:
        return
    crops, Ks, As = [], [], []
    for hand in todo:
        net_image, net_K = hand.img.net(hand.left)
        h, w = net_image.shape[:2]
        crop, A = C.crop_and_resize(net_image, C.full_image_box(h, w), size)
        crops.append(crop)
        Ks.append(C.crop_intrinsics(net_K, A))
        As.append(A)
    estimator = predictor.estimator
    out = _run_chunked(lambda im, K: {"mask_prob": torch.sigmoid(estimator(im, K).mask_logits)}, crops, Ks, device,
                       batch_size)
    for hand, A, prob in zip(todo, As, out["mask_prob"], strict=True):
        h, w = hand.img.image.shape[:2]
        region = mask_region_xyxy(prob[0], A, size, h, w)
        if region is None:
            hand.box, hand.crop_source = C.full_image_box(h, w), "full_image"
            continue
        hand.box, hand.crop_source = box_from_region(region, h, w), "auto"
        hand.box_xyxy = C.flip_xyxy(region, w) if hand.left else region


def _hand_result(hand: _Hand, out: dict[str, np.ndarray], i: int, A_net: np.ndarray, crop: np.ndarray,
                 K_crop: np.ndarray, ctx: dict[str, Any]) -> dict[str, Any]:
    """Map one hand's network outputs back to its original image and camera."""
    img = hand.img
    width = img.image.shape[1]
    faces = ctx["faces"]
    joints3d = out["joints3d"][i].astype(np.float64)
    vertices = out["vertices"][i].astype(np.float64)
    pose = np.concatenate([out["global_orient"][i], out["hand_pose"][i]]).astype(np.float64)
    transl = out["transl"][i].astype(np.float64)
    cx, cy, side = (float(v) for v in hand.box)
    A = A_net
    if hand.left:
        joints3d, vertices = C.flip_points_3d(joints3d), C.flip_points_3d(vertices)
        faces = faces[:, [0, 2, 1]]  # mirroring turns the winding inside out
        pose, transl = C.flip_mano_pose(pose), C.flip_mano_transl(transl)
        cx = (width - 1) - cx
        A = A_net @ mirror_affine(width)
    side_name = "left" if hand.left else "right"
    rec: dict[str, Any] = {
        "side": side_name, "side_source": hand.side_source, "score": hand.score, "box": hand.box_xyxy,
        "crop": {"source": hand.crop_source, "center": np.array([cx, cy]), "side": side,
                 "xyxy": np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]),
                 "input_size": ctx["size"], "scale": hand.box_scale if hand.crop_source != "full_image" else None,
                 "mirrored": hand.left, "affine": A},
        "joints3d": joints3d, "joints2d": project(joints3d, img.K),
        "mano": {"side": side_name, "global_orient": pose[:3], "hand_pose": pose[3:],
                 "betas": out["betas"][i].astype(np.float64), "transl": transl, "flat_hand_mean": True},
        "mesh": {"num_vertices": int(len(vertices)), "num_faces": int(len(faces)), "units": "metres",
                 "frame": "OpenCV camera (x right, y down, z forward) of the original image"},
    }
    if ctx["adapt"]:
        first3d = out["first_joints3d"][i].astype(np.float64)
        first3d = C.flip_points_3d(first3d) if hand.left else first3d
        rec["first_pass"] = {"joints3d": first3d, "joints2d": project(first3d, img.K)}
    # In-memory extras (not in the JSON): mesh arrays and what the network saw.
    rec["vertices"], rec["faces"] = vertices, np.asarray(faces, dtype=np.int64)
    rec["crop_image"], rec["crop_K"] = crop, K_crop
    rec["crop_joints2d"] = out["joints2d"][i].astype(np.float64)
    if ctx["adapt"]:
        hand_only = to_uint8(out["translated"][i].transpose(1, 2, 0))
        rec["hand_only_image"] = C.flip_image(hand_only) if hand.left else hand_only
    return rec


def _image_result(img: _Image, hands: list[dict[str, Any]], ctx: dict[str, Any]) -> dict[str, Any]:
    height, width = img.image.shape[:2]
    item = img.item
    return {
        "schema": SCHEMA, "schema_version": SCHEMA_VERSION,
        "image": {"path": str(item.path) if item.path is not None else None, "name": item.name,
                  "width": width, "height": height, "sha256": img.fingerprint["sha256"]},
        "camera": {"K": img.K, "assumed": img.K_assumed, "source": img.K_source},
        "detector": img.detector,
        "checkpoint": ctx["checkpoint"], "adapt": ctx["adapt"],
        "joint_order": "openpose", "joint_names": list(joint_maps.OPENPOSE_NAMES),
        "skeleton": ctx["skeleton"], "hand_model": ctx["hand_model"],
        "hands": hands, "notes": list(img.notes),
    }


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Run:
    """One predict run over a list of inputs: resume, detect, load, estimate, write, report."""

    def __init__(self, predictor: Any, ctx: dict[str, Any], K_spec: _PerImage, box_spec: _PerImage,
                 detector: HandDetector | None, left: bool, batch_size: int, device: Any, out_path: Path | None,
                 index: FolderIndex | None, fail_fast: bool, report: RunReport) -> None:
        self.predictor, self.ctx, self.K_spec, self.box_spec = predictor, ctx, K_spec, box_spec
        self.detector, self.left, self.batch_size, self.device = detector, left, batch_size, device
        self.out_path, self.index, self.fail_fast, self.report = out_path, index, fail_fast, report
        self.warned_K = False

    # ------------------------------------------------------------------------------------------ per image
    def boxes(self, item: InputImage) -> tuple[list[UserBox] | None, str | None]:
        return self.box_spec.get(item)

    def settings(self, item: InputImage) -> dict[str, Any]:
        """Everything besides the folder's identity (checkpoint, adapt, input size) that a result depends on."""
        K, _ = self.K_spec.get(item)
        boxes, _ = self.boxes(item)
        if boxes is not None:
            detector: Any = "boxes"
        else:
            detector = self.detector.describe() if self.detector is not None else "two-pass"
        return jsonable({"K": K, "boxes": None if boxes is None else [[b.xyxy, b.side] for b in boxes],
                         "left": self.left, "detector": detector, "hand_model": self.ctx["hand_model"]})

    def resume(self, items: list[InputImage], overwrite: bool) -> list[InputImage]:
        """The inputs an earlier run has not finished with these settings (all of them with ``overwrite``)."""
        if self.index is None or overwrite:
            return items
        digests = {f: d for e in self.index.entries.values() for f, d in (e.get("sha256") or {}).items()}
        todo = [item for item in items if not self.index.finished(item, self.settings(item), digests)]
        self.report.skipped = len(items) - len(todo)
        if self.report.skipped:
            _warn(f"{self.report.skipped} of {len(items)} image(s) already finished in {self.out_path} by an earlier "
                  "run with the same checkpoint and settings: skipping them (--overwrite recomputes them)", PredictNote)
        return todo

    def detections(self, items: list[InputImage]) -> Iterator[tuple[InputImage, ImageDetections | None]]:
        """Each input with what the detector found (None: user boxes or no detector), a chunk at a time."""
        chunk = max(DETECT_CHUNK, self.batch_size) if self.detector is not None else self.batch_size
        for group in _chunks(items, chunk):
            need = [it for it in group if self.detector is not None and self.boxes(it)[0] is None]
            found = list(self.detector.detect(need)) if need and self.detector is not None else []
            if len(found) != len(need):
                raise ConfigError(f"hand detector {self.detector.name!r} answered {len(found)} of {len(need)} images")
            by_item = {id(it): f for it, f in zip(need, found, strict=True)}
            for it in group:
                yield it, by_item.get(id(it))

    def failed(self, item: InputImage, exc: DataFileError) -> None:
        reason = exc.problem + (f" ({exc.hint})" if exc.hint else "")
        path = str(item.path) if item.path is not None else None
        self.report.failed.append({"name": item.name, "path": path, "reason": reason})
        if self.index is not None:
            self.index.fail(item.name, path, reason)
        if not self.fail_fast:
            _warn(f"skipping {exc}")

    def load(self, item: InputImage, found: ImageDetections | None) -> _Image:
        """Read the image, resolve its camera and its hands (user boxes, detections or one automatic crop)."""
        where = item.path if item.path is not None else item.name
        image = item.load()
        h, w = image.shape[:2]
        if found is not None and found.error:
            raise DataFileError(where, f"hand detection failed: {found.error}")
        if found is not None and found.size is not None and tuple(found.size) != (w, h):
            raise DataFileError(where, f"the hand detector decoded it as {found.size[0]}x{found.size[1]} pixels, "
                                       f"hoi_adapt as {w}x{h} (EXIF orientation?)", "save it without EXIF rotation")
        K, K_src = self.K_spec.get(item)
        assumed = K is None
        if assumed:
            K, K_src = default_intrinsics(h, w), f"assumed: fx=fy={DEFAULT_FOCAL_FACTOR}*max(H,W), centred"
            if not self.warned_K:
                self.warned_K = True
                _warn(f"no camera intrinsics given for {where} (and maybe others): assuming "
                      f"fx=fy={DEFAULT_FOCAL_FACTOR}*max(H,W) with a centred principal point. 3D scale and depth "
                      "are then only approximate; the 2D joints and the root-relative 3D pose are not affected. "
                      "Pass --K fx,fy,cx,cy or --K-file for metric results.")
        boxes, box_src = self.boxes(item)
        img = _Image(item, image, item.fingerprint(), K, assumed, str(K_src), {})
        if boxes is not None:
            for b in boxes:
                _check_box_in_image(b.xyxy, h, w, f"{where} ({box_src})")
            img.detector = {"name": "boxes", "version": None, "settings": {"source": box_src}, "box_scale": CROP_SCALE}
            img.hands = [_Hand(img, *_side(b.side, self.left, "box"), None, b.xyxy, CROP_SCALE, "box") for b in boxes]
        elif self.detector is None:
            img.detector = {"name": "two-pass", "version": None, "settings": {"mask_threshold": MASK_THRESHOLD},
                            "box_scale": CROP_SCALE}
            img.hands = [_Hand(img, self.left, "left" if self.left else "default", None, None, CROP_SCALE, "auto")]
        else:
            assert found is not None
            img.detector = self.detector.describe()
            img.hands = [_Hand(img, *_side(d.side, self.left, "detector"), d.score, np.asarray(d.box_xyxy, float),
                               self.detector.box_scale, "detector") for d in self._usable(found.hands, h, w, img)]
            if not img.hands:
                img.notes.append(f"{self.detector.name} found no hand in this image")
        return img

    @staticmethod
    def _usable(found: Sequence[Detection], h: int, w: int, img: _Image) -> list[Detection]:
        """Detections that overlap the image, left to right (so ``hand<k>`` numbering follows the picture)."""
        usable = []
        for d in found:
            x0, y0, x1, y1 = np.asarray(d.box_xyxy, dtype=np.float64)
            if x1 > x0 and y1 > y0 and x1 > -0.5 and y1 > -0.5 and x0 < w - 0.5 and y0 < h - 0.5:
                usable.append(d)
            else:
                img.notes.append(f"ignored a detection with box {[x0, y0, x1, y1]} outside the {w}x{h} image")
        return sorted(usable, key=lambda d: (float(d.box_xyxy[0] + d.box_xyxy[2]), float(d.box_xyxy[1])))

    # ------------------------------------------------------------------------------------------ per batch
    def estimate(self, hands: list[_Hand]) -> list[dict[str, Any]]:
        """All hands of a batch of images through the network, ``batch_size`` crops at a time."""
        size = self.ctx["size"]
        _first_pass_boxes(self.predictor, hands, size, self.device, self.batch_size)
        crops, Ks, As = [], [], []
        for hand in hands:
            net_image, net_K = hand.img.net(hand.left)
            crop, A = C.crop_and_resize(net_image, hand.box, size)
            crops.append(crop)
            As.append(A)
            Ks.append(C.crop_intrinsics(net_K, A))
        out = _run_chunked(self.predictor, crops, Ks, self.device, self.batch_size)
        return [_hand_result(h, out, i, As[i], crops[i], Ks[i], self.ctx) for i, h in enumerate(hands)]

    def write(self, img: _Image, rec: dict[str, Any]) -> None:
        assert self.out_path is not None and self.index is not None
        path = rec["image"]["path"]
        files = output_names(img.item.name, self.ctx["adapt"], len(rec["hands"]))
        self.index.begin(img.item.name, path, flat_names(files))
        write_prediction(rec, img.image, self.out_path)
        self.index.finish(img.item.name, path, img.fingerprint, self.settings(img.item),
                          [h["side"] for h in rec["hands"]], flat_names(files))

    def __call__(self, items: list[InputImage], progress: bool) -> Iterator[dict[str, Any]]:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), unit="img", desc="predict", disable=not progress)
        try:
            for batch in _chunks(self.detections(items), self.batch_size):
                images = []
                for item, found in batch:
                    try:
                        images.append(self.load(item, found))
                    except DataFileError as exc:
                        self.failed(item, exc)
                        if self.fail_fast:
                            raise
                        bar.update(1)
                hand_results = iter(self.estimate([h for img in images for h in img.hands]))
                for img in images:
                    rec = _image_result(img, [next(hand_results) for _ in img.hands], self.ctx)
                    if self.out_path is not None:
                        self.write(img, rec)
                    self.report.done += 1
                    self.report.hands += len(rec["hands"])
                    bar.update(1)
                    yield rec
                if self.index is not None:
                    self.index.write()
        finally:
            bar.close()
            if self.index is not None and (self.index.entries or self.index.failures):
                self.index.write()  # what finished (or failed) before an error or an interrupt stays recorded


def iter_predictions(ckpt: str | Path, inputs: Any, out_dir: str | Path | None = None, K: Any = None,
                     boxes: Any = None, adapt: bool = False, left: bool = False, batch_size: int = 8,
                     device: str = "cpu", mano_path: str | None = None, input_size: int | None = None,
                     progress: bool = False, overwrite: bool = False, *, detector: str | HandDetector | None = "auto",
                     max_hands: int = 2, fail_fast: bool = True, report: RunReport | None = None,
                     onnx_precision: str = "fp32") -> Iterator[dict[str, Any]]:
    """Like :func:`predict`, one image's result at a time (constant memory for large folders)."""
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    dev = _resolve_device(device)
    items = collect_inputs(inputs)
    K_spec, box_spec = _K_spec(K), _box_spec(boxes)
    if box_spec.single is not None and len(items) > 1:
        raise ConfigError(f"a single box applies to one image, but {len(items)} images were given; "
                          "use a boxes mapping (--boxes FILE.json: file name -> [x0, y0, x1, y1])")
    out_path = Path(out_dir).expanduser() if out_dir is not None else None
    index = check_outputs(out_path, items, adapt) if out_path is not None else None
    needs_detector = any(box_spec.get(it)[0] is None for it in items)
    hand_detector = resolve_detector(detector, max_hands) if needs_detector else None

    ckpt, onnx_dir = resolve_model(ckpt, adapt)  # an export folder: E (and G) by ONNX Runtime, its checkpoint the rest
    ckpt_dict = read_checkpoint(ckpt)
    recorded = checkpoint_input_size(ckpt_dict)
    size = int(input_size) if input_size is not None else (recorded or DEFAULT_INPUT_SIZE)
    if input_size is not None and recorded is not None and int(input_size) != recorded:
        _warn(f"--input-size {input_size} differs from the size the checkpoint was trained at ({recorded})")
    if size < MIN_INPUT_SIZE:
        raise ConfigError(f"input size must be >= {MIN_INPUT_SIZE} pixels, got {size}")
    predictor = load_model_predictor(ckpt, onnx_dir, adapt, mano_path, dev, precision=onnx_precision)
    hand_model = predictor.estimator.hand_model
    ctx = {
        "size": size, "adapt": bool(adapt), "faces": hand_model.faces.detach().cpu().numpy().astype(np.int64),
        "hand_model": hand_model.describe(),
        "skeleton": predictor.skeleton,
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

    run = _Run(predictor, ctx, K_spec, box_spec, hand_detector, bool(left), int(batch_size), dev, out_path, index,
               fail_fast, report if report is not None else RunReport())
    yield from run(run.resume(items, overwrite), progress)
    for spec, what in ((K_spec, "intrinsics"), (box_spec, "boxes")):
        if spec.unused():
            _warn(f"{what} entries matched no input image: {', '.join(spec.unused())}")


def predict(ckpt: str | Path, inputs: Any, out_dir: str | Path | None = None, K: Any = None, boxes: Any = None,
            adapt: bool = False, left: bool = False, batch_size: int = 8, device: str = "cpu",
            mano_path: str | None = None, input_size: int | None = None, progress: bool = False,
            overwrite: bool = False, *, detector: str | HandDetector | None = "auto", max_hands: int = 2,
            fail_fast: bool = True, report: RunReport | None = None, onnx_precision: str = "fp32") -> list[dict[str, Any]]:
    """Predict the hands of images (joints, mesh, MANO parameters); writes files only when ``out_dir`` is given.

    Args:
        ckpt: estimator or adaptation checkpoint, or a folder of ``hoi-adapt export-onnx`` (E and G then run in
            ONNX Runtime on the CPU, ``onnx_precision`` "fp32" or "int8"; the exported checkpoint supplies the rest).
        inputs: an image path, a folder of images, an (H, W, 3) uint8 RGB array, or a list of these.
        out_dir: folder for the per-image JSON and overlay, per-hand OBJ (and hand-only PNG) and
            ``predictions.json`` (None: nothing written). Images an earlier run finished there with the same
            checkpoint and settings (and unchanged since) are skipped: not recomputed, not returned.
        K: intrinsics of the original images: a 3x3 matrix, ``[fx, fy, cx, cy]``, ``"fx,fy,cx,cy"``, a
            ``.json`` file, or a mapping file name (or path, stem; ``"*"`` for the rest) -> K. None: assumed
            (see :func:`default_intrinsics`).
        boxes: hand boxes of a single image (``[x0, y0, x1, y1]``, ``{"box": [...], "side": "left"}`` or a list
            of these), a ``.json`` file or a mapping file name -> boxes (null: detect). No detector runs on an
            image with boxes.
        adapt: run the adapted pipeline (needs an adaptation checkpoint).
        left: every hand is a left hand (mirror, predict a right hand, mirror back), unless its box says otherwise.
        batch_size: images per detector-and-estimator batch, and crops per network call.
        device: torch device.
        mano_path: MANO folder/file replacing the checkpoint's hand model.
        input_size: network input size; default: the checkpoint's recorded size, else 128.
        progress: show a progress bar.
        overwrite: replace predictions of another checkpoint, ``adapt`` or input size already in ``out_dir``
            (their unchanged files are deleted) and recompute finished images; without it such a folder is
            refused and finished images are skipped.
        detector: ``"auto"`` (MediaPipe Hands when its peer venv exists, else ``"none"`` with a warning),
            ``"mediapipe"``, ``"none"`` (one hand per image from the estimator's two-pass crop) or a
            :class:`~hoi_adapt.prediction.detection.HandDetector`.
        max_hands: most hands the detector reports per image.
        fail_fast: raise the first unreadable image's :class:`DataFileError`; False: warn, skip it, go on (the
            command line's default). Failures are listed in ``report`` and ``predictions.json`` either way.
        report: a :class:`RunReport` to fill (counts and failures).

    Returns:
        One dict per image: the JSON record (module doc) with numpy arrays; each of its ``hands`` also holds
        ``vertices`` (778, 3), ``faces``, ``crop_image``/``crop_K``/``crop_joints2d`` (what the network saw) and
        ``hand_only_image`` (adapt).
    """
    return list(iter_predictions(ckpt, inputs, out_dir, K, boxes, adapt, left, batch_size, device, mano_path,
                                 input_size, progress, overwrite, detector=detector, max_hands=max_hands,
                                 fail_fast=fail_fast, report=report, onnx_precision=onnx_precision))
