"""Generator reconstruction losses: ideal cases, mask restriction, area normalisation, gradients, combination."""
from __future__ import annotations

import pytest
import torch

from hoi_adapt.losses.translation import (
    TranslationLoss,
    background_loss,
    hand_region_mask,
    masked_l1,
    mesh_guided_fill_loss,
    paired_l1,
    visible_hand_loss,
)
from hoi_adapt.utils.errors import ConfigError

B, H, W = 2, 16, 16


def _box(y0: int, y1: int, x0: int, x1: int, b: int = B) -> torch.Tensor:
    m = torch.zeros(b, 1, H, W)
    m[..., y0:y1, x0:x1] = 1.0
    return m


@pytest.fixture()
def images() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: torch.rand(B, 3, H, W, generator=g) for k in ("a", "b", "c")}


# ---------------------------------------------------------------- masked L1 basics
def test_paired_l1_zero_when_equal_and_exact_otherwise(images) -> None:
    a = images["a"]
    assert paired_l1(a, a).item() == 0.0
    assert paired_l1(a, a + 0.25).item() == pytest.approx(0.25)
    assert paired_l1(a, images["b"]).item() == pytest.approx((a - images["b"]).abs().mean().item())


def test_mask_restricts_and_normalises_by_area(images) -> None:
    a = images["a"]
    target = a + 0.1
    small, big = _box(0, 4, 0, 4), _box(0, 8, 0, 4)  # big has twice the area
    # Equal error everywhere: value does not depend on the area.
    assert masked_l1(a, target, small).item() == pytest.approx(0.1, rel=1e-4)
    assert masked_l1(a, target, big).item() == pytest.approx(0.1, rel=1e-4)
    # Changing pixels outside the mask does not change the loss; inside it does.
    changed = target.clone()
    changed[..., 10:, 10:] = 7.0
    assert masked_l1(a, changed, small).item() == pytest.approx(masked_l1(a, target, small).item())
    changed[..., 0, 0] = 7.0
    assert masked_l1(a, changed, small).item() > 0.2
    # (B, H, W) masks behave like (B, 1, H, W); soft masks weight pixels.
    assert masked_l1(a, target, small[:, 0]).item() == pytest.approx(masked_l1(a, target, small).item())
    assert masked_l1(a, target, 0.5 * small).item() == pytest.approx(0.1, rel=1e-4)


def test_empty_mask_gives_zero_not_nan(images) -> None:
    out = masked_l1(images["a"], images["b"], torch.zeros(B, H, W))
    assert out.item() == 0.0


def test_per_sample_flag_in_mask(images) -> None:
    a, b = images["a"], images["b"]
    flag = torch.tensor([1.0, 0.0]).view(B, 1, 1, 1)
    m = torch.ones(B, 1, H, W) * flag
    assert paired_l1(a, b, m).item() == pytest.approx((a[0] - b[0]).abs().mean().item(), rel=1e-5)


def test_shape_errors(images) -> None:
    a = images["a"]
    with pytest.raises(ValueError, match="mask"):
        masked_l1(a, a, torch.ones(B, 2, H, W))
    with pytest.raises(ValueError, match="mask"):
        masked_l1(a, a, torch.ones(B, H, W + 1))
    with pytest.raises(ValueError, match="equal shape"):
        masked_l1(a, a[:, :1])


# ---------------------------------------------------------------- the four terms
def test_visible_hand_loss(images) -> None:
    hoi, vis = images["a"], _box(4, 10, 4, 10)
    fake = torch.where(vis.bool(), hoi, images["b"])  # equal inside the visible mask, different outside
    assert visible_hand_loss(fake, hoi, vis).item() == 0.0
    fake2 = fake.clone()
    fake2[..., 5, 5] += 0.3
    assert visible_hand_loss(fake2, hoi, vis).item() == pytest.approx(0.3 / (6 * 6), rel=1e-4)


@pytest.mark.parametrize("kind", ["colour", "per_sample", "image"])
def test_background_loss(images, kind: str) -> None:
    region = _box(4, 10, 4, 10)
    if kind == "colour":
        bg = torch.tensor([1.0, 0.5, 0.0])
        bg_img = bg.view(1, 3, 1, 1).expand(B, 3, H, W)
    elif kind == "per_sample":
        bg = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
        bg_img = bg.view(B, 3, 1, 1).expand(B, 3, H, W)
    else:
        bg = bg_img = images["c"]
    fake = torch.where(region.bool(), images["a"], bg_img)  # hand inside, background outside
    assert background_loss(fake, bg, region).item() == 0.0
    # Object pixels left outside the hand region are penalised...
    with_object = fake.clone()
    with_object[..., 0:3, 0:3] = bg_img[..., 0:3, 0:3] + 0.5
    expected = 0.5 * 9 / (H * W - 36)
    assert background_loss(with_object, bg, region).item() == pytest.approx(expected, rel=1e-4)
    # ...but whatever G paints inside the hand region is not.
    inside = fake.clone()
    inside[..., 5:9, 5:9] = 0.123
    assert background_loss(inside, bg, region).item() == 0.0


def test_background_loss_bad_background(images) -> None:
    with pytest.raises(ValueError, match="background must be"):
        background_loss(images["a"], torch.zeros(4), _box(0, 4, 0, 4))


def test_hand_region_is_union() -> None:
    vis, sil = _box(0, 6, 0, 6)[:, 0], _box(4, 10, 4, 10)
    region = hand_region_mask(vis, sil)
    assert region.shape == (B, 1, H, W)
    assert region.sum().item() == B * (36 + 36 - 4)
    torch.testing.assert_close(hand_region_mask(vis), vis.unsqueeze(1))


def test_mesh_guided_fill_loss(images) -> None:
    sil, vis = _box(2, 12, 2, 12), _box(2, 12, 2, 7)  # occluded part: rows 2-12, cols 7-12
    rendered = images["c"]
    occluded = sil * (1 - vis)
    fake = torch.where(occluded.bool(), rendered, images["a"])  # agrees with the rendering where occluded
    assert mesh_guided_fill_loss(fake, rendered, sil, vis).item() == 0.0
    # Visible pixels and pixels outside the silhouette are none of this loss's business.
    fake2 = fake.clone()
    fake2[..., 2:12, 2:7] = 0.9
    fake2[..., 13:, :] = 0.9
    assert mesh_guided_fill_loss(fake2, rendered, sil, vis).item() == 0.0
    fake3 = fake.clone()
    fake3[..., 3, 8] = rendered[..., 3, 8] + 0.5
    assert mesh_guided_fill_loss(fake3, rendered, sil, vis).item() == pytest.approx(0.5 / (10 * 5), rel=1e-4)


def test_gradients_reach_images_but_not_masks(images) -> None:
    sil = _box(2, 12, 2, 12).requires_grad_()
    vis = _box(2, 12, 2, 7)
    rendered = images["c"].clone().requires_grad_()
    fake = images["a"].clone().requires_grad_()
    mesh_guided_fill_loss(fake, rendered, sil, vis).backward()
    assert fake.grad.abs().sum() > 0 and rendered.grad.abs().sum() > 0
    assert sil.grad is None  # the region is a selector: the loss cannot be lowered by shrinking it
    rendered.grad = None
    mesh_guided_fill_loss(fake, rendered.detach(), sil, vis)  # caller's choice: detached rendering
    assert rendered.grad is None


# ---------------------------------------------------------------- TranslationLoss
def _real_batch(images) -> dict:
    return dict(hoi_image=images["a"], visible_hand_mask=_box(2, 12, 2, 7)[:, 0], rendered_hand=images["c"],
                rendered_silhouette=_box(2, 12, 2, 12), background=torch.zeros(3))


def test_translation_loss_combines_terms(images) -> None:
    loss = TranslationLoss(weight_paired=2.0, weight_visible=3.0, weight_background=4.0, weight_mesh_fill=5.0,
                           weight_adversarial=0.5, gan_mode="lsgan")
    fake = images["b"].clone().requires_grad_()
    batch = _real_batch(images)
    logits = torch.randn(B, 1, 6, 6)
    out = loss(fake, target=images["c"], fake_logits=logits, **batch)
    assert set(out) == {"paired", "visible", "background", "mesh_fill", "adv", "total"}
    region = hand_region_mask(batch["visible_hand_mask"], batch["rendered_silhouette"])
    expected = {
        "paired": paired_l1(fake, images["c"]),
        "visible": visible_hand_loss(fake, batch["hoi_image"], batch["visible_hand_mask"]),
        "background": background_loss(fake, batch["background"], region),
        "mesh_fill": mesh_guided_fill_loss(fake, batch["rendered_hand"], batch["rendered_silhouette"],
                                           batch["visible_hand_mask"]),
        "adv": ((logits - 1) ** 2).mean(),
    }
    for k, v in expected.items():
        torch.testing.assert_close(out[k], v)
        assert out[k].item() > 0
    weights = {"paired": 2.0, "visible": 3.0, "background": 4.0, "mesh_fill": 5.0, "adv": 0.5}
    torch.testing.assert_close(out["total"], sum(weights[k] * v for k, v in expected.items()))
    out["total"].backward()
    assert fake.grad.abs().sum() > 0


def test_translation_loss_zero_weight_skips_computation(images) -> None:
    loss = TranslationLoss(weight_mesh_fill=0.0, weight_adversarial=0.0)
    assert not loss.is_active("mesh_fill") and not loss.is_active("adv") and loss.is_active("visible")
    batch = _real_batch(images)
    # Inputs that would raise if the term were computed prove it is skipped.
    batch["rendered_hand"] = torch.zeros(1, 1, 3, 3)
    out = loss(images["b"], fake_logits=[], **batch)
    assert set(out) == {"visible", "background", "total"}


def test_translation_loss_only_given_terms_and_missing_inputs(images) -> None:
    loss = TranslationLoss(background_color=[1.0, 1.0, 1.0])
    fake = images["b"]
    out = loss(fake, target=images["c"])  # a synthetic-pair batch
    assert set(out) == {"paired", "total"}
    torch.testing.assert_close(out["total"], 10.0 * out["paired"])
    # The configured background colour is used when no background is passed.
    vis = _box(2, 12, 2, 7)
    out = loss(fake, hoi_image=images["a"], visible_hand_mask=vis)
    torch.testing.assert_close(out["background"], background_loss(fake, torch.ones(3), vis))
    with pytest.raises(ValueError, match="'mesh_fill'.*rendered_silhouette"):
        loss(fake, hoi_image=images["a"], visible_hand_mask=vis, rendered_hand=images["c"])
    with pytest.raises(ValueError, match="'visible'.*hoi_image"):
        loss(fake, visible_hand_mask=vis)
    with pytest.raises(ValueError, match="'background'.*background"):
        TranslationLoss()(fake, hoi_image=images["a"], visible_hand_mask=vis)
    empty = loss(fake)
    assert set(empty) == {"total"} and empty["total"].item() == 0.0


def test_translation_loss_ideal_translation_is_zero(images) -> None:
    """A perfect hand-only output (visible hand kept, occlusion filled by the rendering, background elsewhere)."""
    batch = _real_batch(images)
    vis = batch["visible_hand_mask"].unsqueeze(1)
    sil = batch["rendered_silhouette"]
    fake = torch.where(vis.bool(), batch["hoi_image"], torch.where(sil.bool(), batch["rendered_hand"], 0.0))
    out = TranslationLoss(weight_adversarial=0.0)(fake, **batch)
    assert out["total"].item() == 0.0 and set(out) == {"visible", "background", "mesh_fill", "total"}


def test_translation_loss_bad_config() -> None:
    with pytest.raises(ConfigError, match="weight"):
        TranslationLoss(weight_visible=-1.0)
    with pytest.raises(ConfigError, match="gan_mode"):
        TranslationLoss(gan_mode="wgan")
    with pytest.raises(KeyError):
        TranslationLoss().is_active("cycle")
