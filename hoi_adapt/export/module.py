"""The Lightning side of ``hoi-adapt export``: a predict-only module around the Predictor, and its data.

Running through ``trainer.predict`` is what makes the export scale: the same code runs on one CPU, several
GPUs or nodes (DDP), with Lightning's progress bar. Work is split in fixed *groups* of ``batch_size``
consecutive source samples; rank ``r`` of ``W`` takes groups ``r, r + W, ...``. A group is always the
same batch whatever the number of ranks or interruptions, so results do not depend on how the work was
scheduled.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, default_collate

from hoi_adapt.data.formats.adapted import AGREEMENT_TAU, MASK_THRESHOLD
from hoi_adapt.eval.estimator_quality import mask_iou
from hoi_adapt.render.cameras import cameras_from_K
from hoi_adapt.render.tiled import rasterize_tiled, supports_tiling

SILHOUETTE_TILE = 16
"""Screen tile of the CPU silhouette pass (:func:`hoi_adapt.render.tiled.rasterize_tiled`; CUDA bins itself)."""

_SOURCE_KEYS: tuple[str, ...] = ("image", "K", "dataset", "sequence", "frame", "index", "was_flipped",
                                 "is_hand_object", "joints3d", "joints3d_valid", "has_3d")


# ------------------------------------------------------------------------------------ mask
def render_silhouette(verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                      tile_size: int | None = SILHOUETTE_TILE) -> torch.Tensor:
    """(B,H,W) bool hard silhouette of meshes ``verts`` (B,V,3) seen with intrinsics ``K`` at ``size``.

    Rasterisation only (no shading): the mask needs coverage, nothing else, and shading is most of a full
    render's cost. Equals ``HandObjectRenderer(...)(verts, faces, K).hand_alpha > 0`` (up to float ties on
    edges when tiled). On CPU the pass is screen-tiled, on CUDA PyTorch3D bins it.
    """
    from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
    from pytorch3d.structures import Meshes

    on_cpu = verts.device.type == "cpu"
    settings = RasterizationSettings(image_size=tuple(int(s) for s in size), blur_radius=0.0, faces_per_pixel=1,
                                     bin_size=0 if on_cpu else None, cull_backfaces=False)
    rasterizer = MeshRasterizer(cameras=cameras_from_K(K.float(), size), raster_settings=settings)
    meshes = Meshes(verts=verts.float(), faces=faces[None].expand(verts.shape[0], -1, -1))
    if on_cpu and tile_size and supports_tiling(rasterizer):
        fragments = rasterize_tiled(rasterizer, meshes, int(tile_size))
    else:
        fragments = rasterizer(meshes)
    return fragments.pix_to_face[..., 0] >= 0


# ------------------------------------------------------------------------------------ confidence
def skeleton_agreement(first2d: torch.Tensor, final2d: torch.Tensor, image_side: float,
                       tau: float = AGREEMENT_TAU) -> torch.Tensor:
    """(B,) ``exp(-e / (tau * side))``, ``e`` = mean 2D distance (pixels) between two (B,21,2) skeletons."""
    err = (first2d - final2d).norm(dim=-1).mean(dim=-1)
    return torch.exp(-err / (tau * float(image_side)))


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) float in [0,1] -> (B,H,W,3) uint8, rounding like :func:`hoi_adapt.viz.drawing.to_uint8`."""
    return (images.detach().float().clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1)


# ----------------------------------------------------------------------------------------- model
class ExportModule(pl.LightningModule):
    """Predict-only wrapper: Predictor outputs + rendered hand mask + confidence, as CPU numpy per batch.

    Args:
        predictor: :class:`hoi_adapt.checkpoints.predictor.Predictor` (adapted pipeline or estimator alone).
        keep_vertices: return the final mesh vertices too (for ``.obj`` files).
    """

    def __init__(self, predictor: torch.nn.Module, keep_vertices: bool = False) -> None:
        super().__init__()

        self.predictor = predictor
        self.adapt = bool(predictor.adapt)
        self.keep_vertices = bool(keep_vertices)
        # A rank may get no group when there are fewer groups than ranks; that is fine for predict.
        self.allow_zero_length_dataloader_with_multiple_devices = True

    @torch.inference_mode()
    def forward(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything exported for a batch (tensors on the module's device)."""
        out = self.predictor(image, K)
        h, w = image.shape[-2:]
        joints2d = out["joints2d"]
        silhouette = render_silhouette(out["vertices"], self.predictor.faces, K, (h, w))
        evidence = F.interpolate(out["mask_prob"].float(), size=(h, w), mode="bilinear", align_corners=False)[:, 0]
        iou = mask_iou(evidence > MASK_THRESHOLD, silhouette)
        b = image.shape[0]
        if self.adapt:
            first2d = out["first_joints2d"]
            agreement = skeleton_agreement(first2d, joints2d, max(h, w))
            first3d = out["first_joints3d"]
            exported = out["translated"]
        else:
            first2d = torch.zeros_like(joints2d)
            first3d = torch.zeros_like(out["joints3d"])
            agreement = torch.full((b,), -1.0, device=image.device)
            exported = image
        fields = {
            "image": to_uint8_images(exported),
            "mask": silhouette.to(torch.uint8) * 255,
            "K": K.float(),
            "joints3d": out["joints3d"],
            "joints2d": joints2d,
            "mano_global_orient": out["global_orient"],
            "mano_hand_pose": out["hand_pose"],
            "mano_betas": out["betas"],
            "mano_transl": out["transl"],
            "first_joints3d": first3d,
            "first_joints2d": first2d,
            "mask_iou": iou,
            "skeleton_agreement": agreement,
            "confidence": iou * agreement.clamp(min=0.0) if self.adapt else iou,
        }
        if self.keep_vertices:
            fields["vertices"] = out["vertices"]
        return fields

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        fields = self(batch["image"], batch["K"])
        pred: dict[str, Any] = {k: v.detach().cpu().numpy() for k, v in fields.items()}
        pred["position"] = batch["export_position"].cpu().numpy().astype(np.int64)
        pred["source_dataset"] = [str(s) for s in batch["dataset"]]
        pred["source_sequence"] = [str(s) for s in batch["sequence"]]
        pred["source_frame"] = batch["frame"].cpu().numpy().astype(np.int64)
        pred["source_index"] = batch["index"].cpu().numpy().astype(np.int64)
        pred["source_was_flipped"] = batch["was_flipped"].cpu().numpy().astype(np.float32)
        pred["source_is_hand_object"] = batch["is_hand_object"].cpu().numpy().astype(np.float32)
        valid = batch["joints3d_valid"] * batch["has_3d"][:, None]
        pred["source_joints3d"] = (batch["joints3d"] * valid[..., None]).cpu().numpy().astype(np.float32)
        pred["source_joints3d_valid"] = valid.cpu().numpy().astype(np.float32)
        return pred


# ------------------------------------------------------------------------------------------ data
def make_groups(num_samples: int, batch_size: int, done: set[int] | None = None) -> list[list[int]]:
    """Fixed groups of ``batch_size`` consecutive positions, minus finished ones; empty groups dropped."""
    done = done or set()
    groups = []
    for start in range(0, int(num_samples), int(batch_size)):
        todo = [p for p in range(start, min(start + int(batch_size), int(num_samples))) if p not in done]
        if todo:
            groups.append(todo)
    return groups


class GroupDataset(Dataset):
    """Item ``j`` = the collated batch of source samples ``groups[j]`` (with their positions)."""

    def __init__(self, source: Dataset, groups: Sequence[Sequence[int]]) -> None:
        self.source = source
        self.groups = [list(g) for g in groups]

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, j: int) -> dict[str, Any]:
        positions = self.groups[j]
        samples = []
        for p in positions:
            s = self.source[p]
            samples.append({k: s[k] for k in _SOURCE_KEYS})
        batch = default_collate(samples)
        batch["export_position"] = torch.as_tensor(positions, dtype=torch.long)
        return batch


class ExportDataModule(pl.LightningDataModule):
    """Serves this rank's groups; rank 0's group list is broadcast so every rank splits the same list."""

    def __init__(self, source: Dataset, groups: Sequence[Sequence[int]], num_workers: int = 0) -> None:
        super().__init__()
        self.source = source
        self.groups = [list(g) for g in groups]
        self.num_workers = int(num_workers)

    def predict_dataloader(self) -> DataLoader:
        trainer = self.trainer
        assert trainer is not None
        groups = self.groups
        if trainer.world_size > 1:
            groups = trainer.strategy.broadcast(groups, src=0)
        mine = groups[trainer.global_rank::trainer.world_size]
        return DataLoader(GroupDataset(self.source, mine), batch_size=None, shuffle=False,
                          num_workers=self.num_workers, persistent_workers=False)


__all__ = ["ExportModule", "ExportDataModule", "GroupDataset", "make_groups", "mask_iou", "render_silhouette",
           "skeleton_agreement", "to_uint8_images"]
