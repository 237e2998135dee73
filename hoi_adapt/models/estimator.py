"""The mesh estimator E (CVPR19/CVPR20 design): image -> 2D evidence -> iterative MANO regression -> mesh.

ResNet trunk -> a light top-down head producing 21 keypoint heatmaps and a hand mask at stride 4 (the 2D
evidence) -> an HMR-style regressor that refines MANO pose (6D rotations), shape and a camera in a few
steps from pooled image features and the encoded evidence -> the hand model -> mesh. The 21-joint
skeleton is always regressed from the *final* mesh (MANO's joint regressor on the posed vertices plus the
fingertip vertices), so the skeleton and the mesh cannot disagree.

Camera: the regressor predicts where the wrist projects (offset from the crop centre in half-crop units)
and a log depth factor relative to ``depth_prior`` (the depth at which a hand of ``hand_span`` metres
spans the crop). With the crop's intrinsics K this gives a full perspective translation, so predictions
live in real camera coordinates for any crop of any image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pytorch3d.transforms import axis_angle_to_matrix, matrix_to_rotation_6d, rotation_6d_to_matrix
from torch import nn

from hoi_adapt.models.backbone import ResNetBackbone
from hoi_adapt.models.config import record_init

NUM_JOINTS = 21
POSE_6D = 16 * 6
NUM_BETAS = 10
NUM_CAM = 3
PARAM_DIM = POSE_6D + NUM_BETAS + NUM_CAM


@dataclass
class EstimatorOutput:
    """Per-image predictions; 3D in the camera frame of the input crop (metres), 2D in its pixels."""

    vertices: torch.Tensor  # (B,778,3)
    joints3d: torch.Tensor  # (B,21,3) skeleton regressed from the final mesh
    joints2d: torch.Tensor  # (B,21,2)
    global_orient: torch.Tensor  # (B,3,3)
    hand_pose: torch.Tensor  # (B,15,3,3)
    betas: torch.Tensor  # (B,10)
    transl: torch.Tensor  # (B,3) MANO translation
    cam: torch.Tensor  # (B,3) (du, dv, log depth factor)
    heatmaps: torch.Tensor  # (B,21,h,w)
    mask_logits: torch.Tensor  # (B,1,h,w)
    iterations: list[dict[str, torch.Tensor]] = field(default_factory=list)  # params after each refinement

    def detach(self) -> "EstimatorOutput":
        values = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        values["iterations"] = [{k: v.detach() for k, v in it.items()} for it in self.iterations]
        return EstimatorOutput(**values)


class EvidenceHead(nn.Module):
    """Top-down feature pyramid to stride 4 -> 21 heatmaps + 1 hand-mask logit map."""

    def __init__(self, in_channels: tuple[int, int, int, int], width: int = 64) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)
        self.smooth = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, NUM_JOINTS + 1, 1),
        )

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = self.lateral[3](feats[3])
        for level in (2, 1, 0):
            lat = self.lateral[level](feats[level])
            x = lat + F.interpolate(x, size=lat.shape[-2:], mode="nearest")
        return self.smooth(x)


class EvidenceEncoder(nn.Module):
    """Encodes the 2D evidence maps into a vector for the regressor."""

    def __init__(self, width: int = 64, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(NUM_JOINTS + 1, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, out_dim, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
        )

    def forward(self, evidence: torch.Tensor) -> torch.Tensor:
        return self.net(evidence).flatten(1)


class IterativeRegressor(nn.Module):
    """HMR-style refinement: params_{t+1} = params_t + MLP([features, params_t])."""

    def __init__(self, feat_dim: int, hidden: int = 512, num_iterations: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.mlp = nn.Sequential(
            nn.Linear(feat_dim + PARAM_DIM, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.out = nn.Linear(hidden, PARAM_DIM)
        nn.init.zeros_(self.out.weight)  # start exactly at the mean parameters
        nn.init.zeros_(self.out.bias)

    def forward(self, feats: torch.Tensor, init: torch.Tensor) -> list[torch.Tensor]:
        params = init.expand(feats.shape[0], -1)
        history = []
        for _ in range(self.num_iterations):
            params = params + self.out(self.mlp(torch.cat([feats, params], dim=1)))
            history.append(params)
        return history


@record_init
class MeshEstimator(nn.Module):
    """The estimator network (a plain ``nn.Module``; the hand model is built inside from plain arguments).

    Args:
        backbone_depth: ResNet depth (18, 34, 50).
        pretrained_backbone: optional local path to torchvision ResNet weights (nothing downloads).
        evidence_width: channels of the 2D-evidence head.
        regressor_hidden: width of the regressor MLP.
        num_iterations: refinement steps of the regressor (the method uses 3).
        mano_path: MANO file/folder; None uses the built-in stand-in hand model.
        tip_preset: fingertip vertex preset of the skeleton (see ``hand.joint_maps``).
        joint_order: order of the returned 21 joints.
        hand_span: metres; with ``depth_factor`` 0 the predicted hand spans about the crop width.
    """

    def __init__(
        self,
        backbone_depth: int = 18,
        pretrained_backbone: str | None = None,
        evidence_width: int = 64,
        regressor_hidden: int = 512,
        num_iterations: int = 3,
        mano_path: str | None = None,
        tip_preset: str = "smplx",
        joint_order: str = "openpose",
        hand_span: float = 0.22,
    ) -> None:
        super().__init__()
        from hoi_adapt.hand.model import HandModel

        self.backbone = ResNetBackbone(backbone_depth, pretrained_backbone)
        self.evidence_head = EvidenceHead(self.backbone.channels, evidence_width)
        self.evidence_encoder = EvidenceEncoder(evidence_width, 128)
        self.regressor = IterativeRegressor(self.backbone.channels[3] + 128, regressor_hidden, num_iterations)
        self.hand_model = HandModel(model_path=mano_path, side="right", tip_preset=tip_preset, joint_order=joint_order)
        self.hand_span = hand_span
        self.register_buffer("init_params", self._initial_params(), persistent=False)
        self.register_buffer("image_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _initial_params(self) -> torch.Tensor:
        """Mean parameters: fingers up with the palm to the camera, the model's relaxed mean pose, mean shape."""
        from hoi_adapt.hand.pose_sampler import base_orient

        global_rot = torch.as_tensor(base_orient(self.hand_model.side), dtype=torch.float32)[None]
        relaxed = axis_angle_to_matrix(self.hand_model.hands_mean.detach().float().view(15, 3))
        pose6d = matrix_to_rotation_6d(torch.cat([global_rot, relaxed], dim=0)).reshape(1, -1)
        return torch.cat([pose6d, torch.zeros(1, NUM_BETAS + NUM_CAM)], dim=1)

    def decode_params(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        rot = rotation_6d_to_matrix(params[:, :POSE_6D].reshape(-1, 16, 6))
        return {
            "global_orient": rot[:, 0],
            "hand_pose": rot[:, 1:],
            "betas": params[:, POSE_6D : POSE_6D + NUM_BETAS],
            "cam": params[:, POSE_6D + NUM_BETAS :],
        }

    def camera_translation(self, cam: torch.Tensor, root: torch.Tensor, K: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """MANO translation that puts the posed root joint ``root`` where the camera params say."""
        h, w = size
        u = (w - 1) / 2.0 + cam[:, 0] * w / 2.0
        v = (h - 1) / 2.0 + cam[:, 1] * h / 2.0
        depth = K[:, 0, 0] * self.hand_span / w * torch.exp(cam[:, 2].clamp(-4.0, 4.0))
        ray = torch.linalg.solve(K, torch.stack([u, v, torch.ones_like(u)], dim=1).unsqueeze(-1)).squeeze(-1)
        return ray * depth.unsqueeze(1) / ray[:, 2:3] - root

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> EstimatorOutput:
        size = (image.shape[-2], image.shape[-1])
        feats = self.backbone((image - self.image_mean) / self.image_std)
        evidence = self.evidence_head(feats)
        heatmaps, mask_logits = evidence[:, :NUM_JOINTS], evidence[:, NUM_JOINTS:]
        pooled = torch.cat([F.adaptive_avg_pool2d(feats[3], 1).flatten(1), self.evidence_encoder(evidence)], dim=1)
        history = self.regressor(pooled, self.init_params)
        p = self.decode_params(history[-1])
        hand = self.hand_model(p["global_orient"], p["hand_pose"], p["betas"])
        transl = self.camera_translation(p["cam"], hand.joints16[:, 0], K, size)
        vertices = hand.vertices + transl.unsqueeze(1)
        joints3d = self.hand_model.joints_from_vertices(vertices)
        joints2d = _project_safe(joints3d, K)
        return EstimatorOutput(
            vertices=vertices, joints3d=joints3d, joints2d=joints2d, global_orient=p["global_orient"],
            hand_pose=p["hand_pose"], betas=p["betas"], transl=transl, cam=p["cam"], heatmaps=heatmaps,
            mask_logits=mask_logits, iterations=[self.decode_params(h) for h in history],
        )


def _project_safe(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pinhole projection that tolerates points at or behind the camera early in training."""
    uvw = points @ K.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:3].clamp(min=1e-6)
