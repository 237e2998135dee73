"""Benchmark ``hoi-adapt export``: exported samples per second on this machine, and where the time goes.

Exports ``--limit`` samples of the synthetic world's ``target_hoi`` split (``outputs/world/demo``, 128 px,
if it exists; else a small 128-px world generated into a temporary folder) with the adapted pipeline
(``adapt=True``), batch ``--batch`` on the CPU, through the real entry point :func:`export_dataset`
(Lightning predict loop, writer, merge, FreiHAND variant, sheet, manifest). The checkpoint has the demo
configuration's networks (``configs/adapt/demo.yaml``: ResNet-18 estimator, compositing U-Net 32/5 generator, 64-px
mesh guidance) with seeded untrained weights: speed does not depend on the weight values.

It then times the stages of one batch in-process (round-robin, min over rounds) (data loading, the two estimator passes, the guidance
render, the generator, the silhouette render for the mask and confidence, encoding + atomic writes) to
show where the time goes. Writes ``experiments/results/bench_export.json`` and ``.md``.

Usage::

    .venv/bin/python experiments/bench_export.py [--limit 128] [--batch 16] [--world outputs/world/demo] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_render import load_average  # noqa: E402

from hoi_adapt.models.config import adapt_networks_from_config  # noqa: E402
from hoi_adapt.utils.bench import RESULTS, machine_info, write_result_files  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZE = 128
REFERENCE = "(reference: full shaded untiled render, not used)"
TOTAL = "ExportModule total (all of the above but loading)"


def demo_checkpoint(path: Path) -> Path:
    """Networks of configs/adapt/demo.yaml (guidance at half the input size), seeded, as an adaptation checkpoint."""
    from hoi_adapt.checkpoints.format import write_network_checkpoint

    return write_network_checkpoint(path, "adapt", adapt_networks_from_config(REPO / "configs/adapt/demo.yaml", SIZE), input_size=SIZE)


def resolve_world(arg: str | None, tmp: Path) -> tuple[Path, str]:
    from hoi_adapt.synth.config import world_config_from_dict
    from hoi_adapt.synth.generator import generate_world, load_world_config

    world = Path(arg) if arg else REPO / "outputs/world/demo"
    if (world / "target_hoi" / "annotations.npz").is_file():
        return world, str(world)
    cfg = load_world_config(REPO / "configs/synth/tiny.yaml")
    cfg = world_config_from_dict({**cfg.to_dict(), "image_size": SIZE})
    out = generate_world(cfg, tmp / "world", workers=1, progress=False)
    return out, f"generated from configs/synth/tiny.yaml at {SIZE} px (outputs/world/demo not found)"


def stage_times(ckpt: Path, world: Path, batch: int, repeats: int, out: Path) -> dict[str, float]:
    """Seconds per batch of each stage, in the order the export runs them.

    The stages are timed round-robin, ``repeats`` rounds, and each stage's minimum is kept: on a shared
    machine other jobs only ever add time, and interleaving gives every stage the same chances of a quiet
    moment.
    """
    from torch.utils.data import default_collate

    from hoi_adapt.checkpoints.predictor import load_predictor
    from hoi_adapt.export.module import ExportModule, mask_iou, render_silhouette
    from hoi_adapt.export.run import build_source
    from hoi_adapt.export.writer import write_batch
    from hoi_adapt.models.pipeline import MeshGuidance
    from hoi_adapt.render.renderer import HandObjectRenderer

    source = build_source("synthetic", world, None, SIZE)
    predictor = load_predictor(ckpt, adapt=True)
    pipe, est = predictor.model, predictor.estimator
    faces = est.hand_model.faces
    module = ExportModule(predictor).eval()
    shaded = HandObjectRenderer(faces_per_pixel=1)
    load = lambda: default_collate([source.dataset[i] for i in range(batch)])  # noqa: E731
    b = load()
    image, K = b["image"], b["K"]
    with torch.inference_mode():
        first = est(image, K)
        skin = torch.sigmoid(first.mask_logits)
        guide = pipe.guidance(first.vertices, faces, K, image, skin)
        translated = pipe.generator(image, MeshGuidance.as_input(guide))
        final = est(translated, K)
        sil = render_silhouette(final.vertices, faces, K, (SIZE, SIZE))
        fields = module(image, K)
    pred = {k: v.numpy() for k, v in fields.items()}
    pred.update(position=np.arange(batch), source_dataset=["synthetic"] * batch, source_sequence=["target_hoi"] * batch,
                source_frame=np.arange(batch), source_index=np.arange(batch),
                source_was_flipped=np.zeros(batch, np.float32), source_is_hand_object=np.ones(batch, np.float32),
                source_joints3d=np.zeros((batch, 21, 3), np.float32), source_joints3d_valid=np.zeros((batch, 21), np.float32))
    stages: dict[str, Callable[[], Any]] = {
        "load + collate": load,
        "estimator pass 1": lambda: est(image, K),
        f"guidance render ({pipe.guidance.guidance_size} px, 16-px tiles)": lambda: pipe.guidance(first.vertices, faces, K, image, skin),
        "generator": lambda: pipe.generator(image, MeshGuidance.as_input(guide)),
        "estimator pass 2": lambda: est(translated, K),
        "mask silhouette (raster only, 16-px tiles)": lambda: render_silhouette(final.vertices, faces, K, (SIZE, SIZE)),
        "confidence (IoU, agreement)": lambda: mask_iou(sil, sil),
        "write PNG+JPEG files and shard": lambda: write_batch(out, pred),
        TOTAL: lambda: module(image, K),
        REFERENCE: lambda: shaded(final.vertices, faces, K),
    }
    best = {name: float("inf") for name in stages}
    with torch.inference_mode():
        for _ in range(repeats):
            for name, fn in stages.items():
                t0 = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - t0)
    return best


def cpu_pressure() -> float | None:
    """Linux PSI ``some avg10`` of the CPU: % of the last 10 s in which runnable tasks waited for a CPU."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(dict(kv.split("=") for kv in line.split()[1:])["avg10"])
    except (OSError, KeyError, ValueError, IndexError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--world", default=None)
    ap.add_argument("--repeats", type=int, default=6, help="round-robin rounds of the stage timings (min is reported)")
    ap.add_argument("--export-repeats", type=int, default=2, help="end-to-end exports (fresh folders)")
    args = ap.parse_args(argv)

    from hoi_adapt.export import export_dataset

    load_start, pressure_start = load_average(), cpu_pressure()
    with tempfile.TemporaryDirectory(prefix="bench_export_") as tmp_s:
        tmp = Path(tmp_s)
        world, world_note = resolve_world(args.world, tmp)
        ckpt = demo_checkpoint(tmp / "adapt.ckpt")
        runs = []
        for r in range(max(1, args.export_repeats)):
            t0 = time.perf_counter()
            manifest = export_dataset(ckpt, "synthetic", world, tmp / f"export{r}", batch_size=args.batch,
                                      limit=args.limit, progress=False)
            runs.append((time.perf_counter() - t0, manifest["run"]))
        total, run = min(runs, key=lambda tr: tr[0])  # the least disturbed run on a shared machine
        stages = stage_times(ckpt, world, args.batch, args.repeats, tmp / "stages")
    load_end, pressure_end = load_average(), cpu_pressure()
    n = manifest["count"]
    result = {
        "command": "python experiments/bench_export.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(), "load_average_at_start": load_start, "load_average_at_end": load_end,
        "cpu_pressure_avg10_at_start": pressure_start, "cpu_pressure_avg10_at_end": pressure_end,
        "world": world_note, "samples": n, "batch_size": args.batch, "image_size": SIZE, "adapt": True,
        "accelerator": "cpu", "devices": 1,
        "networks": f"configs/adapt/demo.yaml: MeshEstimator(resnet18, 3 iterations), CompositingGenerator(8, 32, 5), "
                    f"MeshGuidance({SIZE // 2})",
        "end_to_end_seconds": round(total, 2), "end_to_end_samples_per_second": round(n / total, 3),
        "predict_loop_seconds": run["predict_seconds"], "predict_loop_samples_per_second": run["samples_per_second"],
        "setup_and_finalize_seconds": round(total - run["predict_seconds"], 2),
        "all_runs": [{"end_to_end_seconds": round(t, 2), "predict_loop_seconds": r["predict_seconds"],
                      "predict_loop_samples_per_second": r["samples_per_second"]} for t, r in runs],
        "stage_seconds_per_batch": {k: round(v, 4) for k, v in stages.items()},
    }
    per_batch = stages[TOTAL] + stages["load + collate"] + stages["write PNG+JPEG files and shard"]
    parts = {k: v for k, v in stages.items() if k not in (TOTAL, REFERENCE)}
    rows = "\n".join(f"| {k} | {v:.3f} | {1000 * v / args.batch:.1f} | {100 * v / per_batch:.0f} % |" for k, v in parts.items())
    rows += f"\n| **one batch, as the export runs it** (loading + ExportModule + writing) | {per_batch:.3f} | " \
            f"{1000 * per_batch / args.batch:.1f} | 100 % |"
    rows += f"\n| {REFERENCE} | {stages[REFERENCE]:.3f} | {1000 * stages[REFERENCE] / args.batch:.1f} | - |"
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:3]
    top_text = ", ".join(f"{k} ({100 * v / per_batch:.0f} %)" for k, v in top)
    result["largest_stages"] = top_text
    m = result["machine"]
    md = f"""# Export benchmark (`experiments/bench_export.py`)

Command: `{result['command'].strip()}`  
Machine: {m['cpu']}, {m['cores']} CPUs, torch threads {m['torch_threads']}, CUDA: {m['cuda']}; torch {m['torch']}, pytorch3d {m['pytorch3d']}, Python {m['python']}  
Workload: {n} samples of `target_hoi` ({world_note}), {SIZE} px, batch {args.batch}, CPU, 1 process, adapt on
(E -> R -> G -> E), FreiHAND variant on, meshes off; networks of {result['networks']} (seeded, untrained).
Load average at start {load_start}, at end {load_end}; CPU pressure (PSI some avg10, % of time tasks waited for
a CPU) {pressure_start} at start, {pressure_end} at end. The machine is shared: under contention every number
here drops several-fold (runs of this script under ~80 % CPU pressure measured about 2.5 samples/s).

**{result['end_to_end_samples_per_second']:.2f} exported samples/s end to end** ({total:.1f} s for {n} samples, including
checkpoint loading, source indexing, the merge, FreiHAND JSON, sheet and manifest);
**{run['samples_per_second']:.2f} samples/s in the predict loop** ({run['predict_seconds']:.1f} s). Best of
{len(runs)} exports into fresh folders; all runs (end-to-end s / predict-loop samples/s):
{", ".join(f"{t:.1f} s / {r['samples_per_second']:.2f}" for t, r in runs)}.

Where the time goes (one batch of {args.batch}, in-process, min of {args.repeats} round-robin rounds). Largest: {top_text}.

| stage | s / batch | ms / sample | share of a batch |
|---|---|---|---|
{rows}

Notes:
- The stages are the pipeline's own (two ResNet-18 estimator passes at {SIZE} px, the {SIZE // 2}-px guidance
  render, the compositing U-Net generator) plus what the export adds: the final mesh's silhouette (mask and confidence),
  PNG/JPEG encoding with atomic writes, and the shard.
- The mask silhouette is rasterised only (no shading) with 16-px screen tiles on CPU
  (`hoi_adapt/export/module.py: render_silhouette`); the reference row is what a full shaded, untiled
  `HandObjectRenderer` pass of the same meshes costs.
- The guidance render belongs to the adapted pipeline (`MeshGuidance`: silhouette, depth and shaded hand
  in one hard pass, rasterised with 16-px screen tiles on CPU).
- Several processes (`--devices N`, DDP, gloo on CPU) split the batches between them; on this 2-core
  machine that adds no compute. Data loading runs in the main process here (`--num-workers 0`); with
  workers it overlaps the networks.
"""
    write_result_files(RESULTS / "bench_export.json", result, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
