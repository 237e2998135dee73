"""The prediction writer of ``hoi-adapt export``: per batch, the sample files, then the batch's shard.

Order is the resume contract: images, masks, meshes and FreiHAND-variant JPEGs of a batch are written
first (each atomically), its annotation shard last. A batch without a committed shard is simply redone
on the next run, overwriting its files with the same bytes.

Test hook (fault injection): ``HOI_ADAPT_EXPORT_FAULT="N:files"`` kills the process (SIGKILL, no cleanup)
in its N-th batch after the files are written but before the shard; ``"N:commit"`` right after the N-th
shard is committed. Used to check that an interrupted export resumes to identical output.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from pytorch_lightning.callbacks import BasePredictionWriter

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.data.image_io import encode_jpeg, encode_png
from hoi_adapt.utils.errors import ConfigError

FAULT_ENV = "HOI_ADAPT_EXPORT_FAULT"


def parse_fault(value: str | None) -> tuple[int, str] | None:
    """``"N:files"`` / ``"N:commit"`` -> (N, stage); None when unset."""
    if not value:
        return None
    count, _, stage = value.partition(":")
    stage = stage or "commit"
    if not count.strip().isdigit() or int(count) < 1 or stage not in ("files", "commit"):
        raise ConfigError(f"{FAULT_ENV}={value!r}: expected 'N:files' or 'N:commit' with N >= 1")
    return int(count), stage


def _die() -> None:  # pragma: no cover - runs in a killed subprocess
    if hasattr(signal, "SIGKILL"):
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)


def write_batch(out: Path, pred: dict[str, Any], faces: np.ndarray | None = None, write_meshes: bool = False,
                freihand: bool = True, fault_stage: str | None = None) -> str:
    """Write one predicted batch into the export folder ``out``; returns the committed shard's path (relative).

    ``pred`` is :meth:`hoi_adapt.export.module.ExportModule.predict_step`'s output.
    """
    from hoi_adapt.io.mesh_io import write_obj

    keys = [fmt.sample_key(p) for p in pred["position"]]
    paths: list[str] = []
    digests: list[str] = []

    def put(rel: str, data: bytes) -> None:
        paths.append(rel)
        digests.append(fmt.write_file(out, rel, data))

    for i, key in enumerate(keys):
        image, mask = pred["image"][i], pred["mask"][i]
        put(fmt.image_relpath(key), encode_png(image))
        put(fmt.mask_relpath(key), encode_png(mask))
        if write_meshes:
            if faces is None or "vertices" not in pred:
                raise ValueError("write_meshes needs vertices in the prediction and the hand model's faces")
            rel = fmt.mesh_relpath(key)
            write_obj(out / rel, pred["vertices"][i], faces, comments=(f"hoi_adapt export: sample {key}", *MESH_COMMENTS))
            paths.append(rel)
            digests.append(fmt.sha256_file(out / rel))
        if freihand:
            put(fmt.freihand_rgb_relpath(key), encode_jpeg(image, fmt.JPEG_QUALITY))
            put(fmt.freihand_mask_relpath(key), encode_jpeg(mask, fmt.JPEG_QUALITY))
    if fault_stage == "files":
        _die()

    shard: dict[str, np.ndarray] = {"key": fmt.str_array(keys)}
    for col, shape in fmt.FLOAT_COLUMNS.items():
        shard[col] = np.asarray(pred[col], dtype=np.float32).reshape(len(keys), *shape)
    for col in fmt.STR_COLUMNS[1:]:
        shard[col] = fmt.str_array(pred[col])
    for col in fmt.INT_COLUMNS:
        shard[col] = np.asarray(pred[col], dtype=np.int64).reshape(len(keys))
    shard["file_paths"] = fmt.str_array(paths)
    shard["file_sha256"] = fmt.str_array(digests)
    rel = fmt.shard_relpath(keys[0])
    fmt.write_file(out, rel, fmt.npz_bytes(shard))
    return rel


class ExportWriter(BasePredictionWriter):
    """Writes each predicted batch as it arrives (``write_interval="batch"``), on every rank.

    Args:
        out: the export folder.
        faces: (F, 3) hand-model faces (for meshes).
        write_meshes: also write ``meshes/<key>.obj``.
        freihand: also write the FreiHAND-variant JPEGs.
    """

    def __init__(self, out: str | Path, faces: np.ndarray | None = None, write_meshes: bool = False,
                 freihand: bool = True) -> None:
        super().__init__(write_interval="batch")
        self.out = Path(out)
        self.faces = None if faces is None else np.asarray(faces, dtype=np.int64)
        self.write_meshes = bool(write_meshes)
        self.freihand = bool(freihand)
        self.fault = parse_fault(os.environ.get(FAULT_ENV))
        self.batches_written = 0
        self.samples_written = 0

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Sequence[int] | None,
                           batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        stage = None
        if self.fault is not None and self.fault[0] == self.batches_written + 1:
            stage = self.fault[1]
        write_batch(self.out, prediction, self.faces, self.write_meshes, self.freihand,
                    fault_stage=stage if stage == "files" else None)
        self.batches_written += 1
        self.samples_written += len(prediction["position"])
        if stage == "commit":
            _die()


__all__ = ["ExportWriter", "write_batch", "FAULT_ENV", "parse_fault"]
