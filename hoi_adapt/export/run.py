"""``export_dataset``: a trained pipeline over a whole dataset -> an adapted, pseudo-labelled copy on disk.

Steps (format: :mod:`hoi_adapt.data.formats.adapted`):

1. resolve the checkpoint (kind, sha256, input size) and the source stream (any loader name, or
   ``synthetic`` with the world folder as root; no augmentation);
2. check the output folder: never inside (or around) the source dataset, never a foreign non-empty folder,
   never over an export with other settings unless ``overwrite`` (the error names the folder, each differing
   field and ``--overwrite``; :func:`hoi_adapt.utils.results.check_same_result`, the rule every command follows);
3. skip samples whose batch shard is committed, group the rest in fixed batches and run ``trainer.predict``
   with :class:`~hoi_adapt.export.writer.ExportWriter` on every rank (DDP needs no other change);
4. after a barrier, rank 0 merges the shards (sorted by key) into ``annotations.npz``, writes the FreiHAND
   JSON lists, ``sheet.png`` and finally ``manifest.json``, then removes the shards.

Multi-node exports need ``out`` on a filesystem every node sees.
"""
from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hoi_adapt.checkpoints.format import CHECKPOINT_KEY
from hoi_adapt.checkpoints.load import checkpoint_input_size, checkpoint_sha256, read_checkpoint
from hoi_adapt.checkpoints.predictor import load_predictor
from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.data.formats import world as synth_fmt
from hoi_adapt.data.image_io import read_image, read_mask
from hoi_adapt.data.registry import SYNTHETIC, dataset_entry
from hoi_adapt.data.streams import StreamSpec, build_stream_dataset
from hoi_adapt.export.freihand import write_freihand_json
from hoi_adapt.export.module import ExportDataModule, ExportModule, make_groups
from hoi_adapt.export.sheet import SheetRow, write_sheet
from hoi_adapt.export.writer import ExportWriter
from hoi_adapt.hand.model import SKELETONS
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError
from hoi_adapt.utils.io import jsonable
from hoi_adapt.utils.results import check_same_result
from hoi_adapt.version import __version__
from hoi_adapt.viz.drawing import to_uint8

DEFAULT_IMAGE_SIZE = 128
SHEET_ROWS = 8
_NOISY_WARNINGS = ("Couldn't infer the batch indices", "does not have many workers", "isinstance(treespec, LeafSpec)")


# ------------------------------------------------------------------------------------------ source
@dataclass
class Source:
    """The source stream of an export and how it was resolved."""

    dataset: Dataset
    name: str
    root: Path
    split: str
    image: str
    options: dict[str, Any] = field(default_factory=dict)


def build_source(dataset: str, root: str | Path, split: str | None, image_size: int,
                 options: Mapping[str, Any] | None = None) -> Source:
    """The un-augmented stream a :class:`~hoi_adapt.data.streams.StreamSpec` builds for ``dataset``.

    Synthetic worlds export the hand-object image of the split (its hand-only image for splits without
    objects), with labels kept (they are stored as ``source_joints3d`` for checking the pseudo-labels).
    """
    entry = dataset_entry(dataset)
    name = entry.name
    root_p = Path(root).expanduser()
    if not root_p.is_dir():
        raise DataFileError(root_p, f"{name} root folder not found", "pass --root the folder that holds the dataset")
    root_p = root_p.resolve()
    split = split or entry.train_split
    options = dict(options or {})
    if name == SYNTHETIC:
        if options:
            raise ConfigError(f"dataset options {sorted(options)} are not used by the synthetic world")
        has_object = synth_fmt.load_annotations(root_p, split)["has_object"]
        image = "hoi" if bool(np.all(has_object)) else "hand"
        spec = StreamSpec(dataset="synthetic", split=split, root=str(root_p), image=image, labels=True, augment=False)
    else:
        image = "default"
        spec = StreamSpec(dataset=name, split=split, root=str(root_p), labels=True, augment=False, options=options)
    ds = build_stream_dataset(spec, None, int(image_size), transform=None, name="export")
    return Source(dataset=ds, name=name, root=root_p, split=split, image=image, options=options)


# ---------------------------------------------------------------------------------- output checks
def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_out_location(out: Path, source_root: Path) -> None:
    """Refuse an output folder inside (or equal to) the source dataset, or one that contains it."""
    if _within(out, source_root):
        raise ConfigError(f"--out {out} is inside the source dataset {source_root}; an export never writes into "
                          "its source: choose a folder outside it")
    if _within(source_root, out):
        raise ConfigError(f"the source dataset {source_root} lies inside --out {out}; choose another --out folder")


def existing_export(out: Path) -> dict[str, Any] | None:
    """The manifest of an export already in ``out``; None for a missing or empty folder.

    A non-empty folder without a manifest is somebody's data: refused, never written into.
    """
    if not out.exists():
        return None
    if not out.is_dir():
        raise DataFileError(out, "--out exists and is not a folder")
    if (out / fmt.MANIFEST_FILE).is_file():
        return fmt.read_manifest(out)
    if any(out.iterdir()):
        raise DataFileError(out, "folder exists, is not empty and holds no hoi_adapt export (no manifest.json); "
                                 "refusing to write into it", "choose a new or empty --out folder")
    return None


def _launch_rank() -> int:
    """Global rank from the launcher's environment before Lightning starts (0 for a plain process)."""
    for var in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        value = os.environ.get(var, "")
        if value.isdigit():
            return int(value)
    local = os.environ.get("LOCAL_RANK", "0")
    node = os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))
    return (int(local) if local.isdigit() else 0) + (int(node) if node.isdigit() else 0)


def _is_multi(devices: Any, num_nodes: int) -> bool:
    if num_nodes > 1:
        return True
    if isinstance(devices, int):
        return devices > 1 or devices == -1
    if isinstance(devices, (list, tuple)):
        return len(devices) > 1
    return str(devices) not in ("1", "auto")


# ----------------------------------------------------------------------------------------- manifest
def _base_manifest(*, ckpt: Path, sha: str, kind: str, source: Source, count: int, limit: int | None,
                   config: dict[str, Any], hand_model: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "complete": False, "count": int(count),
        "hoi_adapt_version": __version__,
        "checkpoint": {"path": str(ckpt), "sha256": sha, "kind": kind},
        "source": {"dataset": source.name, "root": str(source.root), "split": source.split, "image": source.image,
                   "size": len(source.dataset), "limit": limit, "options": jsonable(source.options)},  # type: ignore[arg-type]
        "config": jsonable(config),
        "hand_model": hand_model,
        "definitions": {
            "key": "position of the sample in the source stream, zero-padded to 8 digits (file stem)",
            "image": "adapted hand-only image G(x, R(E(x)))" if config["adapt"] else "the input crop itself (no translation)",
            "mask": fmt.MASK_DEFINITION, "confidence": fmt.CONFIDENCE_DEFINITION,
            "layout": "see hoi_adapt/data/formats/adapted.py",
        },
    }


def _summary(values: np.ndarray) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    q = np.quantile(v, [0.1, 0.5, 0.9]) if v.size else np.zeros(3)
    return {"mean": round(float(v.mean()) if v.size else 0.0, 6), "min": round(float(v.min()) if v.size else 0.0, 6),
            "p10": round(float(q[0]), 6), "median": round(float(q[1]), 6), "p90": round(float(q[2]), 6),
            "max": round(float(v.max()) if v.size else 0.0, 6)}


def _sheet_rows(out: Path, source: Source, ann: Mapping[str, np.ndarray], rows: int, adapt: bool) -> list[Any]:
    out_rows = []
    for i in range(min(rows, len(ann["key"]))):
        key = str(ann["key"][i])
        src = source.dataset[int(key)]["image"]
        out_rows.append(SheetRow(key=key, source=to_uint8(src), exported=read_image(out / fmt.image_relpath(key)),
                                 mask=read_mask(out / fmt.mask_relpath(key)), joints2d=ann["joints2d"][i],
                                 confidence=float(ann["confidence"][i]),
                                 first_joints2d=ann["first_joints2d"][i] if adapt else None))
    return out_rows


def finalize_export(out: Path, base: Mapping[str, Any], keys: list[str], source: Source, hand_model: Any,
                    sheet_rows: int = SHEET_ROWS) -> dict[str, Any]:
    """Merge shards -> annotations.npz, FreiHAND lists, sheet, manifest (rank 0 only)."""
    config = base["config"]
    merged, files = fmt.merge_shards(out, keys)
    files[fmt.ANNOTATIONS_FILE] = fmt.write_npz_atomic(out / fmt.ANNOTATIONS_FILE, merged)
    if config["freihand"]:
        files.update(write_freihand_json(out, merged, hand_model))
    if sheet_rows > 0:
        files[fmt.SHEET_FILE] = write_sheet(out / fmt.SHEET_FILE, _sheet_rows(out, source, merged, sheet_rows, config["adapt"]))
    n = len(keys)
    manifest = dict(base)
    manifest["complete"] = True
    manifest["counts"] = {"samples": n, "images": n, "masks": n, "meshes": n if config["write_meshes"] else 0,
                          "freihand_images": n if config["freihand"] else 0, "files": len(files) + 1}
    manifest["confidence"] = {"summary": _summary(merged["confidence"]), "mask_iou": _summary(merged["mask_iou"])}
    if config["adapt"]:
        manifest["confidence"]["skeleton_agreement"] = _summary(merged["skeleton_agreement"])
    manifest["files"] = dict(sorted(files.items()))
    fmt.write_manifest(out, manifest)
    fmt.remove_shards(out)
    return manifest


# ------------------------------------------------------------------------------------------- runner
def _barrier(trainer: Any) -> None:
    if trainer is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        trainer.strategy.barrier("hoi_adapt_export")


def export_dataset(ckpt: str | Path, dataset: str, root: str | Path, out: str | Path, split: str | None = None,
                   adapt: bool = True, batch_size: int = 16, limit: int | None = None, devices: Any = 1,
                   accelerator: str = "cpu", strategy: str | None = None, num_workers: int = 0,
                   write_meshes: bool = False, mano_path: str | None = None, progress: bool = True, *,
                   image_size: int | None = None, freihand: bool = True, dataset_options: Mapping[str, Any] | None = None,
                   num_nodes: int = 1, sheet_rows: int = SHEET_ROWS, overwrite: bool = False) -> dict[str, Any]:
    """Export ``dataset`` through the trained pipeline into ``out`` (resumable; DDP-ready).

    Args:
        ckpt: adaptation checkpoint (``adapt=True``: translated hand-only images) or, with ``adapt=False``,
            any checkpoint with an estimator (the input crops are exported with the estimator's pseudo-labels).
        dataset: a name or alias of the dataset registry (:mod:`hoi_adapt.data.registry`), ``adapted`` included.
        root: the dataset folder (synthetic: the world folder).
        out: export folder (new, empty, or an unfinished/finished export with the same settings; a different
            export there is refused unless ``overwrite``).
        split: None = the dataset's training split in the registry (``target_hoi`` for the synthetic world).
        adapt: run the adapted pipeline (E -> R -> G -> E).
        batch_size: samples per batch (and per shard).
        limit: export only the first ``limit`` samples.
        devices, accelerator, strategy, num_nodes: Lightning Trainer settings; several devices or nodes
            default to ``strategy="ddp"`` (gloo on CPU).
        num_workers: DataLoader workers per rank.
        write_meshes: also write ``meshes/<key>.obj``.
        mano_path: MANO folder/file replacing the checkpoint's hand model.
        progress: show Lightning's progress bar.
        image_size: network input size; None = the checkpoint's recorded size, else 128.
        freihand: also write the FreiHAND-style variant.
        dataset_options: extra keyword arguments of a real dataset's loader.
        sheet_rows: samples shown in ``sheet.png`` (0: no sheet).
        overwrite: replace a different export in ``out`` (its files are deleted first; other files stay).

    Returns:
        The manifest (as written) plus ``run``: this call's rank, predicted and skipped sample counts,
        wall time and samples per second (not written to disk, so reruns leave identical files).
    """
    t_start = time.time()
    for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0), ("sheet_rows", sheet_rows, 0),
                             ("num_nodes", num_nodes, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive integer or None, got {limit!r}")
    if image_size is not None and int(image_size) < 32:
        raise ConfigError(f"image_size must be >= 32 pixels, got {image_size}")
    ckpt = Path(ckpt).expanduser()
    out = Path(out).expanduser().resolve()
    ckpt_dict = read_checkpoint(ckpt)
    kind = str(ckpt_dict[CHECKPOINT_KEY].get("kind", "unknown"))
    if adapt and kind != "adapt":
        raise CheckpointError(ckpt, f"adapt=True needs an adaptation checkpoint, this checkpoint's kind is {kind!r} "
                                    "(export the input crops with its pseudo-labels with adapt=False / --no-adapt)")
    size = int(image_size or checkpoint_input_size(ckpt_dict) or DEFAULT_IMAGE_SIZE)
    del ckpt_dict
    source = build_source(dataset, root, split, size, dataset_options)
    check_out_location(out, source.root)
    count = len(source.dataset) if limit is None else min(int(limit), len(source.dataset))  # type: ignore[arg-type]
    if count == 0:
        raise DataFileError(source.root, f"the {source.name} split {source.split!r} has no samples")
    existing = existing_export(out)
    first_process = _launch_rank() == 0

    predictor = load_predictor(ckpt, adapt=adapt, mano_path=mano_path, device="cpu")
    hand_model = predictor.estimator.hand_model
    config = {"adapt": bool(adapt), "image_size": size, "write_meshes": bool(write_meshes), "freihand": bool(freihand),
              "mano_path": mano_path, "batch_size": batch_size, "devices": devices, "num_nodes": num_nodes,
              "accelerator": accelerator, "strategy": strategy, "num_workers": num_workers, "sheet_rows": sheet_rows}
    base = _base_manifest(ckpt=ckpt, sha=checkpoint_sha256(ckpt), kind=kind, source=source, count=count, limit=limit,
                          config=config, hand_model={**hand_model.describe(), "side": "right", "joint_order": "openpose",
                                                      "skeleton": predictor.skeleton, "skeleton_definition": SKELETONS[predictor.skeleton],
                                                      "pose": "absolute axis-angle (flat_hand_mean=True); FreiHAND variant: relative to hands_mean",
                                                      "freihand_skeleton": "kinematic (FreiHAND's definition)"})
    if check_same_result(out, existing, base, fmt.IDENTITY_FIELDS, what="export", overwrite=overwrite):
        if first_process:  # replacing a different export: none of its files may survive into the new one
            fmt.remove_export(out)
        existing = None
    keys = [fmt.sample_key(p) for p in range(count)]

    def run_info(rank: int, predicted: int, skipped: int, predict_seconds: float) -> dict[str, Any]:
        seconds = time.time() - t_start
        return {"global_rank": rank, "predicted": predicted, "skipped": skipped, "seconds": round(seconds, 3),
                "predict_seconds": round(predict_seconds, 3),
                "samples_per_second": round(predicted / predict_seconds, 3) if predicted and predict_seconds > 0 else None}

    if existing is not None and existing.get("complete"):  # finished earlier: nothing to predict
        if first_process:
            fmt.remove_stale_temp_files(out)
            fmt.remove_shards(out)
        return {**existing, "run": run_info(_launch_rank(), 0, count, 0.0)}

    if first_process:
        out.mkdir(parents=True, exist_ok=True)
        fmt.remove_stale_temp_files(out)
        fmt.write_manifest(out, base)
    done = {int(k) for k in fmt.finished_keys(out) if k.isdigit() and int(k) < count}

    groups = make_groups(count, batch_size, done)
    todo = sum(len(g) for g in groups)
    trainer = None
    t_predict = time.time()
    if groups:
        trainer = _predict(predictor, source, groups, out, hand_model, config, progress)
    predict_seconds = time.time() - t_predict
    is_zero = trainer.is_global_zero if trainer is not None else first_process
    rank = trainer.global_rank if trainer is not None else _launch_rank()
    _barrier(trainer)
    manifest: dict[str, Any] | None = None
    if is_zero:
        manifest = finalize_export(out, base, keys, source, hand_model, sheet_rows)
    _barrier(trainer)
    if manifest is None:
        manifest = fmt.read_manifest(out)
    return {**manifest, "run": run_info(rank, todo, len(done), predict_seconds)}


def _predict(predictor: Any, source: Source, groups: list[list[int]], out: Path, hand_model: Any,
             config: Mapping[str, Any], progress: bool) -> Any:
    import pytorch_lightning as pl

    strategy = config["strategy"] or ("ddp" if _is_multi(config["devices"], config["num_nodes"]) else "auto")
    writer = ExportWriter(out, hand_model.faces.detach().cpu().numpy(), config["write_meshes"], config["freihand"])
    module = ExportModule(predictor, keep_vertices=config["write_meshes"])
    data = ExportDataModule(source.dataset, groups, config["num_workers"])
    with warnings.catch_warnings():
        for text in _NOISY_WARNINGS:
            warnings.filterwarnings("ignore", message=f".*{re.escape(text)}")
        trainer = pl.Trainer(accelerator=config["accelerator"], devices=config["devices"], num_nodes=config["num_nodes"],
                             strategy=strategy, logger=False, enable_checkpointing=False, enable_model_summary=False,
                             enable_progress_bar=progress, use_distributed_sampler=False, inference_mode=True,
                             callbacks=[writer])
        trainer.predict(module, datamodule=data, return_predictions=False)
    return trainer


__all__ = ["export_dataset", "build_source", "finalize_export", "check_out_location", "existing_export"]
