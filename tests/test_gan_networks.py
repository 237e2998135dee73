"""Generator, discriminator and weight init: shapes, ranges, gradients, receptive field, errors, config."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from hoi_adapt.models.discriminator import PatchDiscriminator, output_size, receptive_field
from hoi_adapt.models.generator import UNetGenerator
from hoi_adapt.models.init import init_weights
from hoi_adapt.utils.errors import ConfigError


def _all_params_get_grad(module: nn.Module, out: torch.Tensor) -> None:
    # A random projection avoids symmetric cancellation that a plain mean could hide.
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"no gradient for {name}"
        # A bias followed by a normalisation gets ~1e-6 (rounding noise); live parameters get >= 1e-2 here.
        assert p.grad.abs().max() > 1e-4, f"(numerically) zero gradient for {name}"


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("size", [64, 128])
def test_generator_shape_and_range(size: int) -> None:
    torch.manual_seed(0)
    g = UNetGenerator()
    x = torch.rand(2, 8, size, size)
    y = g(x)
    assert y.shape == (2, 3, size, size)
    assert y.min() > 0 and y.max() < 1


def test_generator_non_square_and_other_depths() -> None:
    g = UNetGenerator(in_channels=3, num_downs=4, base_channels=8)
    assert g(torch.rand(1, 3, 32, 48)).shape == (1, 3, 32, 48)
    g1 = UNetGenerator(in_channels=3, num_downs=1, base_channels=8)
    assert g1(torch.rand(1, 3, 6, 4)).shape == (1, 3, 6, 4)


def test_generator_guidance_is_concatenated() -> None:
    torch.manual_seed(1)
    g = UNetGenerator(base_channels=8).eval()
    image, guidance = torch.rand(2, 3, 64, 64), torch.rand(2, 5, 64, 64)
    torch.testing.assert_close(g(image, guidance), g(torch.cat([image, guidance], 1)))
    # The guidance actually changes the output.
    assert not torch.allclose(g(image, guidance), g(image, torch.zeros_like(guidance)))


def test_generator_output_modes() -> None:
    torch.manual_seed(2)
    x = torch.rand(1, 3, 32, 32)
    kw = dict(in_channels=3, base_channels=8, num_downs=3, init_gain=1.0)
    torch.manual_seed(2)
    raw = UNetGenerator(output="none", **kw)(x)
    torch.manual_seed(2)
    sig = UNetGenerator(output="sigmoid", **kw)(x)
    torch.manual_seed(2)
    tanh = UNetGenerator(output="tanh", **kw)(x)
    torch.testing.assert_close(sig, torch.sigmoid(raw))
    torch.testing.assert_close(tanh, (torch.tanh(raw) + 1) / 2)
    assert raw.min() < 0 or raw.max() > 1  # large init: raw output leaves [0, 1], mapped outputs do not
    assert tanh.min() >= 0 and tanh.max() <= 1


@pytest.mark.parametrize("norm,dropout", [("instance", 0.0), ("batch", 0.5), ("none", 0.0)])
def test_generator_gradients_reach_every_parameter(norm: str, dropout: float) -> None:
    torch.manual_seed(3)
    # Without normalisation, N(0, 0.02) weights shrink the signal layer after layer; use a scale-keeping init.
    init = "kaiming" if norm == "none" else "normal"
    g = UNetGenerator(base_channels=8, norm=norm, dropout=dropout, init_type=init)
    _all_params_get_grad(g, g(torch.rand(2, 8, 64, 64)))


def test_generator_dropout_is_stochastic_in_train_only() -> None:
    torch.manual_seed(4)
    g = UNetGenerator(base_channels=8, dropout=0.5)
    x = torch.rand(1, 8, 64, 64)
    assert not torch.allclose(g(x), g(x))
    g.eval()
    torch.testing.assert_close(g(x), g(x))


def test_generator_bad_input_size_error() -> None:
    g = UNetGenerator()
    with pytest.raises(ConfigError, match=r"100x100 is not divisible by 2\*\*num_downs = 32"):
        g(torch.rand(1, 8, 100, 100))
    with pytest.raises(ConfigError, match="got 3 input channels but in_channels=8"):
        g(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="expected a"):
        g(torch.rand(8, 64, 64))


@pytest.mark.parametrize("kwargs", [dict(norm="layer"), dict(output="relu"), dict(num_downs=0), dict(dropout=1.0),
                                    dict(upsample="nearest"), dict(init_type="uniform")])
def test_generator_bad_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        UNetGenerator(**kwargs)


def test_generator_bilinear_upsampling() -> None:
    g = UNetGenerator(base_channels=8, upsample="bilinear")
    _all_params_get_grad(g, g(torch.rand(1, 8, 64, 64)))


def test_generator_seeded_construction_is_reproducible() -> None:
    torch.manual_seed(5)
    a = UNetGenerator(base_channels=8)
    torch.manual_seed(5)
    b = UNetGenerator(base_channels=8)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


# ---------------------------------------------------------------- discriminator
@pytest.mark.parametrize("size,num_layers,expected", [(128, 3, 14), (64, 3, 6), (64, 2, 14), (32, 3, 2)])
def test_discriminator_shapes(size: int, num_layers: int, expected: int) -> None:
    d = PatchDiscriminator(num_layers=num_layers)
    out = d(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1, expected, expected)
    assert output_size(size, num_layers) == expected


@pytest.mark.parametrize("num_layers,rf", [(2, 34), (3, 70)])
def test_discriminator_receptive_field_matches_gradient_support(num_layers: int, rf: int) -> None:
    torch.manual_seed(6)
    d = PatchDiscriminator(num_layers=num_layers, norm="none", base_channels=4)  # norm would couple all pixels
    assert receptive_field(num_layers) == rf == d.receptive_field
    x = torch.rand(1, 3, 160, 160, requires_grad=True)
    out = d(x)
    i = out.shape[-1] // 2
    out[0, 0, i, i].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = support.any(dim=1).nonzero().flatten()
    cols = support.any(dim=0).nonzero().flatten()
    assert rows.max() - rows.min() + 1 == rf
    assert cols.max() - cols.min() + 1 == rf


@pytest.mark.parametrize("norm,sn", [("instance", False), ("batch", False), ("none", True)])
def test_discriminator_gradients_reach_every_parameter(norm: str, sn: bool) -> None:
    torch.manual_seed(7)
    init = "kaiming" if norm == "none" else "normal"
    d = PatchDiscriminator(norm=norm, spectral_norm=sn, base_channels=8, init_type=init)
    _all_params_get_grad(d, d(torch.rand(2, 3, 64, 64)))


def test_discriminator_spectral_norm_bounds_weights() -> None:
    torch.manual_seed(8)
    d = PatchDiscriminator(norm="none", spectral_norm=True, base_channels=8, init_gain=1.0)
    x = torch.rand(1, 3, 64, 64)
    for _ in range(30):  # power iterations run in training-mode forwards
        d(x)
    d.eval()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05
        raw = torch.linalg.matrix_norm(conv.parametrizations.weight.original.flatten(1), ord=2)
        assert raw > 2.0  # the unnormalised weight is far from 1: the bound is the parametrisation's doing


def test_discriminator_errors() -> None:
    d = PatchDiscriminator()
    with pytest.raises(ConfigError, match="too small"):
        d(torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\)"):
        d(torch.rand(1, 8, 64, 64))
    with pytest.raises(ConfigError):
        PatchDiscriminator(norm="group")


# ---------------------------------------------------------------- init
def test_init_weights_statistics() -> None:
    torch.manual_seed(9)
    net = nn.Sequential(nn.Conv2d(16, 64, 3), nn.InstanceNorm2d(64, affine=True), nn.Linear(64, 64),
                        nn.ConvTranspose2d(64, 32, 4))
    for p in net.parameters():
        nn.init.constant_(p, 5.0)
    assert init_weights(net, "normal", 0.02) is net
    for layer in (net[0], net[2], net[3]):
        assert abs(layer.weight.std().item() - 0.02) < 0.002
        assert abs(layer.weight.mean().item()) < 0.002
        assert torch.all(layer.bias == 0)
    assert abs(net[1].weight.mean().item() - 1.0) < 0.01 and torch.all(net[1].bias == 0)


def test_init_weights_kinds_and_spectral_norm() -> None:
    torch.manual_seed(10)
    conv = nn.utils.parametrizations.spectral_norm(nn.Conv2d(8, 8, 3))
    init_weights(conv, "normal", 0.5)
    assert abs(conv.parametrizations.weight.original.std().item() - 0.5) < 0.1
    lin = nn.Linear(32, 32)
    init_weights(lin, "orthogonal", 1.0)
    torch.testing.assert_close(lin.weight @ lin.weight.T, torch.eye(32), atol=1e-5, rtol=0)
    init_weights(lin, "xavier", 1.0)
    assert abs(lin.weight.std().item() - (2 / 64) ** 0.5) < 0.03
    init_weights(lin, "kaiming")
    assert abs(lin.weight.std().item() - (2 / (1 + 0.2**2) / 32) ** 0.5) < 0.05
    with pytest.raises(ConfigError, match="unknown kind"):
        init_weights(lin, "zeros")


# ---------------------------------------------------------------- config
def test_networks_and_losses_build_from_class_path_config() -> None:
    """LightningCLI builds these from YAML via jsonargparse; every constructor arg must be typed."""
    from jsonargparse import ArgumentParser

    from hoi_adapt.losses.translation import TranslationLoss

    parser = ArgumentParser()
    parser.add_argument("--generator", type=nn.Module)
    parser.add_argument("--discriminator", type=nn.Module)
    parser.add_argument("--loss", type=TranslationLoss)
    cfg = parser.parse_object({
        "generator": {"class_path": "hoi_adapt.models.UNetGenerator",
                      "init_args": {"in_channels": 3, "base_channels": 8, "norm": "batch"}},
        "discriminator": {"class_path": "hoi_adapt.models.discriminator.PatchDiscriminator",
                          "init_args": {"num_layers": 2, "spectral_norm": True}},
        "loss": {"class_path": "hoi_adapt.losses.TranslationLoss",
                 "init_args": {"weight_mesh_fill": 0.0, "background_color": [1.0, 1.0, 1.0]}},
    })
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    objs = instantiate(cfg)
    assert isinstance(objs.generator, UNetGenerator) and objs.generator.in_channels == 3
    assert isinstance(objs.discriminator, PatchDiscriminator) and objs.discriminator.receptive_field == 34
    assert not objs.loss.is_active("mesh_fill")
    assert objs.loss.background_color.tolist() == [1.0, 1.0, 1.0]


def test_package_import_is_lazy() -> None:
    import subprocess
    import sys

    code = ("import sys, hoi_adapt.models, hoi_adapt.losses; "
            "assert 'torch' not in sys.modules, 'torch imported eagerly'; "
            "from hoi_adapt.models import UNetGenerator; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
