"""Discriminator D: PatchGAN over hand-only images (real hand-only photos vs G's translations).

It is unconditional — real hand-only images are unpaired with the hand-object inputs — and classifies
overlapping patches rather than whole images, which judges local texture (skin, edges, background) and
leaves global layout to the reconstruction losses. Layout: ``num_layers`` stride-2 4x4 convs (widths
doubling from ``base_channels``, capped at ``max_channels``), then two stride-1 4x4 convs, the last giving
one logit per patch. The receptive field of one logit is :func:`receptive_field` — 70 px for 3 layers
(suited to 128 px crops), 34 px for 2 layers (suited to 64 px).
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from hoi_adapt.models.config import record_init
from hoi_adapt.models.generator import NORMS, make_norm
from hoi_adapt.models.init import INIT_KINDS, init_weights
from hoi_adapt.utils.errors import ConfigError

_KERNEL = 4


def receptive_field(num_layers: int) -> int:
    """Side in pixels of the input patch that one output logit sees.

    Walks the layers backwards with ``r <- r * stride + (kernel - stride)``.
    """
    r = 1
    for stride in [1, 1] + [2] * num_layers:  # reversed layer order: two stride-1 convs last
        r = r * stride + (_KERNEL - stride)
    return r


def output_size(size: int, num_layers: int) -> int:
    """Side of the logit map for an input side ``size`` (4x4 convs, padding 1)."""
    for _ in range(num_layers):
        size = (size + 2 - _KERNEL) // 2 + 1
    for _ in range(2):
        size = size + 2 - _KERNEL + 1
    return size


@record_init
class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator returning logits of shape (B, 1, h, w).

    Args:
        in_channels: channels of the images judged.
        base_channels: width of the first layer.
        num_layers: stride-2 layers (3 -> 70 px receptive field, 2 -> 34 px).
        norm: ``instance`` | ``batch`` | ``none`` (not applied to the first and the last conv).
        spectral_norm: wrap every conv in spectral normalisation (a Lipschitz bound that stabilises D;
            usually combined with ``norm="none"``).
        max_channels: cap on the feature width.
        init_type: weight init kind for :func:`hoi_adapt.models.init.init_weights`.
        init_gain: its gain.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 32,
        num_layers: int = 3,
        norm: str = "instance",
        spectral_norm: bool = False,
        max_channels: int = 256,
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if norm not in NORMS:
            raise ConfigError(f"{name}: norm={norm!r} is not one of {', '.join(NORMS)}")
        if init_type not in INIT_KINDS:
            raise ConfigError(f"{name}: init_type={init_type!r} is not one of {', '.join(INIT_KINDS)}")
        for key, value in (("in_channels", in_channels), ("base_channels", base_channels),
                           ("num_layers", num_layers), ("max_channels", max_channels)):
            if value < 1:
                raise ConfigError(f"{name}: {key} must be >= 1, got {value}")
        self.in_channels = in_channels
        self.num_layers = num_layers
        has_norm = norm != "none"

        def width(i: int) -> int:
            return min(base_channels * 2**i, max_channels)

        convs: list[tuple[nn.Conv2d, bool]] = []  # (conv, followed by norm + activation)
        convs.append((nn.Conv2d(in_channels, width(0), _KERNEL, stride=2, padding=1), False))
        for i in range(1, num_layers):
            convs.append((nn.Conv2d(width(i - 1), width(i), _KERNEL, stride=2, padding=1, bias=not has_norm), True))
        convs.append((nn.Conv2d(width(num_layers - 1), width(num_layers), _KERNEL, padding=1, bias=not has_norm), True))
        final = nn.Conv2d(width(num_layers), 1, _KERNEL, padding=1)

        layers: list[nn.Module] = []
        for conv, normed in convs:
            layers.append(conv)
            if normed and has_norm:
                layers.append(make_norm(norm, conv.out_channels))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(final)
        self.net = nn.Sequential(*layers)
        init_weights(self, init_type, init_gain)
        if spectral_norm:  # after init, so the power-iteration vectors match the initial weights
            for i, layer in enumerate(self.net):
                if isinstance(layer, nn.Conv2d):
                    self.net[i] = _spectral_norm(layer)

    @property
    def receptive_field(self) -> int:
        """Input patch side (px) seen by one output logit."""
        return receptive_field(self.num_layers)

    def forward(self, image: Tensor) -> Tensor:
        """(B, in_channels, H, W) images -> (B, 1, h, w) patch logits (real > fake)."""
        name = type(self).__name__
        if image.dim() != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"{name}: expected (B, {self.in_channels}, H, W) images, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if min(output_size(h, self.num_layers), output_size(w, self.num_layers)) < 1:
            raise ConfigError(
                f"{name}: input {h}x{w} is too small for num_layers={self.num_layers}; "
                "lower num_layers or use larger crops"
            )
        return self.net(image)
