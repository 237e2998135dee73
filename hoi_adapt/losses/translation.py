"""Reconstruction losses for the generator G (method.md, "Losses"), and their weighted combination.

Conventions for every function here:

* images are (B, C, H, W) in [0, 1]; masks are (B, 1, H, W) or (B, H, W), soft or binary, in [0, 1];
* a masked loss is the mask-weighted mean absolute error, normalised by the mask *area* (summed over the
  batch, times the channel count) plus a small epsilon: every selected pixel in the batch weighs the same,
  the value does not depend on how large the hand is, and an empty mask gives 0 instead of NaN;
* masks act as selectors, not targets: they are detached, so the losses cannot be lowered by shrinking
  the selected region (e.g. by moving the rendered silhouette). Whether the *images* carry gradient (e.g.
  the rendering in :func:`mesh_guided_fill_loss`) is the caller's choice.

Per-sample validity flags (``has_mask``, ``has_pair``) are applied by multiplying them into the mask.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hoi_adapt.losses.gan import GAN_MODES, GANLoss, Prediction
from hoi_adapt.utils.errors import ConfigError

EPS = 1e-6


def _as_mask(mask: Tensor, like: Tensor, name: str) -> Tensor:
    """Validate ``mask`` against the image ``like`` and return it as a detached (B, 1, H, W) float tensor."""
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != like.shape[0] or mask.shape[-2:] != like.shape[-2:]:
        raise ValueError(
            f"{name}: expected shape (B, 1, H, W) or (B, H, W) matching the image {tuple(like.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    return mask.detach().to(like.dtype)


def _check_pair(a: Tensor, b: Tensor, names: str) -> None:
    if a.dim() != 4 or a.shape != b.shape:
        raise ValueError(
            f"{names}: expected two (B, C, H, W) images of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def masked_l1(pred: Tensor, target: Tensor, mask: Tensor | None = None, eps: float = EPS) -> Tensor:
    """Mean |pred - target| over the pixels selected by ``mask`` (all pixels if None)."""
    _check_pair(pred, target, "masked_l1: pred/target")
    diff = (pred - target).abs()
    if mask is None:
        return diff.mean()
    m = _as_mask(mask, pred, "masked_l1: mask")
    return (diff * m).sum() / (m.sum() * pred.shape[1] + eps)


def hand_region_mask(visible_hand_mask: Tensor, rendered_silhouette: Tensor | None = None) -> Tensor:
    """Union (pixel-wise max) of the visible hand mask and the rendered silhouette, as (B, 1, H, W).

    This is where the hand-only image has hand; everything else must become background.
    """
    vis = visible_hand_mask.unsqueeze(1) if visible_hand_mask.dim() == 3 else visible_hand_mask
    if rendered_silhouette is None:
        return vis
    sil = rendered_silhouette.unsqueeze(1) if rendered_silhouette.dim() == 3 else rendered_silhouette
    if sil.shape != vis.shape:
        raise ValueError(
            f"hand_region_mask: silhouette {tuple(sil.shape)} does not match visible mask {tuple(vis.shape)}"
        )
    return torch.maximum(vis, sil.to(vis.dtype))


def paired_l1(fake: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """L1 between G(x) and the paired hand-only image (synthetic pairs); ``mask`` e.g. selects valid samples."""
    return masked_l1(fake, target, mask)


def visible_hand_loss(fake: Tensor, hoi_image: Tensor, visible_hand_mask: Tensor) -> Tensor:
    """Visible hand pixels of G(x) must keep the input's colours."""
    return masked_l1(fake, hoi_image, visible_hand_mask)


def _background_image(background: Tensor, like: Tensor) -> Tensor:
    b, c = like.shape[:2]
    bg = background.to(device=like.device, dtype=like.dtype)
    if bg.shape == (c,):
        bg = bg.view(1, c, 1, 1)
    elif bg.shape == (b, c):
        bg = bg.view(b, c, 1, 1)
    elif not (bg.dim() == 4 and bg.shape[1] == c and bg.shape[0] in (1, b) and bg.shape[-2:] == like.shape[-2:]):
        raise ValueError(
            f"background_loss: background must be a colour ({c},), per-sample colours ({b}, {c}) or an image "
            f"({b}, {c}, H, W) matching {tuple(like.shape)}; got {tuple(background.shape)}"
        )
    return bg.expand_as(like)


def background_loss(fake: Tensor, background: Tensor, hand_region_mask: Tensor) -> Tensor:
    """Pixels outside the hand region (object and clutter included) must become the hand-only background.

    Args:
        fake: G(x), (B, C, H, W).
        background: a colour (C,), per-sample colours (B, C) or an image (B, C, H, W).
        hand_region_mask: visible hand mask ∪ rendered silhouette (see :func:`hand_region_mask`).
    """
    outside = 1.0 - _as_mask(hand_region_mask, fake, "background_loss: hand_region_mask")
    return masked_l1(fake, _background_image(background, fake), outside)


def mesh_guided_fill_loss(
    fake: Tensor, rendered_hand: Tensor, rendered_silhouette: Tensor, visible_hand_mask: Tensor
) -> Tensor:
    """Inside the rendered silhouette but not visible (occluded by the object), G(x) must match the rendering.

    The weight is ``silhouette * (1 - visible)``. Detach ``rendered_hand`` if E must not learn from it.
    """
    sil = _as_mask(rendered_silhouette, fake, "mesh_guided_fill_loss: rendered_silhouette")
    vis = _as_mask(visible_hand_mask, fake, "mesh_guided_fill_loss: visible_hand_mask")
    return masked_l1(fake, rendered_hand, sil * (1.0 - vis))


class TranslationLoss(nn.Module):
    """G's objective: weighted sum of the reconstruction terms and the adversarial term.

    ``forward`` returns the unweighted terms by name plus ``total`` (the weighted sum). A term is computed
    only if its weight is > 0 **and** its trigger input is given, so one instance serves synthetic-pair
    batches (``target``) and real hand-object batches (masks, renderings); a triggered term that lacks one
    of its other inputs raises ``ValueError``. Term names (log them as ``train/g_<name>``):

    ========== ======================== ===================================== =================================
    name       trigger                  also needs                            meaning
    ========== ======================== ===================================== =================================
    paired     target                   (pair_mask, optional)                 L1 to the paired hand-only image
    visible    visible_hand_mask        hoi_image                             visible hand pixels preserved
    background visible_hand_mask or     background or ``background_color``;  outside the hand region ->
               hand_region              region = hand_region, else visible    background
                                        mask ∪ rendered_silhouette (if given)
    mesh_fill  rendered_hand            rendered_silhouette, visible_hand_mask occluded hand pixels -> rendering
    adv        fake_logits = D(G(x))    —                                     GANLoss, generator side
    ========== ======================== ===================================== =================================

    Args:
        weight_paired: weight of ``paired``.
        weight_visible: weight of ``visible``.
        weight_background: weight of ``background``.
        weight_mesh_fill: weight of ``mesh_fill`` (0 for the no-mesh-guidance ablation).
        weight_adversarial: weight of ``adv`` (0 for the mesh-guidance-without-GAN ablation).
        gan_mode: :class:`GANLoss` mode, must match the one used for D.
        background_color: default hand-only background colour when ``forward`` gets no ``background``;
            None means a background must be passed whenever ``background`` is active.
    """

    TERMS = ("paired", "visible", "background", "mesh_fill", "adv")

    def __init__(
        self,
        weight_paired: float = 10.0,
        weight_visible: float = 10.0,
        weight_background: float = 10.0,
        weight_mesh_fill: float = 5.0,
        weight_adversarial: float = 1.0,
        gan_mode: str = "lsgan",
        background_color: list[float] | None = None,
    ) -> None:
        super().__init__()
        self.weights = {
            "paired": float(weight_paired),
            "visible": float(weight_visible),
            "background": float(weight_background),
            "mesh_fill": float(weight_mesh_fill),
            "adv": float(weight_adversarial),
        }
        for name, w in self.weights.items():
            if not w >= 0:  # also rejects NaN
                raise ConfigError(f"TranslationLoss: weight of {name!r} must be >= 0, got {w}")
        if gan_mode not in GAN_MODES:
            raise ConfigError(f"TranslationLoss: gan_mode={gan_mode!r} is not one of {', '.join(GAN_MODES)}")
        self.gan = GANLoss(gan_mode)
        if background_color is not None:
            color = torch.tensor([float(v) for v in background_color])
            self.register_buffer("background_color", color, persistent=False)
        else:
            self.background_color = None

    def is_active(self, name: str) -> bool:
        """Whether term ``name`` has a positive weight (e.g. skip computing D(G(x)) when ``adv`` is off)."""
        if name not in self.weights:
            raise KeyError(f"TranslationLoss: unknown term {name!r}; terms are {', '.join(self.TERMS)}")
        return self.weights[name] > 0

    @staticmethod
    def _require(term: str, **inputs: object) -> None:
        missing = [k for k, v in inputs.items() if v is None]
        if missing:
            raise ValueError(f"TranslationLoss: term {term!r} is triggered but lacks {', '.join(missing)}")

    def forward(
        self,
        fake: Tensor,
        *,
        target: Tensor | None = None,
        pair_mask: Tensor | None = None,
        hoi_image: Tensor | None = None,
        visible_hand_mask: Tensor | None = None,
        background: Tensor | None = None,
        hand_region: Tensor | None = None,
        rendered_hand: Tensor | None = None,
        rendered_silhouette: Tensor | None = None,
        fake_logits: Prediction | None = None,
    ) -> dict[str, Tensor]:
        """Compute the active terms for G's output ``fake``; see the class docstring for the inputs."""
        terms: dict[str, Tensor] = {}
        if self.is_active("paired") and target is not None:
            terms["paired"] = paired_l1(fake, target, pair_mask)
        if self.is_active("visible") and visible_hand_mask is not None:
            self._require("visible", hoi_image=hoi_image)
            terms["visible"] = visible_hand_loss(fake, hoi_image, visible_hand_mask)
        if self.is_active("background") and (hand_region is not None or visible_hand_mask is not None):
            region = hand_region
            if region is None:
                region = hand_region_mask(visible_hand_mask, rendered_silhouette)
            bg = background if background is not None else self.background_color
            self._require("background", background=bg)
            terms["background"] = background_loss(fake, bg, region)
        if self.is_active("mesh_fill") and rendered_hand is not None:
            self._require("mesh_fill", rendered_silhouette=rendered_silhouette, visible_hand_mask=visible_hand_mask)
            terms["mesh_fill"] = mesh_guided_fill_loss(fake, rendered_hand, rendered_silhouette, visible_hand_mask)
        if self.is_active("adv") and fake_logits is not None:
            terms["adv"] = self.gan.generator_loss(fake_logits)
        total = fake.new_zeros(())
        for name, value in terms.items():
            total = total + self.weights[name] * value
        terms["total"] = total
        return terms
