"""How the estimator copes with crop margins other than its training crops (the estimator issue's suspect 5).

The synthetic world crops every image at 1.15-1.4 times the hand's projected extent (``crop_margin``), while
real-data evaluation and ``predict`` crop with their own margins (``crop_scale`` of the loaders, predict's box
scales). This renders small held-out hand-only worlds (300 images, seed 7, not one of the training worlds) at
several margin ranges and scores one estimator on each with
:func:`hoi_adapt.eval.estimator_quality.score_estimator`. Worlds are generated once into ``--out`` and reused.

Usage::

    .venv/bin/python experiments/crop_margins.py --ckpt <stage-0 last.ckpt>

Writes ``experiments/results/crop_margins.{json,md}``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import yaml

from hoi_adapt.checkpoints.load import checkpoint_input_size, load_estimator, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.eval.estimator_quality import score_estimator
from hoi_adapt.synth.generator import ensure_world
from hoi_adapt.utils.bench import write_results

MARGINS = ((1.15, 1.4), (1.5, 1.7), (1.8, 2.0), (2.1, 2.3))
KEYS = ("mpjpe_mm", "pa_mpjpe_mm", "kp2d_px", "size_ratio", "iou", "rot_err_deg", "depth_err_mm")


def world_for(margin: tuple[float, float], size: int, count: int, out: Path) -> Path:
    """A held-out hand-only world at ``margin`` (generated on first use)."""
    root = out / f"margin_{margin[0]:g}_{margin[1]:g}"
    config = out / f"{root.name}.yaml"
    config.write_text(yaml.safe_dump({"seed": 7, "image_size": size, "chunk_size": 32, "crop_margin": list(margin),
                                      "splits": [{"name": "source_hand_test", "count": count, "style": "source", "with_object": False}]}))
    ensure_world(str(config), str(root))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--out", default="outputs/experiments/crop_margins")
    args = parser.parse_args()
    t0 = time.time()
    size = checkpoint_input_size(read_checkpoint(args.ckpt)) or 64
    estimator = load_estimator(args.ckpt).eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for margin in MARGINS:
        ds = SyntheticHandDataset(world_for(margin, size, args.count, out), "source_hand_test", image="hand", amodal_masks=True, out_size=size)
        rows[f"{margin[0]:g}-{margin[1]:g}"] = {k: score_estimator(estimator, ds)[k] for k in KEYS}
    command = "python experiments/crop_margins.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Crop margins", "", f"Estimator `{args.ckpt}` ({size} px), trained on crops of 1.15-1.4 x the hand's projected "
             f"extent; {args.count} held-out hand-only images per margin (seed 7).", "",
             "| crop margin (x hand extent) | MPJPE mm | PA-MPJPE mm | 2D px | size ratio | IoU | rot. err deg | depth err mm |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{r[k]:.3g}" for k in KEYS) + " |" for name, r in rows.items()]
    lines += ["", f"Minutes: {(time.time() - t0) / 60:.1f}. Command: `{command}`"]
    write_results("crop_margins", {"checkpoint": args.ckpt, "rows": rows, "minutes": round((time.time() - t0) / 60, 2),
                                   "command": command}, lines)


if __name__ == "__main__":
    main()
