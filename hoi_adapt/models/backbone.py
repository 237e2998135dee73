"""ResNet trunk for the mesh estimator (torchvision architecture, random init unless a local file is given).

Nothing is downloaded: pretrained weights come only from a local path the user supplies, loaded with
``torch.load(weights_only=True)`` and checked key by key.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50

from hoi_adapt.utils.errors import CheckpointError, ConfigError

_BUILDERS = {18: resnet18, 34: resnet34, 50: resnet50}


class ResNetBackbone(nn.Module):
    """Returns the four stage outputs (strides 4, 8, 16, 32) of a torchvision ResNet.

    Args:
        depth: 18, 34 or 50.
        pretrained_path: optional local file with a torchvision ResNet state dict (the ``fc`` head is ignored).
    """

    def __init__(self, depth: int = 18, pretrained_path: str | None = None) -> None:
        super().__init__()
        if depth not in _BUILDERS:
            raise ConfigError(f"backbone depth must be one of {sorted(_BUILDERS)}, got {depth}")
        net = _BUILDERS[depth](weights=None)
        if pretrained_path:
            load_resnet_weights(net, pretrained_path)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        expansion = 4 if depth == 50 else 1
        self.channels: tuple[int, int, int, int] = (64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return c1, c2, c3, c4


def load_resnet_weights(net: nn.Module, path: str | Path) -> None:
    """Load a local torchvision ResNet state dict into ``net``; clear errors for wrong files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "pretrained backbone weights not found", "give a local .pth with a torchvision ResNet state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or unsafe files
        raise CheckpointError(path, f"cannot be read as a weights-only torch file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointError(path, f"expected a state dict, found {type(state).__name__}")
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items() if not k.startswith("fc.")}
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    missing = sorted(set(own) - set(state))
    if missing:
        raise CheckpointError(path, f"not a matching ResNet state dict: {len(missing)} keys missing, e.g. {missing[:3]}")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise CheckpointError(path, f"shape mismatch for {len(wrong)} tensors, e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} vs {tuple(own[wrong[0]].shape)}")
    net.load_state_dict({k: state[k] for k in own}, strict=False)
