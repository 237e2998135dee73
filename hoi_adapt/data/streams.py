"""Data streams: one dataset view each (a registered dataset, a split, which image, labels or not).

A stream spec is what a YAML config names; :func:`build_stream_dataset` turns it into a dataset through the
dataset registry (:mod:`hoi_adapt.data.registry`), the same way for training, export and evaluation.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from hoi_adapt.data.registry import SYNTHETIC, build_dataset, dataset_entry
from hoi_adapt.utils.errors import ConfigError


@dataclass
class StreamSpec:
    """One data stream.

    Attributes:
        dataset: ``"synthetic"`` or a real dataset name (``stb``, ``rhd``, ``freihand``, ``ho3d``, ``obman``, ...).
        split: split name (synthetic: ``source_hand``, ``source_pairs``, ``target_hoi``, ``target_val``,
            ``target_test``, ``source_hand_test``; real datasets: their own split names).
        root: dataset root; for synthetic streams None means the data module's ``world``.
        image: synthetic input image, ``"hand"`` or ``"hoi"``.
        pair: also load the paired hand-only image (synthetic pairs, ObMan).
        labels: expose pose labels (False = weak supervision: masks only).
        amodal_masks: expose full hand masks of hand-object images (synthetic only).
        limit: use at most this many samples.
        batch_size: per-stream batch size (None: the module default).
        augment: apply training augmentation.
        options: extra keyword arguments for a real dataset's constructor.
    """

    dataset: str = "synthetic"
    split: str = "source_hand"
    root: str | None = None
    image: str = "hand"
    pair: bool = False
    labels: bool = True
    amodal_masks: bool = False
    limit: int | None = None
    batch_size: int | None = None
    augment: bool = True
    options: dict[str, Any] = field(default_factory=dict)


LABEL_KEYS: tuple[str, ...] = ("joints3d", "joints2d", "joints3d_valid", "joints2d_valid", "mano_pose", "mano_betas", "mano_transl")
LABEL_FLAGS: tuple[str, ...] = ("has_3d", "has_2d", "has_mano")


def as_stream_spec(name: str, spec: Any) -> StreamSpec:
    """A validated :class:`StreamSpec` from a spec or a plain mapping (YAML); errors name the stream and key."""
    if isinstance(spec, Mapping):
        known = {f.name for f in fields(StreamSpec)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(f"stream {name!r}: unknown key(s) {unknown}; known keys: {sorted(known)}")
        spec = StreamSpec(**spec)
    if not isinstance(spec, StreamSpec):
        raise ConfigError(f"stream {name!r} must be a mapping of StreamSpec fields, got {type(spec).__name__}")
    try:
        spec = replace(spec, dataset=dataset_entry(spec.dataset).name)
    except ConfigError as exc:
        raise ConfigError(f"stream {name!r}: {exc}") from None
    if not [s for s in str(spec.split).split(",") if s.strip()]:
        raise ConfigError(f"stream {name!r}: 'split' is empty")
    if spec.image not in ("hand", "hoi"):
        raise ConfigError(f"stream {name!r}: image must be 'hand' or 'hoi', got {spec.image!r}")
    if spec.dataset == SYNTHETIC and spec.pair and spec.image != "hoi":
        raise ConfigError(f"stream {name!r}: pair=True pairs a hand-object input with its hand-only twin; set image: hoi")
    for key in ("batch_size", "limit"):
        value = getattr(spec, key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"stream {name!r}: {key} must be a positive integer or null, got {value!r}")
    if not isinstance(spec.options, Mapping):
        raise ConfigError(f"stream {name!r}: options must be a mapping, got {type(spec.options).__name__}")
    return spec


def hide_labels(sample: dict[str, Any]) -> dict[str, Any]:
    """Zero the pose labels of a schema sample and clear their flags (weak supervision: masks only)."""
    out = dict(sample)
    for key in LABEL_KEYS:
        out[key] = torch.zeros_like(sample[key])
    for key in LABEL_FLAGS:
        out[key] = torch.tensor(0.0)
    return out


class HiddenLabels(Dataset):
    """A real dataset seen without its pose labels (the synthetic dataset hides them itself)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return hide_labels(self.dataset[i])


def build_stream_dataset(spec: StreamSpec | Mapping[str, Any], world: str | Path | None, image_size: int,
                         transform: Any = None, name: str = "stream") -> Dataset:
    """The dataset a stream spec describes (several comma-separated splits are concatenated)."""
    spec = as_stream_spec(name, spec)
    splits = [s.strip() for s in spec.split.split(",") if s.strip()]
    parts = []
    for split in splits:
        if spec.dataset == SYNTHETIC:
            root = spec.root or world
            if root is None:
                raise ConfigError("a synthetic stream needs 'root' or the data module's 'world'")
            parts.append(build_dataset(SYNTHETIC, root, split, image=spec.image, pair=spec.pair, labels=spec.labels,
                                       amodal_masks=spec.amodal_masks, out_size=image_size, transform=transform, limit=spec.limit))
        else:
            if spec.root is None:
                raise ConfigError(f"stream on dataset {spec.dataset!r} needs 'root' (the dataset folder)")
            ds = build_dataset(spec.dataset, spec.root, split, out_size=image_size, transform=transform, **spec.options)
            if spec.limit is not None:
                ds = torch.utils.data.Subset(ds, range(min(spec.limit, len(ds))))
            parts.append(ds if spec.labels else HiddenLabels(ds))
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


def default_train_streams() -> dict[str, StreamSpec]:
    return {"hand_only": StreamSpec(split="source_hand", image="hand")}


def default_val_streams() -> dict[str, StreamSpec]:
    return {"hand_only": StreamSpec(split="source_hand_test", image="hand", augment=False)}


