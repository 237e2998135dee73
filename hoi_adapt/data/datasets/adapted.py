"""Exported adapted datasets (``hoi-adapt export``) read back as schema samples: a training stream.

``build_dataset("adapted", "<export folder>", "all")`` or ``StreamSpec(dataset="adapted", root=...,
split="all")``. The layout is :mod:`hoi_adapt.data.formats.adapted`; only finished exports are read.

Every label is a **pseudo-label** (predicted, not annotated): ``dataset`` is ``"adapted"``, the class
attribute ``PSEUDO_LABELS`` is True, ``sequence`` is ``"<source dataset>/<source sequence>"`` and
``frame`` the source frame. Per sample:

* ``image``: the exported image (the hand-only translation; the input crop for ``adapt=False`` exports);
* ``K``, ``joints3d``, ``joints2d`` (all 21 valid), MANO ``mano_pose`` (absolute), ``mano_betas``,
  ``mano_transl``: the pseudo-labels (``has_3d = has_2d = has_mano = 1``);
* masks: the exported mask is the final mesh's silhouette, i.e. the amodal hand. For a hand-only export it
  is also the visible hand (``hand_mask`` and ``hand_mask_full``, ``occlusion`` 0, ``is_hand_object`` 0);
  for an ``adapt=False`` export only ``hand_mask_full`` is set and the image keeps its source's
  ``is_hand_object`` (occlusion unknown, -1).

Options: ``min_confidence`` keeps only samples whose export confidence is at least that (a cheap filter
for noisy pseudo-labels); ``out_size`` defaults to the export's image size (no resampling).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry, RawRecord
from hoi_adapt.data.formats.adapted import read_export
from hoi_adapt.data.image_io import read_mask
from hoi_adapt.utils.errors import ConfigError, DataFileError


class AdaptedDataset(HandDataset):
    """An export of ``hoi-adapt export`` as schema samples (see module docstring).

    Args:
        root: the export folder (holding ``manifest.json``).
        split: ``"all"`` (alias ``"train"``): an export is one set of samples.
        min_confidence: drop samples whose confidence is below this value (0 keeps all).
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset` (``crop_source`` defaults to
            ``"full"``: the exported image is already the crop).
    """

    name = "adapted"
    SPLITS = {"all": "all", "train": "all"}
    PSEUDO_LABELS: ClassVar[bool] = True

    def __init__(self, root: str | Path, split: str = "all", *, min_confidence: float = 0.0, **kwargs: Any) -> None:
        root_p = Path(root).expanduser()
        if not root_p.is_dir():
            raise DataFileError(root_p, "adapted (export) folder not found", "pass the --out folder of 'hoi-adapt export'")
        manifest, arrays = read_export(root_p)
        size = int(manifest.get("config", {}).get("image_size", 128))
        if kwargs.get("out_size") is None:
            kwargs["out_size"] = size
        kwargs.setdefault("crop_source", "full")
        kwargs.setdefault("use_cache", False)
        super().__init__(root_p, split, **kwargs)
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ConfigError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = float(min_confidence)
        self.manifest = manifest
        # definition of the exported joints3d (exports before it was recorded hold the estimator's mesh skeleton)
        self.skeleton = str((manifest.get("hand_model") or {}).get("skeleton", "mesh"))
        self.adapt = bool(manifest.get("config", {}).get("adapt", True))
        self.stored_size = size
        keep = np.flatnonzero(arrays["confidence"] >= self.min_confidence)
        self._index = {k: v[keep] for k, v in arrays.items()}
        self._len = int(len(keep))
        if self._len == 0:
            raise DataFileError(self.root, f"no samples with confidence >= {self.min_confidence} "
                                           f"(of {len(arrays['confidence'])})")

    @property
    def keys(self) -> list[str]:
        return [str(k) for k in self._index["key"]]

    @property
    def confidence(self) -> np.ndarray:
        """(N,) export confidence of the samples served."""
        return self._index["confidence"]

    def _watched_paths(self) -> list[Path]:
        return [self.root / "manifest.json", self.root / "annotations.npz"]

    def _build_index(self) -> dict[str, np.ndarray]:  # pragma: no cover - the index is read in __init__
        raise NotImplementedError

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        key = str(ix["key"][i])
        pose = np.concatenate([ix["mano_global_orient"][i], ix["mano_hand_pose"][i]]).astype(np.float64)
        return RawRecord(
            image=self.root / "images" / f"{key}.png",
            K=ix["K"][i].astype(np.float64),
            joints3d=ix["joints3d"][i].astype(np.float64),
            joints2d=ix["joints2d"][i].astype(np.float64),
            order="openpose",
            mano_pose=pose,
            mano_betas=ix["mano_betas"][i].astype(np.float64),
            mano_transl=ix["mano_transl"][i].astype(np.float64),
            is_hand_object=0.0 if self.adapt else float(ix["source_is_hand_object"][i]),
            occlusion=0.0 if self.adapt else -1.0,
            sequence=f"{ix['source_dataset'][i]}/{ix['source_sequence'][i]}",
            frame=int(ix["source_frame"][i]),
            extra={"key": key, "mask_path": self.root / "masks" / f"{key}.png",
                   "files": [self.root / "masks" / f"{key}.png"]},
        )

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        mask = read_mask(rec.extra["mask_path"]) > 127
        if mask.shape != (height, width):
            raise DataFileError(rec.extra["mask_path"], f"mask is {mask.shape[1]}x{mask.shape[0]}, image {width}x{height}")
        return {"hand_mask": mask, "hand_mask_full": mask} if self.adapt else {"hand_mask_full": mask}

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        return [LayoutEntry("manifest.json", kind="file"), LayoutEntry("annotations.npz", kind="file"),
                LayoutEntry("images", count_glob="*.png"), LayoutEntry("masks", count_glob="*.png"),
                LayoutEntry("meshes", required=False, count_glob="*.obj"),
                LayoutEntry("freihand", required=False, note="FreiHAND-style variant")]


__all__ = ["AdaptedDataset"]
