"""The torch recomputation of PyTorch3D fragments (fast CPU gradients) reproduces PyTorch3D's values."""
from __future__ import annotations

import math

import pytest
import torch
from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
from pytorch3d.structures import Meshes
from pytorch3d.utils import ico_sphere

from hoi_adapt.render.cameras import cameras_from_K
from hoi_adapt.render.fragments import recompute_fragments, screen_face_verts


@pytest.mark.parametrize("size", [(40, 40), (36, 60), (60, 36)])
@pytest.mark.parametrize("blur", [0.0, 1e-4 * math.log(1e4 - 1)])
def test_recomputed_fragments_match_pytorch3d(size: tuple[int, int], blur: float) -> None:
    h, w = size
    s = ico_sphere(2)
    gen = torch.Generator().manual_seed(h + w)
    verts = torch.stack([
        s.verts_packed() * torch.tensor([0.05, 0.03, 0.02]) + torch.tensor([0.0, 0.0, 0.5]),
        s.verts_packed() * torch.tensor([0.03, 0.04, 0.03]) + torch.tensor([0.01, -0.01, 0.4]),
    ]) + 0.002 * torch.randn(2, s.verts_packed().shape[0], 3, generator=gen)
    faces = s.faces_packed()
    focal = 2.5 * max(h, w)
    K = torch.tensor([[focal, 0.0, 0.45 * w], [0.0, 0.95 * focal, 0.55 * h], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    meshes = Meshes(verts=verts, faces=faces.expand(2, -1, -1))
    settings = RasterizationSettings(image_size=size, blur_radius=blur, faces_per_pixel=6, bin_size=0)
    ref = MeshRasterizer(cameras_from_K(K, size), settings)(meshes)
    ours = recompute_fragments(ref, screen_face_verts(meshes, K), size, clip_barycentric=blur > 0)

    valid = ref.pix_to_face >= 0
    assert valid.sum() > 500
    assert torch.equal(ours.pix_to_face, ref.pix_to_face)
    torch.testing.assert_close(ours.zbuf[~valid], ref.zbuf[~valid])  # padding (-1) kept
    torch.testing.assert_close(ours.dists[valid], ref.dists[valid], rtol=0, atol=1e-7)
    inside = valid & (ref.dists < 0)
    torch.testing.assert_close(ours.zbuf[inside], ref.zbuf[inside], rtol=0, atol=1e-5)
    err = (ours.bary_coords[inside] - ref.bary_coords[inside]).abs().amax(-1)
    assert err.quantile(0.999) < 1e-4 and err.max() < 5e-3
    if blur == 0:
        assert (ref.dists[valid] <= 0).all()  # without blur every fragment covers its pixel centre
