"""L1 / PSNR / SSIM scores: known values, properties, mask restriction, torchmetrics agreement, and an independent SSIM reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from hoi_adapt.losses.image_quality import l1, psnr, ssim


def _ssim_map_reference(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Per-pixel SSIM (C, H, W), Wang et al. 2004, 2D Gaussian via scipy with mirror borders (a different code path)."""
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    g /= g.sum()
    c1, c2 = 0.01**2, 0.03**2
    maps = []
    for xc, yc in zip(x, y, strict=True):  # channels
        def f(im: np.ndarray) -> np.ndarray:
            return ndimage.correlate(im, g, mode="mirror")  # d c b | a b c d | c b a, as torch's "reflect"
        mx, my = f(xc), f(yc)
        sxx, syy, sxy = f(xc * xc) - mx**2, f(yc * yc) - my**2, f(xc * yc) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2)))
    return np.stack(maps)


@pytest.fixture()
def pair() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 20, generator=g, dtype=torch.float64)
    smooth = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)  # structured, correlated with x
    y = (0.7 * smooth + 0.3 * torch.rand(2, 3, 24, 20, generator=g, dtype=torch.float64)).clamp(0, 1)
    return x, y


def test_identical_images(pair) -> None:
    x, _ = pair
    assert l1(x, x).item() == 0.0
    assert math.isinf(psnr(x, x).item()) and psnr(x, x).item() > 0
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(ssim(x, x, torch.ones(2, 24, 20), reduction="none"), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("d", [0.1, -0.05, 0.3])
def test_psnr_and_l1_known_values(d: float) -> None:
    x = torch.full((1, 3, 16, 16), 0.5)
    assert l1(x, x + d).item() == pytest.approx(abs(d))
    assert psnr(x, x + d).item() == pytest.approx(10 * math.log10(1 / d**2))
    assert psnr(x, x + d, data_range=255.0).item() == pytest.approx(10 * math.log10(255**2 / d**2))
    half = torch.zeros(1, 16, 16)
    half[:, :, :8] = 1
    assert psnr(x, x + d, half).item() == pytest.approx(10 * math.log10(1 / d**2))


def test_psnr_is_per_image() -> None:
    x = torch.zeros(3, 1, 12, 12, dtype=torch.float64)
    y = x + torch.tensor([0.1, 0.01, 0.2], dtype=torch.float64).view(3, 1, 1, 1)
    expected = [20.0, 40.0, 10 * math.log10(25)]
    assert psnr(x, y, reduction="none").tolist() == pytest.approx(expected)
    assert psnr(x, y).item() == pytest.approx(sum(expected) / 3)  # mean of the dB values, not dB of the mean MSE


def test_unmasked_scores_are_torchmetrics(pair) -> None:
    x, y = pair
    expected = structural_similarity_index_measure(x, y, gaussian_kernel=True, kernel_size=11, sigma=1.5, data_range=1.0,
                                                   k1=0.01, k2=0.03, reduction="none")
    got = ssim(x, y, reduction="none")
    assert got.shape == (2,) and got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-15)
    expected = peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))
    torch.testing.assert_close(psnr(x, y, reduction="none"), expected, rtol=0, atol=1e-12)
    # float32 inputs are scored in float64, so they give the same numbers as their float64 copies
    torch.testing.assert_close(ssim(x.float(), y.float(), reduction="none"), ssim(x.float().double(), y.float().double(), reduction="none"))


def test_ssim_matches_independent_reference_with_reflected_borders(pair) -> None:
    x, y = pair
    got = ssim(x, y, reduction="none")
    for i in range(2):
        ref = _ssim_map_reference(x[i].numpy(), y[i].numpy())
        assert got[i].item() == pytest.approx(ref.mean(), abs=1e-10)  # all H x W positions, border included
        assert got[i].item() != pytest.approx(ref[:, 5:-5, 5:-5].mean(), abs=1e-4)  # not the "valid"-only mean
    assert 0.0 < got.min() < got.max() < 1.0


def test_masked_ssim_weights_the_per_pixel_map(pair) -> None:
    x, y = pair
    ref = _ssim_map_reference(x[0].numpy(), y[0].numpy())
    # A single pixel (even a corner, where the window sees mirrored content) scores that pixel's map value.
    for r, c in ((0, 0), (23, 19), (12, 7), (3, 18)):
        mask = torch.zeros(1, 24, 20)
        mask[0, r, c] = 1
        assert ssim(x[:1], y[:1], mask).item() == pytest.approx(ref[:, r, c].mean(), abs=1e-10), (r, c)
    # Soft weights: the weighted mean of the map.
    w = torch.rand(1, 1, 24, 20, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    expected = (ref * w[0].numpy()).sum() / (w.sum().item() * 3)
    assert ssim(x[:1], y[:1], w).item() == pytest.approx(expected, abs=1e-10)


def test_all_ones_mask_equals_unmasked(pair) -> None:
    x, y = pair
    ones = torch.ones(2, 24, 20)
    torch.testing.assert_close(ssim(x, y, ones, reduction="none"), ssim(x, y, reduction="none"), rtol=0, atol=1e-14)
    torch.testing.assert_close(psnr(x, y, ones, reduction="none"), psnr(x, y, reduction="none"), rtol=1e-6, atol=0)
    torch.testing.assert_close(l1(x, y, ones, reduction="none"), l1(x, y, reduction="none"), rtol=0, atol=1e-15)


def test_ssim_constant_images_is_luminance_term() -> None:
    a, b = 0.2, 0.6
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    c1 = 0.01**2
    assert ssim(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)


def test_ssim_drops_with_noise_and_is_symmetric(pair) -> None:
    x, y = pair
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
    scores = [ssim(x, (x + s * noise)).item() for s in (0.0, 0.02, 0.1, 0.3)]
    assert scores[0] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False))
    assert ssim(x, y).item() == pytest.approx(ssim(y, x).item(), abs=1e-12)


def test_masked_scores_ignore_outside_pixels(pair) -> None:
    x, y = pair
    mask = torch.zeros(2, 24, 20, dtype=torch.float64)
    mask[:, 8:16, 6:14] = 1.0
    changed = y.clone()
    changed[..., :, 19:] = 0.0  # > 5 px (window radius) from every masked window centre
    changed[..., 22:, :] = 1.0
    for fn in (l1, psnr, ssim):
        a, b = fn(x, y, mask).item(), fn(x, changed, mask).item()
        assert a == pytest.approx(b, abs=1e-12), fn.__name__
        assert fn(x, y).item() != pytest.approx(fn(x, changed).item()), fn.__name__  # unmasked: it matters
    # Masked L1 and PSNR equal the scores of the box's pixels computed by hand.
    box = (x - y)[..., 8:16, 6:14]
    assert l1(x, y, mask).item() == pytest.approx(box.abs().mean().item())
    hand_psnr = [10 * math.log10(1 / (box[i] ** 2).mean().item()) for i in range(2)]
    assert psnr(x, y, mask, reduction="none").tolist() == pytest.approx(hand_psnr, rel=1e-12)


def test_empty_mask_gives_nan_and_mean_ignores_it(pair) -> None:
    x, y = pair
    mask = torch.ones(2, 1, 24, 20)
    mask[1] = 0
    for fn in (l1, psnr, ssim):
        per = fn(x, y, mask, reduction="none")
        assert not math.isnan(per[0].item()) and math.isnan(per[1].item()), fn.__name__
        assert fn(x, y, mask).item() == pytest.approx(per[0].item()), fn.__name__


def test_errors() -> None:
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="11-px Gaussian window"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), window_size=7)
    for fn in (l1, psnr, ssim):
        with pytest.raises(ValueError, match="equal shape"):
            fn(torch.rand(1, 3, 16, 16), torch.rand(1, 1, 16, 16))
        with pytest.raises(ValueError, match="equal shape"):
            fn(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
        with pytest.raises(ValueError, match="mask must be"):
            fn(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.ones(2, 3, 16, 16))
        with pytest.raises(ValueError, match="reduction"):
            fn(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), reduction="sum")
