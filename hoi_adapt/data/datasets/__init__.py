"""Dataset loaders: one module per dataset, all returning the sample schema (:mod:`hoi_adapt.data.schema`).

Build them by name through the registry (:func:`hoi_adapt.data.registry.build_dataset`, e.g.
``build_dataset("stb", "/data/STB", "test", out_size=128)``); the on-disk trees, download sources and format
uncertainties are documented in ``data_prep/README.md`` and in each module.
"""
from __future__ import annotations

from hoi_adapt.data.datasets.adapted import AdaptedDataset
from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry, RawRecord
from hoi_adapt.data.datasets.dexter_object import DexterObject
from hoi_adapt.data.datasets.egodexter import EgoDexter
from hoi_adapt.data.datasets.freihand import FreiHAND
from hoi_adapt.data.datasets.ho3d import HO3D
from hoi_adapt.data.datasets.obman import ObMan
from hoi_adapt.data.datasets.rhd import RHD
from hoi_adapt.data.datasets.stb import STB

__all__ = ["AdaptedDataset", "HandDataset", "LayoutEntry", "RawRecord",
           "DexterObject", "EgoDexter", "STB", "RHD", "FreiHAND", "HO3D", "ObMan"]
