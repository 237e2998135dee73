"""Prediction geometry on user images: crops, camera mapping, offsets, mirroring, automatic boxes.

The estimators are untrained, so predictions are arbitrary; what is checked is that the geometry around
them is exact. ``responsive_ckpt`` perturbs the regressor's zero-initialised output layer so predictions
depend on the pixels (with the stock zero init every crop would give the mean hand).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoi_adapt.data import crop as C
from hoi_adapt.data.formats.world import ANNOTATIONS_FILE, image_path
from hoi_adapt.data.image_io import read_image
from hoi_adapt.prediction import predict
from hoi_adapt.prediction.geometry import CROP_SCALE, box_from_mask
from hoi_adapt.prediction.inputs import PredictWarning, default_intrinsics
from hoi_adapt.render.cameras import project

SIZE = 64  # network input in these tests (speed); the crop geometry does not depend on it


@pytest.fixture(scope="module")
def sample(tiny_world):
    """A rendered 64-px hand-only sample and its intrinsics."""
    K = np.load(tiny_world / "source_hand" / ANNOTATIONS_FILE)["K"][0].astype(np.float64)
    return read_image(image_path(tiny_world, "source_hand", "hand", 0)), K


def paste(sample, offset, canvas_hw=(150, 210)):
    """The sample on a larger grey canvas at integer ``(ox, oy)``; K and the sample's box move with it."""
    img, K = sample
    ox, oy = offset
    canvas = np.full((*canvas_hw, 3), 90, np.uint8)
    canvas[oy:oy + img.shape[0], ox:ox + img.shape[1]] = img
    Kc = K.copy()
    Kc[0, 2] += ox
    Kc[1, 2] += oy
    box = np.array([ox, oy, ox + img.shape[1] - 1, oy + img.shape[0] - 1], float)
    return canvas, Kc, box


def only_hand(rec):
    """The single hand of a one-hand result (schema 2: per-image records hold a list of hands)."""
    assert len(rec["hands"]) == 1
    return rec["hands"][0]


def test_outputs_map_back_to_the_original_camera_and_pixels(responsive_ckpt, sample):
    canvas, K, box = paste(sample, (37, 51))
    rec = predict(responsive_ckpt, canvas, K=K, boxes=box, input_size=SIZE)[0]
    r = only_hand(rec)
    assert r["joints3d"].shape == (21, 3) and r["joints2d"].shape == (21, 2) and r["vertices"].shape == (778, 3)
    assert r["crop"]["source"] == "box" and not rec["camera"]["assumed"]
    assert rec["detector"]["name"] == "boxes" and r["score"] is None and r["side_source"] == "default"
    np.testing.assert_allclose(r["box"], box)
    # The crop is the documented square around the box.
    np.testing.assert_allclose(r["crop"]["center"], [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    assert r["crop"]["side"] == pytest.approx(CROP_SCALE * (box[2] - box[0]))
    A = r["crop"]["affine"]
    np.testing.assert_allclose(A, C.crop_affine(np.array([*r["crop"]["center"], r["crop"]["side"]]), SIZE))
    # The crop's K is A @ K and describes the same camera frame: the unchanged 3D projects onto the crop's 2D.
    np.testing.assert_allclose(r["crop_K"], A @ K, atol=1e-9)
    np.testing.assert_allclose(project(r["joints3d"], r["crop_K"]), r["crop_joints2d"], atol=2e-3)
    # Original 2D = project(3D, K) = inverse crop mapping of the network's crop 2D.
    np.testing.assert_allclose(r["joints2d"], project(r["joints3d"], K), atol=1e-3)
    np.testing.assert_allclose(C.transform_points(np.linalg.inv(A), r["crop_joints2d"]), r["joints2d"], atol=1e-3)
    # The crop really is the original warped by A (what the network saw is where the mapping says).
    np.testing.assert_array_equal(r["crop_image"], C.warp_image(canvas, A, SIZE))
    # MANO parameters reproduce the mesh with the right-hand model (absolute pose, flat_hand_mean=True).
    from hoi_adapt.hand.model import HandModel

    m = r["mano"]
    hm = HandModel(side="right")
    v = hm(torch.tensor(m["global_orient"])[None].float(), torch.tensor(m["hand_pose"])[None].float(),
           torch.tensor(m["betas"])[None].float(), torch.tensor(m["transl"])[None].float()).vertices[0].numpy()
    np.testing.assert_allclose(v, r["vertices"], atol=2e-5)


def test_crop_mapping_round_trips_a_marked_pixel(responsive_ckpt):
    img = np.zeros((120, 260, 3), np.uint8)
    p = np.array([171.0, 64.0])
    img[64, 171] = 255
    r = only_hand(predict(responsive_ckpt, img, K=[300.0, 300.0, 130.0, 60.0], boxes=[150, 40, 200, 90], input_size=SIZE)[0])
    A = r["crop"]["affine"]
    q = C.transform_points(A, p)
    # The dot lands where A maps it (brightness-weighted centroid of the blurred dot in the crop).
    g = r["crop_image"][..., 0].astype(float)
    ys, xs = np.mgrid[: g.shape[0], : g.shape[1]]
    centroid = np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()
    np.testing.assert_allclose(centroid, q, atol=0.05)
    np.testing.assert_allclose(C.transform_points(np.linalg.inv(A), q), p, atol=1e-9)


def test_same_hand_at_two_offsets_gives_same_3d_and_shifted_2d(responsive_ckpt, sample):
    a_img, a_K, a_box = paste(sample, (20, 30))
    b_img, b_K, b_box = paste(sample, (117, 71))
    ra, rb = (only_hand(r) for r in predict(responsive_ckpt, [a_img, b_img], K={"image_0000": a_K, "image_0001": b_K},
                                            boxes={"image_0000": a_box, "image_0001": b_box}, input_size=SIZE))
    assert np.abs(ra["crop_image"].astype(int) - rb["crop_image"].astype(int)).max() <= 1  # same pixels
    np.testing.assert_allclose(ra["joints3d"], rb["joints3d"], atol=2e-5)
    np.testing.assert_allclose(ra["vertices"], rb["vertices"], atol=2e-5)
    np.testing.assert_allclose(rb["joints2d"] - ra["joints2d"], np.broadcast_to([97.0, 41.0], (21, 2)), atol=2e-3)
    # And the predictions do depend on the image (otherwise this test would prove nothing).
    other = only_hand(predict(responsive_ckpt, np.ascontiguousarray(a_img[::-1]), K=a_K, boxes=a_box, input_size=SIZE)[0])
    assert np.abs(other["joints3d"] - ra["joints3d"]).max() > 1e-4


@pytest.mark.parametrize("with_box", [True, False])
def test_left_on_a_mirrored_image_is_the_mirror_of_the_right_result(responsive_ckpt, sample, with_box):
    from hoi_adapt.hand.model import HandModel
    from hoi_adapt.utils.mesh import signed_volume

    img, K, box = paste(sample, (25, 60))
    W = img.shape[1]
    boxes = box if with_box else None
    right = only_hand(predict(responsive_ckpt, img, K=K, boxes=boxes, input_size=SIZE, detector="none")[0])
    left = only_hand(predict(responsive_ckpt, C.flip_image(img), K=C.flip_intrinsics(K, W),
                             boxes=C.flip_xyxy(box, W) if with_box else None, left=True, input_size=SIZE,
                             detector="none")[0])
    assert left["side"] == left["mano"]["side"] == "left" and left["crop"]["mirrored"] and left["side_source"] == "left"
    np.testing.assert_allclose(left["joints3d"], C.flip_points_3d(right["joints3d"]), atol=1e-6)
    np.testing.assert_allclose(left["vertices"], C.flip_points_3d(right["vertices"]), atol=1e-6)
    np.testing.assert_allclose(left["joints2d"], C.flip_points_2d(right["joints2d"], W), atol=1e-3)
    np.testing.assert_allclose(left["joints2d"], project(left["joints3d"], C.flip_intrinsics(K, W)), atol=1e-3)
    np.testing.assert_allclose(left["crop"]["center"], [W - 1 - right["crop"]["center"][0], right["crop"]["center"][1]])
    # The network saw the same pixels, and the left crop affine maps left-image pixels into that input
    # (warping through a mirror affine rounds differently from mirroring first: at most one grey level).
    np.testing.assert_array_equal(left["crop_image"], right["crop_image"])
    warped = C.warp_image(C.flip_image(img), left["crop"]["affine"], SIZE).astype(int)
    assert np.abs(warped - right["crop_image"]).max() <= 1
    # Outward faces on both meshes.
    assert signed_volume(right["vertices"], right["faces"]) > 0
    assert signed_volume(left["vertices"], left["faces"]) > 0
    # The left MANO parameters drive the left-hand model to the left mesh (mirror convention of crop.flip_*).
    m = left["mano"]
    pose = np.concatenate([m["global_orient"], m["hand_pose"]])
    np.testing.assert_allclose(pose, C.flip_mano_pose(np.concatenate([right["mano"]["global_orient"], right["mano"]["hand_pose"]])))
    hm = HandModel(side="left")
    v = hm(torch.tensor(pose[:3])[None].float(), torch.tensor(pose[3:])[None].float(),
           torch.tensor(m["betas"])[None].float(), torch.tensor(m["transl"])[None].float()).vertices[0].numpy()
    np.testing.assert_allclose(v, left["vertices"], atol=5e-5)


def test_automatic_crop_follows_the_mask_evidence():
    H, W, S = 300, 500, 128
    A = C.crop_affine(C.full_image_box(H, W), S)  # letterbox: 500-px square, padding above and below
    k = A[0, 0]
    prob = np.zeros((32, 32))  # stride 4 in crop pixels
    prob[14:18, 20:24] = 0.9  # crop pixels [79.5, 95.5] x [55.5, 71.5]
    prob[2, 2] = 0.99  # a single evidence pixel in the padding above the image: ignored
    prob[20, 5] = 0.8  # a smaller blob inside the image: not the largest region
    box = box_from_mask(prob, A, S, H, W)
    lo = C.transform_points(np.linalg.inv(A), [79.5, 55.5])
    hi = C.transform_points(np.linalg.inv(A), [95.5, 71.5])
    np.testing.assert_allclose(box[:2], (lo + hi) / 2, atol=1e-9)
    assert box[2] == pytest.approx(max(CROP_SCALE * 16 / k, max(H, W) / 8))
    assert box_from_mask(np.where(np.arange(32)[:, None] < 4, 0.9, 0.1) * np.ones((1, 32)), A, S, H, W) is None
    assert box_from_mask(np.zeros((32, 32)), A, S, H, W) is None


def test_assumed_camera_warns_and_is_recorded(tiny_estimator_ckpt):
    img = np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    with pytest.warns(PredictWarning, match="approximate"):
        r = predict(tiny_estimator_ckpt, img, input_size=SIZE, detector="none")[0]
    assert r["camera"]["assumed"] and r["detector"]["name"] == "two-pass"
    np.testing.assert_allclose(r["camera"]["K"], [[168.0, 0, 69.5], [0, 168.0, 44.5], [0, 0, 1]])
    np.testing.assert_allclose(default_intrinsics(90, 140), r["camera"]["K"])
    hand = only_hand(r)
    assert hand["crop"]["source"] in ("auto", "full_image") and hand["score"] is None
    np.testing.assert_allclose(hand["joints2d"], project(hand["joints3d"], r["camera"]["K"]), atol=1e-3)


def test_input_size_comes_from_the_checkpoint(tmp_path):
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator

    torch.manual_seed(0)
    est = MeshEstimator(backbone_depth=18, regressor_hidden=32, evidence_width=8).eval()
    ckpt = write_network_checkpoint(tmp_path / "e.ckpt", "estimator", {"estimator": est}, input_size=96)
    img = np.zeros((50, 70, 3), np.uint8)
    r = only_hand(predict(ckpt, img, K=[80, 80, 35, 25], boxes=[10, 10, 40, 40])[0])
    assert r["crop_image"].shape == (96, 96, 3) and r["crop"]["input_size"] == 96
    with pytest.warns(PredictWarning, match="differs"):
        r = only_hand(predict(ckpt, img, K=[80, 80, 35, 25], boxes=[10, 10, 40, 40], input_size=64)[0])
    assert r["crop_image"].shape == (64, 64, 3)
