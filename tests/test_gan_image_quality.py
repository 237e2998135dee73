"""L1 / PSNR / SSIM scores: known values, properties, mask restriction, and an independent SSIM reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from hoi_adapt.losses.image_quality import gaussian_window, l1, psnr, ssim


def _ssim_reference(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """Wang et al. 2004 with a 2D Gaussian window via scipy (a different code path from the torch one)."""
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    g /= g.sum()
    c1, c2 = 0.01**2, 0.03**2
    r = size // 2
    vals = []
    for xc, yc in zip(x, y, strict=True):  # channels
        def f(im: np.ndarray) -> np.ndarray:
            return ndimage.correlate(im, g, mode="constant")[r:-r, r:-r]
        mx, my = f(xc), f(yc)
        sxx, syy, sxy = f(xc * xc) - mx**2, f(yc * yc) - my**2, f(xc * yc) - mx * my
        vals.append(((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2)))
    return float(np.mean(vals))


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
    assert math.isinf(psnr(x, x).item())
    torch.testing.assert_close(ssim(x, x, reduction="none"), torch.ones(2, dtype=torch.float64))


def test_psnr_and_l1_known_values() -> None:
    x = torch.full((1, 3, 16, 16), 0.5)
    assert l1(x, x + 0.1).item() == pytest.approx(0.1)
    assert psnr(x, x + 0.1).item() == pytest.approx(20.0)  # mse 0.01
    assert psnr(x, x + 0.1, data_range=255.0).item() == pytest.approx(20.0 + 20 * math.log10(255))


def test_ssim_matches_independent_reference(pair) -> None:
    x, y = pair
    got = ssim(x, y, reduction="none")
    for i in range(2):
        assert got[i].item() == pytest.approx(_ssim_reference(x[i].numpy(), y[i].numpy()), abs=1e-10)
    assert 0.0 < got.min() < got.max() < 1.0


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
    # Masked L1 equals the L1 over the box.
    box = (x - y)[..., 8:16, 6:14].abs().mean().item()
    assert l1(x, y, mask).item() == pytest.approx(box)
    # SSIM with a mask averages the SSIM map at the masked window centres (map index = centre - 5).
    full = ssim(x[:1], y[:1], mask=torch.ones(1, 24, 20)).item()
    assert full == pytest.approx(ssim(x[:1], y[:1]).item())


def test_empty_mask_gives_nan_and_mean_ignores_it(pair) -> None:
    x, y = pair
    mask = torch.ones(2, 1, 24, 20)
    mask[1] = 0
    per = psnr(x, y, mask, reduction="none")
    assert not math.isnan(per[0].item()) and math.isnan(per[1].item())
    assert psnr(x, y, mask).item() == pytest.approx(per[0].item())


def test_errors_and_window() -> None:
    w = gaussian_window(11, 1.5)
    assert w.sum().item() == pytest.approx(1.0) and w.argmax().item() == 5 and torch.allclose(w, w.flip(0))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="equal shape"):
        l1(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8))
    with pytest.raises(ValueError, match="reduction"):
        l1(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), reduction="sum")
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(10)
