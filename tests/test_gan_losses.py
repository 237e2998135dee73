"""GANLoss values on hand-computed logits, hinge D/G asymmetry, multi-scale averaging; ImagePool behaviour."""
from __future__ import annotations

import math

import pytest
import torch

from hoi_adapt.losses.gan import GANLoss, ImagePool
from hoi_adapt.utils.errors import ConfigError

LOGITS = torch.tensor([[0.5, -1.0]])


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    "mode,real,fake",
    [
        ("lsgan", ((0.5 - 1) ** 2 + (-1 - 1) ** 2) / 2, (0.5**2 + 1**2) / 2),  # 2.125, 0.625
        ("vanilla", (_softplus(-0.5) + _softplus(1.0)) / 2, (_softplus(0.5) + _softplus(-1.0)) / 2),
        ("hinge", (0.5 + 2.0) / 2, (1.5 + 0.0) / 2),  # relu(1 - x), relu(1 + x)
    ],
)
def test_discriminator_side_values(mode: str, real: float, fake: float) -> None:
    loss = GANLoss(mode)
    assert loss(LOGITS, True).item() == pytest.approx(real, abs=1e-6)
    assert loss(LOGITS, False).item() == pytest.approx(fake, abs=1e-6)
    d = loss.discriminator_loss(LOGITS, LOGITS)
    assert d["real"].item() == pytest.approx(real, abs=1e-6)
    assert d["fake"].item() == pytest.approx(fake, abs=1e-6)
    assert d["total"].item() == pytest.approx((real + fake) / 2, abs=1e-6)


def test_generator_side_values() -> None:
    # lsgan/vanilla: G's loss is D's loss with the real label; hinge: -mean(logits).
    assert GANLoss("lsgan").generator_loss(LOGITS).item() == pytest.approx(2.125)
    assert GANLoss("vanilla").generator_loss(LOGITS).item() == pytest.approx((_softplus(-0.5) + _softplus(1.0)) / 2)
    assert GANLoss("hinge").generator_loss(LOGITS).item() == pytest.approx(0.25)  # -(0.5 - 1) / 2


def test_hinge_asymmetry() -> None:
    loss = GANLoss("hinge")
    confident = torch.full((2, 1, 3, 3), 5.0)
    # D stops caring beyond the margin; G keeps being rewarded for larger logits.
    assert loss(confident, True, for_discriminator=True).item() == 0.0
    assert loss(confident, True, for_discriminator=False).item() == -5.0
    x = torch.tensor([3.0, -3.0], requires_grad=True)
    loss(x, True, for_discriminator=True).backward()
    assert x.grad.tolist() == [0.0, -0.5]  # only the sample inside the margin gets gradient
    x.grad = None
    loss(x, True, for_discriminator=False).backward()
    assert x.grad.tolist() == [-0.5, -0.5]
    with pytest.raises(ValueError, match="target_is_real=True"):
        loss(x, False, for_discriminator=False)


def test_labels_expand_to_any_shape_and_follow_dtype() -> None:
    loss = GANLoss("lsgan", real_label=0.9).double()
    pred = torch.zeros(2, 1, 5, 7, dtype=torch.float64)
    out = loss(pred, True)
    assert out.dtype == torch.float64 and out.item() == pytest.approx(0.81)
    assert loss(pred, False).item() == 0.0
    assert "real_label" not in loss.state_dict()  # labels are configuration, not checkpoint state


def test_list_of_predictions_is_averaged() -> None:
    a, b = torch.randn(2, 1, 6, 6), torch.randn(2, 1, 3, 3)
    for mode in ("lsgan", "vanilla", "hinge"):
        loss = GANLoss(mode)
        for real in (True, False):
            expected = (loss(a, real) + loss(b, real)) / 2
            torch.testing.assert_close(loss([a, b], real), expected)
    with pytest.raises(ValueError, match="empty"):
        GANLoss()([], True)
    with pytest.raises(ConfigError):
        GANLoss("wgan")


# ---------------------------------------------------------------- ImagePool
def _batches(n: int, bs: int = 4) -> list[torch.Tensor]:
    # Image k is filled with the value k, so returned images identify themselves.
    return [torch.arange(i * bs, (i + 1) * bs, dtype=torch.float32).view(bs, 1, 1, 1).expand(bs, 3, 2, 2).clone()
            for i in range(n)]


def test_pool_size_zero_returns_input_unchanged() -> None:
    pool = ImagePool(0)
    x = torch.rand(3, 3, 4, 4, requires_grad=True)
    assert pool.query(x) is x
    assert len(pool) == 0


def test_pool_fills_then_mixes_old_and_new() -> None:
    torch.manual_seed(0)
    pool = ImagePool(size=10)
    seen: set[float] = set()
    n_old = n_total = 0
    for i, batch in enumerate(_batches(60)):
        out = pool.query(batch)
        assert out.shape == batch.shape
        ids = out[:, 0, 0, 0].tolist()
        new_ids = batch[:, 0, 0, 0].tolist()
        for j, v in enumerate(ids):
            assert v == new_ids[j] or v in seen  # either this image or one queried before it
            seen.add(new_ids[j])
            if i >= 3:  # pool full after 12 images
                n_total += 1
                n_old += v != new_ids[j]
        assert len(pool) <= 10
        assert {img[0, 0, 0].item() for img in pool.images} <= seen
    assert len(pool) == 10
    assert 0.35 < n_old / n_total < 0.65  # half of the queries swap with the history


def test_pool_is_filled_first_and_returns_detached() -> None:
    pool = ImagePool(size=6)
    x = torch.rand(4, 3, 2, 2, requires_grad=True)
    out = pool.query(x)
    torch.testing.assert_close(out, x.detach())  # while filling, the new images come back
    assert not out.requires_grad
    x.data.add_(1.0)  # stored copies do not alias the caller's tensor
    assert all(not torch.equal(s, xi) for s, xi in zip(pool.images, x.detach(), strict=True))


def test_pool_is_deterministic_and_state_round_trips() -> None:
    batches = _batches(30)
    torch.manual_seed(1)
    pool = ImagePool(size=8)
    for b in batches[:12]:
        pool.query(b)
    state = pool.state_dict()
    rng = torch.get_rng_state()
    expected = [pool.query(b) for b in batches[12:]]

    restored = ImagePool(size=8)
    restored.load_state_dict(state)
    torch.set_rng_state(rng)
    got = [restored.query(b) for b in batches[12:]]
    for e, g in zip(expected, got, strict=True):
        assert torch.equal(e, g)
    # Without the saved history the continuation differs.
    fresh = ImagePool(size=8)
    torch.set_rng_state(rng)
    assert any(not torch.equal(e, fresh.query(b)) for e, b in zip(expected, batches[12:], strict=False))


def test_pool_state_errors() -> None:
    pool = ImagePool(size=4)
    pool.query(torch.rand(3, 3, 2, 2))
    state = pool.state_dict()
    assert state["images"].shape == (3, 3, 2, 2)
    with pytest.raises(ConfigError, match="size"):
        ImagePool(size=5).load_state_dict(state)
    with pytest.raises(ConfigError):
        ImagePool(size=4).load_state_dict({"images": torch.empty(0)})
    with pytest.raises(ConfigError):
        ImagePool(-1)
    empty = ImagePool(size=4)
    empty.load_state_dict(ImagePool(size=4).state_dict())
    assert len(empty) == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_device_safety_cuda() -> None:
    from hoi_adapt.losses.translation import TranslationLoss

    dev = torch.device("cuda")
    pred = torch.randn(2, 1, 6, 6, device=dev)
    for mode in ("lsgan", "vanilla", "hinge"):
        assert GANLoss(mode).to(dev)(pred, True).device.type == "cuda"
    pool = ImagePool(size=2)
    pool.load_state_dict({"size": 2, "images": torch.rand(2, 3, 4, 4)})  # restored on CPU
    torch.manual_seed(0)
    out = pool.query(torch.rand(8, 3, 4, 4, device=dev))
    assert out.device.type == "cuda"
    loss = TranslationLoss(background_color=[0.0, 0.0, 0.0]).to(dev)
    fake = torch.rand(2, 3, 8, 8, device=dev)
    terms = loss(fake, hoi_image=fake, visible_hand_mask=torch.ones(2, 8, 8, device=dev), fake_logits=pred)
    assert terms["total"].device.type == "cuda"
