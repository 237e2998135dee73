"""What int8 convolutions (``hoi-adapt export-onnx --int8``) cost in accuracy, on a trained estimator.

int8 roughly doubles E's CPU throughput (``experiments/bench_inference.py``), but it is a numerics change, so
it stays opt-in until measured on labelled data. This exports a checkpoint's E to ONNX with int8 graphs
calibrated on training crops of the world (hand-only ``source_hand`` and hand-object ``target_hoi`` images;
no test image), then scores the PyTorch checkpoint, the fp32 graph and the int8 graph on held-out splits
with the ``synthetic`` protocol.

Usage::

    .venv/bin/python experiments/int8_accuracy.py --ckpt <bench stage-0 last.ckpt> --world outputs/world/bench

Writes ``experiments/results/int8_accuracy.{json,md}``.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from pathlib import Path

from hoi_adapt.data.formats.world import image_path, load_annotations
from hoi_adapt.deploy.onnx_export import export_onnx
from hoi_adapt.eval.runner import ModelSpec, evaluate_checkpoints
from hoi_adapt.utils.bench import write_results

CALIBRATION = (("source_hand", "hand", 32), ("target_hoi", "hoi", 32))  # (split, image kind, images)
SPLITS = ("source_hand_test", "target_test")
COLUMNS = (("rootrel_mpjpe_mm", "MPJPE mm"), ("pa_mpjpe_mm", "PA-MPJPE mm"), ("rootrel_auc", "AUC 20-50"))


def calibration_folder(world: str, folder: Path) -> Path:
    """Evenly spaced training crops of the world, copied into ``folder`` (export-onnx --int8 reads a folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, kind, count in CALIBRATION:
        n = len(load_annotations(world, split)["index"])
        for i in range(0, n, max(1, n // count))[:count]:
            shutil.copyfile(image_path(world, split, kind, i), folder / f"{split}_{i:06d}.png")
    return folder


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="estimator checkpoint")
    parser.add_argument("--world", default="outputs/world/bench")
    parser.add_argument("--out", default="outputs/experiments/int8_accuracy", help="export folder")
    parser.add_argument("--limit", type=int, default=None, help="score this many evenly spaced images per split")
    args = parser.parse_args(argv)
    command = "python experiments/int8_accuracy.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    out = Path(args.out)
    report = export_onnx(args.ckpt, out / "onnx", int8_calibration=calibration_folder(args.world, out / "calibration"))
    models = [ModelSpec(Path(args.ckpt), label="PyTorch"), ModelSpec(out / "onnx", label="ONNX fp32"),
              ModelSpec(out / "onnx", label="ONNX int8", precision="int8")]
    rows = {split: {label: r["metrics"] for label, r in
                    evaluate_checkpoints(models, "synthetic", args.world, split, limit=args.limit, progress=False)["rows"].items()}
            for split in SPLITS}
    lines = ["# int8 convolutions: accuracy on a trained estimator", "",
             f"Checkpoint `{args.ckpt}`; int8 graphs calibrated on {report['int8']['calibration']['images']} training crops "
             f"({', '.join(f'{s} {k}' for s, k, _ in CALIBRATION)}); scored with the `synthetic` protocol.", ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| runtime | " + " | ".join(c[1] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
        for label, m in rows[split].items():
            lines.append(f"| {label} | " + " | ".join(f"{m[k]:.3f}" if "auc" in k else f"{m[k]:.2f}" for k, _ in COLUMNS) + " |")
        delta = rows[split]["ONNX int8"]["rootrel_mpjpe_mm"] - rows[split]["PyTorch"]["rootrel_mpjpe_mm"]
        lines += ["", f"int8 - PyTorch: {delta:+.2f} mm MPJPE.", ""]
    dev = report["int8"]["deviation_vs_torch"]["joints3d"]
    lines.append(f"Per-crop deviation of int8 joints from PyTorch on {report['int8']['held_out_images']} held-out calibration "
                 f"crops: mean {dev['mean_abs'] * 1e3:.2f} mm, max {dev['max_abs'] * 1e3:.1f} mm. Command: `{command}`")
    write_results("int8_accuracy", {"rows": rows, "export": report, "command": command}, lines)


if __name__ == "__main__":
    main()
