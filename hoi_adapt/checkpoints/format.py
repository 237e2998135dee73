"""What hoi_adapt puts into (and keeps out of) Lightning checkpoints.

* The networks' recorded constructor configs go into ``checkpoint["hoi_adapt"]`` so ``predict``,
  ``evaluate`` and ``export`` rebuild them from an allow-list without unpickling code.
* Hand-model arrays (MANO is licensed) are stripped from the saved state dict and re-inserted from the
  locally available model on load, so sharing a checkpoint never redistributes MANO data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from hoi_adapt.models.config import network_config
from hoi_adapt.utils.io import atomic_path
from hoi_adapt.version import __version__

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


def write_network_checkpoint(path: str | Path, kind: str, networks: dict[str, nn.Module], **extra: Any) -> Path:
    """A minimal hoi_adapt checkpoint (no trainer state) for the given networks, written atomically.

    Loadable by :mod:`hoi_adapt.checkpoints.load` exactly like a Lightning checkpoint of the same kind; used for
    tests, converted models and shipping trained weights without optimiser state.
    """
    import torch


    state = {}
    for name, net in networks.items():
        if net is None:
            continue
        state.update({f"{name}.{k}": v.detach().cpu() for k, v in net.state_dict().items()})
    ckpt = {"state_dict": strip_hand_model(state), CHECKPOINT_KEY: describe(kind, {k: v for k, v in networks.items() if v is not None}, **extra)}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)
