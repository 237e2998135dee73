"""Image-quality scores for translations against their true hand-only twins: L1, PSNR, SSIM.

All take (B, C, H, W) images (``data_range`` = 1 for [0, 1] images) and an optional mask (B, 1, H, W) or
(B, H, W) restricting the score to a region (e.g. the hand). Scores are per image; ``reduction="mean"``
averages them over the batch ignoring NaN (an image whose mask is empty has no score and gives NaN),
``"none"`` returns the (B,) vector. Computed in float64 at least, so scores are stable for metrics.

SSIM follows Wang et al. (2004): Gaussian window (11 px, sigma 1.5) applied per channel, constants
C1 = (0.01 L)^2 and C2 = (0.03 L)^2, population (not sample) statistics, only window positions fully
inside the image ("valid"), averaged over positions and channels. With a mask, positions are weighted by
the mask value at the window centre.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

REDUCTIONS = ("mean", "none")


def _prepare(pred: Tensor, target: Tensor, mask: Tensor | None, name: str) -> tuple[Tensor, Tensor, Tensor | None]:
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(
            f"{name}: expected two (B, C, H, W) images of equal shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    dtype = torch.promote_types(pred.dtype, torch.float64)
    pred, target = pred.detach().to(dtype), target.detach().to(dtype)
    if mask is not None:
        if mask.dim() == 3:
            mask = mask.unsqueeze(1)
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != pred.shape[0] or mask.shape[2:] != pred.shape[2:]:
            raise ValueError(
                f"{name}: mask must be (B, 1, H, W) or (B, H, W) matching {tuple(pred.shape)}, got {tuple(mask.shape)}"
            )
        mask = mask.detach().to(dtype)
    return pred, target, mask


def _weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    """Per-image mean of (B, C, H, W) values, weighted by a (B, 1, H, W) mask; NaN where the mask is empty."""
    if weight is None:
        return values.mean(dim=(1, 2, 3))
    w = weight.expand_as(values)
    total = w.sum(dim=(1, 2, 3))
    mean = (values * w).sum(dim=(1, 2, 3)) / total.clamp_min(1e-300)
    return torch.where(total > 0, mean, torch.full_like(total, math.nan))


def _reduce(scores: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return scores
    if reduction == "mean":
        return scores.nanmean()
    raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def l1(pred: Tensor, target: Tensor, mask: Tensor | None = None, reduction: str = "mean") -> Tensor:
    """Mean absolute error per image (inside ``mask`` if given)."""
    pred, target, mask = _prepare(pred, target, mask, "l1")
    return _reduce(_weighted_mean((pred - target).abs(), mask), reduction)


def psnr(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, data_range: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Peak signal-to-noise ratio in dB per image, ``10 log10(data_range^2 / MSE)``; +inf for identical images.

    ``reduction="mean"`` averages the per-image dB values (the usual convention for datasets).
    """
    pred, target, mask = _prepare(pred, target, mask, "psnr")
    mse = _weighted_mean((pred - target) ** 2, mask)
    return _reduce(10.0 * torch.log10(data_range**2 / mse), reduction)


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float64) -> Tensor:
    """Normalised 1D Gaussian of odd length ``size`` centred on its middle sample."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_window: size must be odd and >= 1, got {size}")
    x = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(x: Tensor, window: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filtering of each channel of (B, C, H, W)."""
    c, k = x.shape[1], window.numel()
    x = F.conv2d(x, window.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)
    return F.conv2d(x, window.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)


def ssim_map(
    pred: Tensor, target: Tensor, window_size: int = 11, sigma: float = 1.5, data_range: float = 1.0,
    k1: float = 0.01, k2: float = 0.03,
) -> Tensor:
    """Local SSIM, (B, C, H - window_size + 1, W - window_size + 1)."""
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"ssim: images {tuple(pred.shape[-2:])} are smaller than the {window_size}-px window")
    window = gaussian_window(window_size, sigma, dtype=pred.dtype).to(pred.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_x, mu_y = _filter(pred, window), _filter(target, window)
    var_x = _filter(pred * pred, window) - mu_x**2
    var_y = _filter(target * target, window) - mu_y**2
    cov = _filter(pred * target, window) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, window_size: int = 11, sigma: float = 1.5,
    data_range: float = 1.0, reduction: str = "mean",
) -> Tensor:
    """Structural similarity per image (1 for identical images, lower for any difference).

    With ``mask``, the SSIM map is averaged with the mask value at each window centre as weight.
    """
    pred, target, mask = _prepare(pred, target, mask, "ssim")
    smap = ssim_map(pred, target, window_size, sigma, data_range)
    if mask is not None:
        r = window_size // 2
        mask = mask[..., r : mask.shape[-2] - r, r : mask.shape[-1] - r]
    return _reduce(_weighted_mean(smap, mask), reduction)
