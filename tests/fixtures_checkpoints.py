"""Small untrained checkpoints the export tests share (plain helpers, not fixtures: each test picks the path)."""
from __future__ import annotations

from pathlib import Path

import torch


def write_tiny_adapt_checkpoint(path: Path, guided: bool = True) -> Path:
    """A seeded, untrained adaptation checkpoint whose predictions still depend on the image (``guided=False``:
    the "G without mesh guidance" row)."""
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator
    from hoi_adapt.models.generator import UNetGenerator
    from hoi_adapt.models.pipeline import MeshGuidance

    torch.manual_seed(0)
    est = MeshEstimator(regressor_hidden=64, evidence_width=16)
    with torch.no_grad():  # untrained nets predict constants; make the mask evidence and the passes image-dependent
        est.evidence_head.smooth[-1].bias[-1] = 0.5
        torch.nn.init.normal_(est.regressor.out.weight, std=0.01)
    nets = {"estimator": est, "generator": UNetGenerator(in_channels=8 if guided else 3, base_channels=8, num_downs=4),
            "guidance": MeshGuidance(guidance_size=32) if guided else None}
    return write_network_checkpoint(path, "adapt", nets)
