"""hoi_adapt: 3D hand pose and mesh from hand-object images by weakly-supervised domain adaptation.

Heavy submodules (torch, pytorch3d, Lightning) are imported lazily so that ``import hoi_adapt`` is cheap.
"""
from __future__ import annotations

from hoi_adapt.version import __version__

__all__ = ["__version__", "predict"]


def __getattr__(name: str):
    if name == "predict":
        from hoi_adapt.prediction import predict  # the module is named prediction so this name stays a function

        return predict
    raise AttributeError(f"module 'hoi_adapt' has no attribute {name!r}")
