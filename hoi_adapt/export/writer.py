"""The prediction writer of ``hoi-adapt export``: per batch, the sample files, then the batch's shard.

Order is the resume contract: images, masks, meshes and FreiHAND-variant JPEGs of a batch are written
first (each atomically), its annotation shard last. A batch without a committed shard is simply redone
on the next run, overwriting its files with the same bytes.

The resume tests kill an export between a batch's files and its shard (``tests/fault_injection.py``).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pytorch_lightning.callbacks import BasePredictionWriter

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.data.image_io import encode_jpeg, encode_png
from hoi_adapt.io.mesh_io import write_obj

MESH_COMMENTS: tuple[str, ...] = (
    "OpenCV camera frame of the exported image (x right, y down, z forward), metres; faces wound outward",
)


def write_batch(out: Path, pred: dict[str, Any], faces: np.ndarray | None = None, write_meshes: bool = False,
                freihand: bool = True) -> str:
    """Write one predicted batch into the export folder ``out``; returns the committed shard's path (relative).

    ``pred`` is :meth:`hoi_adapt.export.module.ExportModule.predict_step`'s output.
    """
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
        self.batches_written = 0
        self.samples_written = 0

    def write_on_batch_end(self, trainer: Any, pl_module: Any, prediction: Any, batch_indices: Sequence[int] | None,
                           batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        write_batch(self.out, prediction, self.faces, self.write_meshes, self.freihand)
        self.batches_written += 1
        self.samples_written += len(prediction["position"])


__all__ = ["ExportWriter", "write_batch"]
