"""Where the adapted rows' accuracy comes from: first vs final estimate, and the final estimate from perfect guidance.

For every adapted checkpoint of a synthetic-table run (``experiments/results/adaptation_<scale>.json``) on the
labelled target-domain test set:

* ``first``: E on the hand-object image (the first pass, whose mesh R renders for G);
* ``final``: E on G's translation, the method's output;
* ``final_vs_first``: how far the final skeleton moves away from the first one (root-relative, mm) — a final
  estimate that stays close to a poor first estimate means G copies the rendered first mesh into its output;
* ``final_gt_guidance`` (mesh-guided rows only): the final estimate when R renders the *ground-truth* mesh
  instead of the first estimate, i.e. what the pipeline gives once the first pass is right;
* ``second_round`` (mesh-guided rows only): one more round at test time, R rendering the *final* estimate
  for G and E reading that translation (no training change; does a better mesh make better guidance?).

All errors are root-relative MPJPE in mm over 21 joints. Writes ``experiments/results/guidance_analysis_<scale>.{json,md}``.

Usage::

    .venv/bin/python experiments/guidance_analysis.py --scale demo
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from hoi_adapt.utils.bench import RESULTS, write_result_files

GT_MESH_TOL_MM = 2.0  # the world's stored MANO parameters must reproduce its stored joints


def _rootrel_mm(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-sample mean joint distance (mm) after moving both skeletons' wrists to the origin."""
    return (1000 * ((a - a[:, :1]) - (b - b[:, :1])).norm(dim=-1).mean(dim=-1)).numpy()


@torch.no_grad()
def analyse(ckpt: Path, world: Path, split: str) -> dict[str, float]:
    from hoi_adapt.checkpoints.load import checkpoint_input_size, load_pipeline, read_checkpoint
    from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
    from hoi_adapt.models.pipeline import MeshGuidance

    size = checkpoint_input_size(read_checkpoint(ckpt)) or 128
    pipe = load_pipeline(ckpt)
    est, hm = pipe.estimator, pipe.estimator.hand_model
    data = SyntheticHandDataset(world, split, image="hoi", labels=True, out_size=size)
    errs: dict[str, list[np.ndarray]] = {"first": [], "final": [], "final_vs_first": [], "final_gt_guidance": [],
                                         "second_round": []}
    for batch in DataLoader(data, batch_size=50):
        image, K, gt = batch["image"], batch["K"], batch["joints3d"]
        first = est(image, K)
        translated, _, _ = pipe.translate(image, K, first)
        final = est(translated, K)
        errs["first"].append(_rootrel_mm(first.joints3d, gt))
        errs["final"].append(_rootrel_mm(final.joints3d, gt))
        errs["final_vs_first"].append(_rootrel_mm(final.joints3d, first.joints3d))
        if pipe.guidance is not None:
            errs["second_round"].append(_rootrel_mm(est(pipe.translate(image, K, final)[0], K).joints3d, gt))
            pose = batch["mano_pose"]
            gt_verts = hm(pose[:, :3], pose[:, 3:], batch["mano_betas"], batch["mano_transl"]).vertices
            mismatch = float(1000 * (hm.joints_from_vertices(gt_verts) - gt).norm(dim=-1).max())
            if mismatch > GT_MESH_TOL_MM:
                raise RuntimeError(f"{world}/{split}: stored MANO parameters miss the stored joints by {mismatch:.1f} mm; "
                                   "was the world made with another hand model?")
            guide = pipe.guidance(gt_verts, hm.faces, K, image, torch.sigmoid(first.mask_logits))
            errs["final_gt_guidance"].append(_rootrel_mm(est(pipe.generator(image, MeshGuidance.as_input(guide)), K).joints3d, gt))
    return {key: float(np.concatenate(v).mean()) for key, v in errs.items() if v} | {"samples": len(data)}


def mean_over_seeds(ckpts: str | dict[str, str], world: Path, split: str) -> dict[str, float]:
    """:func:`analyse` of a row's checkpoint, or the mean over its seeds' checkpoints (``{seed: ckpt}``)."""
    runs = [analyse(Path(c), world, split) for c in (ckpts.values() if isinstance(ckpts, dict) else [ckpts])]
    return {key: float(np.mean([r[key] for r in runs])) for key in runs[0]} | {"seeds": len(runs)}


def table_run(description: str, scale: str, split: str, argv: list[str] | None) -> tuple[argparse.Namespace, dict, Path]:
    """``--scale/--world/--split`` of a script that re-scores a synthetic-table run's checkpoints: the arguments,
    the table's JSON (``experiments/results/adaptation_<scale>.json``) and its world."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--scale", default=scale)
    parser.add_argument("--world", default=None, help="synthetic world (default: the table's, outputs/world/<scale>)")
    parser.add_argument("--split", default=split)
    args = parser.parse_args(argv)
    table = json.loads((RESULTS / f"adaptation_{args.scale}.json").read_text())
    return args, table, Path(args.world or f"outputs/world/{args.scale}")


def main(argv: list[str] | None = None) -> int:
    args, table, world = table_run(__doc__.splitlines()[0], "demo", "target_test", argv)
    adapted = [label for label in table["rows"] if label not in ("baseline", "oracle")]
    rows = {label: mean_over_seeds(table["checkpoints"][label], world, args.split) for label in adapted}
    fmt = lambda v: f"{v:.1f}" if v is not None else "-"  # noqa: E731
    lines = [f"# Guidance analysis ({args.scale} scale, `{args.split}`): root-relative MPJPE, mm (mean over each row's seeds)", "",
             "| row | first pass E(x) | final E(G(x, R(E(x)))) | final vs first | final with ground-truth guidance "
             "| a second round (guidance from the final mesh) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {label} | {fmt(r['first'])} | {fmt(r['final'])} | {fmt(r['final_vs_first'])} | {fmt(r.get('final_gt_guidance'))} "
              f"| {fmt(r.get('second_round'))} |" for label, r in rows.items()]
    lines += ["", f"Command: `.venv/bin/python experiments/guidance_analysis.py --scale {args.scale}`"]
    write_result_files(RESULTS / f"guidance_analysis_{args.scale}.json", {"split": args.split, "rows": rows}, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
