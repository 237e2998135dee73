"""LightningDataModule serving the method's data streams as a dict of loaders per step.

A *stream* is one dataset view: the synthetic world (any split, hand-only or hand-object image, with or
without labels) or a real dataset from :mod:`hoi_adapt.data.datasets`. Training gets one batch of every
stream per step (``{"hand_only": batch, "hoi": batch, ...}``), so real datasets can be mixed with or
replace the synthetic world purely by configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from hoi_adapt.data.augment import SampleAugment
from hoi_adapt.data.sampling import ResumableLoader, ResumableSampler, SeededSamples, stream_seed
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


COMBINED_MODES: tuple[str, ...] = ("max_size_cycle", "max_size", "min_size", "sequential")
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
    if spec.dataset != "synthetic":
        from hoi_adapt.data.datasets import dataset_class

        try:
            dataset_class(spec.dataset)
        except ConfigError as exc:
            raise ConfigError(f"stream {name!r}: {exc} (or 'synthetic')") from None
    if not [s for s in str(spec.split).split(",") if s.strip()]:
        raise ConfigError(f"stream {name!r}: 'split' is empty")
    if spec.image not in ("hand", "hoi"):
        raise ConfigError(f"stream {name!r}: image must be 'hand' or 'hoi', got {spec.image!r}")
    if spec.dataset == "synthetic" and spec.pair and spec.image != "hoi":
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
        if spec.dataset == "synthetic":
            from hoi_adapt.synth.dataset import SyntheticHandDataset

            root = spec.root or world
            if root is None:
                raise ConfigError("a synthetic stream needs 'root' or the data module's 'world'")
            parts.append(SyntheticHandDataset(root, split, image=spec.image, pair=spec.pair, labels=spec.labels,  # type: ignore[arg-type]
                                              amodal_masks=spec.amodal_masks, out_size=image_size, transform=transform, limit=spec.limit))
        else:
            from hoi_adapt.data.datasets import build_dataset

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


class HOIDataModule(pl.LightningDataModule):
    """Streams of the synthetic world and/or real datasets.

    Args:
        world: folder of the synthetic world (``hoi-adapt synth`` output).
        world_config: synth YAML used to generate ``world`` in ``prepare_data`` when it is missing or
            incomplete (generation resumes); None never generates.
        train, val, test: stream specs by name.
        batch_size: default per-stream batch size.
        num_workers: loader workers per stream.
        image_size: network input size (images and K are resized to it).
        augment: SampleAugment keyword arguments for training streams (None disables augmentation).
        train_mode: how streams of different lengths combine (Lightning CombinedLoader mode).
        seed: seed of the training order and augmentation (None: the run's ``seed_everything`` value, else 0).

    Training order (:mod:`hoi_adapt.data.sampling`): every training stream is a
    :class:`~hoi_adapt.data.sampling.ResumableLoader` whose order and per-sample augmentation are functions
    of (seed, stream, pass, index), whose position is saved in checkpoints (a resumed run sees the same
    batches), and which shards itself across DDP processes (world size and rank from the attached trainer):
    the union of one step's per-process batches is the 1-process batch of ``world_size`` times the size.
    ``batch_size`` stays per process. Lightning's ``use_distributed_sampler`` need not be changed: it leaves
    these samplers alone and only shards the validation/test loaders.
    """

    def __init__(
        self,
        world: str | None = "outputs/world",
        world_config: str | None = None,
        train: dict[str, StreamSpec] | None = None,
        val: dict[str, StreamSpec] | None = None,
        test: dict[str, StreamSpec] | None = None,
        batch_size: int = 32,
        num_workers: int = 2,
        image_size: int = 128,
        augment: dict[str, Any] | None = None,
        train_mode: str = "max_size_cycle",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.world = world
        self.world_config = world_config
        self.train_specs = self._specs("train", train if train is not None else default_train_streams())
        self.val_specs = self._specs("val", val if val is not None else default_val_streams())
        self.test_specs = self._specs("test", test) if test is not None else dict(self.val_specs)
        if not self.train_specs:
            raise ConfigError("data.train needs at least one stream")
        if batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {batch_size}")
        if train_mode not in COMBINED_MODES:
            raise ConfigError(f"data.train_mode must be one of {COMBINED_MODES}, got {train_mode!r}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.augment = SampleAugment(**augment) if augment is not None else None
        self.train_mode = train_mode
        self.seed = seed
        self.datasets: dict[str, dict[str, Dataset]] = {}

    @staticmethod
    def _specs(which: str, specs: Mapping[str, Any]) -> dict[str, StreamSpec]:
        if not isinstance(specs, Mapping):
            raise ConfigError(f"data.{which} must map stream names to stream specs, got {type(specs).__name__}")
        return {str(name): as_stream_spec(f"{which}.{name}", spec) for name, spec in specs.items()}

    @property
    def val_names(self) -> list[str]:
        return list(self.val_specs)

    @property
    def test_names(self) -> list[str]:
        return list(self.test_specs)

    def prepare_data(self) -> None:
        if self.world_config and self.world:
            from hoi_adapt.synth.generator import ensure_world

            ensure_world(self.world_config, self.world)

    def _build(self, specs: dict[str, StreamSpec], train: bool) -> dict[str, Dataset]:
        out = {}
        for name, spec in specs.items():
            transform = self.augment if (train and spec.augment) else None
            out[name] = build_stream_dataset(spec, self.world, self.image_size, transform, name=name)
        return out

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and "train" not in self.datasets:
            self.datasets["train"] = self._build(self.train_specs, train=True)
        if stage in (None, "fit", "validate") and "val" not in self.datasets:
            self.datasets["val"] = self._build(self.val_specs, train=False)
        if stage in (None, "test") and "test" not in self.datasets:
            self.datasets["test"] = self._build(self.test_specs, train=False)

    def _run_seed(self) -> int:
        if self.seed is not None:
            return int(self.seed)
        import os

        return int(os.environ.get("PL_GLOBAL_SEED", 0))  # set by seed_everything (LightningCLI: seed_everything)

    def _world(self) -> tuple[int, int]:
        """(world size, rank) of the attached trainer; (1, 0) when used on its own."""
        trainer = self.trainer
        if trainer is not None:
            return int(trainer.world_size), int(trainer.global_rank)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def _worker_kwargs(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0,
                "pin_memory": torch.cuda.is_available()}

    def _loader(self, dataset: Dataset, batch_size: int) -> DataLoader:
        """An evaluation loader (in order; Lightning shards it under DDP; training uses :meth:`_train_loader`).

        The loader's own generator keeps iterator creation off the global RNG, and :class:`SeededSamples`
        turns a worker's data error into one clear message.
        """
        return DataLoader(SeededSamples(dataset), batch_size=batch_size, shuffle=False, drop_last=False,
                          generator=torch.Generator().manual_seed(self._run_seed()), **self._worker_kwargs())

    def _train_loader(self, name: str, dataset: Dataset, batch_size: int) -> ResumableLoader:
        if len(dataset) == 0:  # type: ignore[arg-type]
            spec = self.train_specs[name]
            where = spec.root or self.world
            raise ConfigError(f"training stream {name!r} ({spec.dataset} split {spec.split!r} under {where}) has no samples")
        world_size, rank = self._world()
        sampler = ResumableSampler(len(dataset), batch_size, stream_seed(self._run_seed(), name),  # type: ignore[arg-type]
                                   world_size=world_size, rank=rank)
        return ResumableLoader(dataset, sampler, name=name, **self._worker_kwargs())

    def train_dataloader(self) -> CombinedLoader:
        loaders = {
            name: self._train_loader(name, ds, self.train_specs[name].batch_size or self.batch_size)
            for name, ds in self.datasets["train"].items()
        }
        return CombinedLoader(loaders, mode=self.train_mode)

    def _eval_loaders(self, which: str, specs: dict[str, StreamSpec]) -> list[DataLoader]:
        return [self._loader(ds, specs[name].batch_size or self.batch_size) for name, ds in self.datasets[which].items()]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("val", self.val_specs)

    def test_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders("test", self.test_specs)
