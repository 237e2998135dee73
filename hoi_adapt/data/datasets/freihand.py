"""FreiHAND v2 (Zimmermann et al., ICCV 2019): 32,560 training hands x 4 backgrounds, 224x224 images.

Format (datasets.md §9)::

    <root>/training_K.json  training_xyz.json  training_mano.json  training_scale.json
    <root>/training/rgb/%08d.jpg     id = idx + N*k, k: 0 gs (green screen), 1 hom, 2 sample, 3 auto
    <root>/training/mask/%08d.jpg    one per unique idx (JPEG; hand where channel 0 > 240)
    <root>/evaluation_K.json  evaluation_scale.json  [evaluation_xyz.json  evaluation_mano.json]
    <root>/evaluation/rgb/%08d.jpg   gs only                         [evaluation/mask/%08d.jpg]

Every JSON is a list indexed by the unique id; ``N`` (32,560 in the release) is **the length of
training_K.json**, so a subset copy or a test fixture works the same way. ``xyz`` is (21,3) metres in the
OpenCV camera frame, OpenPose order; the 2D joints are its projections with K.

MANO: ``training_mano.json`` holds 61 numbers per sample (pose 48, shape 10, uv_root 2, scale 1). Its pose
is *relative to* MANO's ``hands_mean`` (flat_hand_mean=False), while the schema wants the absolute pose,
and the schema's ``mano_transl`` is ``wrist - J0(betas)`` (MANO rotates about its rest root joint J0,
so the posed wrist is ``J0 + transl``). Both need the MANO model, which this loader does not read: pass
``hands_mean`` (45,) and ``mano_root_joint`` (a function betas (10,) -> J0 (3,) metres, e.g. from the
project's MANO wrapper) to get ``has_mano = 1``; otherwise ``has_mano = 0``.

Evaluation split: only the gs version exists; the later-published evaluation_xyz/mano files are used when
present (else no 3D/2D labels and the whole 224x224 image is the crop). ``is_hand_object`` is 0: some
FreiHAND frames show grasped objects, but this is not annotated.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoi_adapt.data.datasets.base import EvaluationSetup, HandDataset, LayoutEntry, RawRecord, as_float_array, load_json
from hoi_adapt.data.image_io import read_mask
from hoi_adapt.utils.errors import ConfigError, DataFileError

VERSIONS: tuple[str, ...] = ("gs", "hom", "sample", "auto")
PREFIX = {"train": "training", "test": "evaluation"}
PUBLISHED_UNIQUE = {"training": 32560, "evaluation": 3960}
MANO_DIM = 61


def _rest_root_joint(hand_model: Any, betas: np.ndarray) -> np.ndarray:
    """MANO's root joint (metres) of the rest pose with shape ``betas``: the pivot of FreiHAND's ``mano_transl``."""
    with torch.no_grad():
        b = torch.as_tensor(np.asarray(betas, np.float64).reshape(1, -1), dtype=torch.float32)
        return hand_model(torch.zeros(1, 3), torch.zeros(1, 45), b).joints16[0, 0].double().numpy()


class FreiHAND(HandDataset):
    """FreiHAND v2 (see module docstring).

    Args:
        versions: image versions to include (train default: all four; test: ``("gs",)`` only).
        hands_mean: MANO ``hands_mean`` (45,), to make the stored relative pose absolute.
        mano_root_joint: betas (10,) -> rest root joint J0 (3,) in metres; needed for ``mano_transl``.
        mask_threshold: mask JPEG threshold on channel 0 (hand where value > threshold).
        **kwargs: see :class:`~hoi_adapt.data.datasets.base.HandDataset`.
    """

    name = "freihand"
    SPLITS = {"train": "train", "training": "train", "test": "test", "evaluation": "test"}
    INDEX_VERSION = 1

    @classmethod
    def evaluation_setup(cls, root: Path, split: str, split_given: bool, protocol: str, hand_model: Any | None,
                         options: dict[str, Any]) -> EvaluationSetup:
        """Falls back to the training split's green-screen images when the evaluation labels are absent, and
        takes MANO's ``hands_mean`` and rest root joint from ``hand_model`` so the MANO labels become absolute."""
        opts = dict(options)
        notes: list[str] = []
        if not split_given and not (Path(root) / "evaluation_xyz.json").is_file():
            split = "training"
            opts.setdefault("versions", ("gs",))
            notes.append("FreiHAND evaluation ground truth (evaluation_xyz.json) not found: evaluated on the "
                         "TRAINING split (green-screen 'gs' images only) instead — not comparable to published "
                         "evaluation-set numbers")
        if hand_model is not None:
            opts.setdefault("hands_mean", hand_model.hands_mean.detach().cpu().numpy())
            opts.setdefault("mano_root_joint", partial(_rest_root_joint, hand_model))
        return EvaluationSetup(split, opts, notes)

    def __init__(self, root: str | Path, split: str = "train", *, versions: Sequence[str] | None = None,
                 hands_mean: np.ndarray | None = None, mano_root_joint: Callable[[np.ndarray], np.ndarray] | None = None,
                 mask_threshold: int = 240, **kwargs: Any) -> None:
        super().__init__(root, split, **kwargs)
        self.prefix = PREFIX[self.split]
        default = VERSIONS if self.split == "train" else ("gs",)
        self.versions = tuple(default if versions is None else versions)
        bad = [v for v in self.versions if v not in VERSIONS]
        if bad or not self.versions or len(set(self.versions)) != len(self.versions):
            raise ConfigError(f"freihand: versions must be distinct names from {VERSIONS}, got {list(self.versions)}")
        if self.split == "test" and self.versions != ("gs",):
            raise ConfigError("freihand: the evaluation split only has the 'gs' version")
        self.hands_mean = None if hands_mean is None else np.asarray(hands_mean, dtype=np.float64).reshape(-1)
        if self.hands_mean is not None and self.hands_mean.shape != (45,):
            raise ConfigError(f"hands_mean must have 45 values, got {self.hands_mean.size}")
        self.mano_root_joint = mano_root_joint
        self.mask_threshold = int(mask_threshold)
        self.rgb_dir = self.root / self.prefix / "rgb"
        if not self.rgb_dir.is_dir():
            raise DataFileError(self.rgb_dir, "expected folder not found", f"expected <root>/{self.prefix}/rgb/%08d.jpg")
        self.mask_dir = self.root / self.prefix / "mask"
        self._init_index()
        self._check_versions_present()

    def _json(self, what: str) -> Path:
        return self.root / f"{self.prefix}_{what}.json"

    def _index_options(self) -> dict[str, Any]:
        return {"versions": self.versions}

    def _watched_paths(self) -> list[Path]:
        return [self._json(w) for w in ("K", "xyz", "mano")]

    def _build_index(self) -> dict[str, np.ndarray]:
        k_path = self._json("K")
        K = as_float_array(load_json(k_path), (-1, 3, 3), k_path, "camera matrices")
        n = len(K)
        cols: dict[str, np.ndarray] = {"K": K}
        xyz_path, mano_path = self._json("xyz"), self._json("mano")
        if xyz_path.is_file() or self.split == "train":
            cols["xyz"] = self._checked(xyz_path, (-1, 21, 3), n, "joints")
        if mano_path.is_file():
            raw = load_json(mano_path)
            try:
                arr = np.asarray(raw, dtype=np.float64)
            except (TypeError, ValueError):
                raise DataFileError(mano_path, "MANO parameters: not a numeric array") from None
            if arr.ndim == 3 and arr.shape[1] == 1:
                arr = arr[:, 0]
            cols["mano"] = self._checked(mano_path, (-1, MANO_DIM), n, "MANO parameters", arr)
        return cols

    def _checked(self, path: Path, shape: tuple[int, ...], n: int, what: str, value: Any = None) -> np.ndarray:
        arr = as_float_array(load_json(path) if value is None else value, shape, path, what)
        if len(arr) != n:
            raise DataFileError(path, f"{len(arr)} entries but {self._json('K').name} has {n}")
        return arr

    def _index_length(self, cols: dict[str, np.ndarray]) -> int:
        return len(cols["K"]) * len(self.versions)

    @property
    def num_unique(self) -> int:
        """Number of unique hands (the JSON list length)."""
        return len(self._index["K"])

    def _image_path(self, uid: int, version: str) -> Path:
        return self.rgb_dir / f"{uid + self.num_unique * VERSIONS.index(version):08d}.jpg"

    def _check_versions_present(self) -> None:
        for v in self.versions:
            for uid in {0, self.num_unique - 1}:
                if not self._image_path(uid, v).is_file():
                    raise DataFileError(self._image_path(uid, v), f"image of version {v!r} not found",
                                        "pass versions=('gs',) or the versions you have")

    def _split_row(self, i: int) -> tuple[int, str]:
        return i % self.num_unique, self.versions[i // self.num_unique]

    def _record(self, i: int) -> RawRecord:
        uid, version = self._split_row(i)
        ix = self._index
        rec = RawRecord(image=self._image_path(uid, version), K=ix["K"][uid], order="openpose", is_hand_object=0.0,
                        sequence=f"{self.prefix}/{version}", frame=uid)
        if "xyz" in ix:
            rec.joints3d = ix["xyz"][uid]
        if "mano" in ix and self.hands_mean is not None and self.mano_root_joint is not None and rec.joints3d is not None:
            theta = ix["mano"][uid]
            betas = theta[48:58]
            rec.mano_pose = theta[:48] + np.concatenate([np.zeros(3), self.hands_mean])
            rec.mano_betas = betas
            j0 = np.asarray(self.mano_root_joint(betas), dtype=np.float64).reshape(3)
            rec.mano_transl = np.asarray(rec.joints3d[0], dtype=np.float64) - j0  # posed wrist = J0 + transl
        mask = self.mask_dir / f"{uid:08d}.jpg"
        if mask.is_file():
            rec.extra["mask_path"] = mask
            rec.extra["files"] = [mask]
        return rec

    def _masks(self, rec: RawRecord, height: int, width: int) -> dict[str, np.ndarray]:
        path = rec.extra.get("mask_path")
        if path is None:
            return {}
        return {"hand_mask": read_mask(path, channel=0) > self.mask_threshold}

    def size_checks(self) -> list[tuple[str, int, int]]:
        return [(f"unique samples in {self.prefix}_K.json", self.num_unique, PUBLISHED_UNIQUE[self.prefix])]

    @classmethod
    def expected_layout(cls, split: str | None = None) -> list[LayoutEntry]:
        splits = [cls.SPLITS[split]] if split else ["train", "test"]
        out: list[LayoutEntry] = []
        if "train" in splits:
            n = PUBLISHED_UNIQUE["training"]
            out += [LayoutEntry(f"training_{w}.json", kind="file") for w in ("K", "xyz", "mano")]
            out += [LayoutEntry("training_scale.json", kind="file", required=False),
                    LayoutEntry("training_verts.json", kind="file", required=False, note="not used"),
                    LayoutEntry("training/rgb", count_glob="*.jpg", expected_count=4 * n, note="4 versions"),
                    LayoutEntry("training/mask", count_glob="*.jpg", expected_count=n)]
        if "test" in splits:
            out += [LayoutEntry("evaluation_K.json", kind="file"),
                    LayoutEntry("evaluation_scale.json", kind="file", required=False),
                    LayoutEntry("evaluation_xyz.json", kind="file", required=False, note="published evaluation labels"),
                    LayoutEntry("evaluation_mano.json", kind="file", required=False),
                    LayoutEntry("evaluation/rgb", count_glob="*.jpg", expected_count=PUBLISHED_UNIQUE["evaluation"])]
        return out
