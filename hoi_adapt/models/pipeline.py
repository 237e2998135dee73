"""The adapted inference pipeline of the method and the mesh guidance that feeds the generator.

``x_hoi -> E -> mesh1 -> R(mesh1) -> G(x_hoi, R(mesh1)) = y_hand -> E -> mesh2 -> skeleton(mesh2)``

:class:`MeshGuidance` renders the estimator's first mesh (hard pass, at a small resolution then upsampled:
the guidance is a coarse prior and the CPU rasteriser costs pixels x faces) into the generator's extra
input channels: silhouette, relative depth and a shaded hand whose albedo is matched to the visible skin
of the input (the estimator's own hand-mask evidence marks the skin, so no ground truth is needed at
inference). The shaded hand is also the target of the mesh-guided filling loss.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hoi_adapt.models.config import network_config, record_init
from hoi_adapt.models.estimator import EstimatorOutput, MeshEstimator
from hoi_adapt.render.cameras import resize_intrinsics
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.utils.mesh import cap_holes

GUIDANCE_CHANNELS = 5  # silhouette, depth, shaded RGB


@record_init
class MeshGuidance(nn.Module):
    """Renders meshes into the generator's guidance channels (not differentiated through).

    Args:
        guidance_size: render resolution (upsampled to the image size afterwards).
        depth_range: metres of relative depth mapped to [0, 1].
        default_skin: albedo used when no visible skin is found.
        tile_size: screen tiles of the CPU rasterisation (see ``render/tiled.py``; None = one pass).
        cull_backfaces: render the hand with its wrist capped and its back faces culled. What is seen is
            unchanged (a closed surface shows only front faces from outside) except through the wrist opening,
            where the cap replaces the inside of the palm; the rasteriser's CPU cost halves (it is ~5 us per
            face given to it, see ``render/tiled.py``).
    """

    def __init__(self, guidance_size: int = 64, depth_range: float = 0.2,
                 default_skin: tuple[float, float, float] = (0.8, 0.6, 0.5), tile_size: int | None = 16,
                 cull_backfaces: bool = True) -> None:
        super().__init__()

        self.guidance_size = guidance_size
        self.cull_backfaces = cull_backfaces
        self.renderer = HandObjectRenderer(image_size=(guidance_size, guidance_size), faces_per_pixel=1, depth_range=depth_range,
                                           tile_size=tile_size, cull_backfaces=cull_backfaces)
        self.register_buffer("default_skin", torch.tensor(default_skin), persistent=False)
        self._closed: tuple[torch.Tensor, torch.Tensor] | None = None  # (faces, capped faces), cached

    def render_faces(self, faces: torch.Tensor) -> torch.Tensor:
        """The faces rasterised: ``faces`` with the wrist capped when culling (computed once per topology)."""
        if not self.cull_backfaces:
            return faces
        if self._closed is None or self._closed[0] is not faces and not torch.equal(self._closed[0], faces):
            capped = torch.as_tensor(cap_holes(faces.detach().cpu().numpy()), device=faces.device)
            self._closed = (faces, capped)
        return self._closed[1].to(faces.device)

    @torch.no_grad()
    def forward(self, verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image: torch.Tensor,
                skin_prob: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Guidance maps at the image's size: silhouette (B,1,H,W), depth (B,1,H,W), shaded (B,3,H,W).

        ``skin_prob`` (B,1,h,w) marks visible hand pixels of ``image`` (e.g. the estimator's mask
        evidence); the shaded hand's albedo is scaled so its mean colour there matches the image.
        """
        h, w = image.shape[-2:]
        size = (self.guidance_size, self.guidance_size)
        white = torch.ones(3, device=verts.device)
        g = self.renderer.render_guidance_hard(verts.detach(), self.render_faces(faces), resize_intrinsics(K, (h, w), size), size,
                                               colors=white, shading_faces=faces)
        maps = F.interpolate(self.as_input(g), size=(h, w), mode="bilinear", align_corners=False)  # one call for all five
        up = dict(zip(("silhouette", "depth", "shaded"), maps.split((1, 1, 3), dim=1), strict=True))
        albedo = self.default_skin.to(image).expand(image.shape[0], 3)
        if skin_prob is not None:
            prob = F.interpolate(skin_prob, size=(h, w), mode="bilinear", align_corners=False)
            region = ((prob > 0.5) & (up["silhouette"] > 0.5)).to(image.dtype)
            area = region.sum(dim=(2, 3))  # (B,1)
            mean_img = (image * region).sum(dim=(2, 3)) / area.clamp(min=1.0)
            mean_shade = (up["shaded"] * region).sum(dim=(2, 3)) / area.clamp(min=1.0)
            matched = (mean_img / mean_shade.clamp(min=1e-3)).clamp(0.0, 1.5)
            albedo = torch.where(area > 16, matched, albedo)
        up["shaded"] = (up["shaded"] * albedo[:, :, None, None]).clamp(0.0, 1.0)
        return up

    @staticmethod
    def as_input(guidance: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([guidance["silhouette"], guidance["depth"], guidance["shaded"]], dim=1)


@dataclass
class PipelineOutput:
    first: EstimatorOutput
    guidance: dict[str, torch.Tensor] | None
    translated: torch.Tensor  # (B,3,H,W) hand-only image
    final: EstimatorOutput | None


class AdaptPipeline(nn.Module):
    """Estimator + generator (+ mesh guidance): the method's inference path, batched.

    Args:
        estimator: the mesh estimator E.
        generator: G, taking the image and (if ``guidance`` is given) the 5 guidance channels.
        guidance: the mesh-guidance renderer; None for the "G without mesh guidance" ablation.
    """

    def __init__(self, estimator: MeshEstimator, generator: nn.Module, guidance: MeshGuidance | None = None) -> None:
        super().__init__()
        self.estimator = estimator
        self.generator = generator
        self.guidance = guidance

    def translate(self, image: torch.Tensor, K: torch.Tensor, first: EstimatorOutput | None = None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None, EstimatorOutput]:
        """G(x, R(E(x))): the hand-only translation, its guidance and the first estimate."""
        if first is None:
            first = self.estimator(image, K)
        guidance = None
        if self.guidance is not None:
            skin = torch.sigmoid(first.mask_logits.detach())
            guidance = self.guidance(first.vertices, self.estimator.hand_model.faces, K, image, skin)
            translated = self.generator(image, MeshGuidance.as_input(guidance))
        else:
            translated = self.generator(image)
        return translated, guidance, first

    def forward(self, image: torch.Tensor, K: torch.Tensor, second_pass: bool = True) -> PipelineOutput:
        translated, guidance, first = self.translate(image, K)
        final = self.estimator(translated, K) if second_pass else None
        return PipelineOutput(first=first, guidance=guidance, translated=translated, final=final)

    @property
    def uses_mesh_guidance(self) -> bool:
        return self.guidance is not None


def pipeline_config(pipeline: AdaptPipeline) -> dict[str, Any]:
    return {
        "estimator": network_config(pipeline.estimator),
        "generator": network_config(pipeline.generator),
        "guidance": network_config(pipeline.guidance) if pipeline.guidance is not None else None,
    }
