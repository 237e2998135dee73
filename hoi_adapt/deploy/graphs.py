"""The exported graphs: E and G as modules with plain tensor inputs and a fixed tuple of named outputs.

ONNX graphs take and return flat tensors, so these wrappers fix the interface that the ONNX files, the
numerical check and :class:`~hoi_adapt.deploy.runtime.OnnxPredictor` share. Rotations leave the graph as
matrices (MANO's native input, ``pose2rot=False``); the axis-angle form of ``Predictor`` is derived outside,
by the same function the torch path uses.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from hoi_adapt.models.estimator import MeshEstimator

ESTIMATOR_INPUTS = ("image", "K")
ESTIMATOR_OUTPUTS = ("vertices", "joints3d", "joints2d", "global_orient", "hand_pose", "betas", "transl",
                     "mask_logits", "keypoints2d", "keypoint_confidence")
GENERATOR_INPUTS = ("image", "guidance")
GENERATOR_OUTPUTS = ("translated",)


class FixedAdaptiveAvgPool2d(nn.Module):
    """``AdaptiveAvgPool2d`` for one known input size, as two averaging matrices (the legacy ONNX exporter
    cannot export adaptive pooling to a size other than 1 once the batch axis is dynamic). Same windows as
    torch's: output cell i averages input rows ``floor(i*n/m) .. ceil((i+1)*n/m) - 1``."""

    def __init__(self, output_size: tuple[int, int], input_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", self._weights(output_size[0], input_size[0]), persistent=False)
        self.register_buffer("cols", self._weights(output_size[1], input_size[1]), persistent=False)

    @staticmethod
    def _weights(m: int, n: int) -> torch.Tensor:
        w = torch.zeros(m, n)
        for i in range(m):
            lo, hi = (i * n) // m, -(-((i + 1) * n) // m)
            w[i, lo:hi] = 1.0 / (hi - lo)
        return w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ x @ self.cols.T


def with_fixed_pooling(net: nn.Module, example: tuple[torch.Tensor, ...]) -> nn.Module:
    """A copy of ``net`` whose adaptive average pools (to sizes other than 1) are fixed for ``example``'s sizes."""
    net = copy.deepcopy(net).eval()
    seen: dict[str, tuple[int, int]] = {}
    pools = {name: m for name, m in net.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)}

    def record(name: str):  # a forward hook that returns None (a returned value would replace the output)
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            seen[name] = (int(inputs[0].shape[-2]), int(inputs[0].shape[-1]))
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in pools.items()]
    with torch.no_grad():
        net(*example)
    for hook in hooks:
        hook.remove()
    for name, pool in pools.items():
        size = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size, pool.output_size)
        if name in seen and size != (1, 1):
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, FixedAdaptiveAvgPool2d(size, seen[name]))
    return net


class EstimatorGraph(nn.Module):
    """E as ``(image (B,3,S,S) in [0,1], K (B,3,3)) -> ESTIMATOR_OUTPUTS`` (the final, not per-iteration, values)."""

    def __init__(self, estimator: MeshEstimator, input_size: int) -> None:
        super().__init__()
        example = (torch.rand(1, 3, input_size, input_size), example_intrinsics(input_size, 1))
        self.estimator = with_fixed_pooling(estimator, example)

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.estimator(image, K)
        return tuple(getattr(out, name) for name in ESTIMATOR_OUTPUTS)


def example_intrinsics(size: int, batch: int) -> torch.Tensor:
    """(batch, 3, 3) intrinsics of a ``size``-px crop (focal 2.2 x size, centred): test and tracing inputs."""
    f, c = 2.2 * size, (size - 1) / 2.0
    return torch.tensor([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]]).expand(batch, 3, 3).contiguous()


class GeneratorGraph(nn.Module):
    """G as ``(image (B,3,S,S), guidance (B,C,S,S) or None) -> translated (B,3,S,S)``."""

    def __init__(self, generator: nn.Module, guided: bool) -> None:
        super().__init__()
        self.generator = copy.deepcopy(generator).eval()
        self.guided = guided

    def forward(self, image: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(image, guidance) if self.guided else self.generator(image)
