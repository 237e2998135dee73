"""Plain ``nn.Module`` networks of hoi_adapt (built from YAML by LightningCLI via ``class_path``).

Names are resolved lazily so that ``import hoi_adapt.models`` stays cheap (no torch import until a
network is actually requested).
"""
from __future__ import annotations

from hoi_adapt.utils.lazy import lazy_exports

_EXPORTS = {
    "UNetGenerator": "hoi_adapt.models.generator",
    "PatchDiscriminator": "hoi_adapt.models.discriminator",
    "CompositingGenerator": "hoi_adapt.models.generator",
    "MeshEstimator": "hoi_adapt.models.estimator",
    "AdaptPipeline": "hoi_adapt.models.pipeline",
    "MeshGuidance": "hoi_adapt.models.pipeline",
    "init_weights": "hoi_adapt.models.init",
}

__getattr__, __dir__, __all__ = lazy_exports("hoi_adapt.models", _EXPORTS)
