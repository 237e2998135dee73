"""Real-dataset loaders: one module per dataset, all returning the sample schema (:mod:`hoi_adapt.data.schema`).

``build_dataset("stb", "/data/STB", "test", out_size=128)`` builds any of them by name; the on-disk trees,
download sources and format uncertainties are documented in ``data_prep/README.md`` and in each module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hoi_adapt.data.datasets.adapted import AdaptedDataset
from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry, RawRecord
from hoi_adapt.data.datasets.dexter_object import DexterObject
from hoi_adapt.data.datasets.egodexter import EgoDexter
from hoi_adapt.data.datasets.freihand import FreiHAND
from hoi_adapt.data.datasets.ho3d import HO3D
from hoi_adapt.data.datasets.obman import ObMan
from hoi_adapt.data.datasets.rhd import RHD
from hoi_adapt.data.datasets.stb import STB
from hoi_adapt.utils.errors import ConfigError

DATASETS: dict[str, type[HandDataset]] = {
    "dexter_object": DexterObject,
    "egodexter": EgoDexter,
    "stb": STB,
    "rhd": RHD,
    "freihand": FreiHAND,
    "ho3d": HO3D,
    "obman": ObMan,
    "adapted": AdaptedDataset,
}


def dataset_class(name: str) -> type[HandDataset]:
    """The loader class registered under ``name``; unknown names raise ``ConfigError`` listing the known ones."""
    key = str(name).lower()
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[key]


def build_dataset(name: str, root: str | Path, split: str, **kwargs: Any) -> HandDataset:
    """Construct dataset ``name`` on ``root``/``split``; ``kwargs`` go to its constructor."""
    return dataset_class(name)(root, split, **kwargs)


__all__ = ["DATASETS", "HandDataset", "LayoutEntry", "RawRecord", "build_dataset", "dataset_class",
           "DexterObject", "EgoDexter", "STB", "RHD", "FreiHAND", "HO3D", "ObMan"]
