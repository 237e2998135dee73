"""Generator G: hand-object image (+ mesh guidance) -> hand-only image, a light U-Net (pix2pix class).

Input: the hand-object image (3 channels, [0, 1]) concatenated with the renderer's guidance for E's first
mesh — soft silhouette (1), depth (1), shaded hand (3) — so ``in_channels = 8``; without mesh guidance
(ablation) ``in_channels = 3``. Output: a hand-only image with ``out_channels`` channels.

Output range (``output``):

* ``"sigmoid"`` (default): ``sigmoid(z)``, strictly inside (0, 1) — the image convention of the project.
* ``"tanh"``: ``(tanh(z) + 1) / 2``, also in (0, 1); steeper around the middle (equals ``sigmoid(2z)``).
* ``"none"``: the raw pre-activation ``z``, unbounded; for callers that apply their own mapping.

Design choices, all for speed on small CPUs and for pixel fidelity:

* strided 4x4 convolutions down and 4x4 transposed convolutions up (``upsample="transpose"``), or
  bilinear upsampling + 3x3 conv (``upsample="bilinear"``, no checkerboard artefacts, ~2x the cost);
* channels double per level from ``base_channels`` and are capped at ``max_channels``, so the bottleneck
  stays small;
* a full-resolution skip: the last decoder stage sees the raw input again, so visible hand pixels can be
  copied through without being squeezed through the half-resolution features;
* convolutions followed by a normalisation have no bias (it would be cancelled), and normalisations are
  affine, so every parameter receives gradient;
* the innermost encoder stage has no normalisation (its map may be 1x1, where instance statistics are
  undefined), as in pix2pix.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hoi_adapt.models.config import record_init
from hoi_adapt.models.init import INIT_KINDS, init_weights
from hoi_adapt.utils.errors import ConfigError

NORMS = ("instance", "batch", "none")
OUTPUTS = ("sigmoid", "tanh", "none")
UPSAMPLES = ("transpose", "bilinear")


def make_norm(norm: str, channels: int) -> nn.Module:
    """A 2D normalisation layer by name; ``none`` gives an identity."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def _check_choice(owner: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}: {key}={value!r} is not one of {', '.join(choices)}")


def _up_layer(kind: str, in_ch: int, out_ch: int, bias: bool) -> nn.Module:
    """Doubles the spatial size."""
    if kind == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1, bias=bias)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=bias),
    )


@record_init
class UNetGenerator(nn.Module):
    """U-Net image translator with ``num_downs`` stride-2 levels (input sides must divide by 2**num_downs).

    Args:
        in_channels: image channels + guidance channels (8 with mesh guidance, 3 without).
        out_channels: output image channels.
        base_channels: width of the first level; doubles per level up to ``max_channels``.
        num_downs: number of stride-2 levels (5: 128 px -> 4 px bottleneck, 64 px -> 2 px).
        norm: ``instance`` | ``batch`` | ``none``.
        dropout: dropout probability in the three deepest decoder stages (pix2pix's noise source); 0 disables.
        output: output mapping, see the module docstring (``sigmoid`` -> (0, 1)).
        max_channels: cap on the feature width.
        upsample: ``transpose`` (4x4 transposed conv) or ``bilinear`` (+ 3x3 conv).
        init_type: weight init kind for :func:`hoi_adapt.models.init.init_weights`.
        init_gain: its gain.
    """

    def __init__(
        self,
        in_channels: int = 8,
        out_channels: int = 3,
        base_channels: int = 32,
        num_downs: int = 5,
        norm: str = "instance",
        dropout: float = 0.0,
        output: str = "sigmoid",
        max_channels: int = 256,
        upsample: str = "transpose",
        init_type: str = "normal",
        init_gain: float = 0.02,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_choice(name, "norm", norm, NORMS)
        _check_choice(name, "output", output, OUTPUTS)
        _check_choice(name, "upsample", upsample, UPSAMPLES)
        _check_choice(name, "init_type", init_type, INIT_KINDS)
        for key, value in (("in_channels", in_channels), ("out_channels", out_channels),
                           ("base_channels", base_channels), ("num_downs", num_downs), ("max_channels", max_channels)):
            if value < 1:
                raise ConfigError(f"{name}: {key} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{name}: dropout must be in [0, 1), got {dropout}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        self.output = output
        has_norm = norm != "none"
        widths = [min(base_channels * 2**i, max_channels) for i in range(num_downs)]

        # Encoder: level i halves the size and outputs widths[i] channels.
        self.down = nn.ModuleList()
        for i in range(num_downs):
            outer, inner = i == 0, i == num_downs - 1
            use_norm = has_norm and not outer and not inner
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels if outer else widths[i - 1], widths[i], 4, stride=2, padding=1, bias=not use_norm)
            ]
            if use_norm:
                layers.append(make_norm(norm, widths[i]))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*layers))

        # Decoder: up[i] brings level i+1 back to level i's size and width; its output is concatenated
        # with the encoder's level-i features. Dropout in the three deepest stages, as pix2pix.
        self.up = nn.ModuleList()
        for i in range(num_downs - 2, -1, -1):
            in_ch = widths[i + 1] if i == num_downs - 2 else 2 * widths[i + 1]
            layers = [_up_layer(upsample, in_ch, widths[i], bias=not has_norm)]
            if has_norm:
                layers.append(make_norm(norm, widths[i]))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0 and i >= num_downs - 4:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

        # Last stage: back to full resolution, then a 3x3 conv that also sees the raw input.
        full_width = max(base_channels // 2, out_channels)
        last_width = 2 * widths[0] if num_downs > 1 else widths[0]  # no skip concatenation with a single level
        self.to_full = nn.Sequential(_up_layer(upsample, last_width, full_width, bias=True), nn.ReLU(inplace=True))
        self.head = nn.Conv2d(full_width + in_channels, out_channels, 3, padding=1)
        init_weights(self, init_type, init_gain)

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2**self.num_downs

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        if x.dim() != 4:
            raise ValueError(f"{name}: expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ConfigError(
                f"{name}: got {x.shape[1]} input channels but in_channels={self.in_channels} "
                "(3 for the image alone, 8 with mesh guidance: silhouette 1 + depth 1 + shaded hand 3)"
            )
        h, w = x.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ConfigError(
                f"{name}: input size {h}x{w} is not divisible by 2**num_downs = {m}; "
                f"use crops whose sides are multiples of {m} or lower num_downs"
            )

    def forward(self, image: Tensor, guidance: Tensor | None = None) -> Tensor:
        """Translate a batch.

        Args:
            image: (B, 3, H, W) hand-object image in [0, 1] (or the already concatenated input).
            guidance: optional (B, G, H, W) renderings, concatenated to ``image`` along channels.

        Returns:
            (B, out_channels, H, W) hand-only image, range set by ``output`` ((0, 1) by default).
        """
        x = image if guidance is None else torch.cat([image, guidance], dim=1)
        self._check_input(x)
        skips = []
        h = x
        for block in self.down:
            h = block(h)
            skips.append(h)
        # skips[-1] is the bottleneck; the decoder consumes the others from deep to shallow.
        for block, skip in zip(self.up, reversed(skips[:-1]), strict=False):
            h = torch.cat([block(h), skip], dim=1)
        z = self.head(torch.cat([self.to_full(h), x], dim=1))
        if self.output == "sigmoid":
            return torch.sigmoid(z)
        if self.output == "tanh":
            return 0.5 * (torch.tanh(z) + 1.0)
        return z


@record_init
class CompositingGenerator(nn.Module):
    """G as a composition: the U-Net predicts *where* the hand is, *which* input pixels to keep, and fill colours.

    ``out = alpha * (keep * x + (1 - keep) * fill) + (1 - alpha) * background``

    The three outputs map one-to-one onto the method's losses (background outside the hand region, visible
    hand pixels preserved, occluded parts filled from the mesh guidance), so G learns segmentation-like
    maps instead of synthesising every pixel, and converges in far fewer steps (an extension over the
    paper's plain U-Net, which remains available as :class:`UNetGenerator`). Output range is (0, 1).

    Args:
        in_channels, base_channels, num_downs, norm, dropout, max_channels, upsample: as :class:`UNetGenerator`.
        background: RGB of the hand-only background (must match the training loss's background).
    """

    def __init__(
        self,
        in_channels: int = 8,
        base_channels: int = 32,
        num_downs: int = 5,
        norm: str = "instance",
        dropout: float = 0.0,
        max_channels: int = 256,
        upsample: str = "transpose",
        background: tuple[float, float, float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        self.net = UNetGenerator(in_channels, 5, base_channels, num_downs, norm, dropout, "none", max_channels, upsample)
        self.in_channels = in_channels
        self.register_buffer("background", torch.tensor(background, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def maps(self, image: Tensor, guidance: Tensor | None = None) -> dict[str, Tensor]:
        """The composition's parts: fill (B,3,H,W), alpha (B,1,H,W), keep (B,1,H,W) and the output."""
        raw = self.net(image, guidance)
        fill, alpha, keep = torch.sigmoid(raw[:, :3]), torch.sigmoid(raw[:, 3:4]), torch.sigmoid(raw[:, 4:5])
        out = alpha * (keep * image + (1.0 - keep) * fill) + (1.0 - alpha) * self.background.to(image.dtype)
        return {"fill": fill, "alpha": alpha, "keep": keep, "output": out}

    def forward(self, image: Tensor, guidance: Tensor | None = None) -> Tensor:
        return self.maps(image, guidance)["output"]
