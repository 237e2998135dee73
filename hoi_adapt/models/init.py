"""Weight initialisation shared by the translation networks.

GANs are sensitive to the scale of the initial weights: the pix2pix/DCGAN recipe (conv weights drawn
from N(0, 0.02), normalisation scales from N(1, 0.02), biases zero) keeps early D logits near zero so
neither player saturates at step 0. The helper also handles spectral-normalised convolutions, whose
trainable tensor lives in ``parametrizations.weight.original``.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrize

from hoi_adapt.utils.errors import ConfigError

INIT_KINDS = ("normal", "xavier", "kaiming", "orthogonal")

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
          nn.GroupNorm, nn.LayerNorm)


def _weight_tensor(layer: nn.Module) -> nn.Parameter:
    """The trainable weight, looking through a parametrisation (e.g. spectral norm) if present."""
    if parametrize.is_parametrized(layer, "weight"):
        return layer.parametrizations.weight.original
    return layer.weight


def init_weights(module: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Re-initialise every conv/linear and normalisation layer inside ``module`` in place.

    Args:
        module: network (or single layer) to initialise; uses torch's global RNG, so it is reproducible
            after ``torch.manual_seed``.
        kind: ``normal`` (weights ~ N(0, gain)), ``xavier`` (Xavier-normal with this gain), ``kaiming``
            (Kaiming-normal, fan-in, leaky-ReLU slope 0.2; ``gain`` unused) or ``orthogonal`` (with this gain).
        gain: standard deviation for ``normal``, gain for ``xavier``/``orthogonal``; also the std of the
            normalisation scales around 1.

    Returns:
        ``module`` itself, so constructors can write ``init_weights(self, ...)`` as a last line.
    """
    if kind not in INIT_KINDS:
        raise ConfigError(f"init_weights: unknown kind {kind!r}; choose one of {', '.join(INIT_KINDS)}")
    if gain < 0:
        raise ConfigError(f"init_weights: gain must be >= 0, got {gain}")
    for layer in module.modules():
        if isinstance(layer, _WEIGHTED):
            weight = _weight_tensor(layer)
            if kind == "normal":
                nn.init.normal_(weight, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(weight, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(weight, a=0.2, mode="fan_in", nonlinearity="leaky_relu")
            else:
                nn.init.orthogonal_(weight, gain=gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, _NORMS):
            if getattr(layer, "weight", None) is not None:
                nn.init.normal_(layer.weight, 1.0, gain)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)
    return module
