"""The mesh estimator E (CVPR19/CVPR20 design): image -> 2D evidence -> iterative MANO regression -> mesh.

ResNet trunk -> a light top-down head producing 21 keypoint heatmaps and a hand mask at stride 4 (the 2D
evidence) -> an HMR-style regressor that refines MANO pose (6D rotations), shape and a camera in a few
steps from pooled image features and the encoded evidence -> the hand model -> mesh. The 21-joint
skeleton is always regressed from the *final* mesh (MANO's joint regressor on the posed vertices plus the
fingertip vertices), so the skeleton and the mesh cannot disagree.

Camera (``camera="solve"``, the default): the translation is not regressed but solved in closed form, as the
least-squares fit of the posed, untranslated skeleton to the 2D keypoints read off the heatmaps
(soft-argmax) under the crop's intrinsics K. Placement, size and depth then follow the 2D evidence, and a
hand can no longer shrink towards the crop centre; a weak prior (the depth at which a hand of
``hand_span`` metres spans the crop) keeps the solve well posed while the heatmaps are still flat.
``camera="regress"`` is the earlier design (wrist offset and a log depth factor regressed), kept as an ablation.
The regressor sees the pooled image features, a spatial (4x4) encoding of the evidence maps and the
keypoints themselves, so where the wrist and fingers lie reaches it directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from pytorch3d.transforms import axis_angle_to_matrix, matrix_to_rotation_6d, rotation_6d_to_matrix
from torch import nn

from hoi_adapt.hand.model import SKELETONS, HandModel
from hoi_adapt.hand.pose_sampler import base_orient
from hoi_adapt.models.backbone import ResNetBackbone
from hoi_adapt.models.config import record_init
from hoi_adapt.render.cameras import backproject
from hoi_adapt.utils.errors import ConfigError
from hoi_adapt.utils.linalg3 import solve3

NUM_JOINTS = 21
POSE_6D = 16 * 6
NUM_BETAS = 10
NUM_CAM = 3
CAMERA_MODES = ("solve", "regress")


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
    cam: torch.Tensor  # (B,3) camera="regress": (du, dv, log depth factor); camera="solve": the solved translation
    heatmaps: torch.Tensor  # (B,21,h,w)
    mask_logits: torch.Tensor  # (B,1,h,w)
    keypoints2d: torch.Tensor  # (B,21,2) soft-argmax of the heatmaps, input pixels (the 2D evidence as points)
    keypoint_confidence: torch.Tensor  # (B,21) heatmap peaks in [0,1]
    iterations: list[dict[str, torch.Tensor]] = field(default_factory=list)  # params after each refinement

    def detach(self) -> EstimatorOutput:
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
    """Encodes the 2D evidence maps into a vector for the regressor, keeping their layout (a 4x4 grid).

    Global average pooling would throw away *where* the evidence is, which is what the global rotation and
    the wrist position are read from.
    """

    GRID = 4

    def __init__(self, width: int = 64, out_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(NUM_JOINTS + 1, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(self.GRID), nn.Flatten(1),
            nn.Linear(width * self.GRID**2, out_dim), nn.ReLU(inplace=True),
        )

    def forward(self, evidence: torch.Tensor) -> torch.Tensor:
        return self.net(evidence)


def soft_argmax(heatmaps: torch.Tensor, stride: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel keypoints (B,J,2) in input pixels and a confidence in [0,1] (B,J) from heatmaps.

    The expectation under ``softmax(beta * heatmap)``; cell i's centre is input coordinate (i + 0.5) * stride
    - 0.5, the convention of the heatmap targets. Confidence is the heatmap peak (targets peak at 1).
    """
    b, j, h, w = heatmaps.shape
    prob = torch.softmax(beta * heatmaps.flatten(2), dim=-1).view(b, j, h, w)
    xs = (torch.arange(w, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) * stride - 0.5
    ys = (torch.arange(h, device=heatmaps.device, dtype=heatmaps.dtype) + 0.5) * stride - 0.5
    u = (prob.sum(2) * xs).sum(-1)
    v = (prob.sum(3) * ys).sum(-1)
    conf = heatmaps.flatten(2).amax(-1).clamp(0.0, 1.0)
    return torch.stack([u, v], dim=-1), conf


def solve_translation(joints: torch.Tensor, uv: torch.Tensor, K: torch.Tensor, weights: torch.Tensor,
                      depth_prior: torch.Tensor, prior_weight: float = 1e-3) -> torch.Tensor:
    """Translation t (B,3) that best projects ``joints + t`` onto ``uv``: linear least squares, differentiable.

    With normalised coordinates (a, b) = K^-1 (u, v, 1), each joint X gives two equations linear in t:
    ``X_x + t_x = a (X_z + t_z)`` and ``X_y + t_y = b (X_z + t_z)``. The 3x3 normal equations are solved
    per image; ``prior_weight`` (relative to the data term's diagonal) pulls t towards ``depth_prior`` along
    the ray through the keypoints' centroid, which only matters while the keypoints are degenerate.
    """
    ray = backproject(uv, torch.ones_like(uv[..., 0]), K)  # (a, b, 1)
    a, b = ray[..., 0], ray[..., 1]
    x, y, z = joints.unbind(-1)
    zero = torch.zeros_like(a)
    one = torch.ones_like(a)
    rows = torch.stack([torch.stack([one, zero, -a], -1), torch.stack([zero, one, -b], -1)], dim=2)  # (B,J,2,3)
    rhs = torch.stack([a * z - x, b * z - y], dim=-1)  # (B,J,2)
    w = weights.unsqueeze(-1).unsqueeze(-1)
    A = (rows.transpose(-1, -2) @ (w * rows)).sum(1)  # (B,3,3)
    r = (rows.transpose(-1, -2) @ (w * rhs.unsqueeze(-1))).sum(1).squeeze(-1)  # (B,3)
    # Prior: t = depth_prior * (a_c, b_c, 1), the weighted centroid ray, as diagonal damping relative to the data
    # term (so its pull is a fixed small fraction whatever the crop's focal length and the number of joints).
    wn = weights / weights.sum(1, keepdim=True).clamp(min=1e-6)
    centre = torch.stack([(wn * a).sum(1), (wn * b).sum(1), torch.ones_like(a[:, 0])], -1) * depth_prior.unsqueeze(-1)
    lam = prior_weight * A.diagonal(dim1=1, dim2=2) + 1e-9
    A = A + lam.unsqueeze(-1) * torch.eye(3, dtype=A.dtype, device=A.device)  # = diag_embed(lam), which ONNX lacks
    r = r + lam * centre
    t = solve3(A, r)
    # Keypoints that contradict the skeleton (e.g. all on one pixel) can put the hand through the camera:
    # keep every joint at least a third of the prior depth in front of it.
    floor = depth_prior / 3.0 - z.min(dim=1).values
    return torch.cat([t[:, :2], torch.maximum(t[:, 2], floor).unsqueeze(1)], dim=1)


class IterativeRegressor(nn.Module):
    """HMR-style refinement: params_{t+1} = params_t + MLP([features, params_t])."""

    def __init__(self, feat_dim: int, param_dim: int, hidden: int = 512, num_iterations: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        self.num_iterations = num_iterations
        self.mlp = nn.Sequential(
            nn.Linear(feat_dim + param_dim, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )
        self.out = nn.Linear(hidden, param_dim)
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
        hand_span: metres; sets the depth prior (the depth at which such a hand spans the crop width).
        camera: ``"solve"`` (translation fitted to the heatmap keypoints in closed form) or ``"regress"``.
        softargmax_beta: sharpness of the soft-argmax that reads keypoints off the heatmaps.
        skeleton: definition of the returned 21 joints (``hand.model.SKELETONS``): ``"mesh"`` (the method's,
            regressed from the final mesh) or ``"kinematic"`` (MANO's skinning joints, the definition of FreiHAND,
            HO-3D and ObMan labels). Train with the definition of the training labels; it is recorded in checkpoints.
    """

    # Joints and heatmaps are always in OpenPose order (what losses, metrics and every output assume); converting
    # to another order happens at the edges. Checkpoints of older versions recorded this argument.
    RETIRED_ARGS = {"joint_order": "openpose"}

    def __init__(
        self,
        backbone_depth: int = 18,
        pretrained_backbone: str | None = None,
        evidence_width: int = 64,
        regressor_hidden: int = 512,
        num_iterations: int = 3,
        mano_path: str | None = None,
        tip_preset: str = "smplx",
        hand_span: float = 0.22,
        camera: str = "solve",
        softargmax_beta: float = 20.0,
        skeleton: str = "mesh",
    ) -> None:
        super().__init__()

        if skeleton not in SKELETONS:
            raise ConfigError(f"MeshEstimator: skeleton must be one of {tuple(SKELETONS)}, got {skeleton!r}")
        self.skeleton = skeleton
        if camera not in CAMERA_MODES:
            raise ConfigError(f"MeshEstimator: camera must be one of {CAMERA_MODES}, got {camera!r}")
        self.camera = camera
        self.softargmax_beta = softargmax_beta
        self.num_cam = NUM_CAM if camera == "regress" else 0
        self.backbone = ResNetBackbone(backbone_depth, pretrained_backbone)
        self.evidence_head = EvidenceHead(self.backbone.channels, evidence_width)
        self.evidence_encoder = EvidenceEncoder(evidence_width, 128)
        feat_dim = self.backbone.channels[3] + 128 + NUM_JOINTS * 3  # pooled image, evidence, keypoints + confidence
        self.regressor = IterativeRegressor(feat_dim, POSE_6D + NUM_BETAS + self.num_cam, regressor_hidden, num_iterations)
        self.hand_model = HandModel(model_path=mano_path, side="right", tip_preset=tip_preset)
        self.hand_span = hand_span
        self.register_buffer("init_params", self._initial_params(), persistent=False)
        self.register_buffer("image_mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _initial_params(self) -> torch.Tensor:
        """Mean parameters: fingers up with the palm to the camera, the model's relaxed mean pose, mean shape."""
        global_rot = torch.as_tensor(base_orient(self.hand_model.side), dtype=torch.float32)[None]
        relaxed = axis_angle_to_matrix(self.hand_model.hands_mean.detach().float().view(15, 3))
        pose6d = matrix_to_rotation_6d(torch.cat([global_rot, relaxed], dim=0)).reshape(1, -1)
        return torch.cat([pose6d, torch.zeros(1, NUM_BETAS + self.num_cam)], dim=1)

    def decode_params(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        rot = rotation_6d_to_matrix(params[:, :POSE_6D].reshape(-1, 16, 6))
        decoded = {"global_orient": rot[:, 0], "hand_pose": rot[:, 1:], "betas": params[:, POSE_6D : POSE_6D + NUM_BETAS],
                   "pose6d": params[:, :POSE_6D].reshape(-1, 16, 6)}  # before Gram-Schmidt (its conditioning is a loss term)
        if self.num_cam:
            decoded["cam"] = params[:, POSE_6D + NUM_BETAS :]
        return decoded

    def depth_prior(self, K: torch.Tensor, width: int) -> torch.Tensor:
        """(B,) depth at which a hand of ``hand_span`` metres spans a crop of ``width`` pixels."""
        return K[:, 0, 0] * self.hand_span / width

    def camera_translation(self, cam: torch.Tensor, root: torch.Tensor, K: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``camera="regress"``: MANO translation that puts the posed root joint ``root`` where ``cam`` says."""
        h, w = size
        u = (w - 1) / 2.0 + cam[:, 0] * w / 2.0
        v = (h - 1) / 2.0 + cam[:, 1] * h / 2.0
        depth = self.depth_prior(K, w) * torch.exp(cam[:, 2].clamp(-4.0, 4.0))
        ray = solve3(K, torch.stack([u, v, torch.ones_like(u)], dim=1))
        return ray * depth.unsqueeze(1) / ray[:, 2:3] - root

    def forward(self, image: torch.Tensor, K: torch.Tensor) -> EstimatorOutput:
        size = (image.shape[-2], image.shape[-1])
        feats = self.backbone((image - self.image_mean) / self.image_std)
        evidence = self.evidence_head(feats)
        heatmaps, mask_logits = evidence[:, :NUM_JOINTS], evidence[:, NUM_JOINTS:]
        keypoints, confidence = soft_argmax(heatmaps, size[1] / heatmaps.shape[-1], self.softargmax_beta)
        half = torch.tensor([size[1] / 2.0, size[0] / 2.0], device=image.device, dtype=image.dtype)
        layout = torch.cat([((keypoints - half) / half).flatten(1), confidence], dim=1)
        pooled = torch.cat([F.adaptive_avg_pool2d(feats[3], 1).flatten(1), self.evidence_encoder(evidence), layout], dim=1)
        history = self.regressor(pooled, self.init_params)
        p = self.decode_params(history[-1])
        hand = self.hand_model(p["global_orient"], p["hand_pose"], p["betas"])
        if self.camera == "solve":
            skeleton = self.hand_model.skeleton(hand, self.skeleton)
            transl = solve_translation(skeleton, keypoints, K, confidence.detach().clamp(min=0.05), self.depth_prior(K, size[1]))
            cam = transl
        else:
            cam = p["cam"]
            transl = self.camera_translation(cam, hand.joints16[:, 0], K, size)
        vertices = hand.vertices + transl.unsqueeze(1)
        joints3d = self.hand_model.joints_from_vertices(vertices) if self.skeleton == "mesh" else hand.joints + transl.unsqueeze(1)
        joints2d = _project_safe(joints3d, K)
        return EstimatorOutput(
            vertices=vertices, joints3d=joints3d, joints2d=joints2d, global_orient=p["global_orient"],
            hand_pose=p["hand_pose"], betas=p["betas"], transl=transl, cam=cam, heatmaps=heatmaps,
            mask_logits=mask_logits, keypoints2d=keypoints, keypoint_confidence=confidence,
            iterations=[self.decode_params(h) for h in history],
        )


def skeleton_of(estimator: MeshEstimator, out: EstimatorOutput, definition: str) -> torch.Tensor:
    """(B, 21, 3) camera-frame skeleton of an estimate in ``definition``: its own joints, or those of its mesh /
    its MANO parameters re-posed in the other definition (to score it against labels of that definition)."""
    if definition == estimator.skeleton:
        return out.joints3d
    if definition == "mesh":
        return estimator.hand_model.joints_from_vertices(out.vertices)
    hand = estimator.hand_model(out.global_orient, out.hand_pose, out.betas)
    return estimator.hand_model.skeleton(hand, definition) + out.transl.unsqueeze(1)


def _project_safe(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pinhole projection that tolerates points at or behind the camera early in training."""
    uvw = points @ K.transpose(1, 2)
    return uvw[..., :2] / uvw[..., 2:3].clamp(min=1e-6)
