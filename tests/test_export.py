"""``hoi-adapt export`` end to end on the tiny world: round trip through the ``adapted`` loader, agreement with
the Predictor, the FreiHAND variant, checksums, refusals, and the estimator-only (``adapt=False``) export."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from fixtures_checkpoints import write_tiny_adapt_checkpoint
from torch.utils.data import default_collate

from hoi_adapt.data.formats import adapted as fmt
from hoi_adapt.data.image_io import read_image, read_mask
from hoi_adapt.export import export_dataset, verify_export
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError

SIZE = 64
BATCH = 4
LIMIT = 12




@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator

    d = tmp_path_factory.mktemp("export_ckpt")
    torch.manual_seed(1)
    est = MeshEstimator(regressor_hidden=64, evidence_width=16)
    with torch.no_grad():
        est.evidence_head.smooth[-1].bias[-1] = 0.5
    return {"adapt": write_tiny_adapt_checkpoint(d / "adapt.ckpt"), "est": write_network_checkpoint(d / "est.ckpt", "estimator", {"estimator": est})}


@pytest.fixture(scope="module")
def exported(tiny_world, ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "adapted"
    manifest = export_dataset(ckpts["adapt"], "synthetic", tiny_world, out, batch_size=BATCH, limit=LIMIT,
                              write_meshes=True, progress=False, image_size=SIZE)
    return out, manifest


def _source(tiny_world):
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset

    return SyntheticHandDataset(tiny_world, "target_hoi", image="hoi", out_size=SIZE)


def _snapshot(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns, fmt.sha256_file(p))
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------ manifest
def test_manifest_records_counts_config_checkpoint_source_and_checksums(exported, ckpts, tiny_world):
    from hoi_adapt.checkpoints.load import checkpoint_sha256

    out, manifest = exported
    on_disk = json.loads((out / fmt.MANIFEST_FILE).read_text())
    assert {k: v for k, v in manifest.items() if k != "run"} == on_disk
    assert on_disk["format"] == fmt.FORMAT and on_disk["complete"] is True and on_disk["count"] == LIMIT
    assert on_disk["checkpoint"] == {"path": str(ckpts["adapt"]), "sha256": checkpoint_sha256(ckpts["adapt"]), "kind": "adapt"}
    assert on_disk["source"]["dataset"] == "synthetic" and on_disk["source"]["split"] == "target_hoi"
    assert on_disk["source"]["root"] == str(Path(tiny_world).resolve()) and on_disk["source"]["image"] == "hoi"
    assert on_disk["config"]["adapt"] is True and on_disk["config"]["image_size"] == SIZE
    assert on_disk["hand_model"]["type"] == "stand-in"
    keys = [fmt.sample_key(i) for i in range(LIMIT)]
    expected = {fmt.ANNOTATIONS_FILE, fmt.SHEET_FILE} | {f"freihand/training_{w}.json" for w in ("K", "xyz", "mano", "scale")}
    for k in keys:
        expected |= {fmt.image_relpath(k), fmt.mask_relpath(k), fmt.mesh_relpath(k), fmt.freihand_rgb_relpath(k),
                     fmt.freihand_mask_relpath(k)}
    assert set(on_disk["files"]) == expected  # every file is listed, and nothing else exists
    assert {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} == expected | {fmt.MANIFEST_FILE}
    assert all(fmt.sha256_file(out / rel) == digest for rel, digest in on_disk["files"].items())
    assert on_disk["counts"]["samples"] == LIMIT and on_disk["counts"]["meshes"] == LIMIT
    assert not (out / fmt.SHARDS_DIR).exists()  # shards are merged and removed
    assert manifest["run"]["predicted"] == LIMIT and manifest["run"]["skipped"] == 0


def test_verify_detects_tampering_missing_and_extra_files(exported, tmp_path):
    out, _ = exported
    assert verify_export(out)["ok"]
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert verify_export(copy) == {"ok": True, "complete": True, "checked": len(json.loads((out / "manifest.json").read_text())["files"]),
                                   "missing": [], "mismatched": [], "extra": []}
    img = read_image(copy / fmt.image_relpath("00000003"))
    img[5, 7] = 255 - img[5, 7]
    cv2.imwrite(str(copy / fmt.image_relpath("00000003")), img[:, :, ::-1])
    (copy / fmt.mask_relpath("00000001")).unlink()
    (copy / "images" / "stray.png").write_bytes(b"x")
    report = verify_export(copy)
    assert not report["ok"]
    assert report["mismatched"] == [fmt.image_relpath("00000003")]
    assert report["missing"] == [fmt.mask_relpath("00000001")]
    assert report["extra"] == ["images/stray.png"]
    from hoi_adapt.export.cli import main

    assert main(["--verify", str(copy)]) == 1 and main(["--verify", str(out)]) == 0


# ------------------------------------------------------------------------------- round trip / loader
def test_adapted_loader_reads_back_exactly_what_was_written(exported, tiny_world):
    from hoi_adapt.data.datasets.adapted import AdaptedDataset
    from hoi_adapt.data.registry import build_dataset
    from hoi_adapt.data.schema import ALL_KEYS, validate_sample
    from hoi_adapt.data.streams import StreamSpec, build_stream_dataset

    out, _ = exported
    ann = np.load(out / fmt.ANNOTATIONS_FILE)
    assert [str(k) for k in ann["key"]] == [fmt.sample_key(i) for i in range(LIMIT)]
    ds = build_dataset("adapted", out, "all")
    assert isinstance(ds, AdaptedDataset) and ds.PSEUDO_LABELS and len(ds) == LIMIT and ds.out_size == SIZE
    for i in range(LIMIT):
        s = ds[i]
        validate_sample(s)
        key = fmt.sample_key(i)
        png = read_image(out / fmt.image_relpath(key))
        assert np.array_equal(np.round(s["image"].numpy() * 255).astype(np.uint8).transpose(1, 2, 0), png)
        assert np.array_equal(s["hand_mask"].numpy() > 0.5, read_mask(out / fmt.mask_relpath(key)) > 127)
        assert torch.equal(s["hand_mask"], s["hand_mask_full"])
        for col, name in (("K", "K"), ("joints3d", "joints3d"), ("joints2d", "joints2d"), ("mano_betas", "mano_betas"),
                          ("mano_transl", "mano_transl")):
            assert np.array_equal(s[name].numpy(), ann[col][i]), name
        assert np.array_equal(s["mano_pose"].numpy(), np.concatenate([ann["mano_global_orient"][i], ann["mano_hand_pose"][i]]))
        assert float(s["has_3d"]) == float(s["has_2d"]) == float(s["has_mano"]) == float(s["has_mask"]) == 1.0
        assert float(s["joints3d_valid"].sum()) == 21 and float(s["is_hand_object"]) == 0.0 and float(s["occlusion"]) == 0.0
        assert s["dataset"] == "adapted" and s["sequence"] == "synthetic/target_hoi" and s["index"] == i
    # as a training stream, mixed with the synthetic world in one batch
    stream = build_stream_dataset(StreamSpec(dataset="adapted", root=str(out), split="all", augment=False), None, SIZE)
    batch = default_collate([stream[0], _source(tiny_world)[0]])
    assert set(batch) == set(ALL_KEYS) and batch["image"].shape == (2, 3, SIZE, SIZE)
    # confidence filter
    conf = ann["confidence"]
    cut = float(np.median(conf))
    filtered = build_dataset("adapted", out, "train", min_confidence=cut)
    assert len(filtered) == int((conf >= cut).sum()) and 0 < len(filtered) < LIMIT
    assert np.all(filtered.confidence >= cut)


def test_export_equals_the_predictor_on_the_same_inputs(exported, ckpts, tiny_world):
    from hoi_adapt.checkpoints.predictor import load_predictor
    from hoi_adapt.export.module import mask_iou, render_silhouette, skeleton_agreement
    from hoi_adapt.io.mesh_io import read_obj

    out, _ = exported
    ann = np.load(out / fmt.ANNOTATIONS_FILE)
    src = _source(tiny_world)
    predictor = load_predictor(ckpts["adapt"], adapt=True)
    for start in range(0, LIMIT, BATCH):  # the export's batches: same inputs, same batch composition
        idx = list(range(start, start + BATCH))
        batch = default_collate([src[i] for i in idx])
        pred = predictor(batch["image"], batch["K"])
        expect_img = (pred["translated"].clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        sil = render_silhouette(pred["vertices"], predictor.faces, batch["K"], (SIZE, SIZE), tile_size=None)  # untiled
        evidence = torch.nn.functional.interpolate(pred["mask_prob"], size=(SIZE, SIZE), mode="bilinear") [:, 0] > 0.5
        iou = mask_iou(evidence, sil).numpy()
        agree = skeleton_agreement(pred["first_joints2d"], pred["joints2d"], SIZE).numpy()
        for j, i in enumerate(idx):
            key = fmt.sample_key(i)
            assert np.array_equal(read_image(out / fmt.image_relpath(key)), expect_img[j])
            # the mask is the final mesh's silhouette (tiled rasterisation: equal up to float ties on edges)
            assert (((read_mask(out / fmt.mask_relpath(key)) > 127) != sil[j].numpy()).sum()) <= 2
            np.testing.assert_allclose(ann["joints3d"][i], pred["joints3d"][j].numpy(), atol=1e-6)
            np.testing.assert_allclose(ann["joints2d"][i], pred["joints2d"][j].numpy(), atol=1e-4)
            np.testing.assert_allclose(ann["first_joints3d"][i], pred["first_joints3d"][j].numpy(), atol=1e-6)
            np.testing.assert_allclose(ann["mano_hand_pose"][i], pred["hand_pose"][j].numpy(), atol=1e-6)
            np.testing.assert_allclose(ann["mano_global_orient"][i], pred["global_orient"][j].numpy(), atol=1e-6)
            np.testing.assert_allclose(ann["mano_betas"][i], pred["betas"][j].numpy(), atol=1e-6)
            np.testing.assert_allclose(ann["mano_transl"][i], pred["transl"][j].numpy(), atol=1e-6)
            np.testing.assert_array_equal(ann["K"][i], batch["K"][j].numpy())
            np.testing.assert_allclose(ann["mask_iou"][i], iou[j], atol=1e-3)
            np.testing.assert_allclose(ann["skeleton_agreement"][i], agree[j], atol=1e-6)
            np.testing.assert_allclose(ann["confidence"][i], ann["mask_iou"][i] * ann["skeleton_agreement"][i], atol=1e-6)
            v, f = read_obj(out / fmt.mesh_relpath(key))
            np.testing.assert_allclose(v, pred["vertices"][j].numpy(), atol=1e-7)
            np.testing.assert_array_equal(f, predictor.faces.numpy())
            # provenance: which source sample this was, and its own labels
            s = src[i]
            assert int(ann["source_index"][i]) == s["index"] and int(ann["source_frame"][i]) == s["frame"]
            assert float(ann["source_was_flipped"][i]) == float(s["was_flipped"])
            np.testing.assert_array_equal(ann["source_joints3d"][i], s["joints3d"].numpy())
    assert 0.0 < ann["confidence"].min() and ann["confidence"].max() < 1.0  # a real, varying score
    assert ann["source_was_flipped"].any()  # the tiny world's left hands were mirrored, and recorded


def test_freihand_variant_reads_back_through_the_freihand_loader(exported):
    """The FreiHAND lists hold the kinematic skeleton (FreiHAND's definition) of the exported MANO parameters, and
    re-posing ``training_mano`` the FreiHAND way gives ``training_xyz`` back to float precision."""
    from hoi_adapt.data.registry import build_dataset
    from hoi_adapt.export.freihand import ROOT_JOINT
    from hoi_adapt.hand.model import HandModel

    out, manifest = exported
    assert manifest["hand_model"]["skeleton"] == "mesh" and manifest["hand_model"]["freihand_skeleton"].startswith("kinematic")
    ann = np.load(out / fmt.ANNOTATIONS_FILE)
    hand = HandModel(dtype=torch.float64)
    hands_mean = hand.hands_mean.numpy().astype(np.float64)
    xyz = np.asarray(json.loads((out / "freihand/training_xyz.json").read_text()))
    with torch.no_grad():
        kin = hand(*(torch.as_tensor(ann[k], dtype=torch.float64) for k in ("mano_global_orient", "mano_hand_pose", "mano_betas", "mano_transl"))).joints.numpy()
    np.testing.assert_allclose(xyz, kin, atol=2e-6)  # the kinematic skeleton of the exported parameters
    gap = np.linalg.norm(xyz - ann["joints3d"], axis=-1)
    assert 1e-4 < gap.mean() < 1e-2  # ... which is not the estimator's mesh skeleton (they differ by skinning, mm)
    fh = build_dataset("freihand", out / "freihand", "train", versions=("gs",), out_size=SIZE, crop_source="full",
                       use_cache=False, hands_mean=hands_mean, mano_root_joint=lambda b: np.zeros(3))
    assert len(fh) == LIMIT
    for i in (0, LIMIT - 1):
        s = fh[i]
        np.testing.assert_allclose(s["joints3d"].numpy(), xyz[i], atol=1e-6)
        np.testing.assert_array_equal(s["K"].numpy(), ann["K"][i])
        # FreiHAND pose is relative to hands_mean; the loader adds it back: the absolute pose returns
        absolute = np.concatenate([ann["mano_global_orient"][i], ann["mano_hand_pose"][i]])
        np.testing.assert_allclose(s["mano_pose"].numpy(), absolute, atol=1e-6)
        np.testing.assert_allclose(s["mano_betas"].numpy(), ann["mano_betas"][i], atol=1e-7)
        assert np.array_equal(s["hand_mask"].numpy() > 0.5, read_mask(out / fmt.mask_relpath(fmt.sample_key(i))) > 127)
        jpeg = s["image"].numpy().transpose(1, 2, 0) * 255
        assert np.abs(jpeg - read_image(out / fmt.image_relpath(fmt.sample_key(i)))).mean() < 3.0  # JPEG of the PNG
    mano = np.asarray(json.loads((out / "freihand/training_mano.json").read_text()))
    assert mano.shape == (LIMIT, 1, 61)
    uv_root, scale = mano[:, 0, 58:60], mano[:, 0, 60]
    K = ann["K"].astype(np.float64)
    focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
    root = np.concatenate([(uv_root - K[:, :2, 2]) / scale[:, None], (focal / scale)[:, None]], axis=1)  # backproject_ortho
    np.testing.assert_allclose(root, xyz[:, ROOT_JOINT], atol=1e-6)
    # FreiHAND's convention: MANO with the pose relative to hands_mean and no translation, then the root joint
    # moved to the back-projected uv_root at depth focal / scale
    pose = torch.as_tensor(mano[:, 0, :48])
    with torch.no_grad():
        posed = hand(pose[:, :3], pose[:, 3:] + torch.as_tensor(hands_mean), torch.as_tensor(mano[:, 0, 48:58])).joints.numpy()
    reposed = posed - posed[:, ROOT_JOINT:ROOT_JOINT + 1] + root[:, None]
    np.testing.assert_allclose(reposed, xyz, atol=1e-5)
    bone = np.asarray(json.loads((out / "freihand/training_scale.json").read_text()))
    np.testing.assert_allclose(bone, np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=1), rtol=1e-6)


def test_sheet_shows_source_exported_mask_and_skeleton(exported, tiny_world):
    from hoi_adapt.export.sheet import COLUMNS, HEADER, MIN_CELL
    from hoi_adapt.viz.drawing import to_uint8

    out, _ = exported
    sheet = read_image(out / fmt.SHEET_FILE)
    rows = min(8, LIMIT)
    assert sheet.shape == (HEADER + rows * MIN_CELL, len(COLUMNS) * MIN_CELL, 3)
    src = _source(tiny_world)
    for r in (0, rows - 1):
        y = HEADER + r * MIN_CELL
        key = fmt.sample_key(r)
        up = lambda im: cv2.resize(im, (MIN_CELL, MIN_CELL), interpolation=cv2.INTER_NEAREST)  # noqa: E731
        assert np.array_equal(sheet[y:y + MIN_CELL, :MIN_CELL], up(to_uint8(src[r]["image"])))
        assert np.array_equal(sheet[y:y + MIN_CELL, MIN_CELL:2 * MIN_CELL], up(read_image(out / fmt.image_relpath(key))))
        mask = read_mask(out / fmt.mask_relpath(key))
        assert np.array_equal(sheet[y:y + MIN_CELL, 2 * MIN_CELL:3 * MIN_CELL, 0], up(mask))
        overlay = sheet[y:y + MIN_CELL, 3 * MIN_CELL:]
        assert (overlay != up(read_image(out / fmt.image_relpath(key)))).any()  # skeleton drawn over the image


# ------------------------------------------------------------------------------------------- refusals
def test_refuses_to_write_inside_the_source_or_over_other_data(exported, ckpts, tiny_world, tmp_path):
    out, _ = exported
    world_before, export_before = _snapshot(tiny_world), _snapshot(out)
    kw = dict(batch_size=BATCH, limit=LIMIT, write_meshes=True, progress=False, image_size=SIZE)
    for target in (tiny_world, tiny_world / "exports" / "a", tiny_world / "target_hoi"):
        with pytest.raises(ConfigError, match="inside the source dataset"):
            export_dataset(ckpts["adapt"], "synthetic", tiny_world, target, **kw)
    with pytest.raises(ConfigError, match="lies inside --out"):
        export_dataset(ckpts["adapt"], "synthetic", tiny_world, tiny_world.parent, **kw)
    assert _snapshot(tiny_world) == world_before and not (tiny_world / "exports").exists()

    with pytest.raises(ConfigError) as err:  # same folder, another checkpoint and setting
        export_dataset(ckpts["est"], "synthetic", tiny_world, out, adapt=False, **kw)
    msg = str(err.value)
    assert str(out) in msg and "checkpoint.sha256" in msg and "config.adapt" in msg and "source.limit" not in msg
    with pytest.raises(ConfigError) as err:
        export_dataset(ckpts["adapt"], "synthetic", tiny_world, out, **{**kw, "limit": LIMIT - 1})
    assert "count: 12 in the folder, 11 requested" in str(err.value) and "source.limit" in str(err.value)
    with pytest.raises(ConfigError, match="config.write_meshes"):
        export_dataset(ckpts["adapt"], "synthetic", tiny_world, out, **{**kw, "write_meshes": False})
    assert _snapshot(out) == export_before

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(DataFileError, match="not empty and holds no hoi_adapt export"):
        export_dataset(ckpts["adapt"], "synthetic", tiny_world, foreign, **kw)
    assert [p.name for p in foreign.iterdir()] == ["holiday.jpg"] and (foreign / "holiday.jpg").read_bytes() == b"precious"

    with pytest.raises(CheckpointError, match="needs an adaptation checkpoint"):
        export_dataset(ckpts["est"], "synthetic", tiny_world, tmp_path / "new", **kw)
    assert not (tmp_path / "new").exists()


def test_rerun_of_a_finished_export_does_nothing(exported, ckpts, tiny_world):
    out, _ = exported
    before = _snapshot(out)
    again = export_dataset(ckpts["adapt"], "synthetic", tiny_world, out, batch_size=BATCH, limit=LIMIT,
                           write_meshes=True, progress=False, image_size=SIZE)
    assert again["run"]["predicted"] == 0 and again["run"]["skipped"] == LIMIT
    assert _snapshot(out) == before


# ----------------------------------------------------------------------------------- adapt=False
def test_estimator_export_writes_input_crops_with_pseudo_labels(ckpts, tiny_world, tmp_path):
    from hoi_adapt.checkpoints.predictor import load_predictor
    from hoi_adapt.data.registry import build_dataset

    out = tmp_path / "crops"
    manifest = export_dataset(ckpts["est"], "synthetic", tiny_world, out, adapt=False, batch_size=BATCH, limit=BATCH,
                              progress=False, image_size=SIZE, freihand=False, sheet_rows=2)
    assert manifest["config"]["adapt"] is False and manifest["checkpoint"]["kind"] == "estimator"
    assert not (out / "freihand").exists() and verify_export(out)["ok"]
    ann = np.load(out / fmt.ANNOTATIONS_FILE)
    src = _source(tiny_world)
    batch = default_collate([src[i] for i in range(BATCH)])
    pred = load_predictor(ckpts["est"], adapt=False)(batch["image"], batch["K"])
    ds = build_dataset("adapted", out, "all")
    for i in range(BATCH):
        from hoi_adapt.viz.drawing import to_uint8

        assert np.array_equal(read_image(out / fmt.image_relpath(fmt.sample_key(i))), to_uint8(src[i]["image"]))
        np.testing.assert_allclose(ann["joints3d"][i], pred["joints3d"][i].numpy(), atol=1e-6)
        s = ds[i]
        assert float(s["has_mask"]) == 0.0 and float(s["has_mask_full"]) == 1.0  # silhouette = amodal hand only
        assert float(s["is_hand_object"]) == 1.0 and float(s["occlusion"]) == -1.0
    assert np.all(ann["skeleton_agreement"] == -1.0) and np.array_equal(ann["confidence"], ann["mask_iou"])
    assert not ann["first_joints3d"].any()
