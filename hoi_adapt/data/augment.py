"""Training augmentation that keeps image, masks, 2D/3D keypoints, K and MANO parameters consistent.

Geometry is done with an explicit affine map so the camera model stays exact: an in-plane rotation by
angle a about the principal point is a rotation of the camera about its optical axis (pixels move by the
affine ``K Rz K^-1``; 3D joints and the MANO global orientation rotate by ``Rz``; K is unchanged), and a
scale/translation of the image is absorbed into K (``K' = A K``). Photometric changes come from
albumentations and are applied with identical parameters to the input and its paired hand-only image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch

from hoi_adapt.data.schema import MASK_KEYS


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(aa, dtype=np.float64).reshape(3, 1))[0]


def _matrix_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    return cv2.Rodrigues(np.asarray(rot, dtype=np.float64))[0].ravel()


@dataclass
class GeometricParams:
    angle: float  # radians, camera roll about the optical axis
    scale: float
    shift: tuple[float, float]  # pixels


def warp_sample(sample: dict[str, Any], params: GeometricParams) -> dict[str, Any]:
    """Apply one camera roll + image scale/shift to every geometric quantity of a schema sample."""
    out = dict(sample)
    _, h, w = sample["image"].shape
    K = sample["K"].double().numpy()
    rz = _rot_z(params.angle)
    a_rot = K @ rz @ np.linalg.inv(K)
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    s = params.scale
    a_st = np.array([[s, 0.0, (1 - s) * cx + params.shift[0]], [0.0, s, (1 - s) * cy + params.shift[1]], [0.0, 0.0, 1.0]])
    a_total = a_st @ a_rot
    warp = a_total[:2].astype(np.float64)
    for key in ("image", "image_hand_only"):
        img = sample[key].permute(1, 2, 0).numpy()
        img = cv2.warpAffine(img, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        out[key] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float()
    for key in MASK_KEYS:
        mask = sample[key].numpy().astype(np.float32)
        out[key] = torch.from_numpy(
            cv2.warpAffine(mask, warp, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        ).float()
    uv = sample["joints2d"].double().numpy()
    uv = uv @ warp[:, :2].T + warp[:, 2]
    # Absent labels stay zero (the schema's rule): only annotated joints move.
    uv[sample["joints2d_valid"].numpy() <= 0] = 0.0
    out["joints2d"] = torch.from_numpy(uv).float()
    out["K"] = torch.from_numpy(a_st @ K).float()
    out["joints3d"] = torch.from_numpy(sample["joints3d"].double().numpy() @ rz.T).float()
    if float(sample["has_mano"]) > 0:
        pose = sample["mano_pose"].double().numpy().copy()
        pose[:3] = _matrix_to_axis_angle(rz @ _axis_angle_to_matrix(pose[:3]))
        wrist = sample["joints3d"].double().numpy()[0]
        transl = sample["mano_transl"].double().numpy()
        # MANO rotates about its root joint J0, and J0 + transl is the posed wrist, so rolling the camera
        # moves the translation by Rz w - w.
        out["mano_pose"] = torch.from_numpy(pose).float()
        out["mano_transl"] = torch.from_numpy(transl + rz @ wrist - wrist).float()
    return out


class SampleAugment:
    """Random camera roll, scale, shift and photometric jitter for schema samples (a dataset ``transform``).

    Args:
        rotate_deg: max |roll|; rolls are skipped when the principal point is far outside the image,
            where rolling about it would swing the hand out of view.
        scale: (min, max) zoom factor about the image centre.
        translate: max shift as a fraction of the image size.
        brightness, contrast, saturation, hue: albumentations ColorJitter ranges.
        noise_std: (min, max) Gaussian noise std in [0,1] image units; blur_prob: chance of a light blur.
        p_photometric: probability of the photometric block.
    """

    def __init__(
        self,
        rotate_deg: float = 25.0,
        scale: tuple[float, float] = (0.9, 1.1),
        translate: float = 0.06,
        brightness: float = 0.25,
        contrast: float = 0.25,
        saturation: float = 0.25,
        hue: float = 0.03,
        noise_std: tuple[float, float] = (0.0, 0.03),
        blur_prob: float = 0.15,
        p_photometric: float = 0.8,
    ) -> None:
        self.rotate = np.deg2rad(rotate_deg)
        self.scale = scale
        self.translate = translate
        self.photometric = A.Compose(
            [
                A.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue, p=1.0),
                A.GaussNoise(std_range=noise_std, p=0.5),
                A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 0.9), p=blur_prob),
            ],
            p=p_photometric,
            additional_targets={"image_hand_only": "image"},
        )

    def sample_params(self, rng: np.random.Generator, sample: dict[str, Any]) -> GeometricParams:
        _, h, w = sample["image"].shape
        K = sample["K"].numpy()
        near_centre = abs(K[0, 2] - (w - 1) / 2) < 0.5 * w and abs(K[1, 2] - (h - 1) / 2) < 0.5 * h
        angle = float(rng.uniform(-self.rotate, self.rotate)) if near_centre else 0.0
        return GeometricParams(
            angle=angle,
            scale=float(rng.uniform(*self.scale)),
            shift=(float(rng.uniform(-self.translate, self.translate) * w), float(rng.uniform(-self.translate, self.translate) * h)),
        )

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        seed = int(torch.randint(0, 2**31 - 1, (1,)).item())  # follows torch / Lightning worker seeding
        rng = np.random.default_rng(seed)
        out = warp_sample(sample, self.sample_params(rng, sample))
        self.photometric.set_random_seed(seed)
        image = out["image"].permute(1, 2, 0).numpy()
        paired = out["image_hand_only"].permute(1, 2, 0).numpy()
        res = self.photometric(image=np.ascontiguousarray(image), image_hand_only=np.ascontiguousarray(paired))
        out["image"] = torch.from_numpy(np.clip(res["image"], 0, 1).transpose(2, 0, 1).copy()).float()
        if float(out["has_pair"]) > 0:  # an absent pair stays all zeros (no noise painted onto it)
            out["image_hand_only"] = torch.from_numpy(np.clip(res["image_hand_only"], 0, 1).transpose(2, 0, 1).copy()).float()
        return out
