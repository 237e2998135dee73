"""STB, the Stereo Tracking Benchmark (Zhang et al., 2016/2017): 12 sequences x 1500 frames, left hands.

Format (datasets.md §6)::

    <root>/images/<Seq>/SK_color_{i}.png  BB_left_{i}.png  BB_right_{i}.png   i = 0..1499 (no padding)
    <root>/labels/<Seq>_SK.mat  <Seq>_BB.mat        variable handPara, (3, 21, 1500), mm
    Seq in B{1..6}Counting, B{1..6}Random

hand3d's layout without ``images/`` (``<root>/<Seq>/BB_left_{i}.png``) is accepted too, and labels may
sit in ``<root>/labels/`` or ``<root>/``.

Cameras (``camera`` argument):

* ``"SK"`` (default): RealSense colour camera; the SK labels are in the **depth**-camera frame and move to
  the colour frame with ``X_c = R^T (X_d - T)``, ``R = Rodrigues(rot_vec)`` (the STB readme's R, T map
  colour to depth); intrinsics ``fx=607.92271 fy=607.88192 cx=314.78337 cy=236.42484``.
* ``"BB_left"`` / ``"BB_right"`` / ``"BB"`` (both): Bumblebee stereo, ``f=822.79041 cx=318.47345
  cy=250.31296``; BB labels are in the left-camera frame, the right camera sits at ``x - 120.054`` mm.

Joint 0 of STB is the **palm centre**. ``root="wrist"`` (default, so samples follow the schema's wrist
root) replaces it with ``wrist = ringMCP + 2 (palm - ringMCP)`` (Liuhao Ge / hand3d; an
approximation); ``root="palm"`` keeps the palm as joint 0 and sets ``dataset.root_is_palm = True`` (the
schema has no per-sample key for it) — use it for the palm-rooted STB evaluation protocol.

Samples' ``sequence`` is ``"<Seq>/<camera>"``. Splits: ``test`` = B1Counting + B1Random (the standard
3000-frame SK test set), ``train`` = B2-B6 (10 sequences), ``val`` = B2, ``train_noval`` = B3-B6 (obman_train's split), ``all``. All hands are left hands:
``flip_left=True`` by default.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hoi_adapt.data.datasets.base import EvaluationSetup, HandDataset, LayoutEntry, RawRecord, _str_column, as_float_array, rigid
from hoi_adapt.hand.joint_maps import OPENPOSE_NAMES
from hoi_adapt.utils.errors import ConfigError, DataFileError

SEQUENCES: tuple[str, ...] = tuple(f"B{b}{kind}" for b in range(1, 7) for kind in ("Counting", "Random"))
SPLIT_SEQUENCES: dict[str, tuple[str, ...]] = {
    "test": ("B1Counting", "B1Random"),
    "train": tuple(s for s in SEQUENCES if not s.startswith("B1")),
    "val": ("B2Counting", "B2Random"),
    "train_noval": tuple(s for s in SEQUENCES if s[:2] in ("B3", "B4", "B5", "B6")),
    "all": SEQUENCES,
}
FRAMES_PER_SEQUENCE = 1500
K_SK = np.array([[607.92271, 0.0, 314.78337], [0.0, 607.88192, 236.42484], [0.0, 0.0, 1.0]])
K_BB = np.array([[822.79041, 0.0, 318.47345], [0.0, 822.79041, 250.31296], [0.0, 0.0, 1.0]])
SK_ROT_VEC = np.array([0.00531, -0.01196, 0.00301])
SK_T_MM = np.array([-24.0381, -0.4563, -1.2326])
BB_BASELINE_MM = 120.054
CAMERAS: dict[str, tuple[str, ...]] = {
    "SK": ("SK",), "BB_left": ("BB_left",), "BB_right": ("BB_right",), "BB": ("BB_left", "BB_right"),
}
_RING_MCP = OPENPOSE_NAMES.index("ring_mcp")


def sk_depth_to_color() -> np.ndarray:
    """``[R^T | -R^T T]`` (t in metres): SK depth-camera frame -> SK colour-camera frame."""
    R, _ = cv2.Rodrigues(SK_ROT_VEC.reshape(3, 1))
    return rigid(R.T, -R.T @ SK_T_MM / 1000.0)


def camera_transform(camera: str) -> np.ndarray:
    if camera == "SK":
        return sk_depth_to_color()
    if camera == "BB_left":
        return rigid(np.eye(3))
    return rigid(np.eye(3), (-BB_BASELINE_MM / 1000.0, 0.0, 0.0))


def palm_to_wrist(joints: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace OpenPose joint 0 (STB palm) by ``ringMCP + 2 (palm - ringMCP)``."""
    out = np.array(joints, dtype=np.float64, copy=True)
    ok = bool(valid[0] and valid[_RING_MCP])
    out[0] = out[_RING_MCP] + 2.0 * (out[0] - out[_RING_MCP]) if ok else np.nan
    v = np.array(valid, dtype=bool, copy=True)
    v[0] = ok
    return out, v


def load_hand_para(path: Path) -> np.ndarray:
    """``handPara`` of an STB ``.mat`` as ``(N, 21, 3)`` mm."""
    import scipy.io

    if not path.is_file():
        raise DataFileError(path, "label file not found", "expected <root>/labels/<Seq>_SK.mat (or _BB.mat)")
    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataFileError(path, "MATLAB v7.3 (HDF5) file; expected the original v5 .mat") from None
    except Exception as exc:  # noqa: BLE001 - scipy raises many types for corrupt files
        raise DataFileError(path, f"cannot read .mat file ({type(exc).__name__}: {exc})") from None
    if "handPara" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataFileError(path, f"variable 'handPara' missing (found {keys})")
    arr = as_float_array(mat["handPara"], (3, 21, -1), path, "handPara")
    return arr.transpose(2, 1, 0)


class STB(HandDataset):
    """Stereo Tracking Benchmark (see module docstring).

    Args:
        camera: ``"SK"`` (default), ``"BB_left"``, ``"BB_right"`` or ``"BB"``.
        root_joint: ``"wrist"`` (default) or ``"palm"``.
        sequences: explicit sequence list (overrides the split's).
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "stb"
    SPLITS = {k: k for k in SPLIT_SEQUENCES} | {"trainval": "train", "evaluation": "test"}
    INDEX_VERSION = 1

    @classmethod
    def evaluation_setup(cls, root: Path, split: str, split_given: bool, protocol: str, hand_model: Any | None,
                         options: dict[str, Any]) -> EvaluationSetup:
        """The palm-rooted STB protocol scores the annotated palm centre as joint 0; others score the wrist."""
        opts = dict(options)
        opts.setdefault("root_joint", "palm" if protocol == "stb" else "wrist")
        root_is_palm = opts["root_joint"] == "palm"
        if root_is_palm and protocol != "stb":
            raise ConfigError(f"STB with root_joint='palm' can only be scored by the 'stb' protocol, not {protocol!r}")
        return EvaluationSetup(split, opts, root_is_palm=root_is_palm)

    def evaluation_settings(self) -> dict[str, Any]:
        return {"root_joint": self.root_joint, "camera": self.camera, "sequences": list(self.sequences)}

    def __init__(self, root: str | Path, split: str = "test", *, camera: str = "SK", root_joint: str = "wrist",
                 sequences: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        if camera not in CAMERAS:
            raise ConfigError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
        if root_joint not in ("palm", "wrist"):
            raise ConfigError(f"root_joint must be 'palm' or 'wrist', got {root_joint!r}")
        self.camera = camera
        self.root_joint = root_joint
        self.root_is_palm = root_joint == "palm"
        seqs = SPLIT_SEQUENCES[self.split] if sequences is None else tuple(sequences)
        unknown = [s for s in seqs if s not in SEQUENCES]
        if unknown or not seqs:
            raise ConfigError(f"stb: unknown or empty sequences {unknown or list(seqs)}; known: {', '.join(SEQUENCES)}")
        self.sequences = seqs
        self.image_root = self.root / "images" if (self.root / "images").is_dir() else self.root
        self.label_dir = self.root / "labels" if (self.root / "labels").is_dir() else self.root
        for seq in self.sequences:
            if not (self.image_root / seq).is_dir():
                raise DataFileError(self.image_root / seq, "sequence image folder not found",
                                    "expected <root>/images/<Seq>/ (or <root>/<Seq>/)")
        self._init_index()

    def label_path(self, seq: str, cam: str) -> Path:
        return self.label_dir / f"{seq}_{'SK' if cam == 'SK' else 'BB'}.mat"

    def _index_options(self) -> dict[str, Any]:
        return {"camera": self.camera, "sequences": self.sequences}

    def _watched_paths(self) -> list[Path]:
        return sorted({self.label_path(s, c) for s in self.sequences for c in CAMERAS[self.camera]})

    def _build_index(self) -> dict[str, np.ndarray]:
        images: list[str] = []
        seqs: list[str] = []
        cams: list[str] = []
        frames: list[int] = []
        joints: list[np.ndarray] = []
        for seq in self.sequences:
            for cam in CAMERAS[self.camera]:
                para = load_hand_para(self.label_path(seq, cam))
                prefix = "SK_color" if cam == "SK" else cam
                rel = (self.image_root / seq).relative_to(self.root)
                images += [str(rel / f"{prefix}_{i}.png") for i in range(len(para))]
                seqs += [seq] * len(para)
                cams += [cam] * len(para)
                frames += list(range(len(para)))
                joints.append(para)
        return {"image": _str_column(images), "sequence": _str_column(seqs), "camera": _str_column(cams),
                "frame": np.asarray(frames, dtype=np.int64), "joints": np.concatenate(joints)}

    def _record(self, i: int) -> RawRecord:
        ix = self._index
        cam = str(ix["camera"][i])
        return RawRecord(image=self.root / str(ix["image"][i]), K=K_SK if cam == "SK" else K_BB,
                         joints3d=ix["joints"][i], order="stb", unit_scale=1e-3, to_camera=camera_transform(cam),
                         is_left=True, is_hand_object=0.0, sequence=f"{ix['sequence'][i]}/{cam}", frame=int(ix["frame"][i]))

    def size_checks(self) -> list[tuple[str, int, int]]:
        seq = self._index["sequence"]
        return [(f"{s} labelled frames ({c})", int(((seq == s) & (self._index["camera"] == c)).sum()), FRAMES_PER_SEQUENCE)
                for s in self.sequences for c in CAMERAS[self.camera]]

    def adjust_joints3d(self, joints3d: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (joints3d, valid) if self.root_is_palm else palm_to_wrist(joints3d, valid)

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        seqs = SPLIT_SEQUENCES.get(cls.SPLITS.get(str(split), "all"), SEQUENCES) if split else SEQUENCES
        out = []
        for seq in seqs:
            images, labels = f"images/{seq}|{seq}", f"labels/{seq}_{{}}.mat|{seq}_{{}}.mat"
            out += [LayoutEntry(images, count_glob="SK_color_*.png", expected_count=FRAMES_PER_SEQUENCE,
                                note="images/<Seq>/ or <Seq>/ (hand3d layout)"),
                    LayoutEntry(images, count_glob="BB_left_*.png", expected_count=FRAMES_PER_SEQUENCE, required=False),
                    LayoutEntry(images, count_glob="BB_right_*.png", expected_count=FRAMES_PER_SEQUENCE, required=False),
                    LayoutEntry(labels.format("SK", "SK"), kind="file", note="labels/ or the root"),
                    LayoutEntry(labels.format("BB", "BB"), kind="file", required=False)]
        return out
