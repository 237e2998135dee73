"""Acceptance tests of the synthetic world's content: labels, masks, pairs, occlusion, left hands."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hoi_adapt.data.formats import world as fmt
from hoi_adapt.synth.config import SplitSpec, WorldConfig, world_config_from_dict
from hoi_adapt.synth.generator import WorldRenderer, generate_world
from hoi_adapt.synth.styles import DomainStyle

HOI_SPLITS = ("source_pairs", "target_hoi", "target_val", "target_test")
ALL_SPLITS = ("source_hand", *HOI_SPLITS, "source_hand_test")
TIPS = (4, 8, 12, 16, 20)


def read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return np.ascontiguousarray(img[..., ::-1])


def world_cfg(root: Path) -> WorldConfig:
    return world_config_from_dict(json.loads((root / fmt.WORLD_FILE).read_text())["config"])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return 1.0 if union == 0 else float((a & b).sum() / union)


# ------------------------------------------------------------------------------------------- labels
@pytest.mark.parametrize("split", ALL_SPLITS)
def test_stored_joints2d_are_projected_joints3d(tiny_world: Path, split: str) -> None:
    ann = fmt.load_annotations(tiny_world, split)
    K = ann["K"].astype(np.float64)
    xyz = ann["joints3d"].astype(np.float64)
    assert (xyz[..., 2] > 0.2).all()  # in front of the camera, at hand distances
    uvw = np.einsum("nij,nkj->nki", K, xyz)
    err = np.abs(uvw[..., :2] / uvw[..., 2:] - ann["joints2d"]).max()
    assert err < 1e-3  # float32 storage; the budget is 0.5 px
    size = world_cfg(tiny_world).image_size
    assert ((ann["joints2d"] > -0.5) & (ann["joints2d"] < size - 0.5)).mean() > 0.95  # the crop holds the hand


def test_stored_joints_are_the_regressed_skeleton_of_the_stored_mano_parameters(tiny_world: Path) -> None:
    from hoi_adapt.hand.model import HandModel

    ann = fmt.load_annotations(tiny_world, "target_hoi")
    for side in ("right", "left"):
        sel = ann["side"] == side
        assert sel.any(), f"tiny world should hold {side} hands"
        model = HandModel(side=side)
        f = lambda k, sel=sel: torch.as_tensor(ann[k][sel], dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            out = model(f("mano_global_orient"), f("mano_hand_pose"), f("mano_betas"), f("mano_transl"))
            joints = model.joints_from_vertices(out.vertices).numpy()
        assert np.abs(joints - ann["joints3d"][sel]).max() < 1e-5


# -------------------------------------------------------------------------------------------- masks
@pytest.fixture(scope="module")
def rerender(tiny_world: Path):
    """Render stored samples afresh: hand re-posed from the stored MANO parameters, object re-drawn."""
    from hoi_adapt.hand.model import HandModel
    from hoi_adapt.render.renderer import HandObjectRenderer

    cfg = world_cfg(tiny_world)
    world = WorldRenderer(cfg)
    renderer = HandObjectRenderer(image_size=(cfg.image_size,) * 2, faces_per_pixel=cfg.faces_per_pixel)
    models = {side: HandModel(side=side) for side in ("right", "left")}

    def render(split: str, rows: list[int]) -> dict[int, dict[str, np.ndarray]]:
        spec = cfg.split(split)
        ann = fmt.load_annotations(tiny_world, split)
        out: dict[int, dict[str, np.ndarray]] = {}
        for side, model in models.items():
            sel = [i for i in rows if ann["side"][i] == side]
            if not sel:
                continue
            f = lambda k, sel=sel: torch.as_tensor(ann[k][sel], dtype=torch.float32)  # noqa: E731
            scenes = [world.draw(spec, int(ann["index"][i])) for i in sel] if spec.with_object else None
            with torch.no_grad():
                verts = model(f("mano_global_orient"), f("mano_hand_pose"), f("mano_betas"), f("mano_transl")).vertices
                r = renderer(
                    verts, model.faces, f("K"),
                    object_verts=[torch.as_tensor(s.object_verts, dtype=torch.float32) for s in scenes] if scenes else None,
                    object_faces=[torch.as_tensor(s.object_faces) for s in scenes] if scenes else None,
                )
            for k, i in enumerate(sel):
                out[i] = {"visible": r.hand_visible_mask[k].numpy() > 0, "full": r.hand_full_mask[k].numpy() > 0,
                          "object": r.object_mask[k].numpy() > 0}
        return out

    return render


@pytest.mark.parametrize("split", ["source_pairs", "target_hoi", "source_hand"])
def test_masks_agree_with_a_fresh_render(tiny_world: Path, rerender, split: str) -> None:
    """Re-pose the hand from the stored MANO parameters, re-draw the object, render: same masks."""
    ann = fmt.load_annotations(tiny_world, split)
    with_object = split != "source_hand"
    rows = list(range(0, len(ann["index"]), 2))
    fresh = rerender(split, rows)
    assert sorted(fresh) == rows
    for i in rows:
        stored = read_rgb(fmt.image_path(tiny_world, split, "mask", int(ann["index"][i]))) > 127
        assert fresh[i]["full"].sum() > 50
        assert iou(stored[..., 1], fresh[i]["full"]) >= 0.98
        if with_object:
            assert iou(stored[..., 0], fresh[i]["visible"]) >= 0.98
            assert iou(stored[..., 2], fresh[i]["object"]) >= 0.98
        else:
            assert (stored[..., 0] == stored[..., 1]).all() and not stored[..., 2].any()
        # visible hand and object never overlap; the visible hand lies inside the full hand
        assert not (stored[..., 0] & stored[..., 2]).any()
        assert not (stored[..., 0] & ~stored[..., 1]).any()


def test_shifted_masks_would_fail_the_iou_threshold(tiny_world: Path) -> None:
    """The 0.98 IoU threshold above is tight enough to catch a one-pixel misregistration."""
    mask = read_rgb(fmt.image_path(tiny_world, "source_pairs", "mask", 0))[..., 1] > 127
    assert iou(mask, np.roll(mask, 1, axis=1)) < 0.98


# -------------------------------------------------------------------------------------------- pairs
@pytest.fixture(scope="module")
def clean_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A source-style hand-object split without camera noise or blur (exact pixel comparisons)."""
    style = DomainStyle(name="source", noise_sigma=(0.0, 0.0), blur_sigma=(0.0, 0.0))
    cfg = WorldConfig(seed=11, image_size=48, chunk_size=6, view_candidates=8, styles={"source": style},
                      splits=[SplitSpec("pairs", 12, "source", True, left_fraction=0.3)])
    return generate_world(cfg, tmp_path_factory.mktemp("clean") / "w", workers=1, progress=False)


def test_pair_shares_the_hand_visible_pixels_are_identical(clean_world: Path) -> None:
    ann = fmt.load_annotations(clean_world, "pairs")
    bg = np.round(np.asarray(WorldConfig().hand_only_background) * 255).astype(np.uint8)
    for i in ann["index"]:
        hoi = read_rgb(fmt.image_path(clean_world, "pairs", "hoi", int(i)))
        hand = read_rgb(fmt.image_path(clean_world, "pairs", "hand", int(i)))
        masks = read_rgb(fmt.image_path(clean_world, "pairs", "mask", int(i))) > 127
        visible, full = masks[..., 0], masks[..., 1]
        assert visible.sum() > 20
        # the same posed hand, lit the same way: visible-hand pixels are byte-identical
        assert np.array_equal(hoi[visible], hand[visible])
        # the hand-only image is exactly the full-hand silhouette on the plain background
        assert (hand[~full] == bg).all()
        assert (np.abs(hand[full].astype(int) - bg).sum(-1) > 0).mean() > 0.95
        # where the object hides the hand, the pair differs (the object is really in front)
        hidden = full & ~visible
        if hidden.sum() > 10:
            assert (np.abs(hoi[hidden].astype(int) - hand[hidden]).sum(-1) > 0).mean() > 0.9


def test_pair_images_with_camera_noise_still_agree_on_visible_hand(tiny_world: Path) -> None:
    ann = fmt.load_annotations(tiny_world, "source_pairs")
    for i in ann["index"]:
        hoi = read_rgb(fmt.image_path(tiny_world, "source_pairs", "hoi", int(i))).astype(np.float64)
        hand = read_rgb(fmt.image_path(tiny_world, "source_pairs", "hand", int(i))).astype(np.float64)
        visible = read_rgb(fmt.image_path(tiny_world, "source_pairs", "mask", int(i)))[..., 0] > 127
        if visible.sum() < 20:
            continue
        # source-style noise has sigma <= 0.008 (about 2 grey levels), no blur
        assert np.abs(hoi[visible] - hand[visible]).mean() < 4.0


# ----------------------------------------------------------------------------------------- occlusion
def test_recorded_occlusion_matches_the_stored_masks(tiny_world: Path) -> None:
    for split in ALL_SPLITS:
        ann = fmt.load_annotations(tiny_world, split)
        for i, occ in zip(ann["index"], ann["occlusion"], strict=True):
            masks = read_rgb(fmt.image_path(tiny_world, split, "mask", int(i))) > 127
            expected = 1.0 - masks[..., 0].sum() / masks[..., 1].sum()
            assert abs(float(occ) - expected) < 1e-6
        assert (ann["has_object"] == (split in HOI_SPLITS)).all()
        if split not in HOI_SPLITS:
            assert (ann["occlusion"] == 0).all() and (ann["object_family"] == "").all()


def test_occlusion_distribution_follows_the_configured_range(tiny_world: Path) -> None:
    cfg = world_cfg(tiny_world)
    lo, hi = cfg.occlusion_range
    occ = np.concatenate([fmt.load_annotations(tiny_world, s)["occlusion"] for s in HOI_SPLITS])
    assert lo <= np.median(occ) <= hi
    assert ((occ >= lo - 0.05) & (occ <= hi + 0.05)).mean() >= 0.6
    assert occ.max() > 0.4  # heavily occluded samples do occur


def test_occlusion_estimate_of_a_simple_scene() -> None:
    """A camera-facing square patch, half covered by a box in front of it; nothing hidden by a box behind."""
    from hoi_adapt.synth.views import estimate_occlusion

    n = 20
    xs = np.linspace(-0.05, 0.05, n + 1)
    grid = np.stack(np.meshgrid(xs, xs, indexing="xy"), -1).reshape(-1, 2)
    verts = np.concatenate([grid, np.full((len(grid), 1), 0.5)], axis=1)
    i = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]).ravel()
    faces = np.concatenate([np.stack([i, i + n + 1, i + 1], 1), np.stack([i + 1, i + n + 1, i + n + 2], 1)])
    normal = np.cross(verts[faces[0, 1]] - verts[faces[0, 0]], verts[faces[0, 2]] - verts[faces[0, 0]])
    assert normal[2] < 0  # the patch faces the camera

    def box(x0: float, x1: float, z: float) -> np.ndarray:
        return np.array([[x, y, zz] for x in (x0, x1) for y in (-0.3, 0.3) for zz in (z - 0.01, z + 0.01)])

    front_left = box(-0.2, 0.0, 0.4)  # covers x/z in [-0.5, 0]: the patch's left half
    behind = box(-0.3, 0.3, 0.6)
    objects = np.stack([front_left, behind])
    centres = objects.mean(1)
    occ = estimate_occlusion(np.stack([verts, verts]), faces, objects, centres)
    assert occ[0] == pytest.approx(0.5, abs=0.03)
    assert occ[1] == 0.0


def _occlusions(root: Path, rng: tuple[float, float]) -> np.ndarray:
    cfg = WorldConfig(seed=5, image_size=32, chunk_size=12, occlusion_range=rng,
                      splits=[SplitSpec("p", 24, "source", True)])
    return fmt.load_annotations(generate_world(cfg, root, workers=1, progress=False), "p")["occlusion"]


def test_occlusion_range_shifts_the_distribution(tmp_path: Path) -> None:
    low = _occlusions(tmp_path / "low", (0.0, 0.2))
    high = _occlusions(tmp_path / "high", (0.4, 0.7))
    assert np.median(high) > np.median(low) + 0.1
    assert np.mean(low <= 0.25) > np.mean(high <= 0.25)


def test_objects_come_from_the_style_families(tiny_world: Path) -> None:
    cfg = world_cfg(tiny_world)
    for split in HOI_SPLITS:
        ann = fmt.load_annotations(tiny_world, split)
        style = cfg.styles[cfg.split(split).style]
        assert set(ann["object_family"]) <= set(style.object_families)
        assert (ann["style"] == style.name).all()


# --------------------------------------------------------------------------------------- left hands
def test_left_hands_load_as_right_hands_with_joints_on_the_hand(tiny_world: Path) -> None:
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
    from hoi_adapt.hand.model import HandModel

    ds = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", amodal_masks=True)
    ann = fmt.load_annotations(tiny_world, "target_hoi")
    left = [i for i in range(len(ds)) if ann["side"][i] == "left"]
    assert len(left) >= 2
    right_model = HandModel(side="right")
    on, on_control, far = [], [], []
    for i in left:
        s = ds[i]
        assert float(s["was_flipped"]) == 1.0
        mask = s["hand_mask_full"].numpy() > 0.5
        dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 5)
        w = mask.shape[1]

        def lookup(uv: np.ndarray, w: int = w, dist: np.ndarray = dist) -> np.ndarray:
            r = np.clip(np.round(uv).astype(int), 0, w - 1)
            return dist[r[:, 1], r[:, 0]]

        uv = s["joints2d"].numpy()
        d = lookup(uv)
        inner = np.setdiff1d(np.arange(21), TIPS)
        on.append(d[inner] == 0)
        far.append(d.max())
        control = uv.copy()
        control[:, 0] = (w - 1) - control[:, 0]  # the joints as if they had not been mirrored
        on_control.append(lookup(control)[inner] == 0)
        # mirrored MANO parameters pose the RIGHT model onto the mirrored joints
        p = s["mano_pose"][None]
        with torch.no_grad():
            out = right_model(p[:, :3], p[:, 3:], s["mano_betas"][None], s["mano_transl"][None])
        assert torch.allclose(right_model.joints_from_vertices(out.vertices)[0], s["joints3d"], atol=1e-5)
        # and K still projects the mirrored 3D joints onto the mirrored 2D joints
        uvw = s["joints3d"].double() @ s["K"].double().T
        assert torch.allclose(uvw[:, :2] / uvw[:, 2:], s["joints2d"].double(), atol=1e-3)
    assert np.mean(on) >= 0.95  # joints inside the hand land on the (mirrored) hand mask
    assert max(far) <= 1.5  # fingertips are surface vertices: on the silhouette's border at worst
    assert np.mean(on_control) < 0.8
