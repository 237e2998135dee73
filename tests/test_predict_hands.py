"""Several hands per image: detection, one crop per hand (mirrored for left hands), one batch over all hands of a
batch of images, results mapped back per hand; the real MediaPipe detector when its peer venv exists.

A stand-in detector (injected through ``detector=``) returns fixed boxes and sides, so what is checked is our
pipeline: each hand must equal the single-hand prediction of its own box (right) or the mirror of the right-hand
prediction on the mirrored image (left).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from fixtures_peers import needs_peer

from hoi_adapt.data import crop as C
from hoi_adapt.data.formats.world import ANNOTATIONS_FILE, image_path
from hoi_adapt.data.image_io import read_image
from hoi_adapt.io.mesh_io import read_obj
from hoi_adapt.prediction import predict
from hoi_adapt.prediction.detection import Detection, HandDetector, ImageDetections
from hoi_adapt.prediction.geometry import CROP_SCALE, LANDMARK_BOX_SCALE
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError
from hoi_adapt.utils.mesh import signed_volume

SIZE = 64




@pytest.fixture(scope="module")
def two_hands(tiny_world):
    """A rendered right hand at the left and its mirror image (a left hand) at the right of one grey canvas."""
    K = np.load(tiny_world / "source_hand" / ANNOTATIONS_FILE)["K"][0].astype(np.float64)
    hand = read_image(image_path(tiny_world, "source_hand", "hand", 0))
    canvas = np.full((150, 300, 3), 90, np.uint8)
    canvas[40:104, 20:84] = hand
    canvas[60:124, 200:264] = hand[:, ::-1]
    K = K.copy()
    K[0, 2] += 20
    K[1, 2] += 40
    return canvas, K, np.array([20.0, 40.0, 83.0, 103.0]), np.array([200.0, 60.0, 263.0, 123.0])


def stand_in(found: dict[str, list[Detection]]) -> tuple[HandDetector, list[list[str]]]:
    """A detector answering fixed detections per image name, recording which images each call asked about."""
    calls: list[list[str]] = []

    def detect(items):
        calls.append([it.name for it in items])
        return [ImageDetections(list(found[it.name])) for it in items]

    return HandDetector("stand-in", detect, version="1", box_scale=CROP_SCALE), calls


def test_two_detected_hands_one_left_one_right_map_back_like_single_hands(responsive_ckpt, two_hands, tmp_path):
    canvas, K, right_box, left_box = two_hands
    W = canvas.shape[1]
    single = canvas.copy()
    # Listed right to left: results come left to right, whatever order the detector answers in.
    detector, calls = stand_in({
        "image_0000": [Detection(left_box, "left", 0.8), Detection(right_box, "right", 0.9)],
        "image_0001": [Detection(right_box, "right", 0.7)],
        "image_0002": [],
    })
    out = tmp_path / "out"
    recs = predict(responsive_ckpt, [canvas, single, np.zeros((40, 50, 3), np.uint8)], out_dir=out,
                   K={"image_0000": K, "image_0001": K, "*": [60, 60, 25, 20]}, input_size=SIZE, batch_size=2,
                   detector=detector)
    assert calls == [["image_0000", "image_0001", "image_0002"]]  # one detector call for the whole chunk
    assert [len(r["hands"]) for r in recs] == [2, 1, 0]
    assert recs[0]["detector"] == {"name": "stand-in", "version": "1", "settings": {}, "box_scale": CROP_SCALE}
    right, left = recs[0]["hands"]
    assert (right["side"], right["side_source"], right["score"]) == ("right", "detector", 0.9)
    assert (left["side"], left["side_source"], left["score"]) == ("left", "detector", 0.8)
    assert left["mano"]["side"] == "left" and left["crop"]["mirrored"] and not right["crop"]["mirrored"]
    np.testing.assert_allclose(left["box"], left_box)

    # The right hand = the single-box prediction of its box (3 hands ran in network batches of 2 and 1).
    ref = predict(responsive_ckpt, canvas, K=K, boxes=right_box, input_size=SIZE)[0]["hands"][0]
    np.testing.assert_array_equal(right["crop_image"], ref["crop_image"])
    for key in ("joints3d", "vertices"):
        np.testing.assert_allclose(right[key], ref[key], atol=2e-5)
    np.testing.assert_allclose(recs[1]["hands"][0]["joints3d"], ref["joints3d"], atol=2e-5)

    # The left hand = the mirror of the right-hand prediction on the mirrored image.
    flipped = predict(responsive_ckpt, C.flip_image(canvas), K=C.flip_intrinsics(K, W), boxes=C.flip_xyxy(left_box, W),
                      input_size=SIZE)[0]["hands"][0]
    np.testing.assert_array_equal(left["crop_image"], flipped["crop_image"])
    np.testing.assert_allclose(left["joints3d"], C.flip_points_3d(flipped["joints3d"]), atol=2e-5)
    np.testing.assert_allclose(left["vertices"], C.flip_points_3d(flipped["vertices"]), atol=2e-5)
    np.testing.assert_allclose(left["joints2d"], C.flip_points_2d(flipped["joints2d"], W), atol=2e-3)
    np.testing.assert_allclose(left["joints2d"], project(left["joints3d"], K), atol=1e-3)
    np.testing.assert_allclose(left["crop"]["center"], [(left_box[0] + left_box[2]) / 2, (left_box[1] + left_box[3]) / 2])
    assert abs(left["joints3d"][:, 0].mean() - right["joints3d"][:, 0].mean()) > 1e-3  # not the same hand twice
    assert signed_volume(left["vertices"], left["faces"]) > 0 and signed_volume(right["vertices"], right["faces"]) > 0
    from hoi_adapt.hand.model import HandModel

    m = left["mano"]
    v = HandModel(side="left")(torch.tensor(m["global_orient"])[None].float(), torch.tensor(m["hand_pose"])[None].float(),
                               torch.tensor(m["betas"])[None].float(), torch.tensor(m["transl"])[None].float())
    np.testing.assert_allclose(v.vertices[0].numpy(), left["vertices"], atol=5e-5)

    # Files: one OBJ per hand (the left one wound outward), one overlay per image, none for a hand-less image.
    assert [h["files"]["obj"] for h in recs[0]["hands"]] == ["image_0000_hand0.obj", "image_0000_hand1.obj"]
    verts, faces = read_obj(out / "image_0000_hand1.obj")
    np.testing.assert_allclose(verts, left["vertices"], atol=1e-6)
    assert signed_volume(verts, faces) > 0
    overlay = cv2.imread(str(out / "image_0000_overlay.png"))[:, :, ::-1]
    changed = (overlay != canvas).any(axis=2)
    assert changed[:, :150].any() and changed[:, 150:].any()  # both hands drawn
    assert recs[2]["hands"] == [] and recs[2]["notes"] == ["stand-in found no hand in this image"]
    assert sorted(p.name for p in out.glob("image_0002*")) == ["image_0002.json", "image_0002_overlay.png"]


def test_left_option_and_box_sides(responsive_ckpt, two_hands):
    canvas, K, right_box, left_box = two_hands
    detector, _ = stand_in({"image_0000": [Detection(right_box, "right", 0.9)]})
    forced = predict(responsive_ckpt, canvas, K=K, input_size=SIZE, detector=detector, left=True)[0]["hands"][0]
    assert (forced["side"], forced["side_source"]) == ("left", "left")
    # A box's own side wins over the left option; boxes without one follow it.
    recs = predict(responsive_ckpt, canvas, K=K, input_size=SIZE, left=True,
                   boxes=[{"box": right_box.tolist(), "side": "right"}, left_box])[0]
    assert [(h["side"], h["side_source"]) for h in recs["hands"]] == [("right", "box"), ("left", "left")]
    assert recs["detector"]["name"] == "boxes"
    with pytest.raises(ConfigError, match="side must be 'left' or 'right'"):
        predict(responsive_ckpt, canvas, K=K, boxes=[{"box": right_box.tolist(), "side": "up"}])


@needs_peer
def test_mediapipe_finds_both_hands_of_a_generated_picture(responsive_ckpt, tiny_world, tmp_path):
    """A rendered right hand and its mirror image side by side (the picture is its own mirror image): MediaPipe
    must find a right hand in the left half and a left hand in the right half (measured when written: boxes
    [64, 45, 124, 138] and [226, 46, 286, 136], handedness scores 0.99)."""
    hand = read_image(image_path(tiny_world, "source_hand", "hand", 0))
    canvas = np.full((96, 176, 3), 110, np.uint8)
    canvas[16:80, 16:80] = hand
    canvas[16:80, 96:160] = hand[:, ::-1]
    canvas = cv2.resize(canvas, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "two_hands.png"
    assert cv2.imwrite(str(path), canvas[:, :, ::-1])
    rec = predict(responsive_ckpt, path, input_size=SIZE, detector="mediapipe")[0]
    assert rec["detector"]["name"] == "mediapipe" and rec["detector"]["box_scale"] == LANDMARK_BOX_SCALE
    assert [h["side"] for h in rec["hands"]] == ["right", "left"]
    right, left = rec["hands"]
    assert right["box"][2] < 176 < left["box"][0]  # each box in its half
    assert all(h["side_source"] == "detector" and 0.5 < h["score"] <= 1.0 for h in rec["hands"])
    assert left["crop"]["mirrored"] and not right["crop"]["mirrored"]
    # The picture is its own mirror image, and so (within a few pixels) are the two landmark boxes.
    W = canvas.shape[1]
    np.testing.assert_allclose(left["box"], [W - 1 - right["box"][2], right["box"][1], W - 1 - right["box"][0],
                                             right["box"][3]], atol=6)
    for h in rec["hands"]:  # the crop is the documented square around the detected box, mirrored or not
        x0, y0, x1, y1 = h["box"]
        np.testing.assert_allclose(h["crop"]["center"], [(x0 + x1) / 2, (y0 + y1) / 2])
        assert h["crop"]["side"] == pytest.approx(LANDMARK_BOX_SCALE * max(x1 - x0, y1 - y0))
