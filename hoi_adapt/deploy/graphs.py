"""The exported graphs: E and G as modules with plain tensor inputs and a fixed tuple of named outputs.

ONNX graphs take and return flat tensors, so these wrappers fix the interface that the ONNX files, the
numerical check and :class:`~hoi_adapt.deploy.runtime.OnnxPredictor` share. Rotations leave the graph as
matrices (MANO's native input, ``pose2rot=False``); the axis-angle form of ``Predictor`` is derived outside,
by the same function the torch path uses.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
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


class PhaseConvTranspose2d(nn.Module):
    """A 4x4, stride-2, padding-1 ``ConvTranspose2d`` as one 2x2 convolution to 4x the channels, then interleaving.

    Output pixel (2i+py, 2j+px) of the transposed convolution is a 2x2 correlation of the input around (i, j)
    with four of the 16 kernel taps, fixed by its phase (py, px). One ordinary convolution (padding 1, so its
    output (i', j') sees input rows i'-1, i' and columns j'-1, j') computes all four phases at once, phase by
    phase along the channels; phase (py, px) is its block shifted by (py, px), and ``pixel_shuffle``
    interleaves them. Same products and sums, in another order. Why: ONNX Runtime quantises and blocks ordinary
    convolutions but runs ``ConvTranspose`` with a generic fp32 kernel (the generator's largest cost).
    ``size`` (the input's H, W, set by :func:`with_phase_deconvolutions`) makes every slice and reshape a
    constant in the exported graph instead of a chain of shape computations.
    """

    #: kernel row (column) of the transposed conv for phase p and window row (column) 0 / 1
    TAPS = {0: (3, 1), 1: (2, 0)}

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        w = deconv.weight.detach()  # (in, out, 4, 4)
        cin, cout = w.shape[:2]
        weight = w.new_zeros(2, 2, cout, cin, 2, 2)  # (py, px, out, in, 2, 2)
        for py, rows in self.TAPS.items():
            for px, cols in self.TAPS.items():
                weight[py, px] = w[:, :, list(rows)][:, :, :, list(cols)].permute(1, 0, 2, 3)
        self.conv = nn.Conv2d(cin, 4 * cout, 2, padding=1, bias=deconv.bias is not None)
        self.conv.weight.data.copy_(weight.reshape(4 * cout, cin, 2, 2))
        if deconv.bias is not None:
            self.conv.bias.data.copy_(deconv.bias.detach().repeat(4))
        self.cout = cout
        self.size: tuple[int, int] | None = None

    @staticmethod
    def applies(module: nn.Module) -> bool:
        return (isinstance(module, nn.ConvTranspose2d) and module.kernel_size == (4, 4) and module.stride == (2, 2)
                and module.padding == (1, 1) and module.output_padding == (0, 0) and module.dilation == (1, 1)
                and module.groups == 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.size if self.size is not None else (x.shape[-2], x.shape[-1])
        y, c = self.conv(x), self.cout
        phases = [y[:, (2 * py + px) * c:(2 * py + px + 1) * c, py:py + h, px:px + w] for py in (0, 1) for px in (0, 1)]
        return F.pixel_shuffle(torch.stack(phases, 2).reshape(-1, 4 * c, h, w), 2)  # channels (out, phase)


def with_phase_deconvolutions(net: nn.Module, example: tuple[torch.Tensor, ...]) -> nn.Module:
    """A copy of ``net`` with every 4x4/stride-2/padding-1 transposed convolution as :class:`PhaseConvTranspose2d`,
    sized for ``example``'s input."""
    net = copy.deepcopy(net).eval()
    for name, module in list(net.named_modules()):
        if PhaseConvTranspose2d.applies(module):
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, PhaseConvTranspose2d(module))

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        module.size = (int(inputs[0].shape[-2]), int(inputs[0].shape[-1]))

    hooks = [m.register_forward_pre_hook(record) for m in net.modules() if isinstance(m, PhaseConvTranspose2d)]
    with torch.no_grad():
        net(*example)
    for hook in hooks:
        hook.remove()
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

    def __init__(self, generator: nn.Module, guided: bool, input_size: int) -> None:
        super().__init__()
        image = torch.rand(1, 3, input_size, input_size)
        example = (image, torch.rand(1, generator.in_channels - 3, input_size, input_size)) if guided else (image,)
        self.generator = with_phase_deconvolutions(generator, example)
        self.guided = guided

    def forward(self, image: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator(image, guidance) if self.guided else self.generator(image)
