"""Pictures of a hand model: a grid of sampled poses seen from several views, rendered with PyTorch3D."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from hoi_adapt.data.image_io import write_png
from hoi_adapt.hand.model import HandModel
from hoi_adapt.hand.pose_sampler import PoseSampler, base_orient
from hoi_adapt.render.renderer import HandObjectRenderer

POSE_KINDS: tuple[str, ...] = ("open", "relaxed", "spread", "power", "pinch", "tripod")
VIEWS: dict[str, tuple[float, float, float]] = {  # extra rotation (axis-angle) after the palm-to-camera base view
    "palm": (0.0, 0.0, 0.0),
    "back": (0.0, np.pi, 0.0),
    "side": (0.0, np.pi / 2, 0.0),
}


def render_pose_grid(model_path: str | Path | None = None, side: str = "right", size: int = 160, seed: int = 0) -> np.ndarray:
    """(rows*size, cols*size, 3) uint8: one row per view, one column per pose kind, labelled."""
    model = HandModel(None if model_path is None else str(model_path), side=side)
    sampler = PoseSampler(model, seed=seed)
    poses = np.stack([sampler.relaxed_pose() if k == "relaxed" else sampler.sample(1, k)[0] for k in POSE_KINDS])
    renderer = HandObjectRenderer(image_size=(size, size), faces_per_pixel=1)
    rows = []
    for view, extra in VIEWS.items():
        rot = cv2.Rodrigues(np.asarray(extra).reshape(3, 1))[0] @ base_orient(side)
        orient = torch.as_tensor(np.repeat(cv2.Rodrigues(rot)[0].reshape(1, 3), len(poses), 0), dtype=torch.float32)
        with torch.no_grad():
            out = model(orient, torch.as_tensor(poses, dtype=torch.float32))
        verts = out.vertices - out.vertices.mean(1, keepdim=True) + torch.tensor([0.0, 0.0, 0.55])
        focal = size * 0.55 / 0.24  # a 24 cm extent fills the tile
        K = torch.tensor([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]]).expand(len(poses), 3, 3)
        with torch.no_grad():
            r = renderer(verts, model.faces, K)
        tiles = r.composite((0.93, 0.93, 0.95), hand_only=True).clamp(0, 1).numpy()
        tiles = (tiles * 255 + 0.5).astype(np.uint8)
        labelled = []
        for kind, tile in zip(POSE_KINDS, tiles, strict=True):
            tile = np.ascontiguousarray(tile)
            cv2.putText(tile, f"{kind} / {view}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (40, 40, 40), 1, cv2.LINE_AA)
            labelled.append(tile)
        rows.append(np.concatenate(labelled, axis=1))
    grid = np.concatenate(rows, axis=0)
    title = "built-in STAND-IN hand model (not MANO)" if model.is_standin else f"MANO model {model.source_path.name}"
    banner = np.full((22, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(banner, f"{title}, {side} hand", (6, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([banner, grid], axis=0)


def write_pose_grid(out_png: str | Path, model_path: str | Path | None = None, side: str = "right") -> Path:
    return write_png(out_png, render_pose_grid(model_path, side))
