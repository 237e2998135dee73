"""Augmentation keeps image, masks, 2D/3D keypoints, K and MANO parameters consistent."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hoi_adapt.data.augment import GeometricParams, SampleAugment, warp_sample
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.schema import MASK_KEYS, validate_sample

WARPS = [
    GeometricParams(angle=0.0, scale=1.0, shift=(0.0, 0.0)),
    GeometricParams(angle=0.35, scale=1.0, shift=(0.0, 0.0)),
    GeometricParams(angle=-0.4, scale=1.12, shift=(3.5, -2.25)),
    GeometricParams(angle=0.2, scale=0.88, shift=(-4.0, 1.0)),
]


@pytest.fixture(scope="module")
def pair_sample(tiny_world: Path) -> dict:
    ds = SyntheticHandDataset(tiny_world, "source_pairs", image="hoi", pair=True, amodal_masks=True)
    return ds[0]


def project(xyz: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    uvw = xyz.double() @ K.double().T
    return uvw[:, :2] / uvw[:, 2:]


def blob_image(uv: np.ndarray, joints: tuple[int, int, int], size: int, sigma: float = 1.6) -> torch.Tensor:
    """One Gaussian blob per channel, centred on three joints (pixel-centre coordinates)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    chans = [np.exp(-((xx - uv[j, 0]) ** 2 + (yy - uv[j, 1]) ** 2) / (2 * sigma**2)) for j in joints]
    return torch.from_numpy(np.stack(chans)).float()


def local_centroid(channel: np.ndarray, around: np.ndarray, radius: int = 6) -> np.ndarray:
    """Intensity centroid within ``radius`` px of ``around`` (ignores far-away border reflections)."""
    yy, xx = np.mgrid[0 : channel.shape[0], 0 : channel.shape[1]]
    w = channel * (((xx - around[0]) ** 2 + (yy - around[1]) ** 2) <= radius**2)
    w = w / w.sum()
    return np.array([(w * xx).sum(), (w * yy).sum()])


def test_identity_warp_changes_nothing(pair_sample: dict) -> None:
    out = warp_sample(pair_sample, WARPS[0])
    for key in ("image", "image_hand_only", "K", "joints2d", "joints3d", "mano_pose", "mano_transl", *MASK_KEYS):
        torch.testing.assert_close(out[key], pair_sample[key], atol=1e-5, rtol=0), key


@pytest.mark.parametrize("params", WARPS[1:])
def test_keypoints_stay_on_the_same_image_content(pair_sample: dict, params: GeometricParams) -> None:
    size = pair_sample["image"].shape[-1]
    uv = pair_sample["joints2d"].numpy()
    checked: list[int] = []
    moved: list[float] = []
    for joints in ((0, 8, 20), (4, 12, 16), (5, 9, 17)):
        s = dict(pair_sample, image=blob_image(uv, joints, size))
        out = warp_sample(s, params)
        new_uv = out["joints2d"].numpy()
        for c, j in enumerate(joints):
            if min(uv[j].min(), new_uv[j].min(), size - 1 - uv[j].max(), size - 1 - new_uv[j].max()) < 7:
                continue  # near the border the warp's reflection padding folds other content in
            checked.append(j)
            # the blob drawn at joint j before the warp is centred on the warped joint j after it
            assert np.linalg.norm(local_centroid(out["image"][c].numpy(), new_uv[j]) - new_uv[j]) < 0.15, (joints, j)
            moved.append(float(np.linalg.norm(new_uv[j] - uv[j])))
    assert len(checked) >= 6
    assert np.mean(moved) > 1.5  # the joints really moved, so the check can tell


@pytest.mark.parametrize("params", WARPS[1:])
def test_masks_move_with_the_keypoints(pair_sample: dict, params: GeometricParams) -> None:
    out = warp_sample(pair_sample, params)
    size = out["image"].shape[-1]

    def on_mask(sample: dict) -> np.ndarray:
        r = sample["joints2d"].round().long()
        inside = ((r >= 0) & (r < size)).all(1)
        r = r.clamp(0, size - 1)
        return (sample["hand_mask_full"][r[:, 1], r[:, 0]] > 0).numpy() & inside.numpy()

    before, after = on_mask(pair_sample), on_mask(out)
    assert before.sum() >= 17
    assert (before & after).sum() >= before.sum() - 2  # nearest-neighbour masks: at most a border pixel or two
    for key in MASK_KEYS:
        assert set(torch.unique(out[key]).tolist()) <= {0.0, 1.0}
    # the visible-hand mask still lies inside the full-hand mask
    assert float((out["hand_mask"] * (1 - out["hand_mask_full"])).sum()) == 0.0


@pytest.mark.parametrize("params", WARPS[1:])
def test_camera_and_3d_stay_consistent(pair_sample: dict, params: GeometricParams) -> None:
    out = warp_sample(pair_sample, params)
    assert torch.allclose(project(out["joints3d"], out["K"]), out["joints2d"].double(), atol=1e-3)
    # a roll about the optical axis keeps depths and bone lengths; K absorbs scale and shift
    torch.testing.assert_close(out["joints3d"][:, 2], pair_sample["joints3d"][:, 2], atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.cdist(out["joints3d"], out["joints3d"]),
                               torch.cdist(pair_sample["joints3d"], pair_sample["joints3d"]), atol=1e-6, rtol=0)
    assert float(out["K"][0, 0]) == pytest.approx(float(pair_sample["K"][0, 0]) * params.scale, rel=1e-6)


@pytest.mark.parametrize("params", WARPS[1:])
def test_mano_parameters_pose_the_warped_joints(pair_sample: dict, params: GeometricParams) -> None:
    from hoi_adapt.hand.model import HandModel

    model = HandModel(side="right")
    out = warp_sample(pair_sample, params)
    p = out["mano_pose"][None]
    with torch.no_grad():
        verts = model(p[:, :3], p[:, 3:], out["mano_betas"][None], out["mano_transl"][None]).vertices
        joints = model.joints_from_vertices(verts)[0]
    assert float((joints - out["joints3d"]).norm(dim=-1).max()) < 1e-4  # metres
    torch.testing.assert_close(out["mano_pose"][3:], pair_sample["mano_pose"][3:])  # articulation untouched
    if params.angle != 0:
        assert float((out["mano_pose"][:3] - pair_sample["mano_pose"][:3]).abs().max()) > 1e-3


def test_paired_image_gets_the_same_photometric_change(pair_sample: dict) -> None:
    aug = SampleAugment(p_photometric=1.0, blur_prob=1.0, noise_std=(0.02, 0.03))
    s = dict(pair_sample, image_hand_only=pair_sample["image"].clone())
    torch.manual_seed(3)
    out = aug(s)
    assert not torch.allclose(out["image"], s["image"], atol=1e-3)  # something happened
    torch.testing.assert_close(out["image_hand_only"], out["image"], atol=0, rtol=0)
    assert float(out["image"].min()) >= 0.0 and float(out["image"].max()) <= 1.0


def test_augment_is_seeded_by_torch_and_keeps_the_schema(pair_sample: dict) -> None:
    aug = SampleAugment()
    torch.manual_seed(7)
    a = aug(pair_sample)
    torch.manual_seed(7)
    b = aug(pair_sample)
    validate_sample(a)
    for key in ("image", "image_hand_only", "K", "joints2d", "hand_mask"):
        assert torch.equal(a[key], b[key]), key
    assert torch.allclose(project(a["joints3d"], a["K"]), a["joints2d"].double(), atol=1e-3)
    torch.manual_seed(8)
    c = aug(pair_sample)
    assert not torch.equal(a["K"], c["K"])


def test_absent_labels_and_pairs_stay_zero(tiny_world: Path) -> None:
    s = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", labels=False)[0]
    torch.manual_seed(0)
    out = SampleAugment(p_photometric=1.0, noise_std=(0.02, 0.03))(s)
    validate_sample(out)
    for key in ("joints2d", "joints3d", "mano_pose", "mano_transl"):
        assert float(out[key].abs().sum()) == 0.0, key
    assert float(out["has_2d"]) == float(out["has_3d"]) == float(out["has_mano"]) == 0.0
    assert float(out["has_pair"]) == 0.0 and float(out["image_hand_only"].abs().sum()) == 0.0


def test_roll_is_skipped_when_the_principal_point_is_far_off_image(pair_sample: dict) -> None:
    aug = SampleAugment(rotate_deg=30)
    far = dict(pair_sample, K=pair_sample["K"].clone())
    far["K"][0, 2] = 500.0
    rng = np.random.default_rng(0)
    assert all(aug.sample_params(rng, far).angle == 0.0 for _ in range(5))
    assert any(abs(aug.sample_params(rng, pair_sample).angle) > 0.01 for _ in range(5))
