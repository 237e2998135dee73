"""What the skeleton definition does to accuracy on the synthetic world.

A posed MANO hand has two 21-joint skeletons (``hoi_adapt.hand.model.SKELETONS``): ``mesh`` (J_regressor on the
posed mesh plus fingertip vertices; the method's, and the definition of the synthetic world's labels) and
``kinematic`` (MANO's skinning joints plus fingertips; the definition of FreiHAND's, HO-3D's and ObMan's labels).
For one estimator checkpoint this scores, per split, root-relative MPJPE of

* its mesh skeleton against the labels' mesh skeleton (what evaluation reports on the synthetic world),
* its kinematic skeleton (its MANO parameters re-posed) against the labels' kinematic skeleton (the same
  estimate, scored as evaluation scores a kinematic dataset),
* its mesh skeleton against the kinematic labels (the mistake of mixing definitions),

and the gap between the two definitions of the ground truth itself.

Usage::

    .venv/bin/python experiments/skeleton_definitions.py --ckpt <stage-0 last.ckpt> --world outputs/world/bench

Writes ``experiments/results/skeleton_definitions.{json,md}``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from hoi_adapt.checkpoints.load import checkpoint_input_size, load_estimator, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.models.estimator import skeleton_of
from hoi_adapt.utils.bench import write_results

SPLITS = {"source_hand_test": "hand", "target_test": "hoi"}


def root_relative_mm(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-joint distance after moving joint 0 (the wrist) of each skeleton to the origin, millimetres."""
    return float(np.linalg.norm((a - a[:, :1]) - (b - b[:, :1]), axis=-1).mean() * 1000.0)


def score_split(estimator: torch.nn.Module, world: str, split: str, image: str, size: int, limit: int) -> dict[str, float]:
    ds = SyntheticHandDataset(world, split, image=image, out_size=size)
    ds = Subset(ds, range(min(limit, len(ds))))
    hand = estimator.hand_model
    pred = {"mesh": [], "kinematic": []}
    gt = {"mesh": [], "kinematic": []}
    with torch.no_grad():
        for batch in DataLoader(ds, batch_size=32):
            out = estimator(batch["image"], batch["K"])
            for definition in pred:
                pred[definition].append(skeleton_of(estimator, out, definition).double().numpy())
            pose = batch["mano_pose"]
            posed = hand(pose[:, :3], pose[:, 3:], batch["mano_betas"], batch["mano_transl"])
            gt["kinematic"].append(hand.skeleton(posed, "kinematic").double().numpy())
            gt["mesh"].append(batch["joints3d"].double().numpy())
            check = hand.skeleton(posed, "mesh").double().numpy()
            if np.abs(check - gt["mesh"][-1]).max() > 2e-3:  # the labels must be this hand model's mesh skeleton
                raise SystemExit(f"{world}/{split}: the stored joints are not the mesh skeleton of the stored MANO "
                                 "parameters under this checkpoint's hand model (another hand model?)")
    p = {k: np.concatenate(v) for k, v in pred.items()}
    g = {k: np.concatenate(v) for k, v in gt.items()}
    return {"samples": len(ds),
            "mesh_vs_mesh_mm": root_relative_mm(p["mesh"], g["mesh"]),
            "kinematic_vs_kinematic_mm": root_relative_mm(p["kinematic"], g["kinematic"]),
            "mesh_pred_vs_kinematic_labels_mm": root_relative_mm(p["mesh"], g["kinematic"]),
            "label_definition_gap_mm": root_relative_mm(g["mesh"], g["kinematic"]),
            "label_definition_gap_camera_frame_mm": float(np.linalg.norm(g["mesh"] - g["kinematic"], axis=-1).mean() * 1000.0),
            "label_definition_gap_max_mm": float(np.linalg.norm(g["mesh"] - g["kinematic"], axis=-1).max() * 1000.0),
            "prediction_definition_gap_mm": root_relative_mm(p["mesh"], p["kinematic"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="estimator checkpoint (stage 0)")
    parser.add_argument("--world", default="outputs/world/bench")
    parser.add_argument("--limit", type=int, default=600, help="images per split")
    args = parser.parse_args()
    t0 = time.time()
    torch.set_grad_enabled(False)
    size = checkpoint_input_size(read_checkpoint(args.ckpt)) or 64
    estimator = load_estimator(args.ckpt).eval()
    rows = {split: score_split(estimator, args.world, split, image, size, args.limit) for split, image in SPLITS.items()}
    command = "python experiments/skeleton_definitions.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines = ["# Skeleton definitions on the synthetic world", "",
             f"Estimator `{args.ckpt}` (its own definition: `{estimator.skeleton}`), world `{args.world}`, root-relative MPJPE in mm.", "",
             "| split | images | mesh vs mesh labels | kinematic vs kinematic labels | mesh vs kinematic labels (mixed) | labels: mesh vs kinematic (root-rel. / camera frame / max) | predictions: mesh vs kinematic |",
             "|---|---|---|---|---|---|---|"]
    for split, r in rows.items():
        lines.append(f"| {split} | {r['samples']} | {r['mesh_vs_mesh_mm']:.2f} | {r['kinematic_vs_kinematic_mm']:.2f} | "
                     f"{r['mesh_pred_vs_kinematic_labels_mm']:.2f} | {r['label_definition_gap_mm']:.2f} / "
                     f"{r['label_definition_gap_camera_frame_mm']:.2f} / {r['label_definition_gap_max_mm']:.2f} | {r['prediction_definition_gap_mm']:.2f} |")
    lines += ["", "Scoring one estimate in either definition against labels of the same definition gives nearly the same error; "
              "mixing the definitions adds error of the order of the gap between them.", "",
              f"Minutes: {(time.time() - t0) / 60:.1f}. Command: `{command}`"]
    write_results("skeleton_definitions", {"checkpoint": args.ckpt, "world": args.world, "estimator_skeleton": estimator.skeleton,
                                           "splits": rows, "minutes": round((time.time() - t0) / 60, 2), "command": command}, lines)


if __name__ == "__main__":
    main()
