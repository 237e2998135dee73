"""Validation metrics during training: collects predictions and scores them with the library protocols.

Uses :func:`hoi_adapt.eval.protocols.evaluate_protocol` (the same code as ``hoi-adapt evaluate``), so the
numbers logged while training are the numbers of the evaluation protocol.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hoi_adapt.eval.protocols import evaluate_protocol

PCK2D_FRACTION = 0.05  # 2D PCK threshold as a fraction of the image size


class JointAccumulator:
    """Accumulates 3D/2D joint predictions and ground truth over an epoch."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("pred3d", "gt3d", "valid3d", "pred2d", "gt2d", "valid2d", "size")}

    def update(self, pred3d: torch.Tensor, pred2d: torch.Tensor, batch: dict[str, Any]) -> None:
        b = pred3d.shape[0]
        self._parts["pred3d"].append(pred3d.detach().float().cpu())
        self._parts["gt3d"].append(batch["joints3d"].detach().float().cpu())
        self._parts["valid3d"].append((batch["joints3d_valid"] * batch["has_3d"][:, None]).detach().float().cpu())
        self._parts["pred2d"].append(pred2d.detach().float().cpu())
        self._parts["gt2d"].append(batch["joints2d"].detach().float().cpu())
        self._parts["valid2d"].append((batch["joints2d_valid"] * batch["has_2d"][:, None]).detach().float().cpu())
        self._parts["size"].append(torch.full((b,), float(batch["image"].shape[-1])))

    def __len__(self) -> int:
        return sum(p.shape[0] for p in self._parts["pred3d"])

    def tensors(self, gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        out = {k: torch.cat(v) if v else torch.zeros(0) for k, v in self._parts.items()}
        if gather is not None:  # DDP: every rank sees the whole epoch
            out = {k: gather(v).reshape(-1, *v.shape[1:]).cpu() for k, v in out.items()}
        return out

    def compute(self, protocol: str = "synthetic", gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
        t = self.tensors(gather)
        if t["pred3d"].numel() == 0:
            return {}
        metrics: dict[str, float] = {}
        valid3d = t["valid3d"].numpy() > 0
        if valid3d.any():
            res = evaluate_protocol(protocol, t["pred3d"].numpy(), t["gt3d"].numpy(), valid3d)["metrics"]
            metrics.update({
                "mpjpe": res["rootrel_mpjpe_mm"], "auc": res["rootrel_auc"], "pa_mpjpe": res["pa_mpjpe_mm"],
                "tips_auc": res["tips_auc"],
            })
        valid2d = t["valid2d"] > 0
        if valid2d.any():
            err = (t["pred2d"] - t["gt2d"]).norm(dim=-1)
            hit = (err <= PCK2D_FRACTION * t["size"][:, None]).float()
            metrics["pck2d"] = float(hit[valid2d].mean())
            metrics["err2d_px"] = float(err[valid2d].mean())
        return metrics
