"""The dataset registry: one place that says what a dataset name means, for fit, evaluate and export.

Each entry holds the loader class, the names users may type for it, its default training and evaluation
splits and its evaluation protocol. Per-dataset quirks (STB's palm root, FreiHAND's evaluation fallback and
MANO root joint) live in the loader modules, as :meth:`HandDataset.evaluation_setup` overrides, so nothing
above this layer tests a dataset's name. The synthetic world is an entry like any other.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from hoi_adapt.data.datasets import HO3D, RHD, STB, AdaptedDataset, DexterObject, EgoDexter, FreiHAND, ObMan
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.utils.errors import ConfigError

SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class DatasetEntry:
    """What a registered dataset name stands for.

    Attributes:
        name: the canonical name (stored in results, manifests and configs).
        loader: the dataset class; constructed as ``loader(root, split, out_size=..., **options)``.
        eval_split: the split ``evaluate`` scores by default (the published protocol's split).
        protocol: the evaluation protocol of :mod:`hoi_adapt.eval.protocols` used by default.
        train_split: the split ``fit`` and ``export`` read by default.
        aliases: other names accepted on the command line (``do`` for Dexter+Object, ...).
        skeleton: definition of the labels' 3D joints (``hand.model.SKELETONS``: ``mesh`` or ``kinematic``); None
            for labels that follow neither MANO definition (markers, manual annotation). Evaluation scores
            predictions in this definition; a loader may refine it per copy (``dataset.skeleton``).
    """

    name: str
    loader: type[Dataset]
    eval_split: str
    protocol: str
    train_split: str
    aliases: tuple[str, ...] = ()
    skeleton: str | None = None


ENTRIES: tuple[DatasetEntry, ...] = (
    DatasetEntry("dexter_object", DexterObject, "test", "dexter_object", "test", aliases=("do", "dexter+object", "d+o")),
    DatasetEntry("egodexter", EgoDexter, "test", "egodexter", "test", aliases=("ed",)),
    DatasetEntry("stb", STB, "test", "stb", "train"),
    DatasetEntry("rhd", RHD, "evaluation", "rhd", "train"),
    DatasetEntry("freihand", FreiHAND, "evaluation", "freihand", "train", skeleton="kinematic"),
    DatasetEntry("ho3d", HO3D, "evaluation", "ho3d", "train", skeleton="kinematic"),
    DatasetEntry("obman", ObMan, "test", SYNTHETIC, "train", skeleton="kinematic"),
    # scores agreement with an export's own pseudo-labels, not accuracy
    DatasetEntry("adapted", AdaptedDataset, "all", SYNTHETIC, "train", skeleton="mesh"),  # refined per export
    DatasetEntry(SYNTHETIC, SyntheticHandDataset, "target_test", SYNTHETIC, "target_hoi", skeleton="mesh"),
)
REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in ENTRIES}
_ALIASES: dict[str, str] = {alias: e.name for e in ENTRIES for alias in (e.name, *e.aliases)}


def dataset_names() -> tuple[str, ...]:
    """The canonical names, in registry order."""
    return tuple(REGISTRY)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def dataset_entry(name: str) -> DatasetEntry:
    """The entry for ``name`` (case-insensitive, ``-``/``_`` alike, aliases allowed); unknown names list the known ones."""
    key = _key(name)
    canonical = _ALIASES.get(key) or _ALIASES.get(key.replace("+", "_")) or _ALIASES.get(key.replace("_", "+"))
    if canonical is None:
        known = ", ".join(f"{e.name} ({', '.join(e.aliases)})" if e.aliases else e.name for e in ENTRIES)
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {known}")
    return REGISTRY[canonical]


def build_dataset(name: str, root: str | Path, split: str | None = None, **kwargs: Any) -> Dataset:
    """Construct dataset ``name`` on ``root``/``split`` (None: its training split); ``kwargs`` go to its loader."""
    entry = dataset_entry(name)
    return entry.loader(root, split or entry.train_split, **kwargs)
