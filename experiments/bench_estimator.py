"""Accuracy of the mesh estimator E alone: stage 0 and the oracle against the chance level, per split.

Trains (reusing finished runs, resuming interrupted ones) or takes checkpoints, then scores each model on
``source_hand_test`` (hand-only, the domain stage 0 trains on) and ``target_test`` (hand-object, the target
domain) with :func:`hoi_adapt.eval.estimator_quality.score_estimator`: root-relative MPJPE, PA-MPJPE, AUC
20-50 mm, 2D keypoint error (pixels of the network input), the projected-size ratio (median of predicted /
true 2D box diagonal) and the IoU of the rendered silhouette with the full hand mask. The chance level
predicts the mean root-relative training skeleton for every image.

Usage::

    .venv/bin/python experiments/bench_estimator.py --scale bench     # world + stage 0 + oracle, about 2 h on 2 CPU cores
    .venv/bin/python experiments/bench_estimator.py --scale demo --stage0-ckpt outputs/demo/runs/stage0/.../last.ckpt

Writes ``experiments/results/estimator_<scale>.{json,md}``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from hoi_adapt.demo import Steps, run_fit
from hoi_adapt.utils.bench import write_results

ESTIMATOR_CONFIG = "configs/estimator/demo.yaml"
ORACLE_ROW = "experiments/configs/synthetic/oracle.yaml"
ORACLE_BENCH = "experiments/configs/synthetic/oracle_bench.yaml"  # same images per step as stage 0
SPLITS = {"source_hand_test": "hand", "target_test": "hoi"}
TARGETS = {"bench": "stage 0 on source_hand_test <= 20 mm, size ratio 0.95-1.05, IoU >= 0.7; oracle on target_test <= 25 mm",
           "demo": "stage 0 on source_hand_test <= 35 mm"}
SCALES: dict[str, dict[str, Any]] = {
    "demo": {"world_config": "configs/synth/demo.yaml", "world": "outputs/world/demo", "stage0": [],
             "oracle": ["-c", ORACLE_ROW]},
    "bench": {"world_config": "configs/synth/bench.yaml", "world": "outputs/world/bench",
              "stage0": ["-c", "configs/estimator/bench.yaml"],
              "oracle": ["-c", "configs/estimator/bench.yaml", "-c", ORACLE_BENCH], "oracle_from_stage0": True},
}
COLUMNS = [("mpjpe_mm", "MPJPE mm", "{:.1f}"), ("pa_mpjpe_mm", "PA-MPJPE mm", "{:.1f}"), ("auc", "AUC 20-50", "{:.3f}"),
           ("kp2d_px", "2D px", "{:.2f}"), ("size_ratio", "size ratio", "{:.3f}"), ("iou", "IoU", "{:.3f}"),
           ("rot_err_deg", "rot. err deg", "{:.1f}"), ("depth_err_mm", "depth err mm", "{:.0f}")]


def stage0_checkpoint(scale_name: str, out: Path | None = None) -> str:
    """The scale's world and stage-0 estimator (trained once, then reused by every experiment that asks)."""
    from hoi_adapt.synth.generator import ensure_world

    scale = SCALES[scale_name]
    out = out or Path(f"outputs/experiments/estimator_{scale_name}")
    steps, world = Steps(out), scale["world"]
    steps.run("world", {"cfg": Path(scale["world_config"]).read_text()}, lambda: str(ensure_world(scale["world_config"], world)))
    layers = [Path(a).read_text() for a in scale["stage0"] if a.endswith(".yaml")]
    return steps.run("stage0", {"cfg": Path(ESTIMATOR_CONFIG).read_text(), "o": scale["stage0"], "layers": layers},
                     lambda: run_fit(ESTIMATOR_CONFIG, out / "stage0", world, scale["stage0"]))


def score_checkpoint(ckpt: str, world: str) -> dict[str, dict[str, Any]]:
    """Every split's figures for one estimator checkpoint, at the input size it was trained at."""
    from hoi_adapt.checkpoints.load import checkpoint_input_size, load_estimator, read_checkpoint
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
    from hoi_adapt.eval.estimator_quality import score_estimator

    size = checkpoint_input_size(read_checkpoint(ckpt))
    estimator = load_estimator(ckpt)
    return {split: score_estimator(estimator, SyntheticHandDataset(world, split, image=image, amodal_masks=True, out_size=size))
            for split, image in SPLITS.items()}


def chance_rows(world: str) -> dict[str, dict[str, Any]]:
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
    from hoi_adapt.eval.estimator_quality import chance_scores, mean_skeleton

    mean_rel = mean_skeleton(SyntheticHandDataset(world, "source_hand", image="hand"))
    return {split: chance_scores(mean_rel, SyntheticHandDataset(world, split, image=image)) for split, image in SPLITS.items()}


def recorded_minutes(out: Path, ckpts: dict[str, str]) -> dict[str, float]:
    """Minutes each finished step took when it ran (a reused step costs nothing now but did cost then)."""
    import json

    spent = {}
    for marker in sorted((out / "steps").glob("*.json")):
        done = json.loads(marker.read_text())
        if marker.stem == "world" or done.get("result") in ckpts.values():
            spent[marker.stem] = round(float(done.get("seconds", 0.0)) / 60.0, 1)
    return spent


def markdown(scale: str, rows: dict[str, dict[str, dict[str, Any]]], minutes: float, command: str) -> list[str]:
    lines = [f"# Estimator accuracy ({scale} scale)", "", f"Targets: {TARGETS[scale]}.", ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| model | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
        for name, per_split in rows.items():
            r = per_split[split]
            cells = [fmt.format(r[key]) if r.get(key) is not None else "-" for key, _, fmt in COLUMNS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Size ratio: median of predicted / true 2D box diagonal of the 21 projected joints. IoU: rendered hard "
              "silhouette of the predicted mesh vs the full (amodal) hand mask. Rotation and depth errors are medians "
              "(global MANO rotation, wrist depth). Chance: the mean root-relative training skeleton for every image.",
              "", f"Minutes (world generation and each training run as recorded when they ran, plus this scoring): {minutes:.1f}. "
              f"Command: `{command}`"]
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="bench")
    parser.add_argument("--out", default=None, help="runs folder (default outputs/experiments/estimator_<scale>)")
    parser.add_argument("--stage0-ckpt", default=None, help="score this checkpoint instead of training stage 0")
    parser.add_argument("--oracle-ckpt", default=None, help="score this checkpoint instead of training the oracle")
    parser.add_argument("--skip-oracle", action="store_true", help="no oracle row")
    args = parser.parse_args(argv)
    command = "python experiments/bench_estimator.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    scale = SCALES[args.scale]
    out = Path(args.out or f"outputs/experiments/estimator_{args.scale}")
    steps = Steps(out)
    world = scale["world"]
    cfg = Path(ESTIMATOR_CONFIG).read_text()
    ckpts = {"stage0": args.stage0_ckpt or stage0_checkpoint(args.scale, out)}
    if not args.skip_oracle:
        oracle = [*scale["oracle"], *([f"--model.init_args.init_ckpt={ckpts['stage0']}"] if scale.get("oracle_from_stage0") else [])]
        ckpts["oracle"] = args.oracle_ckpt or steps.run(
            "oracle", {"cfg": cfg, "o": oracle, "layers": [Path(a).read_text() for a in oracle if a.endswith(".yaml")]},
            lambda: run_fit(ESTIMATOR_CONFIG, out / "oracle", world, oracle))
    t_score = time.time()  # training time is what the step markers recorded (also for runs made just now)
    rows = {name: score_checkpoint(ckpt, world) for name, ckpt in ckpts.items()}
    rows["chance"] = chance_rows(world)
    spent = recorded_minutes(out, ckpts)
    minutes = sum(spent.values()) + (time.time() - t_score) / 60.0
    result = {"scale": args.scale, "rows": rows, "minutes": minutes, "minutes_per_step": spent, "command": command,
              "checkpoints": ckpts, "targets": TARGETS[args.scale]}
    write_results(f"estimator_{args.scale}", result, markdown(args.scale, rows, minutes, command))


if __name__ == "__main__":
    main()
