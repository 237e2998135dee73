"""Estimator quality scores (size ratio, IoU, rotation error, chance level) and the estimator benchmark script."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pytorch3d.transforms import axis_angle_to_matrix

from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.eval.estimator_quality import (
    QUALITY_KEYS,
    box_diagonal,
    chance_scores,
    mask_iou,
    mean_skeleton,
    protocol_scores,
    rotation_error_deg,
)

REPO = Path(__file__).resolve().parents[1]


def test_box_diagonal_and_half_size_hand():
    uv = torch.tensor([[[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]]])
    assert float(box_diagonal(uv)[0]) == pytest.approx(5.0)
    centre = uv.mean(1, keepdim=True)
    half = centre + 0.5 * (uv - centre)  # a hand drawn at half size
    assert float(box_diagonal(half)[0] / box_diagonal(uv)[0]) == pytest.approx(0.5)


def test_rotation_error_and_iou_values():
    a = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, np.pi / 2]]))
    b = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, np.pi / 6], [0.0, 0.0, np.pi / 2]]))
    err = rotation_error_deg(a, b)
    assert float(err[0]) == pytest.approx(30.0, abs=1e-3) and float(err[1]) == pytest.approx(0.0, abs=1e-2)
    m = torch.zeros(2, 4, 4)
    m[0, :2] = 1
    p = torch.zeros(2, 4, 4)
    p[0, :1] = 1
    iou = mask_iou(p > 0.5, m > 0.5)
    assert float(iou[0]) == pytest.approx(0.5) and float(iou[1]) == 0.0  # both empty: nothing agreed on


def test_chance_level_is_the_mean_training_skeleton(tiny_world):
    train = SyntheticHandDataset(tiny_world, "source_hand")
    mean_rel = mean_skeleton(train)
    assert mean_rel.shape == (21, 3) and np.allclose(mean_rel[0], 0.0)
    # on its own training set the mean skeleton scores exactly what the protocol gives the mean prediction
    gt = np.stack([train[i]["joints3d"].numpy() for i in range(len(train))]).astype(np.float64)
    expected = protocol_scores(mean_rel + gt[:, :1], gt)
    got = chance_scores(mean_rel, train)
    assert got["mpjpe_mm"] == pytest.approx(expected["mpjpe_mm"]) and got["size_ratio"] is None
    assert 30.0 < got["mpjpe_mm"] < 200.0


def test_benchmark_scores_a_checkpoint_on_both_splits(tiny_world, tiny_estimator_ckpt):
    import bench_estimator

    scores = bench_estimator.score_checkpoint(str(tiny_estimator_ckpt), str(tiny_world))
    assert set(scores) == {"source_hand_test", "target_test"}
    for split, s in scores.items():
        assert set(QUALITY_KEYS) <= set(s) and s["num_images"] == 8, split
        assert 0.0 <= s["iou"] <= 1.0 and s["size_ratio"] > 0 and s["mpjpe_mm"] > 0
    rows = {"stage0": scores, "chance": bench_estimator.chance_rows(str(tiny_world))}
    text = "\n".join(bench_estimator.markdown("demo", rows, 1.0, "cmd"))
    assert "## source_hand_test" in text and "| chance | " in text and json.dumps(rows)  # serialisable as the JSON result


@pytest.mark.parametrize("layers", [["configs/estimator/bench.yaml"],
                                    ["configs/estimator/bench.yaml", "experiments/configs/synthetic/oracle.yaml"],
                                    ["configs/estimator/bench.yaml", "experiments/configs/synthetic/oracle_bench.yaml"]])
def test_bench_configs_layer_on_the_demo_config(layers, capsys):
    from hoi_adapt.lit.cli import main as cli_main

    args = ["fit", "-c", str(REPO / "configs/estimator/demo.yaml")]
    for layer in layers:
        args += ["-c", str(REPO / layer)]
    with pytest.raises(SystemExit) as stop:
        cli_main([*args, "--print_config"])
    assert stop.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)
    fine_tune = layers[-1].endswith("oracle_bench.yaml")  # the bench oracle: 2500 steps from stage 0
    assert resolved["trainer"]["max_steps"] == (2500 if fine_tune else 5000) and resolved["data"]["world"] == "outputs/world/bench"
    assert resolved["model"]["init_args"]["one_cycle"] is True
    assert resolved["model"]["init_args"]["loss_weights"]["silhouette"] == 0.0
    assert ("target_labelled" in resolved["data"]["train"]) == (len(layers) == 2)
    assert not any("test" in spec["split"] for spec in resolved["data"]["val"].values())  # no test split steers training
