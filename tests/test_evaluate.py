"""hoi-adapt evaluate, library side: checkpoint -> protocol numbers and files; oracle checks per protocol."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from fixtures_datasets import write_dexter_object, write_egodexter, write_freihand, write_ho3d, write_rhd, write_stb

from hoi_adapt.eval import evaluate_protocol
from hoi_adapt.eval.runner import (
    ROOT_ONLY_NOTE,
    build_eval_data,
    collect,
    evaluate_checkpoint,
    evaluate_predict_fn,
    oracle_prediction,
    score,
    select_indices,
)
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError

SHIFT = torch.tensor([0.05, -0.03, 0.12], dtype=torch.float64)


def scaled_oracle(batch, root_is_palm=False):
    """GT scaled by 1.2 about the camera centre and shifted: right up to a similarity transform."""
    return {"joints3d": 1.2 * oracle_prediction(batch, root_is_palm)["joints3d"] + SHIFT}


def responsive_estimator(seed: int = 0):
    """A seeded untrained estimator whose output depends on the image: the regressor's last layer starts at
    zero (the mean hand for any input), so it gets small random weights here."""
    from hoi_adapt.models.estimator import MeshEstimator

    torch.manual_seed(seed)
    est = MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32).eval()
    torch.nn.init.normal_(est.regressor.out.weight, std=2e-3)
    return est


@pytest.fixture(scope="module")
def responsive_ckpt(tmp_path_factory):
    from hoi_adapt.checkpoints.format import write_network_checkpoint

    return write_network_checkpoint(tmp_path_factory.mktemp("resp") / "responsive.ckpt", "estimator",
                                    {"estimator": responsive_estimator()})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("index_cache")


@pytest.fixture(scope="module")
def do_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("do")
    write_dexter_object(root)
    return root


@pytest.fixture(scope="module")
def stb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("stb")
    write_stb(root)
    return root


def _independent_gt_meshes(world, split, rows):
    """GT meshes re-posed here, independently of the runner: model of the stored side, mirrored if left."""
    from hoi_adapt.data.formats import world as fmt
    from hoi_adapt.hand.model import HandModel

    ann = fmt.load_annotations(world, split)
    out = []
    for i in rows:
        side = str(ann["side"][i])
        m = HandModel(None, side=side)
        with torch.no_grad():
            v = m(torch.tensor(ann["mano_global_orient"][i:i + 1]), torch.tensor(ann["mano_hand_pose"][i:i + 1]),
                  torch.tensor(ann["mano_betas"][i:i + 1]), torch.tensor(ann["mano_transl"][i:i + 1])).vertices[0]
        v = v.double().numpy()
        if side == "left":
            v = v * np.array([-1.0, 1.0, 1.0])
        out.append(v)
    return np.stack(out), ann


# ------------------------------------------------------------------------------------ synthetic + checkpoint
@pytest.mark.parametrize("which", ["tiny_estimator_ckpt", "responsive_ckpt"])
def test_synthetic_checkpoint_json_equals_independent_protocol(which, tiny_world, tmp_path, request):
    from hoi_adapt.checkpoints.predictor import load_predictor
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset

    ckpt = request.getfixturevalue(which)
    label = ckpt.stem
    out = tmp_path / "out"
    res = evaluate_checkpoint(ckpt, "synthetic", tiny_world, out_dir=out, batch_size=4,
                              image_size=64, progress=False)
    files = {k: out / f"synthetic{s}" for k, s in (("json", ".json"), ("md", ".md"), ("png", "_pck.png"),
                                                   ("csv", "_per_sequence.csv"))}
    for k, path in files.items():
        assert path.is_file() and path.stat().st_size > 0, k
    assert files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    row = json.loads(files["json"].read_text())["rows"][label]

    # Independent computation on the same samples: the Predictor on the loader's images, meshes re-posed here.
    ds = SyntheticHandDataset(tiny_world, "target_test", image="hoi", out_size=64)
    samples = [ds[i] for i in range(len(ds))]
    pred = load_predictor(ckpt)(torch.stack([s["image"] for s in samples]),
                                               torch.stack([s["K"] for s in samples]))
    gt = np.stack([s["joints3d"].numpy() for s in samples]).astype(np.float64)
    gt_verts, _ = _independent_gt_meshes(tiny_world, "target_test", range(len(ds)))
    expected = evaluate_protocol("synthetic", pred["joints3d"].double().numpy(), gt, np.ones(gt.shape[:2], bool),
                                 pred_verts=pred["vertices"].double().numpy(), gt_verts=gt_verts,
                                 sequences=["target_test"] * len(ds))

    assert set(row["metrics"]) == set(expected["metrics"])
    for k, v in expected["metrics"].items():
        assert row["metrics"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), k
    for k in ("mesh_pa_mpvpe_mm", "mesh_abs_mpvpe_mm", "f5", "f15", "pa_f5", "pa_f15"):
        assert k in row["metrics"]
    assert row["num_mesh_frames"] == len(ds) == row["num_samples"]
    assert row["thresholds_mm"] == expected["thresholds_mm"] and len(row["thresholds_mm"]) == 16
    assert row["per_sequence"]["target_test"]["metrics"]["rootrel_auc"] == pytest.approx(
        expected["metrics"]["rootrel_auc"])
    # Provenance of the numbers.
    assert row["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert row["adapt"] is False and row["split"] == "target_test" and row["protocol"] == "synthetic"
    assert row["input_size"] == 64 and "crop" in row["crop"]
    assert res["metrics"]["rootrel_mpjpe_mm"] == pytest.approx(row["metrics"]["rootrel_mpjpe_mm"])
    md = files["md"].read_text()
    assert f"| {label} |" in md and row["checkpoint_sha256"] in md and "20-50mm" in md
    csv_lines = files["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("method,sequence") and csv_lines[1].startswith(f"{label},target_test,8,")


def test_synthetic_gt_meshes_cover_left_hands(tiny_world):
    """target_hoi has mirrored left hands; their re-posed GT meshes must be mirrored too (the skeleton check
    inside the runner would otherwise drop them)."""
    data = build_eval_data("synthetic", tiny_world, "target_hoi", image_size=64)
    batch = next(iter(torch.utils.data.DataLoader(data.dataset, batch_size=len(data.dataset))))
    verts, ok = data.gt_mesh(batch)
    expected, ann = _independent_gt_meshes(tiny_world, "target_hoi", range(len(data.dataset)))
    assert (ann["side"] == "left").any() and (ann["side"] == "right").any()
    assert ok.all()
    np.testing.assert_allclose(verts, expected, atol=1e-6)
    assert data.gt_mesh.num_mismatched == 0


def test_synthetic_oracle_scores_perfectly_and_meshes_too(tiny_world):
    data = build_eval_data("synthetic", tiny_world, image_size=64)

    def oracle(batch):
        return {"joints3d": batch["joints3d"], "vertices": torch.as_tensor(data.gt_mesh(batch)[0])}

    res = score(data, collect(data, oracle, batch_size=3))
    m = res["metrics"]
    for variant in ("rootrel", "abs", "pa", "tips"):
        assert m[f"{variant}_auc"] == pytest.approx(1.0) and m[f"{variant}_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    assert m["mesh_abs_mpvpe_mm"] == pytest.approx(0.0, abs=1e-3) and m["f5"] == pytest.approx(1.0)


def test_scaled_shifted_gt_is_perfect_only_under_fingertip_alignment(tiny_world):
    res = evaluate_predict_fn(scaled_oracle, "synthetic", tiny_world, image_size=64)
    m = res["metrics"]
    assert res["mesh"].startswith("no mesh metrics")  # the callable gives no vertices
    assert m["tips_auc"] == pytest.approx(1.0) and m["tips_mpjpe_mm"] < 1e-6
    assert m["pa_auc"] == pytest.approx(1.0)  # Procrustes includes scale too
    assert m["rootrel_auc"] < 0.9 and m["rootrel_mpjpe_mm"] > 10.0  # root-relative: the 1.2 scale shows


# ------------------------------------------------------------------------------------------ real-data oracles
def test_dexter_object_oracle_and_scaled(do_root, cache):
    opts = {"cache_dir": cache}
    res = evaluate_predict_fn(oracle_prediction, "dexter_object", do_root, image_size=32, dataset_options=opts)
    assert res["protocol"] == "dexter_object" and res["split"] == "test"
    assert res["metrics"]["tips_auc"] == pytest.approx(1.0) and res["metrics"]["tips_mpjpe_mm"] < 1e-6
    assert res["num_frames"] == 12 and res["num_skipped_frames"] == 0
    assert res["num_valid_joints"] == 12 * 5 - 2  # Grasp1 frame 1 has two invalid tips
    assert len(res["per_sequence"]) == 6
    scaled = evaluate_predict_fn(scaled_oracle, "dexter_object", do_root, image_size=32, dataset_options=opts)
    assert scaled["metrics"]["tips_auc"] == pytest.approx(1.0) and scaled["metrics"]["tips_mpjpe_mm"] < 1e-6
    assert "crop" in scaled["crop"] and scaled["dataset_settings"]["crop_scale"] > 0


def test_egodexter_scaled_gt_and_skipped_frames(tmp_path):
    write_egodexter(tmp_path / "ed")
    res = evaluate_predict_fn(scaled_oracle, "egodexter", tmp_path / "ed", image_size=32,
                              dataset_options={"cache_dir": tmp_path / "c"})
    assert res["metrics"]["tips_auc"] == pytest.approx(1.0)
    assert res["num_frames"] == 12 and res["num_skipped_frames"] == 1  # Desk frame 2: a short (empty) line


def test_stb_is_palm_rooted_and_oracle_perfect(stb_root, cache):
    opts = {"cache_dir": cache}
    res = evaluate_predict_fn(lambda b: oracle_prediction(b, root_is_palm=True), "stb", stb_root, image_size=32,
                              dataset_options=opts)
    assert res["settings"]["root_is_palm"] is True and res["dataset_settings"]["root_joint"] == "palm"
    assert res["dataset_settings"]["sequences"] == ["B1Counting", "B1Random"]
    for v in ("palm", "palm_noscale", "j9"):
        assert res["metrics"][f"{v}_auc"] == pytest.approx(1.0) and res["metrics"][f"{v}_mpjpe_mm"] < 1e-6
    # The palm handling is live: a palm-rooted skeleton passed off as a wrist-rooted prediction is penalised.
    wrong = evaluate_predict_fn(lambda b: {"joints3d": b["joints3d"]}, "stb", stb_root, image_size=32,
                                dataset_options=opts)
    assert wrong["metrics"]["palm_mpjpe_mm"] > 1.0
    # hand3d's 'palm' variant rescales by the GT bone, the palm-root-only variant does not.
    scaled = evaluate_predict_fn(lambda b: scaled_oracle(b, True), "stb", stb_root, image_size=32, dataset_options=opts)
    assert scaled["metrics"]["palm_auc"] == pytest.approx(1.0)
    assert scaled["metrics"]["palm_noscale_auc"] < 1.0


def test_stb_checkpoint_json_records_palm_settings(tiny_estimator_ckpt, stb_root, cache, tmp_path):
    evaluate_checkpoint(tiny_estimator_ckpt, "stb", stb_root, out_dir=tmp_path, image_size=32, progress=False,
                        dataset_options={"cache_dir": cache})
    row = json.loads((tmp_path / "stb.json").read_text())["rows"]["estimator"]
    assert row["settings"]["root_is_palm"] is True
    assert row["dataset_settings"]["root_joint"] == "palm"
    assert row["split"] == "test" and row["num_frames"] == 4
    assert set(row["per_sequence"]) == {"B1Counting/SK", "B1Random/SK"}


def test_rhd_root_relative_is_not_scale_invariant(tmp_path):
    write_rhd(tmp_path / "rhd", split="evaluation", size=96)
    res = evaluate_predict_fn(scaled_oracle, "rhd", tmp_path / "rhd", image_size=32,
                              dataset_options={"cache_dir": tmp_path / "c"})
    assert res["split"] == "test" and res["protocol"] == "rhd"
    assert res["metrics"]["j9_auc"] == pytest.approx(1.0)  # minimal-hand variant normalises the scale
    assert res["metrics"]["rootrel_auc"] < 1.0 and res["metrics"]["rootrel_mpjpe_mm"] > 5.0


def test_ho3d_evaluation_split_is_root_only(tmp_path):
    write_ho3d(tmp_path / "ho3d")
    opts = {"cache_dir": tmp_path / "c"}

    def shifted(batch):
        return {"joints3d": batch["joints3d"] + torch.tensor([0.0, 0.0, 0.010])}

    res = evaluate_predict_fn(shifted, "ho3d", tmp_path / "ho3d", image_size=32, dataset_options=opts)
    assert ROOT_ONLY_NOTE in res["notes"] and res["split"] == "test"
    assert set(res["metrics"]) == {"root_mpjpe_mm", "root_median_mm", "root_auc"}
    assert res["metrics"]["root_mpjpe_mm"] == pytest.approx(10.0, abs=1e-3)
    assert res["num_valid_joints"] == 2 and set(res["per_sequence"]) == {"SM1"}
    train = evaluate_predict_fn(oracle_prediction, "ho3d", tmp_path / "ho3d", split="train", image_size=32,
                                dataset_options=opts)
    # (0-50 mm grid, 100 steps: the 0-mm threshold counts float round-off as a miss, so AUC = 1 - 0.5/99)
    assert train["metrics"]["pa_mpjpe_mm"] < 1e-6 and train["metrics"]["abs_mpjpe_mm"] < 1e-6
    assert train["metrics"]["abs_auc"] >= 1 - 0.5 / 99 - 1e-9
    assert train["mesh"].startswith("no mesh metrics") and "MANO" in train["mesh"]


def test_freihand_falls_back_to_training_without_eval_labels(tmp_path):
    write_freihand(tmp_path / "fh", eval_labels=False)
    opts = {"cache_dir": tmp_path / "c"}
    res = evaluate_predict_fn(oracle_prediction, "freihand", tmp_path / "fh", image_size=32, dataset_options=opts)
    assert res["split"] == "train" and any("TRAINING" in n for n in res["notes"])
    assert res["num_frames"] == 3  # green-screen images only
    assert res["metrics"]["pa_mpjpe_mm"] < 1e-6 and res["metrics"]["abs_auc"] >= 1 - 0.5 / 99 - 1e-9
    write_freihand(tmp_path / "fh2", eval_labels=True)
    res2 = evaluate_predict_fn(oracle_prediction, "freihand", tmp_path / "fh2", image_size=32, dataset_options=opts)
    assert res2["split"] == "test" and not res2["notes"] and res2["num_frames"] == 2


# ------------------------------------------------------------------------------------------------ errors
def test_clear_errors(tiny_estimator_ckpt, tiny_world, tmp_path):
    with pytest.raises(ConfigError, match="known datasets: .*synthetic"):
        build_eval_data("nope", tmp_path)
    with pytest.raises(DataFileError, match="root folder not found"):
        build_eval_data("stb", tmp_path / "missing")
    with pytest.raises(ConfigError, match="available: .*target_test"):
        build_eval_data("synthetic", tiny_world, "no_such_split")
    with pytest.raises(CheckpointError, match="adaptation checkpoint"):
        evaluate_checkpoint(tiny_estimator_ckpt, "synthetic", tiny_world, adapt=True, progress=False)
    with pytest.raises(CheckpointError, match="not found"):
        evaluate_checkpoint(tmp_path / "none.ckpt", "synthetic", tiny_world, progress=False)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        evaluate_checkpoint(bad, "synthetic", tiny_world, progress=False)


def test_empty_and_unlabelled_data(tiny_world, tmp_path):
    from hoi_adapt.data.formats import world as fmt

    src = fmt.load_annotations(tiny_world, "target_test")
    empty = tmp_path / "world"
    (empty / "empty").mkdir(parents=True)
    np.savez(empty / "empty" / fmt.ANNOTATIONS_FILE, **{k: v[:0] for k, v in src.items()})
    with pytest.raises(DataFileError, match="no samples"):
        build_eval_data("synthetic", empty, "empty")
    # FreiHAND evaluation images without any labels (explicit split): nothing to score.
    write_freihand(tmp_path / "fh")
    with pytest.raises(DataFileError, match="no 3D ground truth"):
        evaluate_predict_fn(oracle_prediction, "freihand", tmp_path / "fh", split="evaluation", image_size=32,
                            dataset_options={"cache_dir": tmp_path / "c"})


def test_select_indices_spreads_over_the_dataset():
    np.testing.assert_array_equal(select_indices(10, None), np.arange(10))
    np.testing.assert_array_equal(select_indices(10, 3), [0, 4, 9])  # round(4.5) = 4 (banker's rounding)
    assert len(select_indices(1000, 7)) == 7 and select_indices(1000, 7)[-1] == 999
    with pytest.raises(ConfigError):
        select_indices(5, 0)


def test_input_size_defaults_to_the_checkpoints_training_size(tiny_estimator_ckpt, tiny_world, tmp_path):
    ckpt = torch.load(tiny_estimator_ckpt, map_location="cpu", weights_only=True)
    ckpt["datamodule_hyper_parameters"] = {"image_size": 48}
    path = tmp_path / "sized.ckpt"
    torch.save(ckpt, path)
    res = evaluate_checkpoint(path, "synthetic", tiny_world, limit=2, progress=False)
    assert res["input_size"] == 48 and "48 px" in res["crop"] and res["num_samples"] == 2
    assert evaluate_checkpoint(tiny_estimator_ckpt, "synthetic", tiny_world, limit=1, progress=False)["input_size"] == 128
