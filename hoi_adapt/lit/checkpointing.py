"""What hoi_adapt puts into (and keeps out of) Lightning checkpoints.

* The networks' recorded constructor configs go into ``checkpoint["hoi_adapt"]`` so ``predict``,
  ``evaluate`` and ``export`` rebuild them from an allow-list without unpickling code.
* Hand-model arrays (MANO is licensed) are stripped from the saved state dict and re-inserted from the
  locally available model on load, so sharing a checkpoint never redistributes MANO data.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from hoi_adapt import __version__
from hoi_adapt.models.config import network_config

HAND_MODEL_KEY = "hand_model."
CHECKPOINT_KEY = "hoi_adapt"


def strip_hand_model(state_dict: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state_dict.items() if HAND_MODEL_KEY not in k}


def restore_hand_model(state_dict: dict[str, Any], module: nn.Module) -> None:
    """Insert the live module's hand-model tensors into a loaded state dict (in place)."""
    for key, value in module.state_dict().items():
        if HAND_MODEL_KEY in key:
            state_dict[key] = value


def describe(kind: str, networks: dict[str, nn.Module], **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "version": __version__, "networks": {k: network_config(v) for k, v in networks.items()}, **extra}
