"""LightningDataModule serving the method's data streams as a dict of loaders per step.

A *stream* is one dataset view: the synthetic world (any split, hand-only or hand-object image, with or
without labels) or a real dataset from :mod:`hoi_adapt.data.datasets`. Training gets one batch of every
stream per step (``{"hand_only": batch, "hoi": batch, ...}``), so real datasets can be mixed with or
replace the synthetic world purely by configuration.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from hoi_adapt.data.augment import SampleAugment
from hoi_adapt.data.sampling import ResumableLoader, ResumableSampler, SeededSamples, stream_seed
from hoi_adapt.data.streams import StreamSpec, as_stream_spec, build_stream_dataset, default_train_streams, default_val_streams
from hoi_adapt.synth.generator import ensure_world
from hoi_adapt.utils.errors import ConfigError

COMBINED_MODES: tuple[str, ...] = ("max_size_cycle", "max_size", "min_size", "sequential")


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
