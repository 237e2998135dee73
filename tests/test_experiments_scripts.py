"""Experiment scripts: the real-data rows are valid configs, roots are rewritten, missing data is refused; analysis maths."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
import paper_table  # noqa: E402


def test_every_planned_run_is_a_valid_lightning_config(tmp_path, capsys):
    from hoi_adapt.lit.cli import main as cli_main

    runs = paper_table.plan(paper_table.load_roots(None), tmp_path, str(REPO / "configs/trainer/gpu.yaml"))
    assert [name for name, _, _ in runs] == ["stage0", "oracle", "no_mesh_guidance", "no_gan", "full"]
    for name, config, overrides in runs:
        overrides = [o.replace("{stage0}", str(tmp_path / "stage0.ckpt")) for o in overrides]
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            cli_main(["fit", "-c", str(REPO / config), *overrides, "--print_config"])
        assert stop.value.code in (0, None), name
        resolved = yaml.safe_load(capsys.readouterr().out)
        streams = resolved["data"]["train"]
        assert resolved["data"]["world"] is None and all(s["dataset"] != "synthetic" for s in streams.values()), name
        if name == "oracle":
            assert streams["ho3d_labelled"]["labels"] is True
        if name in ("no_mesh_guidance", "no_gan", "full"):
            model = resolved["model"]["init_args"]
            assert streams["hoi"]["labels"] is False and model["estimator_ckpt"].endswith("stage0.ckpt")
            assert (model["guidance"] is None) == (name == "no_mesh_guidance")
            assert (model["translation_loss"]["init_args"]["weight_adversarial"] == 0) == (name == "no_gan")


def test_roots_file_rewrites_every_placeholder(tmp_path, capsys):
    roots_file = tmp_path / "roots.yaml"
    mine = {key: str(tmp_path / key) for key in paper_table.PLACEHOLDER_ROOTS}
    roots_file.write_text(yaml.safe_dump(mine))
    assert paper_table.main(["--roots", str(roots_file), "--out", str(tmp_path / "runs"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("hoi-adapt fit") == 5
    for cfg in (tmp_path / "runs" / "configs").glob("*.yaml"):
        values = yaml.safe_load(cfg.read_text())  # comments may still mention the placeholders
        assert "/data/" not in repr(values) and str(tmp_path) in repr(values)


def test_missing_datasets_and_bad_roots_files_are_refused(tmp_path, capsys):
    roots_file = tmp_path / "roots.yaml"
    roots_file.write_text(yaml.safe_dump({"freihand": str(tmp_path)}))
    assert paper_table.main(["--roots", str(roots_file), "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "dataset or MANO folders not found" in err and "rhd: /data/RHD_published_v2" in err and "freihand" not in err.split("not found")[1]
    roots_file.write_text(yaml.safe_dump({"freihnad": "/x"}))
    assert paper_table.main(["--roots", str(roots_file), "--dry-run"]) == 1
    assert "unknown keys ['freihnad']" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "stage0").exists()  # nothing trained


def test_guidance_analysis_error_is_root_relative_in_millimetres():
    import guidance_analysis
    import torch

    gt = torch.randn(4, 21, 3)
    shifted = gt + torch.tensor([0.3, -0.2, 1.5])  # a different root position only
    assert np.allclose(guidance_analysis._rootrel_mm(shifted, gt), 0, atol=1e-3)
    bent = gt.clone()
    bent[:, 1:, 0] += 0.010  # every joint but the wrist 10 mm along x
    assert np.allclose(guidance_analysis._rootrel_mm(bent, gt), 10 * 20 / 21, atol=1e-3)


@pytest.mark.parametrize("row", ["no_mesh_guidance", "full"])
def test_full_scale_configs_layer_under_the_run_folder_and_the_row(row, tmp_path, capsys):
    import adaptation_table

    from hoi_adapt.demo import fit_args
    from hoi_adapt.lit.cli import main as cli_main

    scale = adaptation_table.SCALES["full"]
    cases = {"stage0": ("configs/estimator/demo.yaml", scale["stage0"]),
             row: ("configs/adapt/demo.yaml", [*scale["adapt"], "-c", f"experiments/configs/synthetic/{row}.yaml",
                                               f"--model.init_args.estimator_ckpt={tmp_path / 's0.ckpt'}"])}
    for name, (config, overrides) in cases.items():
        args = [a if not a.startswith(("configs/", "experiments/")) else str(REPO / a) for a in overrides]
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli_main([*fit_args(str(REPO / config), tmp_path / name, "outputs/world/full", args), "--print_config"])
        resolved = yaml.safe_load(capsys.readouterr().out)
        assert resolved["trainer"]["default_root_dir"] == str(tmp_path / name)  # the run folder wins over the file's
        assert resolved["trainer"]["logger"]["init_args"]["save_dir"] == str(tmp_path / name)
        assert resolved["data"]["image_size"] == 128 and resolved["data"]["world"] == "outputs/world/full"
        model = resolved["model"]["init_args"]
        if name == "stage0":
            assert resolved["trainer"]["max_steps"] == 20000
        else:
            assert model["schedule"]["rounds"] == 4 and model["schedule"]["est_steps"] == 4000
            assert (model["guidance"] is None) == (row == "no_mesh_guidance")  # the row removes what the scale set


def test_bench_table_rows_share_the_estimator_budget(tmp_path, capsys):
    """Bench scale: every adapted row gets 3 x 100 estimator updates, and the oracle, fine-tuned from the same
    stage 0, gets those 300 too; all on the bench world, one run per seed."""
    import adaptation_table

    from hoi_adapt.demo import fit_args
    from hoi_adapt.lit.cli import main as cli_main

    scale = adaptation_table.SCALES["bench"]
    assert scale["seeds"] == [0, 1, 2]
    stage0 = str(tmp_path / "s0.ckpt")
    cases = {"full": ("configs/adapt/demo.yaml", [*scale["adapt"], "-c", "experiments/configs/synthetic/full.yaml",
                                                  f"--model.init_args.estimator_ckpt={stage0}", "--seed_everything=2"]),
             "oracle": ("configs/estimator/demo.yaml", [*scale["oracle"], f"--model.init_args.init_ckpt={stage0}"])}
    resolved = {}
    for name, (config, overrides) in cases.items():
        args = [str(REPO / a) if a.startswith(("configs/", "experiments/")) else a for a in overrides]
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli_main([*fit_args(str(REPO / config), tmp_path / name, scale["world"], args), "--print_config"])
        resolved[name] = yaml.safe_load(capsys.readouterr().out)
    schedule = resolved["full"]["model"]["init_args"]["schedule"]
    assert schedule["rounds"] * schedule["est_steps"] == resolved["oracle"]["trainer"]["max_steps"] == 300
    assert resolved["full"]["seed_everything"] == 2
    assert resolved["oracle"]["model"]["init_args"]["init_ckpt"] == stage0
    for r in resolved.values():
        assert r["data"]["world"] == "outputs/world/bench" and r["data"]["image_size"] == 64
        assert "target_test" not in json.dumps(r["data"])  # no test split steers a run


def _table_rows(base, rows, oracle, bins_base, bins_rows):
    """Fabricated per-seed results in adaptation_table's row layout."""
    out = {"baseline": {"seeds": ["shared"], "target_test": {"mpjpe_mm": [base]},
                        "occlusion_bins": {"bins": ["0-20%", "20-40%", "40-60%", "60-100%"], "count": [5, 5, 5, 0],
                                           "mpjpe_mm": [bins_base]}}}
    for label, values in {**rows, "oracle": oracle}.items():
        out[label] = {"seeds": list(range(len(values))), "target_test": {"mpjpe_mm": values},
                      "occlusion_bins": {"bins": out["baseline"]["occlusion_bins"]["bins"], "count": [5, 5, 5, 0],
                                         "mpjpe_mm": bins_rows.get(label, [bins_base] * len(values))}}
    return out


def test_table_claims_follow_their_definitions():
    import adaptation_table

    rows = _table_rows(100.0, {"G without mesh guidance": [80.0, 82.0, 84.0], "mesh guidance without GAN": [97.0, 99.0, 95.0],
                               "full method": [70.0, 72.0, 68.0]}, [50.0, 52.0, 48.0],
                       [90.0, 100.0, 110.0, None],
                       {"full method": [[85.0, 90.0, 80.0, None], [85.0, 90.0, 80.0, None], [85.0, 90.0, 80.0, None]]})
    translation = {"G without mesh guidance": {0: {"hand_psnr": 20.0}}, "full method": {0: {"hand_psnr": 22.0}},
                   "mesh guidance without GAN": {0: {"hand_psnr": 21.0}}}
    checks, gap = adaptation_table.claims(rows, translation)
    assert gap == pytest.approx((100 - 70) / (100 - 50))
    assert not checks["a"]["holds"]  # no GAN: a 3 mm gain against a 4 mm seed spread
    assert checks["a"]["gain_mm"]["full method"] == pytest.approx(30.0) and checks["a"]["seed_spread_mm"]["full method"] == 4.0
    assert checks["b"]["holds"] and checks["c"]["holds"] == (gap >= 0.6)
    assert checks["d"]["gain_mm_per_bin"]["full method"][:3] == pytest.approx([5.0, 10.0, 30.0])
    assert checks["d"]["gain_mm_per_bin"]["full method"][3] is None  # an empty bin has no gain
    assert checks["d"]["holds"]  # 5 < 10 < 30 over the filled bins
    assert checks["e"]["holds"]
    worse = _table_rows(100.0, {"G without mesh guidance": [80.0], "mesh guidance without GAN": [70.0], "full method": [60.0]},
                        [65.0], [90.0, 100.0, 110.0, None], {"full method": [[60.0, 80.0, 100.0, None]]})
    checks, gap = adaptation_table.claims(worse, translation)
    assert not checks["b"]["holds"] and gap > 1  # the full method beats the oracle: (b) fails, the gap overshoots
    assert not checks["d"]["holds"]  # gains 30, 20, 10 shrink with occlusion


def test_bin_means_average_seeds_and_keep_empty_bins_empty():
    import adaptation_table

    means = adaptation_table.bin_means([[1.0, None, 3.0], [3.0, None, np.nan]])
    assert means[0] == 2.0 and np.isnan(means[1]) and means[2] == 3.0


def test_int8_calibration_uses_training_crops_only(tiny_world, tmp_path):
    import int8_accuracy

    folder = int8_accuracy.calibration_folder(str(tiny_world), tmp_path / "calib")
    names = sorted(p.name for p in folder.iterdir())
    assert names and all(n.startswith(("source_hand_", "target_hoi_")) for n in names)  # no test split
    assert {n.split("_0")[0] for n in names} == {"source_hand", "target_hoi"}
    assert len(names) == len(set(names)) <= sum(count for _, _, count in int8_accuracy.CALIBRATION)


def test_guidance_analysis_averages_a_rows_seeds(tiny_world, tmp_path):
    import guidance_analysis
    from fixtures_checkpoints import write_tiny_adapt_checkpoint

    ckpt = str(write_tiny_adapt_checkpoint(tmp_path / "adapt.ckpt"))
    single = guidance_analysis.mean_over_seeds(ckpt, tiny_world, "target_test")
    twice = guidance_analysis.mean_over_seeds({"0": ckpt, "1": ckpt}, tiny_world, "target_test")
    assert single["seeds"] == 1 and twice["seeds"] == 2
    for key in ("first", "final", "final_vs_first", "final_gt_guidance", "second_round"):
        assert np.isfinite(single[key]) and twice[key] == pytest.approx(single[key], rel=1e-6), key


def test_camera_placement_finds_exactly_the_images_whose_depth_the_floor_set(tiny_world, tiny_estimator_ckpt, monkeypatch):
    import camera_placement
    import torch

    import hoi_adapt.models.estimator as estimator_module
    from hoi_adapt.checkpoints.load import load_estimator

    floored: list[bool] = []
    solve = estimator_module.solve_translation

    def recording_solve(joints, uv, K, weights, depth_prior, prior_weight=1e-3):  # the floor as the solve applies it
        t = solve(joints, uv, K, weights, depth_prior, prior_weight)
        floored.extend((t[:, 2] == depth_prior / 3.0 - joints[..., 2].min(dim=1).values).tolist())
        return t

    monkeypatch.setattr(estimator_module, "solve_translation", recording_solve)
    est = load_estimator(tiny_estimator_ckpt).eval()
    rows = camera_placement.placement_errors(est, str(tiny_world), "target_val", "hoi", 64, limit=8)
    assert rows["all"]["images"] == 8 == len(floored)
    assert rows["depth set by the floor"]["images"] == sum(floored) and sum(floored) > 0  # untrained: keypoints contradict
    assert rows["depth set by the floor"]["images"] + rows["solved depth"]["images"] == 8
    if rows["depth set by the floor"]["images"]:
        assert rows["depth set by the floor"]["mean_log_scale"] <= rows["depth set by the floor"]["abs_log_scale"]
    assert all(np.isfinite(v) for v in rows["all"].values())
    assert torch.is_grad_enabled()  # the script switches gradients off only in its own main()


@pytest.mark.parametrize("guided", [True, False])
def test_speed_benchmarks_build_the_demo_networks_with_and_without_guidance(guided: bool) -> None:
    import torch

    from hoi_adapt.models.config import adapt_networks_from_config
    from hoi_adapt.models.pipeline import AdaptPipeline

    nets = adapt_networks_from_config(REPO / "configs/adapt/demo.yaml", 64, guided)
    assert ("guidance" in nets) == guided and not any(n.training for n in nets.values())
    if guided:
        assert nets["guidance"].guidance_size == 32  # half the input, as the demo config renders it
    pipe = AdaptPipeline(nets["estimator"], nets["generator"], nets.get("guidance"))
    with torch.no_grad():
        out = pipe(torch.rand(1, 3, 64, 64), torch.tensor([[[80.0, 0, 31.5], [0, 80.0, 31.5], [0, 0, 1]]]))
    assert out.translated.shape == (1, 3, 64, 64) and (out.guidance is not None) == guided
