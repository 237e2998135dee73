"""HandObjectRenderer: occlusion layers, depth, shading, lighting, batching, soft silhouette, guidance, overlay."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from pytorch3d.utils import ico_sphere

from hoi_adapt.render import HAND, OBJECT, HandObjectRenderer, Lighting, backproject, overlay, project
from hoi_adapt.utils.errors import ConfigError

H, W = 48, 64


def _K(fx: float = 120.0, cx: float = 31.5, cy: float = 23.5, fy: float | None = None) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy or fx, cy], [0.0, 0.0, 1.0]])


def _ellipsoid(center, radii, level: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A hand-like stand-in: an ico-sphere (outward winding) scaled and moved."""
    s = ico_sphere(level)
    return s.verts_packed() * torch.tensor(radii) + torch.tensor(center), s.faces_packed()


def _box(center, half) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed box, 12 triangles, each oriented so its normal points away from the centre (outward)."""
    signs = torch.tensor([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32)
    verts = signs * torch.tensor(half) + torch.tensor(center)
    quads = [[0, 1, 3, 2], [4, 5, 7, 6], [0, 1, 5, 4], [2, 3, 7, 6], [0, 2, 6, 4], [1, 3, 7, 5]]
    faces = []
    for a, b, c, d in quads:
        for tri in ([a, b, c], [a, c, d]):
            p = verts[tri]
            normal = torch.cross(p[1] - p[0], p[2] - p[0], dim=0)
            faces.append(tri if float(normal @ (p.mean(0) - verts.mean(0))) > 0 else tri[::-1])
    return verts, torch.tensor(faces)


HAND_VF = _ellipsoid((0.0, 0.0, 0.5), (0.05, 0.03, 0.02))


def _render_one(renderer, hand=HAND_VF, obj=None, K=None, **kw):
    v, f = hand
    return renderer(
        v[None], f, (K if K is not None else _K())[None],
        None if obj is None else [obj[0]], None if obj is None else [obj[1]], **kw,
    )


# --------------------------------------------------------------------------- occlusion layers
def test_object_in_front_hides_hand_in_visible_mask_but_not_in_amodal_mask() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=3)
    box = _box((-0.03, 0.0, 0.4), (0.025, 0.04, 0.02))  # covers the hand's left half, front face at z=0.38
    alone = _render_one(renderer)
    out = _render_one(renderer, obj=box)

    torch.testing.assert_close(out.hand_full_mask, alone.hand_full_mask, rtol=0, atol=0)
    hidden = (out.hand_full_mask > 0) & (out.object_full_mask > 0)
    assert hidden.sum() > 50
    assert (out.hand_visible_mask[hidden] == 0).all() and (out.object_mask[hidden] == 1).all()
    torch.testing.assert_close(out.hand_visible_mask[~hidden], out.hand_full_mask[~hidden], rtol=0, atol=0)
    assert (out.labels[..., 0][hidden] == OBJECT).all() and (out.labels[hidden] == HAND).any(dim=-1).all()
    # The box's front face (z = 0.38) ends at x = -0.005; right of that the camera sees its side face.
    front = hidden & (torch.arange(W) <= 31.5 + 120.0 * -0.005 / 0.38)
    assert front.sum() > 40
    torch.testing.assert_close(out.depth[front], torch.full_like(out.depth[front], 0.38), rtol=0, atol=1e-5)
    assert ((out.depth[hidden] >= 0.38 - 1e-5) & (out.depth[hidden] <= 0.42)).all()
    torch.testing.assert_close(out.hand_depth, alone.depth, rtol=0, atol=1e-6)
    expected_occ = hidden.sum() / out.hand_full_mask.sum()
    torch.testing.assert_close(out.occlusion(), expected_occ[None].float(), rtol=0, atol=1e-6)
    torch.testing.assert_close(alone.occlusion(), torch.zeros(1))

    # Two layers are not enough: the box's front and back faces fill them and the hand behind is lost.
    two = _render_one(HandObjectRenderer(image_size=(H, W), faces_per_pixel=2), obj=box)
    assert (two.hand_full_mask[hidden] == 0).all()


def test_object_behind_hand_does_not_hide_it() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=4)
    box = _box((0.0, 0.0, 0.7), (0.08, 0.06, 0.05))  # larger than the hand on screen, entirely behind it
    alone = _render_one(renderer)
    out = _render_one(renderer, obj=box)
    hand = alone.hand_full_mask > 0
    torch.testing.assert_close(out.hand_visible_mask, alone.hand_full_mask, rtol=0, atol=0)
    torch.testing.assert_close(out.hand_full_mask, alone.hand_full_mask, rtol=0, atol=0)
    assert (out.object_mask[hand] == 0).all() and (out.object_full_mask[hand] == 1).all()
    assert out.object_mask.sum() > hand.sum()  # the box shows around the hand
    torch.testing.assert_close(out.depth[hand], alone.depth[hand], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.image[hand], alone.image[hand], rtol=0, atol=1e-6)
    torch.testing.assert_close(out.occlusion(), torch.zeros(1))


# --------------------------------------------------------------------------- depth
@pytest.mark.parametrize("d", [0.35, 1.2])
def test_depth_of_fronto_parallel_quad_is_its_plane_depth(d: float) -> None:
    K = _K(fx=100.0, cx=30.0, cy=20.0)
    uv = torch.tensor([[10.3, 8.6], [50.2, 8.6], [50.2, 35.4], [10.3, 35.4]])
    quad = backproject(uv[None], torch.full((1, 4), d), K[None])[0], torch.tensor([[0, 1, 2], [0, 2, 3]])
    out = _render_one(HandObjectRenderer(image_size=(H, W), faces_per_pixel=1), hand=quad, K=K)
    rows, cols = torch.arange(H)[:, None], torch.arange(W)[None, :]
    inside = (cols >= 10.3) & (cols <= 50.2) & (rows >= 8.6) & (rows <= 35.4)
    assert torch.equal(out.alpha[0] > 0, inside)
    torch.testing.assert_close(out.depth[0][inside], torch.full((int(inside.sum()),), d), rtol=0, atol=1e-5)
    assert (out.depth[0][~inside] == 0).all()
    torch.testing.assert_close(out.hand_depth, out.depth, rtol=0, atol=0)


def test_depth_of_tilted_plane_matches_ray_intersection() -> None:
    """Perspective-correct depth: every pixel's z equals where its viewing ray meets the plane."""
    K = _K(fx=90.0, cx=33.2, cy=22.7)
    normal, p0 = torch.tensor([0.3, -0.2, -1.0]), torch.tensor([0.0, 0.0, 0.5])
    uv = torch.tensor([[2.0, 2.0], [61.0, 2.0], [61.0, 45.0], [2.0, 45.0]])
    rays = backproject(uv[None], torch.ones(1, 4), K[None])[0]
    corners = rays * ((normal @ p0) / (rays @ normal))[:, None]
    quad = (corners, torch.tensor([[0, 1, 2], [0, 2, 3]]))
    out = _render_one(HandObjectRenderer(image_size=(H, W), faces_per_pixel=1), hand=quad, K=K)
    vv, uu = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    pix_rays = backproject(torch.stack([uu, vv], -1).reshape(1, -1, 2), torch.ones(1, H * W), K[None])[0]
    z_true = ((normal @ p0) / (pix_rays @ normal)).reshape(H, W)
    covered = out.alpha[0] > 0
    assert covered.sum() > 0.8 * H * W
    torch.testing.assert_close(out.depth[0][covered], z_true[covered], rtol=0, atol=2e-5)


# --------------------------------------------------------------------------- colour
def test_hand_image_equals_hand_alone_render_under_occlusion() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=4)
    box = _box((0.02, 0.01, 0.42), (0.03, 0.02, 0.03))
    alone = _render_one(renderer)
    out = _render_one(renderer, obj=box)
    hidden = (out.hand_full_mask > 0) & (out.hand_visible_mask == 0)
    assert hidden.sum() > 30
    torch.testing.assert_close(out.hand_image, alone.image, rtol=0, atol=1e-5)
    torch.testing.assert_close(out.hand_alpha, alone.alpha, rtol=0, atol=0)
    # ...while the scene image shows the (blue) object there, not the hand.
    assert (out.image[hidden] - alone.image[hidden]).abs().sum(-1).min() > 0.05
    assert (out.image[hidden][:, 2] > out.image[hidden][:, 0]).all()


def test_headlight_phong_values_and_outward_normals() -> None:
    """Centre of a sphere under a head-light: n = l = v, so colour = (ambient + diffuse) * albedo + specular."""
    light = Lighting(ambient=(0.3, 0.3, 0.3), diffuse=(0.6, 0.6, 0.6), specular=(0.1, 0.1, 0.1), shininess=10.0)
    albedo = torch.tensor([0.8, 0.5, 0.4])
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=1, lighting=light)
    v, f = _ellipsoid((0.0, 0.0, 0.5), (0.06, 0.06, 0.06), level=3)
    K = _K(cx=32.0, cy=24.0)
    out = _render_one(renderer, hand=(v, f), K=K, hand_colors=albedo)
    centre = out.image[0, 24, 32]
    torch.testing.assert_close(centre, 0.9 * albedo + 0.1, rtol=0, atol=0.01)
    rim = out.image[0, 24, 32 + 13]  # ~0.9 of the radius: the surface turns away from the light
    assert (rim < centre - 0.1).all()
    # Faces wound inward give inward normals: only the ambient term survives. Winding matters.
    flipped = _render_one(renderer, hand=(v, f.flip(-1)), K=K, hand_colors=albedo)
    torch.testing.assert_close(flipped.image[0, 24, 32], 0.3 * albedo, rtol=0, atol=1e-4)


def test_per_sample_lighting_changes_only_that_sample() -> None:
    v, f = HAND_VF
    batch = 3
    verts, K = v.expand(batch, -1, -1), _K().expand(batch, 3, 3)
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=1)
    base = renderer(verts, f, K)
    lighting = Lighting(
        location=torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [0.0, 0.0, 0.0]]),
        diffuse=torch.tensor([[0.55] * 3, [0.9, 0.2, 0.2], [0.55] * 3]),
        shininess=torch.tensor([24.0, 5.0, 24.0]),
    )
    lit = renderer(verts, f, K, lighting=lighting)
    torch.testing.assert_close(lit.image[[0, 2]], base.image[[0, 2]], rtol=0, atol=0)
    assert (lit.image[1] - base.image[1]).abs().mean() > 0.01
    torch.testing.assert_close(lit.alpha, base.alpha)  # lighting changes colour, never coverage
    directional = renderer(verts, f, K, lighting=Lighting(kind="directional", direction=(0.0, 0.0, -1.0)))
    assert directional.image.shape == base.image.shape and (directional.image - base.image).abs().max() > 0.01
    with pytest.raises(ValueError, match="per-sample"):
        renderer(verts[:2], f, K[:2], lighting=lighting)


@pytest.mark.parametrize("size", [(40, 72), (72, 40)])
def test_rectangular_images_align_with_projection(size: tuple[int, int]) -> None:
    h, w = size
    K = _K(fx=0.8 * max(h, w), cx=0.6 * w, cy=0.35 * h)
    v, f = _ellipsoid((0.01, -0.005, 0.45), (0.04, 0.025, 0.02))
    out = _render_one(HandObjectRenderer(image_size=(16, 16), faces_per_pixel=1), hand=(v, f), K=K, image_size=size)
    assert out.image.shape == (1, h, w, 3) and out.hand_full_mask.shape == (1, h, w)
    assert out.labels.shape == (1, h, w, 1)
    ys, xs = torch.nonzero(out.hand_full_mask[0], as_tuple=True)
    uv = project(v[None], K[None])[0]
    for got, lo, hi in ((xs, uv[:, 0].min(), uv[:, 0].max()), (ys, uv[:, 1].min(), uv[:, 1].max())):
        assert got.min() >= lo - 1e-4 and got.max() <= hi + 1e-4  # pixel centres inside the silhouette's hull
        assert got.min() - lo < 1.0 and hi - got.max() < 1.0  # and within a pixel of its extremes


def test_batched_render_equals_per_sample_renders() -> None:
    hands = [
        _ellipsoid((0.0, 0.0, 0.5), (0.05, 0.03, 0.02)),
        _ellipsoid((0.02, -0.01, 0.45), (0.04, 0.035, 0.02)),
        _ellipsoid((-0.01, 0.01, 0.55), (0.05, 0.02, 0.03)),
    ]
    objects = [_box((-0.03, 0.0, 0.4), (0.025, 0.04, 0.02)), None, _ellipsoid((0.0, 0.0, 0.5), (0.02, 0.02, 0.05), 1)]
    Ks = [_K(), _K(fx=100.0, cx=30.0), _K(fx=140.0, cy=20.0)]
    colors = [torch.tensor([0.9, 0.1, 0.1]), None, torch.rand(objects[2][0].shape[0], 3)]
    lighting = Lighting(ambient=torch.tensor([[0.4] * 3, [0.2] * 3, [0.5] * 3]))
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=4)
    f = hands[0][1]
    out = renderer(
        torch.stack([h[0] for h in hands]), f, torch.stack(Ks),
        [o[0] if o else None for o in objects], [o[1] if o else None for o in objects],
        object_colors=colors, lighting=lighting,
    )
    assert out.object_full_mask[1].sum() == 0 and out.object_full_mask[[0, 2]].flatten(1).sum(1).min() > 0
    for b in range(3):
        single = renderer(
            hands[b][0][None], f, Ks[b][None],
            [objects[b][0]] if objects[b] else None, [objects[b][1]] if objects[b] else None,
            object_colors=[colors[b]] if objects[b] else None,
            lighting=Lighting(ambient=lighting.ambient[b]),
        )
        for name in ("image", "alpha", "hand_image", "hand_visible_mask", "hand_full_mask", "object_mask",
                     "depth", "hand_depth", "zbuf", "labels"):
            torch.testing.assert_close(getattr(out, name)[b], getattr(single, name)[0], rtol=0, atol=1e-6, msg=name)


def test_composite_over_background() -> None:
    box = _box((0.03, 0, 0.4), (0.02, 0.02, 0.02))
    out = _render_one(HandObjectRenderer(image_size=(H, W), faces_per_pixel=4), obj=box)
    bg = torch.tensor([0.1, 0.7, 0.3])
    comp = out.composite(bg)
    empty = out.alpha == 0
    torch.testing.assert_close(comp[empty], bg.expand(int(empty.sum()), 3))
    torch.testing.assert_close(comp[~empty], out.image[~empty])
    hand_comp = out.composite(bg, hand_only=True)
    torch.testing.assert_close(hand_comp[out.hand_alpha > 0], out.hand_image[out.hand_alpha > 0])
    torch.testing.assert_close(hand_comp[out.hand_alpha == 0], bg.expand(int((out.hand_alpha == 0).sum()), 3))


# --------------------------------------------------------------------------- soft silhouette and guidance
def test_soft_silhouette_is_close_to_hard_mask_and_has_useful_gradients() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), sigma=1e-4, silhouette_faces_per_pixel=8)
    v, f = HAND_VF
    K = _K()
    hard = _render_one(renderer).hand_full_mask[0]
    transl = torch.zeros(1, 3, requires_grad=True)
    sil = renderer.soft_silhouette(v[None] + transl[:, None], f, K[None])
    assert sil.shape == (1, H, W) and sil.min() >= 0 and sil.max() <= 1
    # Soft inside, soft only within a pixel or so outside (blur band), exactly 0 further out.
    near = torch.nn.functional.max_pool2d(hard[None, None], kernel_size=5, stride=1, padding=2)[0, 0]
    assert (sil[0][hard > 0] > 0.4).all() and (sil[0][near == 0] == 0).all()
    assert (sil[0] - hard).abs().mean() < 0.03

    # Target: the same mesh 1.5 px to the right. The gradient must point the translation that way.
    shift = 1.5 * 0.5 / K[0, 0]
    target = _render_one(renderer, hand=(v + torch.tensor([shift, 0.0, 0.0]), f)).hand_full_mask
    loss = ((sil - target) ** 2).sum()
    loss.backward()
    grad = transl.grad
    assert torch.isfinite(grad).all() and grad[0, 0] < 0 and grad.abs().sum() > 0
    with torch.no_grad():
        step = transl - 0.2 * shift * grad / grad.abs().max()
        moved = renderer.soft_silhouette(v[None] + step[:, None], f, K[None])
    assert ((moved - target) ** 2).sum() < loss

    verts = v[None].clone().requires_grad_(True)
    renderer.soft_silhouette(verts, f, K[None]).sum().backward()
    assert torch.isfinite(verts.grad).all() and (verts.grad.abs().sum(-1) > 0).sum() > 10


def test_render_guidance_one_pass_outputs() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), silhouette_faces_per_pixel=8, depth_range=0.2)
    v, f = HAND_VF
    verts = torch.stack([v, v + torch.tensor([0.01, 0.0, 0.1])]).requires_grad_(True)
    K = _K().expand(2, 3, 3)
    g = renderer.render_guidance(verts, f, K)
    assert g["silhouette"].shape == (2, 1, H, W) and g["depth"].shape == (2, 1, H, W)
    assert g["shaded"].shape == (2, 3, H, W)
    torch.testing.assert_close(g["silhouette"][:, 0], renderer.soft_silhouette(verts, f, K))

    hard = renderer(verts.detach(), f, K)
    mask = hard.hand_full_mask > 0
    torch.testing.assert_close(g["shaded"].permute(0, 2, 3, 1)[mask], hard.hand_image[mask], rtol=0, atol=1e-4)
    assert (g["shaded"].permute(0, 2, 3, 1)[~mask] == 0).all()
    depth = g["depth"][:, 0]
    assert (depth[~mask] == 0).all() and (depth >= 0).all() and (depth <= 1).all()
    # Normalised depth: 0.5 + (mean vertex z - z) / range; the ellipsoid's front is 0.02 m before its mean.
    z_ref = verts.detach()[..., 2].mean(1)[:, None, None]
    expected = 0.5 + (z_ref - hard.hand_depth) / 0.2
    torch.testing.assert_close(depth[mask], expected[mask], rtol=0, atol=1e-5)
    assert (depth.flatten(1).max(1).values - 0.6).abs().max() < 0.01  # independent of the distance (0.5 vs 0.6 m)

    (g["depth"].sum() + g["shaded"].sum() + g["silhouette"].sum()).backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0
    for key in ("depth", "shaded"):
        x = verts.detach().clone().requires_grad_(True)
        renderer.render_guidance(x, f, K)[key].sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0, key


def test_hard_pass_depth_and_colour_are_differentiable() -> None:
    renderer = HandObjectRenderer(image_size=(32, 32), faces_per_pixel=3)
    v, f = HAND_VF
    verts = v[None].clone().requires_grad_(True)
    out = renderer(verts, f, _K(fx=80.0, cx=15.5, cy=15.5)[None])
    (out.depth.sum() + out.hand_image.sum()).backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0


@pytest.mark.parametrize("size", [(48, 64), (40, 40)])
def test_torch_grad_mode_matches_pytorch3d_backward(size: tuple[int, int]) -> None:
    """The fast CPU gradient path recomputes fragments in torch: same values and same gradients."""
    h, w = size
    v, f = _ellipsoid((0.005, -0.003, 0.5), (0.05, 0.03, 0.02), level=3)
    K = _K(fx=1.9 * w, cx=0.48 * w, cy=0.52 * h)[None]
    box = _box((-0.02, 0.0, 0.42), (0.02, 0.02, 0.02))
    weights = {}

    def run(mode: str) -> tuple[dict, dict]:
        r = HandObjectRenderer(image_size=size, faces_per_pixel=3, silhouette_faces_per_pixel=8, grad_mode=mode)
        values, grads = {}, {}
        for name in ("silhouette", "guidance", "hard"):
            verts = v[None].clone().requires_grad_(True)
            if name == "silhouette":
                outs = {"sil": r.soft_silhouette(verts, f, K)}
            elif name == "guidance":
                outs = r.render_guidance(verts, f, K)
            else:
                o = r(verts, f, K, [box[0]], [box[1]])
                outs = {"depth": o.depth, "hand_depth": o.hand_depth, "image": o.image, "hand_image": o.hand_image}
            loss = 0.0
            for key, val in outs.items():
                gen = torch.Generator().manual_seed(1)
                wkey = weights.setdefault(f"{name}/{key}", torch.randn(val.shape, generator=gen))
                loss = loss + (val * wkey).sum()
                values[f"{name}/{key}"] = val.detach()
            loss.backward()
            grads[name] = verts.grad
        return values, grads

    v_torch, g_torch = run("torch")
    v_p3d, g_p3d = run("pytorch3d")
    for key in v_p3d:
        torch.testing.assert_close(v_torch[key], v_p3d[key], rtol=0, atol=1e-4, msg=key)
    for name in g_p3d:
        assert g_p3d[name].abs().sum() > 0
        rel = (g_torch[name] - g_p3d[name]).norm() / g_p3d[name].norm()
        assert rel < 1e-2, (name, float(rel))


# --------------------------------------------------------------------------- configuration and devices
def test_config_validation_and_device_choice() -> None:
    with pytest.raises(ConfigError):
        HandObjectRenderer(faces_per_pixel=0)
    with pytest.raises(ConfigError):
        HandObjectRenderer(bin_size="coarse")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        HandObjectRenderer(image_size=(0, 10))
    r = HandObjectRenderer()
    assert r.resolved_bin_size(torch.device("cpu")) == 0
    assert r.resolved_bin_size(torch.device("cuda")) is None
    assert HandObjectRenderer(bin_size=16).resolved_bin_size(torch.device("cuda")) == 16
    assert r.to("cpu") is r  # no device-bound state: cameras and lights are built per call
    assert r.resolved_grad_mode(torch.device("cpu")) == "torch"
    assert r.resolved_grad_mode(torch.device("cuda")) == "pytorch3d"
    assert HandObjectRenderer(z_clip_value=0.01).resolved_grad_mode(torch.device("cpu")) == "pytorch3d"
    with pytest.raises(ConfigError):
        HandObjectRenderer(grad_mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="object_verts"):
        r(HAND_VF[0][None], HAND_VF[1], _K()[None], object_verts=[None, None], object_faces=[None, None])
    with pytest.raises(ValueError, match="K must"):
        r(HAND_VF[0][None], HAND_VF[1], _K()[None].expand(2, 3, 3))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_render_matches_cpu() -> None:
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=4)
    box = _box((-0.03, 0.0, 0.4), (0.025, 0.04, 0.02))
    cpu = _render_one(renderer, obj=box)
    gpu_renderer = renderer.to("cuda")
    v, f = HAND_VF
    gpu = gpu_renderer(v[None].cuda(), f.cuda(), _K()[None].cuda(), [box[0].cuda()], [box[1].cuda()])
    # CPU and CUDA rasterisers may round a pixel centre lying exactly on an edge differently: allow a few.
    same = (gpu.labels.cpu() == cpu.labels).all(-1)
    assert same.float().mean() > 0.995
    for name in ("image", "hand_image", "hand_visible_mask", "hand_full_mask", "depth", "hand_depth"):
        got, want = getattr(gpu, name).cpu()[same], getattr(cpu, name)[same]
        torch.testing.assert_close(got, want, rtol=0, atol=1e-4, msg=name)
    verts = v[None].cuda().requires_grad_(True)
    gpu_renderer.soft_silhouette(verts, f.cuda(), _K()[None].cuda()).sum().backward()
    assert torch.isfinite(verts.grad).all() and verts.grad.abs().sum() > 0


# --------------------------------------------------------------------------- overlay
@pytest.mark.parametrize("size", [(60, 90), (480, 640)])
def test_overlay_draws_mesh_only_where_it_projects(size: tuple[int, int]) -> None:
    h, w = size
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    K = _K(fx=1.1 * w, cx=0.45 * w, cy=0.55 * h)
    v, f = HAND_VF
    out = overlay(image, v.numpy(), f.numpy(), K.numpy(), alpha=0.6)
    assert out.dtype == np.uint8 and out.shape == image.shape
    col = (0.55, 0.75, 1.0)
    full = HandObjectRenderer(image_size=size, faces_per_pixel=1)(v[None], f, K[None], hand_colors=torch.tensor(col))
    mask = full.hand_full_mask[0].numpy() > 0
    changed = (out != image).any(-1)
    assert mask.sum() > 30
    # The overlay renders only the mesh's bounding box (a cropped camera); that must not move the mesh:
    # coverage equals the full-frame render's up to pixel centres lying on an edge (float rounding).
    assert (changed & ~mask).sum() + (mask & ~changed).sum() <= max(3, 0.01 * mask.sum())
    both = mask & changed
    expected = np.rint(image[both] * 0.4 + full.hand_image[0].numpy()[both].clip(0, 1) * 255 * 0.6)
    assert np.abs(out[both].astype(int) - expected.astype(int)).max() <= 1
    np.testing.assert_array_equal(overlay(image, v, f, K, alpha=0.0), image)
    with pytest.raises(ValueError, match="uint8"):
        overlay(image.astype(np.float32), v, f, K)


@pytest.mark.parametrize("offsets", [((0.0, 0.0), (0.5, 0.0)), ((5.0, 0.0), (5.0, 0.0))], ids=["one_sample_empty", "all_empty"])
def test_shading_only_covered_pixels_equals_shading_the_whole_image(offsets) -> None:
    """``_shade`` gathers covered pixels into a strip; the colours equal PyTorch3D's Phong on the full image."""
    from pytorch3d.ops import interpolate_face_attributes
    from pytorch3d.renderer import MeshRasterizer, RasterizationSettings
    from pytorch3d.renderer.mesh.shading import phong_shading
    from pytorch3d.structures import Meshes

    from hoi_adapt.render.cameras import cameras_from_K

    v, f = HAND_VF
    verts = torch.stack([v + torch.tensor([dx, dy, 0.0]) for dx, dy in offsets])  # 0.5 m aside: off screen
    renderer = HandObjectRenderer(image_size=(H, W), faces_per_pixel=3)
    meshes = Meshes(verts=verts, faces=f.expand(2, -1, -1))
    cameras = cameras_from_K(_K().expand(2, 3, 3), (H, W))
    settings = RasterizationSettings(image_size=(H, W), faces_per_pixel=3, bin_size=0, cull_backfaces=False)
    fragments = MeshRasterizer(cameras=cameras, raster_settings=settings)(meshes)
    colors = torch.rand(2 * v.shape[0], 3, generator=torch.Generator().manual_seed(0))
    got = renderer._shade(meshes, fragments, cameras, colors, None)

    lights, materials = renderer.lighting.build(2, verts.device)
    texels = interpolate_face_attributes(fragments.pix_to_face, fragments.bary_coords, colors[meshes.faces_packed()])
    want = phong_shading(meshes=meshes, fragments=fragments, lights=lights, cameras=cameras, materials=materials, texels=texels)
    want = want * (fragments.pix_to_face >= 0)[..., None]
    assert got.shape == (2, H, W, 3, 3)
    assert torch.allclose(got, want, atol=1e-6)
    covered = int((fragments.pix_to_face[0] >= 0).sum())
    assert (covered > 100 and float(got[0].abs().sum()) > 0) == (offsets[0] == (0.0, 0.0))
    assert float(got[1].abs().sum()) == 0.0
