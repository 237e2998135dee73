"""Losses and image scores of hoi_adapt. Names are resolved lazily to keep ``import hoi_adapt.losses`` cheap."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "GANLoss": "hoi_adapt.losses.gan",
    "ImagePool": "hoi_adapt.losses.gan",
    "TranslationLoss": "hoi_adapt.losses.translation",
    "masked_l1": "hoi_adapt.losses.translation",
    "paired_l1": "hoi_adapt.losses.translation",
    "visible_hand_loss": "hoi_adapt.losses.translation",
    "background_loss": "hoi_adapt.losses.translation",
    "mesh_guided_fill_loss": "hoi_adapt.losses.translation",
    "hand_region_mask": "hoi_adapt.losses.translation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hoi_adapt.losses' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
