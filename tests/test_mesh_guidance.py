"""The generator's mesh guidance: the lean hard pass equals the full one, and culling back faces of the capped
hand changes only what is seen through the wrist opening while handing the rasteriser about half the faces."""
from __future__ import annotations

import pytest
import torch

import hoi_adapt.render.tiled as tiled_module
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.render.cameras import resize_intrinsics
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.utils.mesh import cap_holes


def test_guidance_pass_equals_the_hand_alone_of_the_full_hard_pass(world_scenes: dict) -> None:
    verts, faces, K = world_scenes["verts"], world_scenes["faces"], world_scenes["K"]
    r = HandObjectRenderer(image_size=(64, 64), faces_per_pixel=4, tile_size=16)
    with torch.no_grad():
        full = r(verts, faces, K)  # the joined-scene pass (two shaded layers, all masks)
        lean = r.render_guidance_hard(verts, faces, K)
    covered = full.hand_alpha > 0
    assert int(covered.sum()) > 1000
    torch.testing.assert_close(lean["silhouette"][:, 0], full.hand_alpha)
    torch.testing.assert_close(lean["shaded"], full.hand_image.permute(0, 3, 1, 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(lean["depth"][:, 0], r.normalised_depth(full.hand_depth, covered, verts), atol=1e-6, rtol=0)


@pytest.fixture(scope="module")
def guidance_pair(world_scenes: dict) -> dict:
    """Guidance of the world's hands at 128 px (rendered at 64), without and with culling, and faces handed."""
    verts, faces = world_scenes["verts"], world_scenes["faces"]
    K = resize_intrinsics(world_scenes["K"], (64, 64), (128, 128))
    image = torch.rand(len(verts), 3, 128, 128, generator=torch.Generator().manual_seed(0))
    out, handed = {}, {}
    original = tiled_module._C.rasterize_meshes
    for cull in (False, True):
        counts: list[int] = []
        tiled_module._C = type("C", (), {"rasterize_meshes": staticmethod(
            lambda fv, *a, counts=counts: (counts.append(int(fv.shape[0])), original(fv, *a))[1])})
        try:
            out[cull] = MeshGuidance(guidance_size=64, cull_backfaces=cull)(verts, faces, K, image)
        finally:
            tiled_module._C = type("C", (), {"rasterize_meshes": staticmethod(original)})
        handed[cull] = counts[0]
    return {"out": out, "handed": handed, "faces": faces}


def test_culling_keeps_the_silhouette_and_changes_only_the_wrist_opening(guidance_pair: dict) -> None:
    off, on = guidance_pair["out"][False], guidance_pair["out"][True]
    torch.testing.assert_close(on["silhouette"], off["silhouette"], atol=0, rtol=0)
    hand = off["silhouette"] > 0.5
    for key in ("depth", "shaded"):
        changed = ((on[key] - off[key]).abs().amax(1, keepdim=True) > 1e-4) & hand
        # the cap replaces the inside of the palm seen through the wrist: a few percent of the hand at most;
        # shading the capped hand with its own normals would also change the whole wrist band
        assert float(changed.sum()) <= 0.03 * float(hand.sum()), key
    assert guidance_pair["handed"][True] < 0.6 * guidance_pair["handed"][False]


def test_capped_faces_are_computed_once_per_topology(guidance_pair: dict) -> None:
    g = MeshGuidance(guidance_size=16)
    faces = guidance_pair["faces"]
    first = g.render_faces(faces)
    assert g.render_faces(faces) is first
    assert len(first) == len(cap_holes(faces.numpy()))
    assert MeshGuidance(guidance_size=16, cull_backfaces=False).render_faces(faces) is faces
