"""Image-quality scores for translations against their true hand-only twins: L1, PSNR, SSIM.

PSNR and SSIM come from ``torchmetrics.functional.image`` (pinned in pyproject.toml), so our numbers are the
widely used torchmetrics definitions rather than a private re-implementation; what stays here is the
per-image / masked / NaN plumbing the callers need, and L1.

All take (B, C, H, W) images (``data_range`` = 1 for [0, 1] images) and an optional mask (B, 1, H, W) or
(B, H, W) restricting the score to a region (e.g. the hand). Scores are per image; ``reduction="mean"``
averages them over the batch ignoring NaN (an image whose mask is empty has no score and gives NaN),
``"none"`` returns the (B,) vector. Inputs are cast to float64 at least, so scores are stable for metrics.

PSNR is ``10 log10(L^2 / MSE)`` per image (torchmetrics ``peak_signal_noise_ratio`` with ``dim=(1, 2, 3)``).
torchmetrics has no mask option, so the masked PSNR applies the same formula to the mask-weighted per-image
MSE here. (torchmetrics multiplies by a float32 ``10 / ln 10``: ~1e-6 dB from the exact float64 value.)

SSIM is torchmetrics ``structural_similarity_index_measure`` (checked against torchmetrics 1.9): Wang et al.
(2004) local SSIM with an 11 x 11 Gaussian window (sigma 1.5; torchmetrics derives the size from sigma as
2 int(3.5 sigma + 0.5) + 1), C1 = (0.01 L)^2, C2 = (0.03 L)^2, population statistics (variances clamped
at 0), per channel. At the border each image is reflect-padded by the window radius (5 px, mirrored without
repeating the edge pixel, torch/numpy ``"reflect"``, scipy ``"mirror"``) and filtered "valid", so the SSIM map
has one value per pixel (H x W) and the score is its mean over all pixels and channels, border positions
included. This is not the "valid"-only definition (skimage, the original MATLAB code, and our code before
it: only windows fully inside the image); on 64-256 px images scores move by ~1e-3 to 1e-2.
With a mask, the score is the mean of that same H x W map weighted by the mask at each pixel (the window
centre), so an all-ones mask reproduces the unmasked score.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

REDUCTIONS = ("mean", "none")
SSIM_K1, SSIM_K2 = 0.01, 0.03


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

    With ``mask``, the MSE is the mask-weighted mean over the region. ``reduction="mean"`` averages the
    per-image dB values (the usual convention for datasets).
    """
    pred, target, mask = _prepare(pred, target, mask, "psnr")
    if mask is None:
        scores = peak_signal_noise_ratio(pred, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    else:
        scores = 10.0 * torch.log10(data_range**2 / _weighted_mean((pred - target) ** 2, mask))
    return _reduce(scores, reduction)


def ssim(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, window_size: int = 11, sigma: float = 1.5,
    data_range: float = 1.0, reduction: str = "mean",
) -> Tensor:
    """Structural similarity per image (1 for identical images, lower for any difference).

    With ``mask``, the per-pixel SSIM map is averaged with the mask value at each pixel (window centre) as weight.
    ``window_size`` must be the size torchmetrics derives from ``sigma`` (11 for 1.5); it is checked, not free.
    """
    pred, target, mask = _prepare(pred, target, mask, "ssim")
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"ssim: images {tuple(pred.shape[-2:])} are smaller than the {window_size}-px window")
    derived = 2 * int(3.5 * sigma + 0.5) + 1
    if window_size != derived:
        raise ValueError(f"ssim: torchmetrics uses a {derived}-px Gaussian window for sigma={sigma}, got window_size={window_size}")
    kwargs = dict(gaussian_kernel=True, sigma=sigma, kernel_size=window_size, data_range=data_range, k1=SSIM_K1, k2=SSIM_K2,
                  reduction="none")
    if mask is None:
        return _reduce(structural_similarity_index_measure(pred, target, **kwargs), reduction)
    _, smap = structural_similarity_index_measure(pred, target, return_full_image=True, **kwargs)
    if smap.shape != pred.shape:  # the weighting below assumes one map value per pixel (reflect padding, no crop)
        raise RuntimeError(f"ssim: expected a per-pixel SSIM map {tuple(pred.shape)} from torchmetrics, got {tuple(smap.shape)}")
    return _reduce(_weighted_mean(smap, mask), reduction)
