"""The compositing generator: output = alpha * (keep * x + (1 - keep) * fill) + (1 - alpha) * background."""
from __future__ import annotations

import torch

from hoi_adapt.models.generator import CompositingGenerator


def forced(alpha: float, keep: float) -> CompositingGenerator:
    torch.manual_seed(0)
    g = CompositingGenerator(in_channels=3, base_channels=8, num_downs=3, background=(0.2, 0.4, 0.6)).eval()
    head = g.net.head
    torch.nn.init.zeros_(head.weight)
    with torch.no_grad():
        head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, alpha, keep]))
    return g


def test_alpha_zero_gives_background_exactly_outside_the_hand():
    x = torch.rand(2, 3, 32, 32)
    out = forced(-40.0, 0.0)(x)
    torch.testing.assert_close(out, torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1).expand_as(out))


def test_keep_one_copies_the_input_and_keep_zero_uses_the_fill():
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(forced(40.0, 40.0)(x), x)
    torch.testing.assert_close(forced(40.0, -40.0)(x), torch.full_like(x, 0.5))  # sigmoid(0) fill


def test_maps_compose_the_output_and_gradients_flow():
    g = CompositingGenerator(in_channels=8, base_channels=8, num_downs=4)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    m = g.maps(x, torch.rand(2, 5, 64, 64))
    expected = m["alpha"] * (m["keep"] * x + (1 - m["keep"]) * m["fill"]) + (1 - m["alpha"]) * 0.5
    torch.testing.assert_close(m["output"], expected)
    assert m["output"].min() >= 0 and m["output"].max() <= 1
    m["output"].mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())
    assert g.init_config["init_args"]["in_channels"] == 8
