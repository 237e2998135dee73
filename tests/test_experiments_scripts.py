"""Experiment scripts: the real-data rows are valid configs, roots are rewritten, missing data is refused; analysis maths."""
from __future__ import annotations

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
