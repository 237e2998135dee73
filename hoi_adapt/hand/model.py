"""The hand model layer: MANO (or the built-in stand-in) through smplx's linear blend skinning.

``HandModel`` loads a model file with :func:`~hoi_adapt.hand.mano_file.load_mano_arrays` (no chumpy), keeps
everything as buffers, and calls :func:`smplx.lbs.lbs` with rotation matrices. What smplx's MANO classes
leave implicit is explicit here:

* ``flat_hand_mean`` is a required choice: with ``True`` the given pose is the absolute articulation
  (hoi_adapt's convention, HO-3D's); with ``False`` ``hands_mean`` is added to axis-angle / PCA input
  (smplx's default, FreiHAND's annotations). Rotation-matrix input is always absolute.
* PCA input ``c`` (``pose_space="pca"``) becomes axis-angle ``c @ hands_components[:n]`` before the mean.
* The 21-joint skeleton = 16 regressed joints + 5 fingertip vertices from a named preset, in a named order.
* Faces are wound outward (the official left file reuses the right file's faces, i.e. inward winding).
* The official LEFT file's shapedirs x-sign bug (vchoutas/smplx#48) is fixed when the right file lies
  next to it (see :func:`left_shapedirs_fix`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from hoi_adapt.hand import joint_maps
from hoi_adapt.hand.mano_file import MANO_HINT, load_mano_arrays, side_from_geometry, side_from_name
from hoi_adapt.hand.standin import ensure_standin_files
from hoi_adapt.utils.errors import ConfigError, ModelFileError
from hoi_adapt.utils.mesh import signed_volume

POSE_SPACES = ("axis_angle", "pca")
SKELETONS: dict[str, str] = {
    "mesh": "J_regressor applied to the posed mesh, plus the fingertip vertices (the method's: the skeleton is "
            "regressed from the final mesh, so the two cannot disagree)",
    "kinematic": "MANO's joint positions from the skinning transforms (smplx's output joints), plus the fingertip "
                 "vertices: the definition of FreiHAND's, HO-3D's and ObMan's 3D labels",
}
"""The two 21-joint skeletons of a posed MANO hand. They differ by linear-blend-skinning only (2-5 mm on the
stand-in), so a skeleton is always stored with the name of its definition."""


@dataclass
class HandOutput:
    """Posed hand. ``joints`` = 16 regressed joints + 5 tip vertices in the model's ``joint_order``."""

    vertices: Tensor  # (B, 778, 3) metres
    joints16: Tensor  # (B, 16, 3) MANO joint order
    joints: Tensor    # (B, 21, 3)


def resolve_model_file(model_path: str | Path | None, side: str) -> Path:
    """The model file to load: the stand-in for None, ``MANO_<SIDE>.pkl|npz`` in a folder, or the file itself."""
    if model_path is None:
        return ensure_standin_files()[side].with_suffix(".npz")
    path = Path(model_path).expanduser()
    if path.is_dir():
        tag = side.upper()
        for rel in (f"MANO_{tag}.pkl", f"MANO_{tag}.npz", f"mano/MANO_{tag}.pkl", f"mano/MANO_{tag}.npz",
                    f"STANDIN_MANO_{tag}.npz", f"STANDIN_MANO_{tag}.pkl"):
            if (path / rel).is_file():
                return path / rel
        raise ModelFileError(path, f"no MANO_{tag}.pkl or MANO_{tag}.npz in this folder", MANO_HINT)
    return path


def _right_sibling(path: Path) -> Path | None:
    name = path.name
    for old, new in (("LEFT", "RIGHT"), ("Left", "Right"), ("left", "right")):
        if old in name:
            for cand in (path.with_name(name.replace(old, new)),
                         path.with_name(name.replace(old, new)).with_suffix(".npz"),
                         path.with_name(name.replace(old, new)).with_suffix(".pkl")):
                if cand.is_file():
                    return cand
    return None


def left_shapedirs_fix(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, bool]:
    """The widely used fix for MANO_LEFT's shapedirs (vchoutas/smplx#48, datasets.md §2).

    If ``sum |left[:, 0, :] - right[:, 0, :]| < 1`` the left x-components were copied from the right hand
    (a mirrored hand must have them negated), so ``left[:, 0, :]`` is negated. Returns (shapedirs, applied).
    """
    if np.abs(left[:, 0, :] - right[:, 0, :]).sum() < 1.0:
        fixed = left.copy()
        fixed[:, 0, :] *= -1.0
        return fixed, True
    return left, False


def _rodrigues(rotvec: Tensor) -> Tensor:
    """(N, 3) axis-angle -> (N, 3, 3); exact identity for zero vectors (same formula as smplx)."""
    from smplx.lbs import batch_rodrigues

    return batch_rodrigues(rotvec)


class HandModel(nn.Module):
    """MANO-compatible hand model (official MANO files or the built-in stand-in), smplx underneath.

    Args:
        model_path: None for the stand-in (generated on first use), a folder with ``MANO_RIGHT.pkl`` /
            ``MANO_LEFT.pkl`` (or ``.npz``, also under ``mano/``), or a model file.
        side: 'right' or 'left'; must agree with the file (its name and its geometry).
        pose_space: 'axis_angle' (hand_pose (B, 45)) or 'pca' (hand_pose (B, num_pca_comps)).
        num_pca_comps: number of PCA components used when ``pose_space='pca'`` (1..45).
        flat_hand_mean: True: poses are absolute; False: ``hands_mean`` is added to axis-angle/PCA poses.
        tip_preset: fingertip vertex preset name (see ``joint_maps.TIP_VERTEX_PRESETS``) or 5 indices.
        joint_order: order of ``HandOutput.joints`` (see ``joint_maps.TO_OPENPOSE``).
        fix_left_shapedirs: apply :func:`left_shapedirs_fix` to a left file when the right one is beside it.
        dtype: floating dtype of the buffers (``.double()`` after construction only re-rounds float32 values).
    """

    faces: Tensor
    hands_mean: Tensor
    hands_components: Tensor
    rest_joints16: Tensor
    v_template: Tensor
    tip_ids: Tensor

    def __init__(self, model_path: str | Path | None = None, side: str = "right", pose_space: str = "axis_angle",
                 num_pca_comps: int = 45, flat_hand_mean: bool = True, tip_preset: str = "smplx",
                 joint_order: str = "openpose", fix_left_shapedirs: bool = True,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if side not in ("right", "left"):
            raise ConfigError(f"side must be 'right' or 'left', got {side!r}")
        if pose_space not in POSE_SPACES:
            raise ConfigError(f"pose_space must be one of {POSE_SPACES}, got {pose_space!r}")
        if not 1 <= int(num_pca_comps) <= 45:
            raise ConfigError(f"num_pca_comps must be in 1..45, got {num_pca_comps}")
        if not isinstance(flat_hand_mean, bool):
            raise ConfigError(f"flat_hand_mean must be True or False, got {flat_hand_mean!r}")
        try:
            tips = joint_maps.tip_vertices(tip_preset)
            perm = joint_maps.permutation("mano", joint_order)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

        path = resolve_model_file(model_path, side)
        arrays = load_mano_arrays(path)
        named = side_from_name(path)
        if named is not None and named != side:
            raise ConfigError(f"{path} is a {named} hand model but side={side!r} was requested")
        geometric = side_from_geometry(arrays)
        if geometric != side:
            raise ConfigError(f"{path} holds a {geometric} hand (by its geometry) but side={side!r} was requested")

        self.side = side
        self.source_path = path
        self.is_standin = "standin_notice" in arrays
        self.pose_space = pose_space
        self.num_pca_comps = int(num_pca_comps)
        self.flat_hand_mean = flat_hand_mean
        self.tip_preset = tip_preset
        self.joint_order = joint_maps.canonical_order(joint_order)
        self.shapedirs_fix = "n/a (right hand)"

        shapedirs = arrays["shapedirs"]
        if side == "left":
            self.shapedirs_fix = "disabled"
            if fix_left_shapedirs:
                sibling = _right_sibling(path)
                if sibling is None:
                    self.shapedirs_fix = "not checked (no right-hand file beside the left one)"
                    if not self.is_standin:
                        warnings.warn(f"{path}: cannot check the MANO left-hand shapedirs bug without the right-hand "
                                      "file in the same folder; shape parameters may mirror wrongly", stacklevel=2)
                else:
                    shapedirs, applied = left_shapedirs_fix(shapedirs, load_mano_arrays(sibling)["shapedirs"])
                    self.shapedirs_fix = "applied" if applied else "not needed"


        faces = arrays["f"]
        if signed_volume(arrays["v_template"], faces) < 0:  # inward winding (e.g. the official left file)
            faces = faces[:, [0, 2, 1]]
        parents = torch.as_tensor(arrays["kintree_table"][0].astype(np.int64))
        parents[0] = -1
        self.register_buffer("v_template", torch.as_tensor(arrays["v_template"], dtype=dtype))
        self.register_buffer("shapedirs", torch.as_tensor(shapedirs, dtype=dtype))
        self.register_buffer("posedirs", torch.as_tensor(arrays["posedirs"].reshape(-1, 135).T.copy(), dtype=dtype))
        self.register_buffer("J_regressor", torch.as_tensor(arrays["J_regressor"], dtype=dtype))
        self.register_buffer("lbs_weights", torch.as_tensor(arrays["weights"], dtype=dtype))
        self.register_buffer("parents", parents, persistent=False)
        self.register_buffer("faces", torch.as_tensor(np.ascontiguousarray(faces), dtype=torch.long))
        self.register_buffer("hands_mean", torch.as_tensor(arrays["hands_mean"], dtype=dtype))
        self.register_buffer("hands_components", torch.as_tensor(arrays["hands_components"], dtype=dtype))
        self.register_buffer("tip_ids", torch.as_tensor(tips, dtype=torch.long), persistent=False)
        self.register_buffer("joint_perm", torch.as_tensor(perm, dtype=torch.long), persistent=False)
        self.register_buffer("rest_joints16", self.J_regressor @ self.v_template)

    # ----------------------------------------------------------------------------------------------
    def describe(self) -> dict[str, str]:
        """Which hand model this is, as recorded beside predictions and exports."""
        return {"type": "stand-in" if self.is_standin else "MANO", "file": str(self.source_path), "tip_preset": str(self.tip_preset)}

    def extra_repr(self) -> str:
        kind = "stand-in" if self.is_standin else "MANO"
        return (f"{kind} {self.side} from {self.source_path}, pose_space={self.pose_space}, "
                f"num_pca_comps={self.num_pca_comps}, flat_hand_mean={self.flat_hand_mean}, "
                f"tips={self.tip_preset}, joint_order={self.joint_order}")

    def pose_to_axis_angle(self, hand_pose: Tensor) -> Tensor:
        """(B, 45) absolute axis-angle actually applied for an axis-angle or PCA ``hand_pose``."""
        hand_pose = hand_pose.to(self.v_template.dtype)
        if self.pose_space == "pca":
            if hand_pose.dim() != 2 or hand_pose.shape[1] != self.num_pca_comps:
                raise ValueError(f"PCA hand_pose must be (B, {self.num_pca_comps}), got {tuple(hand_pose.shape)}")
            aa = hand_pose @ self.hands_components[: self.num_pca_comps]
        else:
            if hand_pose.dim() != 2 or hand_pose.shape[1] != 45:
                raise ValueError(f"axis-angle hand_pose must be (B, 45), got {tuple(hand_pose.shape)}")
            aa = hand_pose
        return aa if self.flat_hand_mean else aa + self.hands_mean

    def _rotmats(self, global_orient: Tensor, hand_pose: Tensor) -> Tensor:
        dtype = self.v_template.dtype
        global_orient = global_orient.to(dtype)
        if global_orient.dim() == 2 and global_orient.shape[1] == 3:
            g = _rodrigues(global_orient).unsqueeze(1)
        elif global_orient.dim() == 3 and global_orient.shape[1:] == (3, 3):
            g = global_orient.unsqueeze(1)
        else:
            raise ValueError(f"global_orient must be (B, 3) axis-angle or (B, 3, 3), got {tuple(global_orient.shape)}")
        if hand_pose.dim() == 4 and hand_pose.shape[1:] == (15, 3, 3):
            h = hand_pose.to(dtype)
        else:
            aa = self.pose_to_axis_angle(hand_pose)
            h = _rodrigues(aa.reshape(-1, 3)).view(aa.shape[0], 15, 3, 3)
        if g.shape[0] != h.shape[0]:
            raise ValueError(f"batch sizes differ: global_orient {g.shape[0]}, hand_pose {h.shape[0]}")
        return torch.cat([g, h], dim=1)

    def forward(self, global_orient: Tensor, hand_pose: Tensor, betas: Tensor | None = None,
                transl: Tensor | None = None) -> HandOutput:
        """Pose the hand.

        Args:
            global_orient: (B, 3) axis-angle or (B, 3, 3) rotation of the wrist (about the wrist joint).
            hand_pose: (B, 45) axis-angle, (B, num_pca_comps) PCA coefficients (``pose_space='pca'``) or
                (B, 15, 3, 3) absolute rotation matrices.
            betas: (B, 10) shape, zeros by default.
            transl: (B, 3) translation added to vertices and joints, zeros by default.
        """
        from smplx.lbs import lbs

        rot = self._rotmats(global_orient, hand_pose)
        B, dtype = rot.shape[0], self.v_template.dtype
        if betas is None:
            betas = torch.zeros(B, self.shapedirs.shape[-1], dtype=dtype, device=rot.device)
        else:
            if betas.dim() != 2 or betas.shape[1] != self.shapedirs.shape[-1]:
                raise ValueError(f"betas must be (B, {self.shapedirs.shape[-1]}), got {tuple(betas.shape)}")
            betas = betas.to(dtype).expand(B, -1)
        verts, joints16 = lbs(betas, rot, self.v_template, self.shapedirs, self.posedirs, self.J_regressor,
                              self.parents, self.lbs_weights, pose2rot=False)
        if transl is not None:
            if transl.shape[-1] != 3:
                raise ValueError(f"transl must be (B, 3), got {tuple(transl.shape)}")
            t = transl.to(dtype).view(-1, 1, 3)
            verts = verts + t
            joints16 = joints16 + t
        joints = torch.cat([joints16, verts.index_select(1, self.tip_ids)], dim=1).index_select(1, self.joint_perm)
        return HandOutput(vertices=verts, joints16=joints16, joints=joints)

    def full_pose_axis_angle(self, global_orient: Tensor, hand_pose: Tensor) -> Tensor:
        """(B, 48) absolute axis-angle pose actually applied (global + 15 joints, mean included)."""
        dtype = self.v_template.dtype
        if global_orient.dim() == 3:
            from pytorch3d.transforms import matrix_to_axis_angle

            g = matrix_to_axis_angle(global_orient.to(dtype))
        else:
            g = global_orient.to(dtype)
        if hand_pose.dim() == 4:
            from pytorch3d.transforms import matrix_to_axis_angle

            h = matrix_to_axis_angle(hand_pose.to(dtype)).reshape(hand_pose.shape[0], 45)
        else:
            h = self.pose_to_axis_angle(hand_pose)
        return torch.cat([g, h], dim=1)

    def joints_from_vertices(self, vertices: Tensor) -> Tensor:
        """(B, 21, 3) skeleton regressed from a (posed) mesh: ``J_regressor @ vertices`` plus tip vertices.

        The method's final skeleton always comes from the final mesh; this is that regression, in the
        model's joint order. On a posed mesh it differs from the kinematic ``joints`` by LBS blending only.
        """
        joints16 = torch.einsum("jv,bvc->bjc", self.J_regressor.to(vertices.dtype), vertices)
        full = torch.cat([joints16, vertices.index_select(1, self.tip_ids)], dim=1)
        return full.index_select(1, self.joint_perm)

    def skeleton(self, out: HandOutput, definition: str) -> Tensor:
        """(B, 21, 3) skeleton of a posed hand in ``definition`` (a key of :data:`SKELETONS`)."""
        if definition == "kinematic":
            return out.joints
        if definition == "mesh":
            return self.joints_from_vertices(out.vertices)
        raise ConfigError(f"unknown skeleton definition {definition!r}; known: {', '.join(SKELETONS)}")

    def tips(self, vertices: Tensor) -> Tensor:
        """(B, 5, 3) fingertip vertices (thumb..pinky) of the configured preset."""
        return vertices.index_select(1, self.tip_ids)


__all__ = ["HandModel", "HandOutput", "resolve_model_file", "left_shapedirs_fix", "POSE_SPACES", "SKELETONS"]
