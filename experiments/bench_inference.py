"""Inference throughput: the estimator alone and the full adapted pipeline, batch 1 and 32, 128 px, CPU.

Targets (issue 8): estimator alone >= 62.5 images/s at batch 1; full pipeline (E -> R -> G -> E) >= 15
images/s at batch 1. Networks are the shipped defaults with random weights (speed does not depend on the
weights; they come from ``configs/adapt/demo.yaml``, guidance at half the input size). Also reports a per-stage breakdown of the pipeline at batch 1 so misses can be explained.

Usage::

    .venv/bin/python experiments/bench_inference.py [--size 128] [--repeats 30] [--threads N]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from hoi_adapt.models.config import adapt_networks_from_config
from hoi_adapt.models.pipeline import AdaptPipeline, MeshGuidance
from hoi_adapt.utils.bench import REPO, write_results


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    s = args.size
    nets = adapt_networks_from_config(REPO / "configs/adapt/demo.yaml", s)
    estimator = nets["estimator"]
    pipeline = AdaptPipeline(estimator, nets["generator"], nets["guidance"]).eval()
    rows = []
    for batch in (1, 32):
        image = torch.rand(batch, 3, s, s)
        K = torch.tensor([[2.2 * s, 0, (s - 1) / 2], [0, 2.2 * s, (s - 1) / 2], [0, 0, 1.0]]).expand(batch, 3, 3).contiguous()
        reps = args.repeats if batch == 1 else max(3, args.repeats // 6)
        with torch.inference_mode():
            t_est = timed(lambda: estimator(image, K), reps)
            t_pipe = timed(lambda: pipeline(image, K), reps)
        rows.append({"batch": batch, "estimator_img_s": batch / t_est, "pipeline_img_s": batch / t_pipe,
                     "estimator_ms_per_batch": 1000 * t_est, "pipeline_ms_per_batch": 1000 * t_pipe})
    # Breakdown of the pipeline at batch 1.
    image = torch.rand(1, 3, s, s)
    K = torch.tensor([[[2.2 * s, 0, (s - 1) / 2], [0, 2.2 * s, (s - 1) / 2], [0, 0, 1.0]]])
    with torch.inference_mode():
        first = estimator(image, K)
        skin = torch.sigmoid(first.mask_logits)
        faces = estimator.hand_model.faces
        guidance = pipeline.guidance(first.vertices, faces, K, image, skin)
        g_in = MeshGuidance.as_input(guidance)
        breakdown = {
            "estimator_ms": 1000 * timed(lambda: estimator(image, K), args.repeats),
            "render_guidance_ms": 1000 * timed(lambda: pipeline.guidance(first.vertices, faces, K, image, skin), args.repeats),
            "generator_ms": 1000 * timed(lambda: pipeline.generator(image, g_in), args.repeats),
            "backbone_ms": 1000 * timed(lambda: estimator.backbone(image), args.repeats),
            "hand_model_ms": 1000 * timed(lambda: estimator.hand_model(first.global_orient, first.hand_pose, first.betas), args.repeats),
        }
    lines = [f"# Inference throughput, {s} px, CPU", "", "| batch | estimator img/s | full pipeline img/s |", "|---|---|---|"]
    lines += [f"| {r['batch']} | {r['estimator_img_s']:.1f} | {r['pipeline_img_s']:.1f} |" for r in rows]
    lines += ["", "Batch-1 breakdown (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items()), "",
              f"Networks: configs/adapt/demo.yaml (estimator {type(estimator).__name__}, generator "
              f"{type(pipeline.generator).__name__}, guidance {pipeline.guidance.guidance_size} px), seeded, untrained.",
              "Targets: estimator >= 62.5 img/s, pipeline >= 15 img/s at batch 1.",
              f"Command: `.venv/bin/python experiments/bench_inference.py --size {s}`"]
    write_results("bench_inference", {"image_size": s, "rows": rows, "breakdown_batch1": breakdown,
                                      "targets": {"estimator_batch1_img_s": 62.5, "pipeline_batch1_img_s": 15.0}}, lines)


if __name__ == "__main__":
    main()
