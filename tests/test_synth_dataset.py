"""SyntheticHandDataset: the four streams of the method as schema samples."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.formats import world as fmt
from hoi_adapt.data.schema import validate_sample
from hoi_adapt.utils.errors import ConfigError, DataFileError


def stored(root: Path, split: str, kind: str, index: int) -> np.ndarray:
    return cv2.imread(str(fmt.image_path(root, split, kind, index)))[..., ::-1].astype(np.float32) / 255.0


def chw(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def first_right(root: Path, split: str) -> int:
    return int(np.flatnonzero(fmt.load_annotations(root, split)["side"] == "right")[0])


def test_hand_only_stream(tiny_world: Path) -> None:
    ds = SyntheticHandDataset(tiny_world, "source_hand", image="hand")
    assert len(ds) == 24
    s = ds[3]
    validate_sample(s)
    np.testing.assert_array_equal(chw(s["image"]), stored(tiny_world, "source_hand", "hand", 3))
    masks = stored(tiny_world, "source_hand", "mask", 3)
    np.testing.assert_array_equal(s["hand_mask"].numpy(), masks[..., 1])
    np.testing.assert_array_equal(s["hand_mask_full"].numpy(), masks[..., 1])
    assert float(s["has_mask"]) == float(s["has_mask_full"]) == 1.0
    assert float(s["has_pair"]) == float(s["is_hand_object"]) == float(s["has_object_mask"]) == 0.0
    assert float(s["occlusion"]) == 0.0
    for flag in ("has_3d", "has_2d", "has_mano"):
        assert float(s[flag]) == 1.0
    ann = fmt.load_annotations(tiny_world, "source_hand")
    np.testing.assert_allclose(s["joints3d"].numpy(), ann["joints3d"][3])
    assert s["dataset"] == "synthetic" and s["sequence"] == "source_hand" and s["frame"] == 3


def test_pairs_stream(tiny_world: Path) -> None:
    i = first_right(tiny_world, "source_pairs")
    ds = SyntheticHandDataset(tiny_world, "source_pairs", image="hoi", pair=True)
    s = ds[i]
    validate_sample(s)
    np.testing.assert_array_equal(chw(s["image"]), stored(tiny_world, "source_pairs", "hoi", i))
    np.testing.assert_array_equal(chw(s["image_hand_only"]), stored(tiny_world, "source_pairs", "hand", i))
    masks = stored(tiny_world, "source_pairs", "mask", i)
    np.testing.assert_array_equal(s["hand_mask"].numpy(), masks[..., 0])  # visible hand of the hoi image
    np.testing.assert_array_equal(s["object_mask"].numpy(), masks[..., 2])
    assert float(s["has_pair"]) == float(s["is_hand_object"]) == float(s["has_object_mask"]) == 1.0
    # real HOI data has no amodal mask: hidden unless asked for
    assert float(s["has_mask_full"]) == 0.0 and float(s["hand_mask_full"].abs().sum()) == 0.0
    ann = fmt.load_annotations(tiny_world, "source_pairs")
    assert float(s["occlusion"]) == pytest.approx(float(ann["occlusion"][i]))

    amodal = SyntheticHandDataset(tiny_world, "source_pairs", image="hoi", amodal_masks=True)[i]
    assert float(amodal["has_mask_full"]) == 1.0
    np.testing.assert_array_equal(amodal["hand_mask_full"].numpy(), masks[..., 1])
    assert float(amodal["has_pair"]) == 0.0 and float(amodal["image_hand_only"].abs().sum()) == 0.0


def test_target_stream_hides_labels(tiny_world: Path) -> None:
    ds = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", labels=False)
    labelled = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", labels=True)
    for i in (0, 1):
        s, full = ds[i], labelled[i]
        validate_sample(s)
        for key in ("joints3d", "joints2d", "joints3d_valid", "joints2d_valid", "mano_pose", "mano_betas", "mano_transl"):
            assert float(s[key].abs().sum()) == 0.0, key
            assert float(full[key].abs().sum()) > 0.0, key
        for flag in ("has_3d", "has_2d", "has_mano"):
            assert float(s[flag]) == 0.0 and float(full[flag]) == 1.0
        # the weak label (visible-hand mask) stays, and the image is the same
        assert float(s["has_mask"]) == 1.0 and float(s["hand_mask"].sum()) > 0
        assert torch.equal(s["image"], full["image"])


def test_samples_collate_into_batches(tiny_world: Path) -> None:
    ds = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", pair=True)
    batch = default_collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 64, 64) and batch["image_hand_only"].shape == (4, 3, 64, 64)
    assert batch["K"].shape == (4, 3, 3) and batch["joints2d"].shape == (4, 21, 2)
    assert batch["was_flipped"].tolist() == [float(s == "left") for s in fmt.load_annotations(tiny_world, "target_hoi")["side"][:4]]


@pytest.mark.parametrize("out_size", [48, 96])
def test_out_size_keeps_projection_and_masks_consistent(tiny_world: Path, out_size: int) -> None:
    base = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", amodal_masks=True)
    resized = SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", amodal_masks=True, out_size=out_size)
    for i in range(4):
        a, b = base[i], resized[i]
        validate_sample(b)
        assert b["image"].shape == (3, out_size, out_size) and b["hand_mask_full"].shape == (out_size, out_size)
        uvw = b["joints3d"].double() @ b["K"].double().T
        assert torch.allclose(uvw[:, :2] / uvw[:, 2:], b["joints2d"].double(), atol=1e-3)
        s = out_size / 64
        assert torch.allclose(b["joints2d"], (a["joints2d"] + 0.5) * s - 0.5, atol=1e-4)  # pixel-centre rule
        torch.testing.assert_close(b["joints3d"], a["joints3d"])
        # the mask follows the image: the hand's area scales with s^2 and joints stay on it
        area_a, area_b = float(a["hand_mask_full"].sum()), float(b["hand_mask_full"].sum())
        assert area_b == pytest.approx(area_a * s * s, rel=0.1)
        r = b["joints2d"].round().long().clamp(0, out_size - 1)
        assert float(b["hand_mask_full"][r[:, 1], r[:, 0]].mean()) >= 0.7


def test_limit_transform_and_errors(tiny_world: Path) -> None:
    calls = []
    ds = SyntheticHandDataset(tiny_world, "source_hand", limit=5, transform=lambda s: (calls.append(s["index"]), s)[1])
    assert len(ds) == 5
    ds[4]
    assert calls == [4]
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ConfigError, match="image"):
        SyntheticHandDataset(tiny_world, "source_hand", image="rgb")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="pair"):
        SyntheticHandDataset(tiny_world, "source_pairs", image="hand", pair=True)
    with pytest.raises(DataFileError, match="no hand-object images"):
        SyntheticHandDataset(tiny_world, "source_hand", image="hoi")
    with pytest.raises(DataFileError, match="not found"):
        SyntheticHandDataset(tiny_world, "no_such_split")


def test_malformed_annotations_name_the_file(tmp_path: Path) -> None:
    split = tmp_path / "s"
    split.mkdir()
    (split / fmt.ANNOTATIONS_FILE).write_bytes(b"not a zip")
    with pytest.raises(DataFileError, match="annotations.npz"):
        SyntheticHandDataset(tmp_path, "s")
    arrays = {k: np.zeros(2) for k in fmt.ANNOTATION_KEYS}
    np.savez(split / fmt.ANNOTATIONS_FILE, **arrays)
    with pytest.raises(DataFileError, match="'K' has shape"):
        SyntheticHandDataset(tmp_path, "s")
