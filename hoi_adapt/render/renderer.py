"""The differentiable hand(-object) renderer R, built on PyTorch3D.

Two kinds of pass, each one PyTorch3D rasterisation per call:

* **Hard pass** (:meth:`HandObjectRenderer.forward`): hand and optional object are joined into one scene
  per sample and rasterised once with ``faces_per_pixel`` layers (z-sorted, no blur). Labelling each layer
  hand / object / empty gives visible and amodal masks, depths, and both the scene's colour (first layer)
  and the hand-alone colour (first *hand* layer) without a second pass. PyTorch3D's Phong has no shadows,
  so the hand's first layer shaded inside the joined scene is exactly the hand-alone rendering.
* **Soft pass** (:meth:`soft_silhouette`, :meth:`render_guidance`): hand only, blurred rasterisation and
  SoftRas-style sigmoid blending, so silhouettes have gradients w.r.t. vertices; the same fragments also give
  a depth map and a shaded image for the generator's mesh guidance.

Cost on CPU (naive rasteriser, ``bin_size=0``) is about pixels x faces plus ~5 us per face handed to it
(``experiments/results/bench_render.md``), so resolution, layers, blur, screen tiles and back-face culling are
constructor arguments. PyTorch3D's CPU *backward* is far slower than its forward (per-element tensor
indexing in C++), so on CPU gradients come from a vectorised recomputation of the fragments PyTorch3D
selected (:mod:`hoi_adapt.render.fragments`, ``grad_mode``); values are identical to float precision.
Cameras, lights and materials are built per call on the input's device, so the module holds no
device-bound state and ``.to(device)`` needs no override.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from pytorch3d.ops import interpolate_face_attributes
from pytorch3d.renderer import BlendParams, MeshRasterizer, RasterizationSettings
from pytorch3d.renderer.blending import sigmoid_alpha_blend
from pytorch3d.renderer.mesh.rasterizer import Fragments
from pytorch3d.renderer.mesh.shading import phong_shading
from pytorch3d.structures import Meshes
from torch import nn

from hoi_adapt.render.cameras import cameras_from_K
from hoi_adapt.render.fragments import recompute_fragments, screen_face_verts
from hoi_adapt.render.shading import OBJECT_COLOR, SKIN_COLOR, Lighting, vertex_colors
from hoi_adapt.render.tiled import rasterize_tiled, supports_tiling
from hoi_adapt.utils.errors import ConfigError

#: Layer labels in :attr:`RenderOutput.labels`.
EMPTY, HAND, OBJECT = -1, 0, 1

BinSize = int | None | Literal["auto"]
GradMode = Literal["auto", "torch", "pytorch3d"]
ColorArg = Sequence[float] | torch.Tensor | None


@dataclass
class RenderOutput:
    """Everything one hard pass yields; images are (B, H, W[, C]), float unless noted.

    Colours are *premultiplied* (0 where uncovered): composite with
    ``image + (1 - alpha[..., None]) * background`` (see :meth:`composite`).

    Attributes:
        image: (B,H,W,3) shaded colour of the joined scene's first layer.
        alpha: (B,H,W) coverage of the joined scene (hand or object in front).
        hand_image: (B,H,W,3) shaded colour of the first hand layer: the hand rendered alone.
        hand_alpha: (B,H,W) coverage of the hand alone (equals ``hand_full_mask``).
        hand_visible_mask: (B,H,W) 1 where the hand is the first layer.
        hand_full_mask: (B,H,W) 1 where the hand is in any layer (amodal mask).
        object_mask: (B,H,W) 1 where the object is the first layer (visible object).
        object_full_mask: (B,H,W) 1 where the object is in any layer.
        depth: (B,H,W) first-layer z in metres (0 where empty).
        hand_depth: (B,H,W) z of the first hand layer in metres (0 where no hand).
        pix_to_face: (B,H,W,K) int64 packed face index per layer (-1 empty), PyTorch3D's raw output.
        zbuf: (B,H,W,K) z per layer in metres (-1 empty); differentiable only with ``grad_mode="pytorch3d"``
            (``depth``/``hand_depth`` always are).
        labels: (B,H,W,K) int64 per-layer mesh label: -1 empty, 0 hand, 1 object.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    hand_image: torch.Tensor
    hand_alpha: torch.Tensor
    hand_visible_mask: torch.Tensor
    hand_full_mask: torch.Tensor
    object_mask: torch.Tensor
    object_full_mask: torch.Tensor
    depth: torch.Tensor
    hand_depth: torch.Tensor
    pix_to_face: torch.Tensor
    zbuf: torch.Tensor
    labels: torch.Tensor

    def composite(self, background: torch.Tensor | Sequence[float], hand_only: bool = False) -> torch.Tensor:
        """The scene (or the hand alone) over ``background`` ((3,) colour or (B,H,W,3) images)."""
        image, alpha = (self.hand_image, self.hand_alpha) if hand_only else (self.image, self.alpha)
        bg = torch.as_tensor(background, dtype=image.dtype, device=image.device)
        return image + (1.0 - alpha[..., None]) * bg

    def occlusion(self) -> torch.Tensor:
        """(B,) fraction of the amodal hand area hidden by the object (-1 where the hand is off-screen)."""
        full = self.hand_full_mask.flatten(1).sum(1)
        visible = self.hand_visible_mask.flatten(1).sum(1)
        return torch.where(full > 0, 1.0 - visible / full.clamp(min=1), torch.full_like(full, -1.0))


def _first_true(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the first True along the last dim (0 if none) and whether there is one."""
    # argmax returns the first maximal index (documented), so this is the nearest qualifying layer.
    return mask.to(torch.uint8).argmax(dim=-1), mask.any(dim=-1)


def _select_layer(fragments: Fragments, idx: torch.Tensor) -> Fragments:
    """Fragments reduced to one layer per pixel, layer ``idx`` (B,H,W); keeps autograd through zbuf/bary."""
    i = idx[..., None]
    return Fragments(
        pix_to_face=fragments.pix_to_face.gather(-1, i),
        zbuf=fragments.zbuf.gather(-1, i),
        bary_coords=fragments.bary_coords.gather(-2, i[..., None].expand(*i.shape, 3)),
        dists=None if fragments.dists is None else fragments.dists.gather(-1, i),
    )


def _stack_layers(*layers: Fragments) -> Fragments:
    return Fragments(
        pix_to_face=torch.cat([f.pix_to_face for f in layers], dim=-1),
        zbuf=torch.cat([f.zbuf for f in layers], dim=-1),
        bary_coords=torch.cat([f.bary_coords for f in layers], dim=-2),
        dists=None,
    )


class HandObjectRenderer(nn.Module):
    """Renders a batch of hands (shared topology) with optional per-sample objects, from OpenCV intrinsics.

    Args:
        image_size: default (H, W); every method also takes ``image_size`` per call (K must match it).
        faces_per_pixel: layers kept by the hard pass. A hand behind a closed object is found only if the
            object's layers in front of it (front and back face = 2 for a convex object) leave room:
            use >= 3 (default 4); 1 suffices for hand-only renders.
        sigma: soft-silhouette sigmoid width, in squared NDC units (PyTorch3D's ``BlendParams.sigma``).
        silhouette_faces_per_pixel: layers kept by the soft pass (more = smoother gradients, slower).
        silhouette_blur_radius: squared NDC distance within which faces reach a pixel; ``None`` derives it
            from ``sigma`` as ``sigma * log(1e4 - 1)`` (faces whose weight would be < 1e-4 are dropped).
            The band outside the silhouette that receives gradients is ``sqrt(blur) * min(H, W) / 2``
            pixels wide. With the default sigma = 1e-4 that is about 1 px at 64 px and 4 px at 256 px:
            sharp but still differentiable; raise sigma for a wider basin at the start of fitting.
        depth_range: metres mapped to the unit interval by :meth:`render_guidance`'s normalised depth.
        hand_color, object_color: default albedo (linear RGB in [0, 1]).
        lighting: default :class:`~hoi_adapt.render.shading.Lighting` (a head-light if None).
        bin_size: ``"auto"`` = 0 (naive) on CPU, where coarse-to-fine is unavailable, and PyTorch3D's
            heuristic (None) on CUDA; an int or None forces that value.
        max_faces_per_bin: PyTorch3D's coarse-rasteriser bin capacity (CUDA only; None = heuristic).
        z_clip_value: if set, faces are clipped at this z (metres) so meshes crossing the camera plane
            render sanely (slower; off by default as hands are in front of the camera).
        grad_mode: where vertex gradients come from. ``"pytorch3d"``: PyTorch3D's rasteriser backward
            (fast on CUDA, ~10x slower than the forward on CPU). ``"torch"``: rasterise detached meshes and
            recompute the used fragments' zbuf / barycentrics / distances with torch ops (same values, fast
            vectorised backward). ``"auto"`` (default): torch on CPU, pytorch3d on CUDA. ``z_clip_value``
            forces pytorch3d.
        tile_size: opt-in screen tiling of the *hard* pass on CPU (:mod:`hoi_adapt.render.tiled`): each
            ``tile_size`` square is rasterised with only the faces overlapping it, emulating the GPU's
            binning (~5x faster at 128 px with 16-32 px tiles; equal to the untiled pass up to float ties
            on edges). Ignored on CUDA, for blurred (soft) passes, with ``z_clip_value`` and when
            gradients must come from PyTorch3D's own backward. None (default): off.
        cull_backfaces: skip faces turned away from the camera (PyTorch3D's setting; with tiling they are
            dropped before the rasteriser sees them, halving its CPU cost). Only for closed meshes rendered
            alone, such as a hand with :func:`~hoi_adapt.utils.mesh.cap_holes`: the hard pass's layers behind
            the first surface (a hand behind a closed object) need the back faces. False (default): off.
    """

    def __init__(
        self,
        image_size: tuple[int, int] = (128, 128),
        faces_per_pixel: int = 4,
        sigma: float = 1e-4,
        silhouette_faces_per_pixel: int = 16,
        silhouette_blur_radius: float | None = None,
        depth_range: float = 0.2,
        hand_color: tuple[float, float, float] = SKIN_COLOR,
        object_color: tuple[float, float, float] = OBJECT_COLOR,
        lighting: Lighting | None = None,
        bin_size: BinSize = "auto",
        max_faces_per_bin: int | None = None,
        z_clip_value: float | None = None,
        grad_mode: GradMode = "auto",
        tile_size: int | None = None,
        cull_backfaces: bool = False,
    ) -> None:
        super().__init__()
        self.image_size = self._check_size(image_size, "image_size")
        if faces_per_pixel < 1 or silhouette_faces_per_pixel < 1:
            raise ConfigError(
                f"faces_per_pixel ({faces_per_pixel}) and silhouette_faces_per_pixel "
                f"({silhouette_faces_per_pixel}) must be >= 1"
            )
        if sigma <= 0:
            raise ConfigError(f"sigma must be > 0, got {sigma}")
        if depth_range <= 0:
            raise ConfigError(f"depth_range must be > 0, got {depth_range}")
        if not (bin_size is None or bin_size == "auto" or (isinstance(bin_size, int) and bin_size >= 0)):
            raise ConfigError(f"bin_size must be 'auto', None or an int >= 0, got {bin_size!r}")
        if grad_mode not in ("auto", "torch", "pytorch3d"):
            raise ConfigError(f"grad_mode must be 'auto', 'torch' or 'pytorch3d', got {grad_mode!r}")
        if tile_size is not None and (not isinstance(tile_size, int) or tile_size < 1):
            raise ConfigError(f"tile_size must be None or a positive int, got {tile_size!r}")
        self.grad_mode = grad_mode
        self.tile_size = tile_size
        self.cull_backfaces = bool(cull_backfaces)
        self.faces_per_pixel = int(faces_per_pixel)
        self.sigma = float(sigma)
        self.silhouette_faces_per_pixel = int(silhouette_faces_per_pixel)
        self.silhouette_blur_radius = (
            float(silhouette_blur_radius) if silhouette_blur_radius is not None
            else self.sigma * math.log(1.0 / 1e-4 - 1.0)
        )
        self.depth_range = float(depth_range)
        self.hand_color = tuple(float(c) for c in hand_color)
        self.object_color = tuple(float(c) for c in object_color)
        self.lighting = lighting if lighting is not None else Lighting()
        self.bin_size = bin_size
        self.max_faces_per_bin = max_faces_per_bin
        self.z_clip_value = z_clip_value

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _check_size(size: Sequence[int], name: str) -> tuple[int, int]:
        if len(size) != 2 or any(int(s) <= 0 for s in size):
            raise ConfigError(f"{name} must be (H, W) with positive sizes, got {tuple(size)}")
        return int(size[0]), int(size[1])

    def _size(self, image_size: Sequence[int] | None) -> tuple[int, int]:
        return self.image_size if image_size is None else self._check_size(image_size, "image_size")

    def resolved_bin_size(self, device: torch.device) -> int | None:
        """The bin size used on ``device`` (naive rasterisation on CPU)."""
        if self.bin_size == "auto":
            return None if device.type == "cuda" else 0
        return self.bin_size  # type: ignore[return-value]

    def resolved_grad_mode(self, device: torch.device) -> str:
        """``"torch"`` or ``"pytorch3d"``: the gradient path used on ``device``."""
        if self.z_clip_value is not None:
            return "pytorch3d"  # clipped faces would need clipped re-projection; keep PyTorch3D's exact path
        if self.grad_mode == "auto":
            return "pytorch3d" if device.type == "cuda" else "torch"
        return self.grad_mode

    def _rasterize(
        self, meshes: Meshes, K: torch.Tensor, size: tuple[int, int], blur: float, layers: int
    ) -> tuple[Fragments, object, torch.Tensor | None]:
        """Fragments, cameras, and (torch grad mode, gradients wanted) the differentiable screen-space faces.

        When the third value is not None the fragments are detached: callers recompute what they use
        with :func:`recompute_fragments`.
        """
        if K.dim() != 3 or tuple(K.shape[1:]) != (3, 3) or K.shape[0] != len(meshes):
            raise ValueError(f"K must have shape ({len(meshes)}, 3, 3), got {tuple(K.shape)}")
        device = meshes.device
        K = K.to(device=device, dtype=torch.float32)
        wants_grad = torch.is_grad_enabled() and (meshes.verts_packed().requires_grad or K.requires_grad)
        torch_grads = wants_grad and self.resolved_grad_mode(device) == "torch"
        cameras = cameras_from_K(K.detach() if torch_grads else K, size)
        settings = RasterizationSettings(
            image_size=size,
            blur_radius=blur,
            faces_per_pixel=layers,
            bin_size=self.resolved_bin_size(device),
            max_faces_per_bin=self.max_faces_per_bin,
            z_clip_value=self.z_clip_value,
            cull_backfaces=self.cull_backfaces,  # off by default: back faces are layers too (a hand behind a closed object)
        )
        rasterizer = MeshRasterizer(cameras=cameras, raster_settings=settings)
        tiled = self.tile_size is not None and device.type == "cpu" and blur == 0.0 and (torch_grads or not wants_grad)
        if tiled and supports_tiling(rasterizer):
            fragments = rasterize_tiled(rasterizer, meshes.detach(), self.tile_size)  # type: ignore[arg-type]
            return fragments, cameras, (screen_face_verts(meshes, K) if torch_grads else None)
        if torch_grads:
            return rasterizer(meshes.detach()), cameras, screen_face_verts(meshes, K)
        return rasterizer(meshes), cameras, None

    @staticmethod
    def _check_hand(verts: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if verts.dim() != 3 or verts.shape[-1] != 3:
            raise ValueError(f"hand verts must have shape (B, V, 3), got {tuple(verts.shape)}")
        if faces.dim() != 2 or faces.shape[-1] != 3:
            raise ValueError(f"hand faces must have shape (F, 3) (shared topology), got {tuple(faces.shape)}")
        return verts.to(torch.float32), faces.to(device=verts.device, dtype=torch.int64)

    def _shade(
        self,
        meshes: Meshes,
        fragments: Fragments,
        cameras: object,
        verts_colors_packed: torch.Tensor,
        lighting: Lighting | None,
    ) -> torch.Tensor:
        """Phong colour (B,H,W,L,3) of the given fragment layers (0 where a layer is empty).

        Only pixels some layer covers are shaded: they are gathered into a (B, 1, N) strip first (N = the most
        covered pixels of any sample). Phong depends on a pixel only through its fragments, so the colours are
        those of shading the full image, at a quarter of the cost for a hand filling a quarter of it.
        """
        lights, materials = (lighting or self.lighting).build(len(meshes), meshes.device)
        face_colors = verts_colors_packed[meshes.faces_packed()]
        batch, height, width, layers = fragments.pix_to_face.shape
        covered = (fragments.pix_to_face >= 0).any(-1).reshape(batch, height * width)
        strip = int(covered.sum(1).max()) if covered.numel() else 0
        # covered pixels first, in raster order; samples with fewer fill the strip with empty pixels
        order = torch.argsort(covered.to(torch.uint8), dim=1, descending=True, stable=True)[:, :strip]

        def gather(t: torch.Tensor | None) -> torch.Tensor | None:
            if t is None:
                return None
            flat = t.reshape(batch, height * width, *t.shape[3:])
            index = order.reshape(batch, strip, *[1] * (flat.dim() - 2)).expand(batch, strip, *flat.shape[2:])
            return flat.gather(1, index)[:, None]

        shown = Fragments(pix_to_face=gather(fragments.pix_to_face), zbuf=gather(fragments.zbuf),
                          bary_coords=gather(fragments.bary_coords), dists=gather(fragments.dists))
        texels = interpolate_face_attributes(shown.pix_to_face, shown.bary_coords, face_colors)
        colors = phong_shading(
            meshes=meshes, fragments=shown, lights=lights, cameras=cameras, materials=materials, texels=texels
        )
        colors = (colors * (shown.pix_to_face >= 0)[..., None].to(colors.dtype))[:, 0]  # (B, N, L, 3)
        index = order[:, :, None, None].expand(batch, strip, layers, colors.shape[-1])
        full = colors.new_zeros(batch, height * width, layers, colors.shape[-1]).scatter(1, index, colors)
        return full.reshape(batch, height, width, layers, -1)

    # ------------------------------------------------------------------ hard pass
    def forward(
        self,
        hand_verts: torch.Tensor,
        hand_faces: torch.Tensor,
        K: torch.Tensor,
        object_verts: Sequence[torch.Tensor | None] | None = None,
        object_faces: Sequence[torch.Tensor | None] | None = None,
        hand_colors: ColorArg = None,
        object_colors: Sequence[ColorArg] | None = None,
        lighting: Lighting | None = None,
        image_size: Sequence[int] | None = None,
    ) -> RenderOutput:
        """Render hands and objects of a batch in one rasterisation pass.

        Args:
            hand_verts: (B, V, 3) OpenCV camera-frame vertices (metres).
            hand_faces: (F, 3) shared faces, outward (counter-clockwise seen from outside) winding.
            K: (B, 3, 3) intrinsics of the rendered image.
            object_verts: None, or a length-B list of (V_b, 3) tensors / None (no object in sample b).
            object_faces: matching list of (F_b, 3) faces, outward winding.
            hand_colors: (3,), (V, 3) or (B, V, 3) albedo; default ``hand_color``.
            object_colors: length-B list of (3,) / (V_b, 3) / None; default ``object_color``.
            lighting: per-call lighting (may be per sample); default the constructor's.
            image_size: (H, W) overriding the constructor's.
        """
        size = self._size(image_size)
        hand_verts, hand_faces = self._check_hand(hand_verts, hand_faces)
        device = hand_verts.device
        batch, num_hand_verts = hand_verts.shape[:2]
        hand_rgb = vertex_colors(hand_colors, batch, num_hand_verts, self.hand_color, device)
        meshes, colors_packed, face_labels = self._join(
            hand_verts, hand_faces, hand_rgb, object_verts, object_faces, object_colors
        )
        fragments, cameras, face_screen = self._rasterize(meshes, K, size, 0.0, self.faces_per_pixel)

        p2f = fragments.pix_to_face
        labels = torch.where(p2f >= 0, face_labels[p2f.clamp(min=0)], torch.full_like(p2f, EMPTY))
        is_hand = labels == HAND
        hand_idx, has_hand = _first_true(is_hand)
        # Shade just the two layers that are shown; shading all K layers would cost K/2 times more.
        shown = _stack_layers(_select_layer(fragments, torch.zeros_like(hand_idx)), _select_layer(fragments, hand_idx))
        if face_screen is not None:
            shown = recompute_fragments(shown, face_screen, size, clip_barycentric=False, with_dists=False)
        colors = self._shade(meshes, shown, cameras, colors_packed, lighting)
        first_z, first_hand_z = shown.zbuf[..., 0], shown.zbuf[..., 1]

        covered = p2f[..., 0] >= 0
        dtype = hand_verts.dtype
        hand_full = has_hand.to(dtype)
        return RenderOutput(
            image=colors[..., 0, :],
            alpha=covered.to(dtype),
            hand_image=colors[..., 1, :] * hand_full[..., None],
            hand_alpha=hand_full,
            hand_visible_mask=(labels[..., 0] == HAND).to(dtype),
            hand_full_mask=hand_full,
            object_mask=(labels[..., 0] == OBJECT).to(dtype),
            object_full_mask=(labels == OBJECT).any(dim=-1).to(dtype),
            depth=torch.where(covered, first_z, torch.zeros_like(first_z)),
            hand_depth=torch.where(has_hand, first_hand_z, torch.zeros_like(first_hand_z)),
            pix_to_face=p2f,
            zbuf=fragments.zbuf,
            labels=labels,
        )

    def _join(
        self,
        hand_verts: torch.Tensor,
        hand_faces: torch.Tensor,
        hand_rgb: torch.Tensor,
        object_verts: Sequence[torch.Tensor | None] | None,
        object_faces: Sequence[torch.Tensor | None] | None,
        object_colors: Sequence[ColorArg] | None,
    ) -> tuple[Meshes, torch.Tensor, torch.Tensor]:
        """One mesh per sample (hand first, object after), its packed colours and packed face labels."""
        batch, num_hand_verts = hand_verts.shape[:2]
        num_hand_faces = hand_faces.shape[0]
        device = hand_verts.device
        if object_verts is None and object_faces is None:
            meshes = Meshes(verts=hand_verts, faces=hand_faces.expand(batch, -1, -1))
            labels = torch.full((batch * num_hand_faces,), HAND, dtype=torch.int64, device=device)
            return meshes, hand_rgb.reshape(-1, 3), labels
        if object_verts is None or object_faces is None or len(object_verts) != batch or len(object_faces) != batch:
            raise ValueError("object_verts and object_faces must both be lists with one entry (or None) per sample")
        if object_colors is not None and len(object_colors) != batch:
            raise ValueError(f"object_colors must have one entry per sample ({batch}), got {len(object_colors)}")
        verts, faces, colors, labels = [], [], [], []
        for b in range(batch):
            ov, of = object_verts[b], object_faces[b]
            v, f, c = hand_verts[b], hand_faces, hand_rgb[b]
            lab = [torch.full((num_hand_faces,), HAND, dtype=torch.int64, device=device)]
            if (ov is None) != (of is None):
                raise ValueError(f"sample {b}: object verts and faces must both be given or both be None")
            if ov is not None:
                if ov.dim() != 2 or ov.shape[-1] != 3 or of.dim() != 2 or of.shape[-1] != 3:
                    raise ValueError(
                        f"sample {b}: object verts/faces must be (V, 3)/(F, 3), got "
                        f"{tuple(ov.shape)}/{tuple(of.shape)}"
                    )
                ov = ov.to(device=device, dtype=torch.float32)
                oc = vertex_colors(
                    None if object_colors is None else object_colors[b], 1, ov.shape[0], self.object_color, device
                )[0]
                v = torch.cat([v, ov], dim=0)
                f = torch.cat([f, of.to(device=device, dtype=torch.int64) + num_hand_verts], dim=0)
                c = torch.cat([c, oc], dim=0)
                lab.append(torch.full((of.shape[0],), OBJECT, dtype=torch.int64, device=device))
            verts.append(v)
            faces.append(f)
            colors.append(c)
            labels.append(torch.cat(lab))
        return Meshes(verts=verts, faces=faces), torch.cat(colors), torch.cat(labels)

    # ------------------------------------------------------------------ soft pass
    def _soft_pass(
        self, verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image_size: Sequence[int] | None
    ) -> tuple[Meshes, Fragments, object, torch.Tensor | None, tuple[int, int]]:
        verts, faces = self._check_hand(verts, faces)
        meshes = Meshes(verts=verts, faces=faces.expand(verts.shape[0], -1, -1))
        size = self._size(image_size)
        fragments, cameras, face_screen = self._rasterize(
            meshes, K, size, self.silhouette_blur_radius, self.silhouette_faces_per_pixel
        )
        return meshes, fragments, cameras, face_screen, size

    def _silhouette(
        self, fragments: Fragments, face_screen: torch.Tensor | None, size: tuple[int, int]
    ) -> torch.Tensor:
        if face_screen is not None:
            fragments = recompute_fragments(fragments, face_screen, size, clip_barycentric=True, with_bary=False)
        return self._blend_silhouette(fragments)

    def _blend_silhouette(self, fragments: Fragments) -> torch.Tensor:
        # sigmoid_alpha_blend reads only layer 0 of `colors` for its RGB; a zero-stride view costs nothing.
        dummy = fragments.zbuf.new_zeros(1).expand(*fragments.pix_to_face.shape, 3)
        rgba = sigmoid_alpha_blend(dummy, fragments, BlendParams(sigma=self.sigma, gamma=1e-4))
        return rgba[..., 3]

    def soft_silhouette(
        self, verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image_size: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Differentiable soft silhouette (B, H, W) in [0, 1] of meshes with shared faces (F, 3)."""
        _, fragments, _, face_screen, size = self._soft_pass(verts, faces, K, image_size)
        return self._silhouette(fragments, face_screen, size)

    def normalised_depth(self, z: torch.Tensor, covered: torch.Tensor, verts: torch.Tensor) -> torch.Tensor:
        """Depth as a network input: ``clamp(0.5 + (z_ref - z) / depth_range, 0, 1)``, 0 off the hand.

        ``z_ref`` is each sample's mean vertex z, so the map encodes relative depth (nearer is brighter)
        independent of how far the hand is.
        """
        z_ref = verts[..., 2].mean(dim=1)[:, None, None]
        return torch.where(covered, (0.5 + (z_ref - z) / self.depth_range).clamp(0.0, 1.0), torch.zeros_like(z))

    def render_guidance_hard(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor,
        K: torch.Tensor,
        image_size: Sequence[int] | None = None,
        colors: ColorArg = None,
        lighting: Lighting | None = None,
        shading_faces: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Like :meth:`render_guidance` but from the cheaper hard pass (binary silhouette, no blur).

        For inference and for guidance that is not differentiated through (the generator's input): one
        1-layer rasterisation instead of a blurred multi-layer one, and one shaded layer. The hand is alone, so
        its first layer is what :meth:`forward` would give as ``hand_image`` / ``hand_depth``, without the
        joined scene's second shading pass and masks.

        ``shading_faces`` (default ``faces``) give the vertex normals: rasterising a capped hand
        (:func:`~hoi_adapt.utils.mesh.cap_holes`) with the open hand's normals shades it like the open hand.
        """
        size = self._size(image_size)
        verts, faces = self._check_hand(verts, faces)
        batch = verts.shape[0]
        normals = None
        if shading_faces is not None:
            shading_faces = shading_faces.to(device=verts.device, dtype=torch.int64)
            normals = Meshes(verts=verts, faces=shading_faces.expand(batch, -1, -1)).verts_normals_padded()
        meshes = Meshes(verts=verts, faces=faces.expand(batch, -1, -1), verts_normals=normals)
        fragments, cameras, face_screen = self._rasterize(meshes, K, size, 0.0, 1)
        covered = fragments.pix_to_face[..., 0] >= 0
        if face_screen is not None:
            fragments = recompute_fragments(fragments, face_screen, size, clip_barycentric=False, with_dists=False)
        rgb = vertex_colors(colors, verts.shape[0], verts.shape[1], self.hand_color, verts.device)
        shaded = self._shade(meshes, fragments, cameras, rgb.reshape(-1, 3), lighting)[..., 0, :]
        depth = self.normalised_depth(fragments.zbuf[..., 0], covered, verts)
        return {
            "silhouette": covered.to(verts.dtype)[:, None],
            "depth": depth[:, None],
            "shaded": shaded.permute(0, 3, 1, 2),
        }

    def render_guidance(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor,
        K: torch.Tensor,
        image_size: Sequence[int] | None = None,
        colors: ColorArg = None,
        lighting: Lighting | None = None,
    ) -> dict[str, torch.Tensor]:
        """Hand-only renderings that feed the generator G, from one soft rasterisation pass.

        Returns:
            ``silhouette`` (B,1,H,W) soft silhouette; ``depth`` (B,1,H,W) normalised depth,
            ``clamp(0.5 + (z_ref - z) / depth_range, 0, 1)`` with ``z_ref`` the sample's mean vertex z
            (nearer is brighter, independent of the hand's distance), 0 off the hand; ``shaded`` (B,3,H,W)
            Phong colour, 0 off the hand. All differentiable w.r.t. ``verts``. Depth and colour come from
            the nearest face that covers the pixel centre (the blurred pass also lists nearby faces).
        """
        meshes, fragments, cameras, face_screen, size = self._soft_pass(verts, faces, K, image_size)
        silhouette = self._silhouette(fragments, face_screen, size)
        inside = (fragments.pix_to_face >= 0) & (fragments.dists <= 0)
        idx, covered = _first_true(inside)
        layer = _select_layer(fragments, idx)
        if face_screen is not None:
            layer = recompute_fragments(layer, face_screen, size, clip_barycentric=True, with_dists=False)
        layer = Fragments(  # uncovered pixels must not pick up a merely nearby face
            pix_to_face=torch.where(covered[..., None], layer.pix_to_face, torch.full_like(layer.pix_to_face, -1)),
            zbuf=layer.zbuf, bary_coords=layer.bary_coords, dists=None,
        )
        verts32 = meshes.verts_padded()
        depth = self.normalised_depth(layer.zbuf[..., 0], covered, verts32)
        rgb = vertex_colors(colors, verts32.shape[0], verts32.shape[1], self.hand_color, verts32.device)
        shaded = self._shade(meshes, layer, cameras, rgb.reshape(-1, 3), lighting)[..., 0, :]
        return {
            "silhouette": silhouette[:, None],
            "depth": depth[:, None],
            "shaded": shaded.permute(0, 3, 1, 2),
        }
