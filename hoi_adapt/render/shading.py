"""Phong lighting parameters that may differ per batch element, turned into PyTorch3D lights/materials.

The synthetic-data generator varies lighting per sample, so every field accepts either one value for the
whole batch or one per sample. Positions and directions are in the OpenCV camera frame (x right, y down,
z forward, metres), because :func:`hoi_adapt.render.cameras.cameras_from_K` makes that frame PyTorch3D's
world frame. Lights and materials are rebuilt per call on the input's device, so renderers hold no
device-bound state (the ``MeshRenderer.to`` pitfall, style.md §2.2).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import torch
from pytorch3d.renderer import DirectionalLights, Materials, PointLights

#: Linear RGB in [0, 1]. A light skin tone, used when no hand colour is given.
SKIN_COLOR: tuple[float, float, float] = (0.86, 0.66, 0.55)
#: Default object colour: a neutral blue that contrasts with skin.
OBJECT_COLOR: tuple[float, float, float] = (0.35, 0.55, 0.85)

Vec3 = Sequence[float] | torch.Tensor
Scalar = float | Sequence[float] | torch.Tensor


@dataclass
class Lighting:
    """One light plus the material shininess; each field is shared or given per batch element.

    Attributes:
        kind: ``"point"`` (light at ``location``) or ``"directional"`` (light from ``direction``).
        location: (3,) or (B, 3) point-light position in the camera frame; the default, the camera centre,
            is a head-light that lights whatever the camera sees.
        direction: (3,) or (B, 3) for directional lights: the direction *towards* the light (PyTorch3D's
            convention: the diffuse term is ``max(0, n . direction)``), e.g. ``(0, 0, -1)`` lights
            surfaces that face the camera.
        ambient, diffuse, specular: (3,) or (B, 3) RGB light colours; the shaded colour is
            ``(ambient + diffuse * max(0, n.l)) * albedo + specular * max(0, r.v) ** shininess``.
        shininess: scalar or (B,) Phong exponent.
    """

    kind: Literal["point", "directional"] = "point"
    location: Vec3 = (0.0, 0.0, 0.0)
    direction: Vec3 = (0.0, 0.0, -1.0)
    ambient: Vec3 = (0.45, 0.45, 0.45)
    diffuse: Vec3 = (0.55, 0.55, 0.55)
    specular: Vec3 = (0.12, 0.12, 0.12)
    shininess: Scalar = 24.0

    def __post_init__(self) -> None:
        if self.kind not in ("point", "directional"):
            raise ValueError(f"Lighting.kind must be 'point' or 'directional', got {self.kind!r}")

    def batch_size(self) -> int | None:
        """The batch size implied by per-sample fields (None if every field is shared)."""
        sizes = set()
        for f in fields(self):
            if f.name == "kind":
                continue
            value = torch.as_tensor(getattr(self, f.name))
            per_sample_dim = 1 if f.name == "shininess" else 2
            if value.dim() == per_sample_dim and value.shape[0] != 1:  # a leading 1 broadcasts
                sizes.add(int(value.shape[0]))
        if len(sizes) > 1:
            raise ValueError(f"Lighting fields disagree on the batch size: {sorted(sizes)}")
        return sizes.pop() if sizes else None

    def build(self, batch: int, device: torch.device) -> tuple[PointLights | DirectionalLights, Materials]:
        """PyTorch3D lights and materials with batch dimension ``batch`` on ``device``."""
        implied = self.batch_size()
        if implied is not None and implied != batch:
            raise ValueError(f"Lighting has per-sample values for {implied} samples but the batch has {batch}")

        def vec(value: Vec3, name: str) -> torch.Tensor:
            t = torch.as_tensor(value, dtype=torch.float32, device=device)
            if t.shape[-1:] != (3,) or t.dim() > 2:
                raise ValueError(f"Lighting.{name} must have shape (3,) or (B, 3), got {tuple(t.shape)}")
            return t.reshape(-1, 3).expand(batch, 3)

        colours = dict(
            ambient_color=vec(self.ambient, "ambient"),
            diffuse_color=vec(self.diffuse, "diffuse"),
            specular_color=vec(self.specular, "specular"),
        )
        if self.kind == "point":
            lights = PointLights(location=vec(self.location, "location"), device=device, **colours)
        else:
            lights = DirectionalLights(direction=vec(self.direction, "direction"), device=device, **colours)
        shininess = torch.as_tensor(self.shininess, dtype=torch.float32, device=device).reshape(-1)
        if shininess.numel() not in (1, batch):
            raise ValueError(f"Lighting.shininess must be a scalar or (B,), got {tuple(shininess.shape)}")
        # Light colours carry the intensities; the material only contributes the exponent (albedo = texels).
        # Its colours must stay (1, 3): PyTorch3D's _apply_lighting multiplies (N, 3) material colours straight
        # into (N, H, W, K, 3) images, which mis-broadcasts (or silently mixes samples) for N > 1, and
        # Materials() would broadcast them to (N, 3) once shininess is (N,). Hence set after construction.
        materials = Materials(shininess=shininess.expand(batch), device=device)
        ones = torch.ones(1, 3, device=device)
        materials.ambient_color, materials.diffuse_color, materials.specular_color = ones, ones, ones
        return lights, materials


def vertex_colors(
    colors: Vec3 | torch.Tensor | None, batch: int, num_verts: int, default: Sequence[float], device: torch.device
) -> torch.Tensor:
    """Broadcast ``None`` / (3,) / (V, 3) / (B, V, 3) colours to (B, V, 3) float32 on ``device``."""
    t = torch.as_tensor(default if colors is None else colors, dtype=torch.float32, device=device)
    if t.shape[-1:] != (3,) or t.dim() > 3:
        raise ValueError(f"colours must have shape (3,), (V, 3) or (B, V, 3), got {tuple(t.shape)}")
    if t.dim() == 3 and t.shape[0] != batch:
        raise ValueError(f"per-sample colours are for {t.shape[0]} samples but the batch has {batch}")
    if t.dim() >= 2 and t.shape[-2] != num_verts:
        raise ValueError(f"per-vertex colours have {t.shape[-2]} rows but the mesh has {num_verts} vertices")
    while t.dim() < 3:
        t = t.unsqueeze(0)
    return t.expand(batch, num_verts, 3)
