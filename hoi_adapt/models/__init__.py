"""Plain ``nn.Module`` networks of hoi_adapt (built from YAML by LightningCLI via ``class_path``).

Names are resolved lazily so that ``import hoi_adapt.models`` stays cheap (no torch import until a
network is actually requested).
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "UNetGenerator": "hoi_adapt.models.generator",
    "PatchDiscriminator": "hoi_adapt.models.discriminator",
    "init_weights": "hoi_adapt.models.init",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hoi_adapt.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
