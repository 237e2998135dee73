"""Where the solved camera puts the hand, and how often its depth floor decides (validation splits only).

E's translation is solved in closed form from its heatmap keypoints (``hoi_adapt.models.estimator.solve_translation``):
algebraic least squares, whose residuals shrink with depth as well as with fit. Where the keypoints contradict the
skeleton the solution slides towards the camera and the floor (every joint at least a third of the prior depth in
front) sets the depth instead, with x, y from the unclamped solve. This measures, per split, the share of images
whose depth the floor set and the placement errors there and elsewhere:

* root depth error (mm) and |log(predicted / true root depth)| (a hand drawn at 2x its size has ~0.69),
  signed mean of that log (negative: too close, so drawn too large),
* 2D joint error (px at the crop size) and camera-frame MPJPE (mm); root-relative MPJPE does not depend on the
  translation and is given for reference.

Usage::

    .venv/bin/python experiments/camera_placement.py --ckpt <estimator or adaptation checkpoint> --world outputs/world/demo

Writes ``experiments/results/camera_placement.{json,md}`` (``--name`` changes the file name).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import torch
from torch.utils.data import DataLoader, Subset

from hoi_adapt.checkpoints.load import checkpoint_input_size, load_estimator, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.utils.bench import write_results

SPLITS = (("target_val", "hoi"), ("target_val", "hand"))  # validation only: no test split steers a change
FLOOR_TOLERANCE_M = 1e-5


def placement_errors(estimator: torch.nn.Module, world: str, split: str, image: str, size: int, limit: int) -> dict[str, dict[str, float]]:
    """Placement errors over all images of a split and over those whose depth the floor set / did not set."""
    ds = SyntheticHandDataset(world, split, image=image, out_size=size)
    ds = Subset(ds, range(min(limit, len(ds))))
    cols: dict[str, list[torch.Tensor]] = {k: [] for k in ("floored", "depth_mm", "log_scale", "px", "camera_mm", "root_rel_mm")}
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=32):
            out = estimator(batch["image"], batch["K"])
            gt3, gt2 = batch["joints3d"], batch["joints2d"]
            # the skeleton the solve saw, in the hand's frame (both skeletons move rigidly with the translation)
            z_hand = out.joints3d[..., 2] - out.transl[:, 2:3]
            floor = estimator.depth_prior(batch["K"], size) / 3.0 - z_hand.min(dim=1).values
            cols["floored"].append((out.transl[:, 2] - floor).abs() < FLOOR_TOLERANCE_M)
            cols["depth_mm"].append(1000 * (out.joints3d[:, 0, 2] - gt3[:, 0, 2]).abs())
            cols["log_scale"].append((out.joints3d[:, 0, 2] / gt3[:, 0, 2]).log())
            cols["px"].append((out.joints2d - gt2).norm(dim=-1).mean(1))
            cols["camera_mm"].append(1000 * (out.joints3d - gt3).norm(dim=-1).mean(1))
            rel = (out.joints3d - out.joints3d[:, :1]) - (gt3 - gt3[:, :1])
            cols["root_rel_mm"].append(1000 * rel.norm(dim=-1).mean(1))
    c = {k: torch.cat(v) for k, v in cols.items()}
    floored = c.pop("floored")

    def summary(mask: torch.Tensor) -> dict[str, float]:
        n = int(mask.sum())
        if n == 0:
            return {"images": 0}
        return {"images": n, "depth_mm": float(c["depth_mm"][mask].mean()), "abs_log_scale": float(c["log_scale"][mask].abs().mean()),
                "mean_log_scale": float(c["log_scale"][mask].mean()), "px": float(c["px"][mask].mean()),
                "camera_mm": float(c["camera_mm"][mask].mean()), "root_rel_mm": float(c["root_rel_mm"][mask].mean())}

    return {"all": summary(torch.ones_like(floored)), "depth set by the floor": summary(floored), "solved depth": summary(~floored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="estimator or adaptation checkpoint (its E is measured)")
    parser.add_argument("--world", default="outputs/world/demo")
    parser.add_argument("--limit", type=int, default=600, help="images per split")
    parser.add_argument("--name", default="camera_placement", help="result file name under experiments/results")
    args = parser.parse_args()
    t0 = time.time()
    torch.set_grad_enabled(False)
    size = checkpoint_input_size(read_checkpoint(args.ckpt)) or 64
    estimator = load_estimator(args.ckpt).eval()
    rows = {f"{split} ({image})": placement_errors(estimator, args.world, split, image, size, args.limit) for split, image in SPLITS}
    command = "python experiments/camera_placement.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Camera placement of the solved translation", "", f"Estimator of `{args.ckpt}`, world `{args.world}`, {size}-px crops.", "",
             "| split | images | depth (mm) | abs log scale | mean log scale | 2D (px) | camera-frame (mm) | root-rel. (mm) |",
             "|---|---|---|---|---|---|---|---|"]
    for split, groups in rows.items():
        for group, r in groups.items():
            if r["images"]:
                lines.append(f"| {split}: {group} | {r['images']} | {r['depth_mm']:.1f} | {r['abs_log_scale']:.3f} | {r['mean_log_scale']:+.3f} | "
                             f"{r['px']:.2f} | {r['camera_mm']:.1f} | {r['root_rel_mm']:.1f} |")
            else:
                lines.append(f"| {split}: {group} | 0 | | | | | | |")
    lines += ["", "log scale = log(predicted / true root depth): a hand drawn at twice its size has -0.69; the floor puts the "
              "nearest joint at a third of the prior depth.", "", f"Minutes: {(time.time() - t0) / 60:.1f}. Command: `{command}`"]
    write_results(args.name, {"checkpoint": args.ckpt, "world": args.world, "input_size": size, "splits": rows,
                              "minutes": round((time.time() - t0) / 60, 2), "command": command}, lines)


if __name__ == "__main__":
    main()
