"""``hoi-adapt evaluate`` as a library: checkpoint(s) x dataset -> protocol numbers, JSON/markdown/PNG/CSV.

The pipeline is deliberately split so every stage can be tested on its own:

1. :func:`build_eval_data` resolves a dataset name to its loader, default split and protocol (the table
   below), the input crop and, where the protocol scores meshes, a ground-truth mesh maker;
2. :func:`collect` runs any ``predict(batch) -> {"joints3d", ["vertices"]}`` callable over a DataLoader
   and gathers predictions and ground truth in the same (cropped) camera frame — the loaders' ``K``
   describes the crop of the original camera, so 3D compares directly, and left hands are already
   mirrored by the loaders, so predictions and ground truth are both right hands;
3. :func:`score` applies :func:`hoi_adapt.eval.protocols.evaluate_protocol` (the same code the training
   validation uses) and adds the run's metadata;
4. :func:`write_evaluation` writes the files through :func:`hoi_adapt.eval.report.write_results`.

:func:`evaluate_checkpoints` / :func:`evaluate_checkpoint` chain them with :func:`hoi_adapt.deploy.runtime.load_model_predictor` (PyTorch, or ONNX Runtime for an export folder);
:func:`evaluate_predict_fn` does the same for any callable (an oracle in tests, an external model).

=============  =============  =============  ==============================================================
dataset        default split  protocol       notes
=============  =============  =============  ==============================================================
dexter_object  test (all)     dexter_object  5 fingertips, centroid+scale alignment over the valid tips
egodexter      test (all)     egodexter      the same fingertip protocol
stb            test           stb            B1Counting + B1Random; loader ``root_joint="palm"``, ``root_is_palm``
rhd            evaluation     rhd            wrist root-relative and minimal-hand joint-9 variants
freihand       evaluation     freihand       training ('gs' images) when evaluation_xyz.json is absent (noted)
ho3d           evaluation     ho3d           root-only GT (original release) -> root error only (noted)
obman          test           synthetic      21 joints; the loader has no meshes
synthetic      target_test    synthetic      hand-object image; GT meshes re-posed from the stored MANO params
=============  =============  =============  ==============================================================

Mesh metrics of real datasets (FreiHAND, HO-3D) need the MANO model (``mano_path``): their GT meshes are
posed from the dataset's MANO parameters, which the built-in stand-in hand cannot do.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from hoi_adapt.checkpoints.format import CHECKPOINT_KEY
from hoi_adapt.checkpoints.load import checkpoint_input_size, checkpoint_sha256, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.formats import world as fmt
from hoi_adapt.data.registry import SYNTHETIC, DatasetEntry, dataset_entry
from hoi_adapt.deploy.runtime import is_onnx_export, load_model_predictor, resolve_model
from hoi_adapt.eval.alignment import replace_root, wrist_from_palm
from hoi_adapt.eval.breakdown import per_frame_errors
from hoi_adapt.eval.metrics import auc, get_grid, joint_errors_mm, keypoint_stats
from hoi_adapt.eval.peer import peer_label, peer_predict_fn
from hoi_adapt.eval.protocols import evaluate_protocol, get_protocol
from hoi_adapt.eval.published import comparison_rows
from hoi_adapt.eval.report import write_results
from hoi_adapt.hand.model import HandModel
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError
from hoi_adapt.utils.io import atomic_path
from hoi_adapt.utils.results import check_same_result

DEFAULT_IMAGE_SIZE = 128
MESH_CHECK_TOL_M = 2e-3  # synthetic GT mesh must reproduce the stored GT joints to this tolerance

PredictFn = Callable[[Mapping[str, Any]], Mapping[str, torch.Tensor]]


# ---------------------------------------------------------------------------------------------------------
# Model specs
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """One row of the table: a checkpoint, whether to run the adapted pipeline, and its label."""

    ckpt: Path  # a checkpoint, or a folder of `hoi-adapt export-onnx` (run by ONNX Runtime, CPU)
    adapt: bool = False
    label: str | None = None
    precision: str = "fp32"  # of an ONNX export: "fp32" or "int8" (export-onnx --int8)

    def default_label(self) -> str:
        return Path(self.ckpt).stem + (" (adapt)" if self.adapt else "")


def unique_labels(specs: Sequence[ModelSpec]) -> list[str]:
    """Labels for the rows; repeated ones get ``#2``, ``#3`` suffixes."""
    out: list[str] = []
    for s in specs:
        base = s.label or s.default_label()
        label, k = base, 2
        while label in out:
            label, k = f"{base} #{k}", k + 1
        out.append(label)
    return out


# ---------------------------------------------------------------------------------------------------------
# Dataset resolution
# ---------------------------------------------------------------------------------------------------------
@dataclass
class EvalData:
    """A dataset ready for evaluation: the loader and everything the protocol needs to know about it."""

    name: str
    protocol: str
    split: str
    root: Path
    dataset: Dataset
    input_size: int
    crop: str
    root_is_palm: bool = False
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    gt_mesh: Callable[[Mapping[str, Any]], tuple[np.ndarray, np.ndarray]] | None = None
    """batch -> ((B, V, 3) metres GT vertices, (B,) bool usable); None: no GT meshes for this data."""
    mesh_note: str = ""
    skeleton: str | None = None
    """Definition of the labels' 3D joints (``hand.model.SKELETONS``); predictions are scored in it. None: the
    labels follow neither MANO definition, predictions keep the estimator's own."""


def _mesh_from_mano(model: Any, pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        out = model(pose[:, :3].float(), pose[:, 3:].float(), betas.float(), transl.float())
    return out.vertices.double().cpu().numpy()


class _ManoMeshGT:
    """GT meshes of real datasets that carry MANO parameters (absolute pose, OpenCV frame, right hands)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, batch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        ok = batch["has_mano"].cpu().numpy() > 0.5
        verts = _mesh_from_mano(self.model, batch["mano_pose"], batch["mano_betas"], batch["mano_transl"])
        verts[~ok] = np.nan
        return verts, ok


class _SyntheticMeshGT:
    """GT meshes of the synthetic world: the stored MANO parameters re-posed with the world's hand model.

    Left-hand samples are posed with the left model and mirrored (``x -> -x``), exactly as the loader
    mirrors their joints; the mesh's regressed skeleton is checked against the stored GT joints.
    """

    def __init__(self, ann: Mapping[str, np.ndarray], mano_path: str | None) -> None:
        self.ann = ann
        sides = sorted({str(s) for s in ann["side"]})
        self.models = {side: HandModel(mano_path, side=side) for side in sides}
        self.num_mismatched = 0

    def __call__(self, batch: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        rows = batch["index"].cpu().numpy().astype(np.int64)
        a = self.ann
        nverts = next(iter(self.models.values())).v_template.shape[0]
        verts = np.full((len(rows), nverts, 3), np.nan)
        for side, model in self.models.items():
            pick = np.nonzero(a["side"][rows] == side)[0]
            if pick.size == 0:
                continue
            r = rows[pick]
            t = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
            pose = t(np.concatenate([a["mano_global_orient"][r], a["mano_hand_pose"][r]], axis=1))
            v = _mesh_from_mano(model, pose, t(a["mano_betas"][r]), t(a["mano_transl"][r]))
            if side == "left":
                v[..., 0] = -v[..., 0]
            verts[pick] = v
        ok = np.isfinite(verts).all(axis=(1, 2))
        # The mesh must reproduce the GT skeleton (same model, same tips); otherwise it is not the GT mesh.
        right = self.models.get("right") or next(iter(self.models.values()))
        with torch.no_grad():
            j = right.joints_from_vertices(torch.as_tensor(np.nan_to_num(verts), dtype=torch.float32)).double().numpy()
        gt = batch["joints3d"].double().cpu().numpy()
        valid = batch["joints3d_valid"].cpu().numpy() > 0.5
        err = np.where(valid, np.linalg.norm(j - gt, axis=-1), 0.0).max(axis=1)
        bad = ok & (err > MESH_CHECK_TOL_M)
        self.num_mismatched += int(bad.sum())
        ok &= ~bad
        verts[~ok] = np.nan
        return verts, ok


def _world_mano_path(root: Path) -> tuple[str | None, str]:
    """The hand-model file the world was generated with (None = stand-in) and a description."""
    path = root / fmt.WORLD_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None, f"{path} unreadable; assuming the built-in stand-in hand model"
    mano = (record.get("config") or {}).get("mano_path")
    return mano, str(record.get("hand_model", "built-in stand-in (not MANO)" if mano is None else mano))


def _synthetic_data(root: Path, split: str, image_size: int | None, protocol: str) -> EvalData:
    if not (root / split / fmt.ANNOTATIONS_FILE).is_file():
        available = sorted(p.parent.name for p in root.glob(f"*/{fmt.ANNOTATIONS_FILE}"))
        if available:
            raise ConfigError(f"synthetic world {root} has no split {split!r}; available: {', '.join(available)}")
    ann = fmt.load_annotations(root, split)
    n = len(ann["index"])
    if n == 0:
        raise DataFileError(root / split / fmt.ANNOTATIONS_FILE, "split has no samples")
    has_object = bool(ann["has_object"].all())
    image = "hoi" if has_object else "hand"
    ds = SyntheticHandDataset(root, split, image=image, labels=True, out_size=image_size)
    size = int(ds[0]["image"].shape[-1]) if image_size is None else int(image_size)
    notes = [] if has_object else [f"split {split!r} has no objects: the input is the hand-only image"]
    mano, desc = _world_mano_path(root)
    data = EvalData(SYNTHETIC, protocol, split, root, ds, size,
                    crop=f"the world's rendered image ('{image}'; a crop around the hand by construction), "
                         f"resized to {size} px", notes=notes,
                    settings={"image": image, "world_hand_model": desc, "skeleton": "mesh"}, skeleton="mesh")
    if get_protocol(protocol).uses_verts:
        if mano is not None and not Path(mano).expanduser().exists():
            data.mesh_note = f"no mesh metrics: the world's hand model {mano} is not available here"
        else:
            data.gt_mesh = _SyntheticMeshGT(ann, mano)
            data.mesh_note = f"GT meshes re-posed from the stored MANO parameters with the world's hand model ({desc})"
    return data


def _real_hand_model(mano_path: str | None) -> Any | None:
    """A real MANO model for GT meshes of real datasets, or None (the stand-in cannot pose their labels)."""
    if mano_path is None:
        return None

    model = HandModel(mano_path, side="right")
    return None if model.is_standin else model


def _real_data(entry: DatasetEntry, root: Path, split: str | None, protocol: str, image_size: int,
               mano_path: str | None, options: Mapping[str, Any]) -> EvalData:
    proto = get_protocol(protocol)
    model = _real_hand_model(mano_path) if proto.uses_verts else None
    setup = entry.loader.evaluation_setup(root, split or entry.eval_split, split is not None, proto.name, model, dict(options))
    ds = entry.loader(root, setup.split, out_size=image_size, **setup.options)
    if len(ds) == 0:
        raise DataFileError(root, f"no {entry.name} samples in split {setup.split!r}")
    hidden = ("hands_mean", "mano_root_joint", "transform")
    settings: dict[str, Any] = {k: v for k, v in setup.options.items() if k not in hidden}
    settings.update(crop_scale=ds.crop_scale, crop_source=ds.crop_source, flip_left=ds.flip_left)
    settings.update(ds.evaluation_settings())
    skeleton = getattr(ds, "skeleton", None) or entry.skeleton
    settings["skeleton"] = skeleton or "the estimator's own (labels follow neither MANO definition)"
    data = EvalData(entry.name, proto.name, ds.split, root, ds, image_size,
                    crop=(f"the loader's square crop around the ground-truth hand (box if the dataset gives one, "
                          f"else GT 2D keypoints, else the hand mask; scale {ds.crop_scale:g}), resized to "
                          f"{image_size} px — the standard GT-based crop of these benchmarks"),
                    root_is_palm=setup.root_is_palm, notes=list(setup.notes), settings=_plain(settings), skeleton=skeleton)
    if proto.uses_verts:
        if model is None:
            data.mesh_note = ("no mesh metrics: GT meshes of real datasets need the MANO model (--mano PATH); "
                              "the built-in stand-in cannot pose their labels")
        else:
            data.gt_mesh = _ManoMeshGT(model)
            data.mesh_note = f"GT meshes posed from the dataset's MANO parameters with {model.source_path}"
    return data


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, np.generic):
        return x.item()
    return x if isinstance(x, (str, int, float, bool, type(None))) else repr(x)


def build_eval_data(dataset: str, root: str | Path, split: str | None = None, *, protocol: str | None = None,
                    image_size: int | None = DEFAULT_IMAGE_SIZE, mano_path: str | None = None,
                    dataset_options: Mapping[str, Any] | None = None) -> EvalData:
    """Resolve ``dataset`` (a registered name or alias) on ``root`` into an :class:`EvalData`.

    Args:
        dataset: a name or alias of the dataset registry (:mod:`hoi_adapt.data.registry`).
        root: the dataset root (synthetic: the world folder).
        split: None = the dataset's evaluation split (its registry entry).
        protocol: None = the dataset's protocol; otherwise any ``evaluate_protocol`` name.
        image_size: network input size; None keeps the stored size (synthetic only).
        mano_path: MANO model for GT meshes of real datasets (FreiHAND, HO-3D).
        dataset_options: extra loader keyword arguments (e.g. ``{"camera": "BB"}`` for STB).
    """
    entry = dataset_entry(dataset)
    root_p = Path(root).expanduser()
    if not root_p.is_dir():
        raise DataFileError(root_p, f"{entry.name} root folder not found", "pass --root the folder that holds the dataset")
    root_p = root_p.resolve()
    try:
        proto = get_protocol(protocol or entry.protocol).name
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if entry.name == SYNTHETIC:  # GT meshes come from the world's own hand model, not from a MANO file
        if dataset_options:
            raise ConfigError(f"dataset options {sorted(dataset_options)} are not used by the synthetic world")
        return _synthetic_data(root_p, split or entry.eval_split, image_size, proto)
    return _real_data(entry, root_p, split, proto, int(image_size or DEFAULT_IMAGE_SIZE), mano_path,
                      dataset_options or {})


# ---------------------------------------------------------------------------------------------------------
# Prediction collection
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Collected:
    """Predictions and ground truth of the evaluated samples, in loader order (metres, OpenPose)."""

    pred_joints: np.ndarray  # (N, 21, 3)
    gt_joints: np.ndarray  # (N, 21, 3)
    gt_valid: np.ndarray  # (N, 21) bool
    sequences: np.ndarray  # (N,) str
    indices: np.ndarray  # (N,) dataset indices
    pred_verts: np.ndarray | None = None  # (N, V, 3)
    gt_verts: np.ndarray | None = None  # (N, W, 3), NaN where no GT mesh
    mesh_note: str = ""  # why meshes were not collected, if they were wanted
    detected: np.ndarray | None = None  # (N,) bool when the predictor may find no hand (a detector-based peer)

    def subset(self, keep: np.ndarray) -> Collected:
        pick = (lambda a: None if a is None else a[keep])
        return Collected(self.pred_joints[keep], self.gt_joints[keep], self.gt_valid[keep], self.sequences[keep],
                         self.indices[keep], pick(self.pred_verts), pick(self.gt_verts), self.mesh_note,
                         pick(self.detected))


def select_indices(n: int, limit: int | None) -> np.ndarray:
    """The samples evaluated: all, or ``limit`` evenly spaced ones (so every sequence is represented)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}")
    return np.unique(np.round(np.linspace(0, n - 1, int(limit))).astype(np.int64))


def collect(data: EvalData, predict: PredictFn, *, batch_size: int = 32, num_workers: int = 0,
            limit: int | None = None, want_verts: bool | None = None, progress: bool = False,
            desc: str = "evaluate") -> Collected:
    """Run ``predict`` over the dataset and gather predictions with their ground truth.

    ``predict(batch)`` gets the collated schema batch and returns at least ``joints3d`` (B, 21, 3) in the
    batch's camera frame; ``vertices`` (B, V, 3) too when meshes are scored (``want_verts``; default:
    when the protocol uses vertices and the data has GT meshes). A predictor that can miss a hand (a
    detector) also returns ``detected`` (B,) bool; :func:`score` then scores the detected frames and counts
    the missed ones as failures in the PCK curves.
    """
    from tqdm.auto import tqdm

    n = len(data.dataset)  # type: ignore[arg-type]
    if n == 0:
        raise DataFileError(data.root, f"the {data.name} split {data.split!r} is empty")
    idx = select_indices(n, limit)
    if want_verts is None:
        want_verts = get_protocol(data.protocol).uses_verts and data.gt_mesh is not None
    subset: Dataset = data.dataset if len(idx) == n else Subset(data.dataset, idx.tolist())
    loader = DataLoader(subset, batch_size=max(1, int(batch_size)), shuffle=False, num_workers=int(num_workers))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("pred", "gt", "valid", "seq", "pv", "gv", "det")}
    if isinstance(data.gt_mesh, _SyntheticMeshGT):
        data.gt_mesh.num_mismatched = 0
    note = ""
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not progress):
        out = predict(batch)
        if "joints3d" not in out:
            raise ValueError("the predictor returned no 'joints3d'")
        parts["pred"].append(out["joints3d"].detach().double().cpu().numpy())
        parts["gt"].append(batch["joints3d"].double().numpy())
        valid = (batch["joints3d_valid"] * batch["has_3d"][:, None]).numpy() > 0.5
        parts["valid"].append(valid)
        parts["seq"].append(np.asarray([str(s) for s in batch["sequence"]]))
        if "detected" in out:
            parts["det"].append(np.asarray(out["detected"], dtype=bool).reshape(-1))
        if want_verts and data.gt_mesh is not None and "vertices" not in out:
            want_verts, note = False, "no mesh metrics: the predictor returns no vertices"
        if want_verts and data.gt_mesh is not None:
            parts["pv"].append(out["vertices"].detach().float().cpu().numpy())
            gv, _ = data.gt_mesh(batch)
            parts["gv"].append(gv.astype(np.float32))
    if parts["det"] and len(parts["det"]) != len(parts["pred"]):
        raise ValueError("the predictor returned 'detected' for some batches only")
    col = Collected(np.concatenate(parts["pred"]), np.concatenate(parts["gt"]), np.concatenate(parts["valid"]),
                    np.concatenate(parts["seq"]), idx, mesh_note=note,
                    detected=np.concatenate(parts["det"]) if parts["det"] else None)
    if parts["pv"] and want_verts:
        col.pred_verts, col.gt_verts = np.concatenate(parts["pv"]), np.concatenate(parts["gv"])
    return col


# ---------------------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------------------
ROOT_ONLY_NOTE = ("only the root (wrist) joint is annotated in this split (as in the original HO-3D evaluation "
                  "release): reported is the absolute root position error; per-joint and mesh metrics need the "
                  "released evaluation ground truth or a CodaLab submission (or evaluate --split train)")


def is_root_only(valid: np.ndarray) -> bool:
    """True when ground truth exists for joint 0 only (HO-3D evaluation meta files)."""
    return bool(valid[:, 0].any() and not valid[:, 1:].any())


def _root_only_core(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, grid: Any) -> dict[str, Any]:
    v = valid[:, :1]
    err, ve = joint_errors_mm(pred[:, :1], gt[:, :1], v)
    st = keypoint_stats(err, ve, grid, "per_keypoint")
    used = int(v.sum())
    return {"metrics": {"root_mpjpe_mm": st.mean_mm, "root_median_mm": st.median_mm, "root_auc": st.auc},
            "pck": {"root": list(st.pck)}, "num_frames": int(len(pred)), "num_evaluated_frames": used,
            "num_skipped_frames": int(len(pred) - used), "num_valid_joints": used}


def _root_only_result(protocol: str, col: Collected) -> dict[str, Any]:
    """Protocol-shaped result of the absolute root error (for splits whose GT is the root only)."""
    proto = get_protocol(protocol)
    grid = get_grid(proto.grid)
    core = _root_only_core(col.pred_joints, col.gt_joints, col.gt_valid, grid)
    res: dict[str, Any] = {
        "protocol": proto.name,
        "description": f"{proto.description} ROOT ONLY: absolute wrist position error in the camera frame.",
        "threshold_grid": grid.name, "threshold_grid_source": grid.source, "thresholds_mm": list(grid.thresholds_mm),
        "pck_mode": "per_keypoint", "primary_metric": "root_mpjpe_mm",
        "settings": {"joint_order": proto.joint_order, "units": "mm", "ground_truth": "root joint only"},
        "metrics": core["metrics"], "pck": core["pck"], "pck_modes": {"root": "per_keypoint"},
        **{k: core[k] for k in ("num_frames", "num_evaluated_frames", "num_skipped_frames", "num_valid_joints")},
    }
    per_seq = {}
    for s in sorted(set(col.sequences.tolist())):
        m = col.sequences == s
        c = _root_only_core(col.pred_joints[m], col.gt_joints[m], col.gt_valid[m], grid)
        per_seq[s] = {k: v for k, v in c.items() if k != "pck"}
    res["per_sequence"] = per_seq
    return res


def score(data: EvalData, col: Collected, per_frame: bool = False) -> dict[str, Any]:
    """The protocol result of ``col`` plus the dataset's metadata (counts, crop note, notes, settings).

    ``per_frame`` adds ``per_frame``: each frame's dataset index and root-relative / Procrustes-aligned error
    (:func:`~hoi_adapt.eval.breakdown.per_frame_errors`), for breakdowns such as error by occlusion.
    """
    if col.detected is not None:
        return _score_detections(data, col, per_frame)
    valid = col.gt_valid
    if not valid.any():
        raise DataFileError(data.root, f"no 3D ground truth among the evaluated {data.name} samples of split "
                                       f"{data.split!r}", "this split may be unlabelled (e.g. a challenge test set)")
    notes = list(data.notes)
    if is_root_only(valid):
        res = _root_only_result(data.protocol, col)
        notes.append(ROOT_ONLY_NOTE)
        mesh_note = "no mesh metrics (root-only ground truth)"
    else:
        kw: dict[str, Any] = {}
        mesh_note = col.mesh_note or data.mesh_note
        if col.pred_verts is not None and col.gt_verts is not None:
            if np.isfinite(col.gt_verts).all(axis=(1, 2)).any():
                kw.update(pred_verts=col.pred_verts, gt_verts=col.gt_verts)
            else:
                mesh_note = "no mesh metrics: no evaluated sample has a GT mesh"
        if isinstance(data.gt_mesh, _SyntheticMeshGT) and data.gt_mesh.num_mismatched:
            notes.append(f"{data.gt_mesh.num_mismatched} GT meshes did not reproduce the stored GT joints "
                         f"(> {MESH_CHECK_TOL_M * 1e3:g} mm) and were left out of the mesh metrics")
        res = evaluate_protocol(data.protocol, col.pred_joints, col.gt_joints, valid, sequences=col.sequences,
                                root_is_palm=data.root_is_palm, **kw)
    res.update({
        "dataset": data.name, "dataset_root": str(data.root), "split": data.split, "input_size": data.input_size,
        "crop": data.crop, "dataset_settings": data.settings, "mesh": mesh_note, "notes": notes,
        "num_samples": int(len(col.pred_joints)),
    })
    if per_frame:
        errors = per_frame_errors(col.pred_joints, col.gt_joints, valid)
        res["per_frame"] = {"index": col.indices.tolist(), **{k: v.tolist() for k, v in errors.items()}}
    return res


def _score_detections(data: EvalData, col: Collected, per_frame: bool) -> dict[str, Any]:
    """Score a predictor that may miss hands: metrics on the detected frames, misses as failures in the PCK.

    ``metrics`` are the protocol's on the detected frames, plus ``detection_rate`` and, per PCK variant,
    ``<variant>_auc_with_misses``; ``pck`` holds the curves with every joint of a missed frame counted as beyond
    every threshold (so a plot shows what a user gets over all images), ``pck_detected`` the detected-only
    ones. The with-misses curves scale the detected curves by the detected share of the valid joints, which
    is exact when each frame has the same valid joints (synthetic data) and a close approximation otherwise.
    """
    detected = np.asarray(col.detected, dtype=bool)
    if detected.any():
        res = score(data, replace(col.subset(detected), detected=None), per_frame)
    else:  # the protocol's layout (scored on the placeholder predictions), with no figure of the detected frames
        res = score(data, replace(col, detected=None), per_frame)
        res["metrics"] = {k: None for k in res["metrics"]}
        res.pop("per_sequence", None)
        if per_frame:
            res["per_frame"] = {"index": [], **{k: [] for k in res["per_frame"] if k != "index"}}
    valid_all = int(col.gt_valid.sum())
    share = int(col.gt_valid[detected].sum()) / valid_all if valid_all else 0.0
    grid = np.asarray(res["thresholds_mm"], dtype=np.float64)
    res["pck_detected"] = res["pck"] if detected.any() else {}
    res["pck"] = {k: [float(p) * share for p in curve] for k, curve in res["pck"].items()}
    for variant, curve in res["pck"].items():
        res["metrics"][f"{variant}_auc_with_misses"] = auc(curve, grid)
    res["metrics"]["detection_rate"] = float(detected.mean())
    res.update({"num_samples": int(len(detected)), "num_detected": int(detected.sum()),
                "num_missed": int((~detected).sum())})
    res["notes"] = [*res["notes"], f"a hand was detected in {int(detected.sum())} of {len(detected)} samples "
                                   f"({100 * detected.mean():.1f}%): metrics are over the detected samples; "
                                   "the PCK curves count every missed sample as a failure"]
    if per_frame:
        res["per_frame"]["missed_index"] = col.indices[~detected].tolist()
    return res


# ---------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------
_META_LINES = (("checkpoint", "checkpoint"), ("checkpoint_sha256", "sha256"), ("checkpoint_kind", "kind"),
               ("adapt", "adapted pipeline"), ("dataset_root", "dataset root"), ("split", "split"),
               ("input_size", "input size (px)"), ("num_samples", "samples"), ("sample_selection", "selection"),
               ("crop", "input crop"), ("mesh", "meshes"))


def _run_section(rows: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["## Run details", ""]
    for label, r in rows.items():
        lines.append(f"### {label}")
        lines.append("")
        for key, name in _META_LINES:
            if r.get(key) not in (None, ""):
                value = f"`{r[key]}`" if key in ("checkpoint", "checkpoint_sha256", "dataset_root") else r[key]
                lines.append(f"- {name}: {value}")
        settings = {**r.get("settings", {}), **{f"loader.{k}": v for k, v in r.get("dataset_settings", {}).items()}}
        if settings:
            lines.append("- settings: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
        for note in r.get("notes", []):
            lines.append(f"- **note**: {note}")
        lines.append("")
    return "\n".join(lines)


def _per_sequence_csv(rows: Mapping[str, Mapping[str, Any]]) -> str:
    keys: list[str] = []
    for r in rows.values():
        for s in (r.get("per_sequence") or {}).values():
            keys += [k for k in s["metrics"] if k not in keys]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "sequence", "num_frames", "num_skipped_frames", "num_valid_joints", *keys])
    for label, r in rows.items():
        for seq, s in (r.get("per_sequence") or {}).items():
            w.writerow([label, seq, s.get("num_frames"), s.get("num_skipped_frames"), s.get("num_valid_joints"),
                        *[_csv_num(s["metrics"].get(k)) for k in keys]])
    return buf.getvalue()


def _csv_num(x: Any) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return ""
    return f"{float(x):.6g}"


IDENTITY_FIELDS: tuple[str, ...] = ("dataset", "root", "split", "protocol", "selection", "input_size", "models")
"""What makes two evaluations the same result (``identity`` in ``<dataset>.json``)."""


def evaluation_identity(data: EvalData, selection: str, models: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Which evaluation a folder holds: the data, the sample selection and each row's checkpoint (sha256, adapt)."""
    return {"dataset": data.name, "root": str(data.root), "split": data.split, "protocol": data.protocol,
            "selection": selection, "input_size": data.input_size, "models": {k: dict(v) for k, v in models.items()}}


def check_out_dir(out_dir: str | Path, name: str, identity: Mapping[str, Any], overwrite: bool = False) -> None:
    """Refuse to replace a different evaluation's ``<name>.json`` (and its table and plots) in ``out_dir``.

    Runs before any prediction, so a refused run costs nothing. A result written before evaluations
    recorded their identity counts as different.
    """
    path = Path(out_dir) / f"{name}.json"
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("identity") or {}
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        recorded = {}
    check_same_result(out_dir, recorded, identity, IDENTITY_FIELDS, what=f"{name} evaluation", overwrite=overwrite)


def write_evaluation(rows: Mapping[str, Mapping[str, Any]], out_dir: str | Path, name: str,
                     compare_published: bool = False, identity: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """JSON (every number, and ``identity``), markdown table (+ run details), PCK PNG and per-sequence CSV.

    Returns the paths. Callers check the folder first (:func:`check_out_dir`).
    """
    first = next(iter(rows.values()))
    comparison = comparison_rows(first["protocol"]) if compare_published else None
    paths = write_results(dict(rows), out_dir, name, comparison=comparison, identity=identity)
    md = paths["md"].read_text(encoding="utf-8").rstrip("\n") + "\n\n" + _run_section(rows)
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(md, encoding="utf-8")
    paths["csv"] = Path(out_dir) / f"{name}_per_sequence.csv"
    with atomic_path(paths["csv"]) as tmp:
        tmp.write_text(_per_sequence_csv(rows), encoding="utf-8")
    return paths


def default_out_dir(dataset: str, spec: ModelSpec, base: str | Path = "outputs/eval") -> Path:
    """``outputs/eval/<dataset>_<ckpt stem>_<sha256[:8]>[_adapt]/``.

    The checkpoint's digest is in the name because runs name their checkpoints alike (``last.ckpt``):
    evaluating another run's checkpoint gets its own folder instead of replacing the earlier result.
    """
    if is_onnx_export(spec.ckpt):
        return Path(base) / f"{dataset}_{Path(spec.ckpt).name}_onnx_{spec.precision}{'_adapt' if spec.adapt else ''}"
    digest = checkpoint_sha256(spec.ckpt)[:8] if Path(spec.ckpt).is_file() else "missing"
    return Path(base) / f"{dataset}_{Path(spec.ckpt).stem}_{digest}{'_adapt' if spec.adapt else ''}"


# ---------------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------------
def checkpoint_info(ckpt: str | Path) -> tuple[str, int | None]:
    """(kind, recorded training input size or None) of a checkpoint, validating it (one read).

    The size is looked up where ``hoi-adapt predict`` looks: hoi_adapt metadata ``input_size``/``image_size``,
    then the datamodule's / module's ``image_size`` hyper-parameter.
    """
    c = read_checkpoint(ckpt)
    return str((c.get(CHECKPOINT_KEY) or {}).get("kind", "unknown")), checkpoint_input_size(c)


def _predictor_fn(predictor: torch.nn.Module, device: str | torch.device) -> PredictFn:
    def predict(batch: Mapping[str, Any]) -> Mapping[str, torch.Tensor]:
        return predictor(batch["image"].to(device), batch["K"].to(device))

    return predict


def evaluate_predict_fn(
    predict: PredictFn, dataset: str, root: str | Path, split: str | None = None, *, protocol: str | None = None,
    batch_size: int = 32, num_workers: int = 0, limit: int | None = None, image_size: int | None = DEFAULT_IMAGE_SIZE,
    mano_path: str | None = None, dataset_options: Mapping[str, Any] | None = None, progress: bool = False,
    out_dir: str | Path | None = None, label: str = "model", compare_published: bool = False, overwrite: bool = False,
    per_frame: bool = False,
) -> dict[str, Any]:
    """Evaluate any ``predict(batch)`` callable (see :func:`collect`); writes files when ``out_dir`` is given.

    A different evaluation already in ``out_dir`` is refused unless ``overwrite`` (a callable has no
    checkpoint digest: its identity is its label, the data and the selection).
    """
    data = build_eval_data(dataset, root, split, protocol=protocol, image_size=image_size, mano_path=mano_path,
                           dataset_options=dataset_options)
    selection = _selection_text(len(data.dataset), limit)  # type: ignore[arg-type]
    identity = evaluation_identity(data, selection, {label: {"checkpoint_sha256": None, "adapt": None}})
    if out_dir is not None:
        check_out_dir(out_dir, data.name, identity, overwrite)
    col = collect(data, predict, batch_size=batch_size, num_workers=num_workers, limit=limit, progress=progress)
    res = score(data, col, per_frame)
    res["sample_selection"] = selection
    if out_dir is not None:
        paths = write_evaluation({label: res}, out_dir, data.name, compare_published, identity)
        res["files"] = {k: str(v) for k, v in paths.items()}
    return res


def _selection_text(n: int, limit: int | None) -> str:
    if limit is None or limit >= n:
        return f"all {n} samples"
    return f"{len(select_indices(n, limit))} of {n} samples, evenly spaced (limit={limit})"


def evaluate_checkpoints(
    models: Sequence[ModelSpec], dataset: str, root: str | Path, split: str | None = None, *,
    out_dir: str | Path | None = None, batch_size: int = 32, device: str = "cpu", limit: int | None = None,
    num_workers: int = 0, mano_path: str | None = None, compare_published: bool = False,
    protocol: str | None = None, image_size: int | None = None, dataset_options: Mapping[str, Any] | None = None,
    progress: bool = True, overwrite: bool = False, peers: Sequence[str] = (), peer_options: Mapping[str, Any] | None = None,
    per_frame: bool = False,
) -> dict[str, Any]:
    """Several models on one dataset (one table, one plot). Returns ``{"rows": {label: result}, "files": ...}``.

    ``peers`` (names of :data:`hoi_adapt.eval.peer.PEERS`) add rows for other methods run on the same crops,
    after the checkpoints; ``peer_options`` go to their predictor (e.g. ``upscale_to``). ``per_frame`` adds each
    row's per-frame errors (see :func:`score`).

    ``image_size`` None: the first checkpoint's recorded training input size, else 128 (synthetic worlds:
    the same rule). ``--adapt`` with an estimator checkpoint, missing or foreign checkpoints raise
    :class:`~hoi_adapt.utils.errors.CheckpointError` before any data is read. ``out_dir`` holding a
    different evaluation (other checkpoints, data or selection) is refused before any prediction unless
    ``overwrite``; the same evaluation is refreshed in place.
    """
    if not models and not peers:
        raise ConfigError("no checkpoint or peer to evaluate")
    peer_labels = [peer_label(name) for name in peers]
    peer_fns = [peer_predict_fn(name, **(peer_options or {})) for name in peers]  # a missing peer fails here, first
    labels = unique_labels(models)
    resolved = [resolve_model(m.ckpt, m.adapt) for m in models]
    infos = [checkpoint_info(ckpt) for ckpt, _ in resolved]  # validates every checkpoint before any data is read
    for spec, (kind, _) in zip(models, infos, strict=True):
        if spec.adapt and kind != "adapt":
            raise CheckpointError(spec.ckpt, f"--adapt needs an adaptation checkpoint; this checkpoint's kind is "
                                             f"{kind!r}")
    kinds = [kind for kind, _ in infos]
    if image_size is None:
        image_size = (infos[0][1] if infos else None) or DEFAULT_IMAGE_SIZE
    data = build_eval_data(dataset, root, split, protocol=protocol, image_size=image_size, mano_path=mano_path,
                           dataset_options=dataset_options)
    rows: dict[str, dict[str, Any]] = {}
    selection = _selection_text(len(data.dataset), limit)  # type: ignore[arg-type]
    digests = [checkpoint_sha256(ckpt) for ckpt, _ in resolved]
    identity = evaluation_identity(data, selection, {**{label: {"checkpoint_sha256": sha, "adapt": bool(spec.adapt),
                                                                **({"onnx": spec.precision} if onnx else {})}
                                                        for spec, label, sha, (_, onnx) in zip(models, labels, digests, resolved, strict=True)},
                                                     **{label: {"peer": label, "options": dict(peer_options or {})}
                                                        for label in peer_labels}})
    if out_dir is not None:
        check_out_dir(out_dir, data.name, identity, overwrite)
    for spec, label, kind, sha, (ckpt, onnx) in zip(models, labels, kinds, digests, resolved, strict=True):
        predictor = load_model_predictor(ckpt, onnx, spec.adapt, mano_path, device, data.skeleton, spec.precision)
        col = collect(data, _predictor_fn(predictor, device), batch_size=batch_size, num_workers=num_workers,
                      limit=limit, progress=progress, desc=f"{label} on {data.name}/{data.split}")
        bad = int((~np.isfinite(col.pred_joints).all(axis=(1, 2))).sum())
        if bad:
            raise CheckpointError(spec.ckpt, f"the model predicted non-finite joints for {bad} of "
                                             f"{len(col.pred_joints)} samples (diverged weights?)")
        res = score(data, col, per_frame)
        res.update({"label": label, "checkpoint": str(ckpt.resolve()),
                    "runtime": f"onnxruntime {spec.precision} ({onnx})" if onnx else "torch",
                    "checkpoint_sha256": sha, "checkpoint_kind": kind,
                    "adapt": bool(spec.adapt), "sample_selection": selection,
                    "hand_model": str(getattr(predictor.estimator.hand_model, "source_path", ""))})
        rows[label] = res
        del predictor
    for name, label, peer_fn in zip(peers, peer_labels, peer_fns, strict=True):
        col = collect(data, peer_fn, batch_size=batch_size, num_workers=num_workers,
                      limit=limit, progress=progress, desc=f"{label} on {data.name}/{data.split}")
        res = score(data, col, per_frame)
        res.update({"label": label, "peer": name, "sample_selection": selection, "peer_options": dict(peer_options or {})})
        rows[label] = res
    out: dict[str, Any] = {"dataset": data.name, "protocol": data.protocol, "split": data.split, "rows": rows}
    if out_dir is not None:
        out["files"] = write_evaluation(rows, out_dir, data.name, compare_published, identity)
    return out


def evaluate_checkpoint(
    ckpt: str | Path, dataset: str, root: str | Path, split: str | None = None, adapt: bool = False,
    out_dir: str | Path | None = None, batch_size: int = 32, device: str = "cpu", limit: int | None = None,
    num_workers: int = 0, mano_path: str | None = None, compare_published: bool = False, label: str | None = None,
    *, protocol: str | None = None, image_size: int | None = None, dataset_options: Mapping[str, Any] | None = None,
    progress: bool = True, overwrite: bool = False,
) -> dict[str, Any]:
    """One checkpoint on one dataset: its result dict (see :func:`score`), plus ``files`` when written.

    ``out_dir`` None writes nothing (the CLI's default folder is :func:`default_out_dir`). See
    :func:`evaluate_checkpoints` for the other arguments.
    """
    spec = ModelSpec(Path(ckpt), adapt, label)
    out = evaluate_checkpoints([spec], dataset, root, split, out_dir=out_dir, batch_size=batch_size, device=device,
                               limit=limit, num_workers=num_workers, mano_path=mano_path,
                               compare_published=compare_published, protocol=protocol, image_size=image_size,
                               dataset_options=dataset_options, progress=progress, overwrite=overwrite)
    res = next(iter(out["rows"].values()))
    if "files" in out:
        res["files"] = {k: str(v) for k, v in out["files"].items()}
    return res


def oracle_prediction(batch: Mapping[str, Any], root_is_palm: bool = False) -> dict[str, torch.Tensor]:
    """The prediction of a perfect model for ``batch``: its GT joints, re-rooted at the wrist when the GT's
    joint 0 is STB's palm (our model always predicts a wrist-rooted skeleton). For sanity checks."""
    gt = batch["joints3d"].double().numpy()
    if root_is_palm:
        gt = replace_root(gt, wrist_from_palm(gt))
    return {"joints3d": torch.as_tensor(gt)}


__all__ = [
    "Collected", "EvalData", "ModelSpec", "ROOT_ONLY_NOTE", "build_eval_data",
    "collect", "default_out_dir", "evaluate_checkpoint", "evaluate_checkpoints", "evaluate_predict_fn",
    "checkpoint_info", "is_root_only", "oracle_prediction", "score", "select_indices",
    "unique_labels",
    "write_evaluation",
]

