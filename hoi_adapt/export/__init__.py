"""Export an adapted (de-occluded, hand-only) copy of a dataset with pseudo-labels: ``hoi-adapt export``.

Library entry points (imported lazily, so ``import hoi_adapt.export`` stays cheap):

* :func:`export_dataset` (:mod:`hoi_adapt.export.run`) -- run a checkpoint over a dataset into a folder;
* :func:`verify_export` / :func:`read_export` (:mod:`hoi_adapt.data.formats.adapted`) -- check or read one back;
  the ``adapted`` loader (:mod:`hoi_adapt.data.datasets.adapted`) serves it as schema samples.

The on-disk layout is documented in :mod:`hoi_adapt.data.formats.adapted`.
"""
from __future__ import annotations

from typing import Any

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.export.run import export_dataset

__all__ = ["export_dataset", "verify_export", "read_export", "read_manifest"]


def __getattr__(name: str) -> Any:
    if name == "export_dataset":
        return export_dataset
    if name in ("verify_export", "read_export", "read_manifest"):
        return getattr(fmt, name)
    raise AttributeError(f"module 'hoi_adapt.export' has no attribute {name!r}")
