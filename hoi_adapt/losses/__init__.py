"""Losses and image scores of hoi_adapt. Names are resolved lazily to keep ``import hoi_adapt.losses`` cheap."""
from __future__ import annotations

from hoi_adapt.utils.lazy import lazy_exports

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

__getattr__, __dir__, __all__ = lazy_exports("hoi_adapt.losses", _EXPORTS)
