"""Tiled CPU rasterisation (``HandObjectRenderer(tile_size=...)``) equals the untiled pass."""
from __future__ import annotations

import pytest
import torch

import hoi_adapt.render.renderer as renderer_module
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.utils.errors import ConfigError

MASKS = ("hand_visible_mask", "hand_full_mask", "object_mask", "object_full_mask", "alpha")


@pytest.fixture(scope="module")
def scenes(world_scenes: dict) -> dict:
    return world_scenes


def render(scene: dict, tile: int | None, size: tuple[int, int], K: torch.Tensor | None = None, fpp: int = 4):
    r = HandObjectRenderer(image_size=size, faces_per_pixel=fpp, tile_size=tile)
    with torch.no_grad():
        return r(scene["verts"], scene["faces"], scene["K"] if K is None else K, scene["ov"], scene["of"])


def compare(a, b) -> None:
    p2f_same = a.pix_to_face == b.pix_to_face
    assert float((~p2f_same).float().mean()) <= 1e-4  # only pixel centres on an edge (float ties) may differ
    for key in MASKS:
        assert float((getattr(a, key) != getattr(b, key)).float().mean()) <= 1e-4, key
    assert torch.allclose(a.zbuf[p2f_same], b.zbuf[p2f_same], atol=1e-5)
    same_px = p2f_same.all(-1)
    for key in ("image", "hand_image"):
        assert torch.allclose(getattr(a, key)[same_px], getattr(b, key)[same_px], atol=1e-4), key
    assert torch.allclose(a.depth[same_px], b.depth[same_px], atol=1e-5)
    assert int((a.pix_to_face >= 0).sum()) > 1000  # non-trivial scenes


@pytest.fixture(scope="module")
def untiled(scenes: dict):
    return render(scenes, None, (64, 64))


@pytest.mark.parametrize("tile", [8, 16, 20, 64])
def test_tiled_pass_equals_untiled_pass(scenes: dict, untiled, tile: int) -> None:
    compare(untiled, render(scenes, tile, (64, 64)))


def test_meshes_beyond_the_borders_and_non_square_images(scenes: dict) -> None:
    K = scenes["K"].clone()
    K[:, 0, 0] *= 1.8  # zoom in: hands and objects leave the image on all sides
    K[:, 1, 1] *= 1.8
    K[:, 0, 2] += 10.0  # a 48 x 80 image (80 is not a multiple of the tile)
    compare(render(scenes, None, (48, 80), K), render(scenes, 24, (48, 80), K))
    compare(render(scenes, None, (48, 80), K, fpp=1), render(scenes, 16, (48, 80), K, fpp=1))


def test_tiles_are_used_only_where_they_are_exact(scenes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = renderer_module.rasterize_tiled
    monkeypatch.setattr(renderer_module, "rasterize_tiled", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    verts, faces, K = scenes["verts"][:2], scenes["faces"], scenes["K"][:2]
    tiled = HandObjectRenderer(image_size=(64, 64), tile_size=16)
    with torch.no_grad():
        tiled(verts, faces, K)
    assert len(calls) == 1
    tiled.soft_silhouette(verts, faces, K)  # blurred pass: never tiled
    assert len(calls) == 1
    p3d = HandObjectRenderer(image_size=(64, 64), tile_size=16, grad_mode="pytorch3d")
    p3d(verts.clone().requires_grad_(True), faces, K).depth.sum().backward()  # PyTorch3D's own backward
    assert len(calls) == 1


def test_gradients_match_in_torch_grad_mode(scenes: dict) -> None:
    grads = []
    for tile in (None, 16):
        v = scenes["verts"][:3].clone().requires_grad_(True)
        out = HandObjectRenderer(image_size=(64, 64), tile_size=tile)(v, scenes["faces"], scenes["K"][:3])
        (out.hand_image.sum() + 10 * out.hand_depth.sum()).backward()
        grads.append(v.grad)
    assert float(grads[0].abs().max()) > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-3)


def test_bad_tile_size() -> None:
    with pytest.raises(ConfigError, match="tile_size"):
        HandObjectRenderer(tile_size=0)


def test_mesh_entirely_off_screen_renders_empty():
    import torch

    from hoi_adapt.render.renderer import HandObjectRenderer

    verts = torch.tensor([[[5.0, 5.0, 1.0], [5.1, 5.0, 1.0], [5.0, 5.1, 1.0]]])  # far outside the image
    faces = torch.tensor([[0, 1, 2]])
    K = torch.tensor([[[50.0, 0, 15.5], [0, 50.0, 15.5], [0, 0, 1]]])
    out = HandObjectRenderer(image_size=(32, 32), faces_per_pixel=1, tile_size=8)(verts, faces, K)
    assert out.hand_full_mask.sum() == 0 and (out.pix_to_face == -1).all()


def count_faces_handed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Records how many faces each tiled call hands to PyTorch3D's rasteriser (its CPU cost is ~5 us per face)."""
    import hoi_adapt.render.tiled as tiled_module

    handed: list[int] = []
    original = tiled_module._C.rasterize_meshes

    def spy(face_verts, *args):
        handed.append(int(face_verts.shape[0]))
        return original(face_verts, *args)

    monkeypatch.setattr(tiled_module, "_C", type("C", (), {"rasterize_meshes": staticmethod(spy)}))
    return handed


def test_tiled_back_face_culling_equals_pytorch3ds_and_hands_over_half_the_faces(
        scenes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from hoi_adapt.utils.mesh import cap_holes

    faces = torch.as_tensor(cap_holes(scenes["faces"].numpy()))
    handed = count_faces_handed(monkeypatch)

    def hand(tile: int | None, cull: bool):
        r = HandObjectRenderer(image_size=(64, 64), faces_per_pixel=1, tile_size=tile, cull_backfaces=cull)
        with torch.no_grad():
            return r(scenes["verts"], faces, scenes["K"])

    own = hand(None, True)  # PyTorch3D skips the back faces itself
    compare(own, hand(16, True))
    compare(own, hand(16, False))  # closed hand: the first layer is a front face wherever the hand is seen
    culled, full = handed
    assert culled < 0.6 * full  # about half the faces are turned away


def test_tiles_get_only_faces_that_reach_their_pixel_centres(scenes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import hoi_adapt.render.tiled as tiled_module

    handed = count_faces_handed(monkeypatch)
    r = HandObjectRenderer(image_size=(64, 64), faces_per_pixel=1, tile_size=8)
    with torch.no_grad():
        exact = r(scenes["verts"], scenes["faces"], scenes["K"])
        monkeypatch.setattr(tiled_module, "TILE_SLACK_PX", 1.5)  # a 1-px margin around every face's box
        margin = r(scenes["verts"], scenes["faces"], scenes["K"])
    compare(margin, exact)  # the faces left out reach no pixel centre of the tile: nothing changes
    # MANO-sized faces are 1-2 px at 64 px, so a margin puts many of them in two or four tiles.
    assert handed[0] < 0.7 * handed[1]


def test_faces_whose_box_holds_no_pixel_centre_are_not_handed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 0.29-px triangle swept over one pixel in 0.1-px steps: it is handed to the rasteriser only where its
    bounding box holds a pixel centre, and the tiled image equals the untiled one at every position."""
    handed = count_faces_handed(monkeypatch)
    K = torch.tensor([[[50.0, 0, 15.5], [0, 50.0, 15.5], [0, 0, 1]]])
    faces = torch.tensor([[0, 1, 2]])
    tiled = HandObjectRenderer(image_size=(32, 32), faces_per_pixel=1, tile_size=8)
    untiled = HandObjectRenderer(image_size=(32, 32), faces_per_pixel=1, tile_size=None)
    px = 1.0 / 50.0  # metres per pixel at z = 1
    covered_when_handed, skipped = [], 0
    for i in range(10):
        for j in range(10):
            corner = torch.tensor([(0.1 * i + 0.037) * px, (0.1 * j + 0.037) * px, 1.0])  # no edge through a centre (ties)
            verts = (corner + torch.tensor([[0.0, 0.0, 0.0], [0.29 * px, 0.0, 0.0], [0.0, 0.29 * px, 0.0]]))[None]
            before = len(handed)
            with torch.no_grad():
                a, b = tiled(verts, faces, K), untiled(verts, faces, K)
            assert torch.equal(a.pix_to_face, b.pix_to_face) and torch.allclose(a.hand_image, b.hand_image, atol=1e-4)
            if len(handed) == before or handed[-1] == 0:
                skipped += 1
                assert b.hand_full_mask.sum() == 0  # left out only where it covers no pixel centre
            else:
                covered_when_handed.append(float(b.hand_full_mask.sum()))
    # a 0.29-px box holds a centre at 3 x 3 of the 10 x 10 positions
    assert skipped == 91
    assert len(covered_when_handed) > 0 and max(covered_when_handed) == 1.0
