"""A hard, one-layer hand rasteriser and Phong shader in plain torch ops, for the generator's mesh guidance.

Why: at inference the guidance (silhouette, depth and shaded hand of E's first mesh, at 32-64 px) costs
as much as a whole E pass through PyTorch3D on a CPU: ~half in the naive C++ rasteriser, ~half in building
``Meshes``/cameras/lights and the general shading path. A hand is ~1.5k small faces; enumerating only the
pixel centres inside each face's bounding box gives ~10k (face, pixel) candidates, which a handful of
vectorised ops test and depth-sort (scatter-min) at once.

Same conventions and values as :meth:`HandObjectRenderer.forward` with one layer (hand only, no culling):
pixel centres at integer OpenCV coordinates, a pixel is covered when its centre is strictly inside a face
(perspective-correct barycentrics all > 0), the nearest face wins (ties: the lower face index, as PyTorch3D's
in-order insertion), and PyTorch3D's Phong terms (area-weighted vertex normals, a point light, specular
towards the camera centre). Only a pixel centre within float rounding of an edge can differ.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from hoi_adapt.render.cameras import project
from hoi_adapt.render.fragments import _fragment_values
from hoi_adapt.render.shading import Lighting


def supports(lighting: Lighting) -> bool:
    """Whether :func:`render_hand` reproduces this lighting (a point light with shared, per-batch-free values)."""
    return lighting.kind == "point" and lighting.batch_size() is None


def rasterize_nearest(face_screen: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """The nearest face at every covered pixel of (B,F,3,3) screen triangles ``(u, v, z)``.

    Returns, one entry per covered pixel: flat pixel index ``(b * H + y) * W + x``, batch index, face index,
    perspective-correct barycentrics (N,3) and depth z (N,).
    """
    b, f = face_screen.shape[:2]
    h, w = size
    dev = face_screen.device
    tri = face_screen.reshape(b * f, 3, 3)
    lo = tri[..., :2].amin(1).ceil().clamp(min=0)
    hi = torch.minimum(tri[..., :2].amax(1).floor(), torch.tensor([w - 1.0, h - 1.0], dtype=tri.dtype, device=dev))
    span = (hi - lo + 1).clamp(min=0).long()  # (BF, 2) columns, rows of pixel centres in the bounding box
    count = span[:, 0] * span[:, 1]
    owner = torch.repeat_interleave(torch.arange(b * f, device=dev), count)  # one candidate per (face, pixel in its box)
    local = torch.arange(owner.numel(), device=dev) - torch.repeat_interleave(count.cumsum(0) - count, count)
    cols = span[owner, 0]
    px = lo[owner, 0].long() + local % cols
    py = lo[owner, 1].long() + local // cols
    bary, z, _ = _fragment_values(tri[owner], torch.stack([px, py], -1).to(tri.dtype), clip_barycentric=False,
                                  with_bary=True, with_dists=False)
    keep = ((bary > 0).all(-1) & (z >= 0)).nonzero()[:, 0]
    owner, bary, z = owner[keep], bary[keep], z[keep]
    pid = (owner // f * h + py[keep]) * w + px[keep]
    n = b * h * w
    zmin = torch.full((n,), float("inf"), dtype=z.dtype, device=dev).scatter_reduce(0, pid, z, "amin")
    nearest = (z == zmin[pid]).nonzero()[:, 0]
    owner, pid, bary, z = owner[nearest], pid[nearest], bary[nearest], z[nearest]
    first = torch.full((n,), b * f, dtype=torch.long, device=dev).scatter_reduce(0, pid, owner, "amin")
    win = (owner == first[pid]).nonzero()[:, 0]
    owner = owner[win]
    return pid[win], owner // f, owner % f, bary[win], z[win]


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(B,V,3) unit normals: the sum of the adjacent faces' area-weighted normals (PyTorch3D's definition)."""
    tri = verts[:, faces]  # (B,F,3,3)
    face_n = torch.cross(tri[:, :, 2] - tri[:, :, 1], tri[:, :, 0] - tri[:, :, 1], dim=-1)
    normals = torch.zeros_like(verts)
    for corner in range(3):
        normals = normals.index_add(1, faces[:, corner], face_n)
    return F.normalize(normals, eps=1e-6, dim=-1)


def render_hand(verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, size: tuple[int, int],
                lighting: Lighting, albedo: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    """Hand-only hard render on the CPU: ``alpha`` (B,H,W), ``depth`` z (B,H,W) (0 off the hand) and ``image``
    (B,H,W,3) Phong colour (0 off the hand), as ``HandObjectRenderer.forward``'s hand outputs."""
    verts = verts.to(torch.float32)
    K = K.to(torch.float32)
    dev = verts.device

    def vec(value: object) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float32, device=dev).reshape(3)

    uv = project(verts, K)
    face_screen = torch.cat([uv, verts[..., 2:]], -1)[:, faces]  # (B,F,3,3)
    pid, batch, face, bary, zbuf = rasterize_nearest(face_screen, size)
    corners = faces[face]  # (N,3) vertex ids of each covered pixel's face
    weights = bary.unsqueeze(-1)
    points = (verts[batch[:, None], corners] * weights).sum(-2)
    normals = (vertex_normals(verts, faces)[batch[:, None], corners] * weights).sum(-2)
    light = vec(lighting.location)
    to_light = F.normalize(light - points, p=2, dim=-1, eps=1e-6)
    normals = F.normalize(normals, p=2, dim=-1, eps=1e-6)
    cos = (normals * to_light).sum(-1)
    diffuse = vec(lighting.diffuse) * F.relu(cos)[..., None]
    view = F.normalize(-points, p=2, dim=-1, eps=1e-6)  # the camera centre is the origin
    reflect = -to_light + 2 * (cos[..., None] * normals)
    shine = F.relu((view * reflect).sum(-1)) * (cos > 0).to(torch.float32)
    specular = vec(lighting.specular) * torch.pow(shine, float(lighting.shininess))[..., None]
    ambient = vec(lighting.ambient)
    colour = (ambient + diffuse) * vec(albedo) + specular  # (N,3), PyTorch3D's (ambient + diffuse) * texel + specular
    b, (h, w) = verts.shape[0], size
    alpha = torch.zeros(b * h * w, device=dev)
    depth = torch.zeros(b * h * w, device=dev)
    image = torch.zeros(b * h * w, 3, device=dev)
    alpha[pid], depth[pid], image[pid] = 1.0, zbuf, colour
    return {"alpha": alpha.view(b, h, w), "depth": depth.view(b, h, w), "image": image.view(b, h, w, 3)}
