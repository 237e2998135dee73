"""Crop/resize/flip bookkeeping: points, images, masks and intrinsics stay consistent."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from fixtures_datasets import canvas, dot_centroid, draw_dot, project

from hoi_adapt.data import crop as C


def test_crop_affine_maps_box_edges_to_output_edges():
    A = C.crop_affine(np.array([50.0, 40.0, 20.0]), 10)
    # box left/top edge (cx - side/2) -> -0.5, right/bottom edge -> out - 0.5; centre -> (out - 1) / 2
    np.testing.assert_allclose(C.transform_points(A, np.array([[40.0, 30.0], [60.0, 50.0], [50.0, 40.0]])),
                               [[-0.5, -0.5], [9.5, 9.5], [4.5, 4.5]])


@pytest.mark.parametrize("box,out", [((30.0, 20.0, 24.0), 96), ((31.5, 22.0, 40.0), 64), ((60.0, 45.0, 110.0), 20),
                                     ((5.0, 5.0, 30.0), 48)])
def test_dot_lands_on_transformed_point(box, out):
    img = canvas(90, 120)
    uv = np.array([[int(box[0]) + 3.0, int(box[1]) - 2.0]])
    draw_dot(img, uv[0], radius=2)
    crop, A = C.crop_and_resize(img, np.array(box), out)
    assert crop.shape == (out, out, 3)
    expected = C.transform_points(A, uv)[0]
    k = out / box[2]
    np.testing.assert_allclose(dot_centroid(crop), expected, atol=0.5 + 0.25 * k)


def test_antialiased_downscale_keeps_content_in_place():
    img = canvas(400, 600)
    uv = np.array([[311.0, 207.0]])
    draw_dot(img, uv[0], radius=6)
    box = np.array([300.0, 200.0, 380.0])
    A = C.crop_affine(box, 32)  # k = 0.084 -> INTER_AREA pre-reduction path
    crop = C.warp_image(img, A, 32)
    np.testing.assert_allclose(dot_centroid(crop), C.transform_points(A, uv)[0], atol=0.6)
    plain = C.warp_image(img, A, 32, antialias=False)
    assert np.abs(crop.astype(int) - plain.astype(int)).mean() < 20  # same content, smoother


def test_crop_intrinsics_agree_with_projection():
    K = np.array([[500.0, 0.3, 310.0], [0.0, 505.0, 245.0], [0, 0, 1]])
    X = np.random.default_rng(0).normal([0, 0, 0.6], [0.05, 0.05, 0.05], (10, 3))
    A = C.crop_affine(np.array([300.0, 250.0, 180.0]), 128)
    np.testing.assert_allclose(project(C.crop_intrinsics(K, A), X), C.transform_points(A, project(K, X)), atol=1e-9)


def test_boxes_from_points_mask_and_xyxy():
    uv = np.array([[10.0, 20.0], [30.0, 25.0], [np.nan, 0.0], [100.0, 100.0]])
    box = C.crop_box_from_points(uv, valid=np.array([1, 1, 1, 0]), scale=2.0, min_size=1.0)
    np.testing.assert_allclose(box, [20.0, 22.5, 40.0])  # NaN point and invalid point ignored
    assert C.crop_box_from_points(uv[:1], scale=1.5, min_size=12.0)[2] == 12.0  # single point -> min size
    with pytest.raises(ValueError):
        C.crop_box_from_points(uv, valid=np.zeros(4, bool))
    mask = np.zeros((50, 60), bool)
    mask[10:20, 5:35] = True  # pixels 5..34 x 10..19: extent 30 x 10
    np.testing.assert_allclose(C.crop_box_from_mask(mask, scale=1.0, min_size=1), [19.5, 14.5, 30.0])
    with pytest.raises(ValueError):
        C.crop_box_from_mask(np.zeros((4, 4)))
    np.testing.assert_allclose(C.crop_box_from_xyxy([10, 20, 30, 60], scale=1.5), [20, 40, 60])
    np.testing.assert_allclose(C.full_image_box(48, 64), [31.5, 23.5, 64])


def test_full_image_box_crop_keeps_whole_image():
    img = canvas(48, 64)
    draw_dot(img, (0, 0))
    draw_dot(img, (63, 47))
    crop, A = C.crop_and_resize(img, C.full_image_box(48, 64), 64)
    np.testing.assert_allclose(A[:2, :2], np.eye(2))
    assert (crop[8:56] == img).all()  # letterboxed vertically, no resampling


def test_warp_mask_is_nearest_and_keeps_labels():
    labels = np.zeros((40, 40), np.uint8)
    labels[5:15, 5:15] = 3
    labels[20:30, 22:35] = 17
    out = C.warp_mask(labels, C.crop_affine(np.array([20.0, 20.0, 33.0]), 57), 57)
    assert set(np.unique(out)) <= {0, 3, 17} and {3, 17} <= set(np.unique(out))
    b = C.warp_mask(labels > 0, C.crop_affine(np.array([19.5, 19.5, 40.0]), 40), 40)  # identity crop
    assert b.dtype == bool and (b == (labels > 0)).all()


def test_flip_consistency_image_points_K_3d():
    h, w = 48, 64
    K = np.array([[70.0, 0.0, 30.2], [0.0, 71.0, 25.0], [0, 0, 1]])
    X = np.array([[0.02, -0.01, 0.5], [-0.05, 0.03, 0.6]])
    uv = project(K, X)
    img = canvas(h, w)
    draw_dot(img, np.round(uv[0]))
    f = C.flip_horizontal(w, image=img, uv=uv, K=K, xyz=X, hand_mask_full=np.eye(h, w, dtype=bool),
                          xyxy=np.array([1.0, 2.0, 10.0, 20.0]), mano_pose=np.arange(48.0), mano_transl=np.array([1.0, 2, 3]),
                          image_hand_only=None)
    np.testing.assert_allclose(project(f["K"], f["xyz"]), f["uv"], atol=1e-9)  # mirrored camera still projects right
    np.testing.assert_allclose(f["uv"][:, 0], w - 1 - uv[:, 0])
    np.testing.assert_allclose(dot_centroid(f["image"]), [w - 1 - np.round(uv[0, 0]), np.round(uv[0, 1])], atol=1e-9)
    assert f["hand_mask_full"][0, w - 1] and not f["hand_mask_full"][0, 0]
    np.testing.assert_allclose(f["xyxy"], [w - 1 - 10.0, 2.0, w - 1 - 1.0, 20.0])
    pose = f["mano_pose"].reshape(16, 3)
    np.testing.assert_allclose(pose[:, 0], np.arange(48.0).reshape(16, 3)[:, 0])
    np.testing.assert_allclose(pose[:, 1:], -np.arange(48.0).reshape(16, 3)[:, 1:])
    np.testing.assert_allclose(f["mano_transl"], [-1.0, 2, 3])
    assert f["image_hand_only"] is None
    np.testing.assert_allclose(C.flip_mano_pose(C.flip_mano_pose(np.arange(48.0))), np.arange(48.0))  # involution
    with pytest.raises(ValueError):
        C.flip_horizontal(w, bogus=1)


def test_flipped_mano_rotation_is_the_mirror_conjugate():
    # Mirroring x -> -x turns a rotation R into M R M (M = diag(-1,1,1)); on axis-angle that is (x, -y, -z).
    rv = np.array([0.3, -0.7, 0.4])
    R = cv2.Rodrigues(rv)[0]
    M = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(cv2.Rodrigues(M @ R @ M)[0].ravel(), C.flip_mano_pose(np.tile(rv, 16))[:3], atol=1e-9)


def test_resize_nearest():
    m = np.zeros((24, 32), bool)
    m[:12] = True
    r = C.resize_nearest(m, 48, 64)
    assert r.shape == (48, 64) and r[:24].all() and not r[24:].any()
