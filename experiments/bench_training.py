"""Training throughput per phase (images/s) and peak memory, on the synthetic world, CPU by default.

Phases: stage 0 (estimator, with and without the rendered-silhouette loss), the adaptation's G/D phase and
its E phase. Each measurement runs in its own process (so peak RSS is per phase) with the shipped demo
configurations' networks and batch sizes; images/s counts the input images of all streams in a step.

``--device cuda`` (or ``cuda:N``) runs the same phases on a GPU (Lightning's ``gpu`` accelerator; the timed
steps are bracketed by ``torch.cuda.synchronize()``, peak GPU memory is added) and writes
``gpu_training_<size>px.{json,md}`` instead, so GPU numbers never replace the CPU ones (an explicit
``--device cpu`` writes ``cpu_training_<size>px``). With ``--device`` a failing phase is recorded and the
others still run (the exit status is 1). Without it the benchmark is the CPU one, as before.

Usage::

    .venv/bin/python experiments/bench_training.py [--size 64] [--steps 12] [--world outputs/world/demo]
    .venv/bin/python experiments/bench_training.py --device cuda --size 128 --steps 20 --workers 4
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PHASES = ("stage0_silhouette", "stage0_no_silhouette", "adapt_gd", "adapt_est")


class Timer:
    """Lightning callback measuring the wall time of training steps after a warm-up."""

    def __init__(self, warmup: int) -> None:
        import pytorch_lightning as pl

        class _CB(pl.Callback):
            def __init__(cb) -> None:
                cb.times: list[float] = []
                cb.images: list[int] = []

            def on_train_batch_start(cb, trainer, pl_module, batch, batch_idx) -> None:
                _sync(pl_module)
                cb.t0 = time.perf_counter()

            def on_train_batch_end(cb, trainer, pl_module, outputs, batch, batch_idx) -> None:
                _sync(pl_module)
                if batch_idx >= warmup:
                    cb.times.append(time.perf_counter() - cb.t0)
                    streams = batch.values() if isinstance(batch, dict) and "image" not in batch else [batch]
                    cb.images.append(sum(b["image"].shape[0] for b in streams if b is not None))

        self.callback = _CB()


def _sync(pl_module) -> None:
    """Wait for queued CUDA work, so a step's wall time is its compute (no-op on CPU)."""
    if pl_module.device.type == "cuda":
        import torch

        torch.cuda.synchronize(pl_module.device)


def _accelerator(device: str | None) -> tuple[str, int | list[int]]:
    """Lightning ``accelerator`` and ``devices`` of ``--device`` (None: CPU, the default)."""
    from hoi_adapt.utils.bench import bench_device

    if device is None:
        return "cpu", 1
    parsed = bench_device(device)
    if parsed.type == "cpu":
        return "cpu", 1
    return "gpu", [parsed.index] if parsed.index is not None else 1


def results_name(size: int, device: str | None) -> str:
    """``bench_training_<size>px`` (default CPU run), ``gpu_training_<size>px`` (--device cuda), ``cpu_training_<size>px``."""
    if device is None:
        return f"bench_training_{size}px"
    return f"{'cpu' if _accelerator(device)[0] == 'cpu' else 'gpu'}_training_{size}px"


def run_phase(phase: str, world: str, size: int, steps: int, device: str | None = None, workers: int = 2) -> dict[str, float]:
    import pytorch_lightning as pl
    import torch

    from hoi_adapt.data.streams import StreamSpec
    from hoi_adapt.lit.adapt_module import AdaptModule
    from hoi_adapt.lit.datamodule import HOIDataModule
    from hoi_adapt.lit.estimator_module import EstimatorModule
    from hoi_adapt.lit.schedule import AdaptSchedule
    from hoi_adapt.losses.estimator import EstimatorLossWeights
    from hoi_adapt.models.discriminator import PatchDiscriminator
    from hoi_adapt.models.estimator import MeshEstimator
    from hoi_adapt.models.generator import CompositingGenerator
    from hoi_adapt.models.pipeline import MeshGuidance

    torch.manual_seed(0)
    warmup = 2
    timer = Timer(warmup)
    if phase.startswith("stage0"):
        weights = EstimatorLossWeights(silhouette=0.0 if phase.endswith("no_silhouette") else 1.0)
        module = EstimatorModule(MeshEstimator(), loss_weights=weights, silhouette_size=24 if size <= 64 else 32)
        train = {"hand_only": StreamSpec(split="source_hand"), "pairs_hand": StreamSpec(split="source_pairs", batch_size=16)}
        batch = 32
    else:
        gd = phase == "adapt_gd"
        module = AdaptModule(MeshEstimator(), CompositingGenerator(in_channels=8), PatchDiscriminator(),
                             MeshGuidance(guidance_size=size // 2),
                             schedule=AdaptSchedule(rounds=1, gd_steps=steps + warmup if gd else 0, est_steps=0 if gd else steps + warmup),
                             silhouette_size=24 if size <= 64 else 32)
        train = {"hand_only": StreamSpec(split="source_hand"),
                 "pairs": StreamSpec(split="source_pairs", image="hoi", pair=True, amodal_masks=True),
                 "hoi": StreamSpec(split="target_hoi", image="hoi", labels=False)}
        batch = 12
    dm = HOIDataModule(world=world, image_size=size, batch_size=batch, num_workers=workers, augment={}, train=train,
                       val={"v": StreamSpec(split="source_hand_test")})
    accelerator, devices = _accelerator(device)
    trainer = pl.Trainer(max_steps=steps + warmup if phase.startswith("stage0") else -1, max_epochs=-1, accelerator=accelerator,
                         devices=devices, logger=False, enable_checkpointing=False, enable_progress_bar=False, limit_val_batches=0,
                         num_sanity_val_steps=0, callbacks=[timer.callback])
    trainer.fit(module, dm)
    cb = timer.callback
    seconds = sum(cb.times)
    result = {"images_per_s": sum(cb.images) / seconds, "s_per_step": seconds / len(cb.times),
              "images_per_step": sum(cb.images) / len(cb.images), "steps_timed": len(cb.times),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if accelerator == "gpu":  # (fit's teardown has moved the module back to the CPU)
        result["peak_gpu_mb"] = torch.cuda.max_memory_allocated(trainer.strategy.root_device) / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="network input size (the CPU demo default is 64)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--world", default="outputs/world/demo")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N; given, results go to <cpu|gpu>_training_<size>px (default: CPU, bench_training_<size>px)")
    parser.add_argument("--workers", type=int, default=2, help="data-loader workers per stream")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="folder of the result files (default experiments/results)")
    parser.add_argument("--phase", choices=PHASES, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    name = results_name(args.size, args.device)  # also validates --device
    if args.phase:  # child process
        print("RESULT " + json.dumps(run_phase(args.phase, args.world, args.size, args.steps, args.device, args.workers)))
        return
    from hoi_adapt.synth.generator import ensure_world
    from hoi_adapt.utils.bench import write_results

    ensure_world("configs/synth/demo.yaml", args.world)
    extra = ([] if args.device is None else ["--device", args.device]) + ([] if args.workers == 2 else ["--workers", str(args.workers)])
    results, failed = {}, []
    for phase in PHASES:
        cmd = [sys.executable, __file__, "--phase", phase, "--size", str(args.size), "--steps", str(args.steps), "--world", args.world, *extra]
        if args.device is None:  # the CPU benchmark: any failure ends it
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        else:  # a device check: record the failing phase (with the end of its stderr) and go on
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0 or "RESULT " not in out.stdout:
                failed.append(phase)
                results[phase] = {"error": f"exit status {out.returncode}", "stderr_tail": out.stderr[-3000:]}
                print(phase, "FAILED", results[phase]["error"], out.stderr[-3000:], sep="\n", flush=True)
                continue
        line = next(li for li in out.stdout.splitlines() if li.startswith("RESULT "))
        results[phase] = json.loads(line[len("RESULT "):])
        print(phase, results[phase], flush=True)
    accelerator = _accelerator(args.device)[0]
    where = "CPU" if accelerator == "cpu" else f"GPU ({args.device})"
    gpu = accelerator == "gpu"
    lines = [f"# Training throughput per phase, {args.size} px, {where}", "",
             "| phase | images/s | s/step | images/step | peak RSS (MB) |" + (" peak GPU (MB) |" if gpu else ""),
             "|---|---|---|---|---|" + ("---|" if gpu else "")]
    for p, r in results.items():
        if "error" in r:
            lines.append(f"| {p} | failed ({r['error']}) | | | |" + (" |" if gpu else ""))
            continue
        lines.append(f"| {p} | {r['images_per_s']:.1f} | {r['s_per_step']:.2f} | {r['images_per_step']:.0f} | {r['peak_rss_mb']:.0f} |"
                     + (f" {r.get('peak_gpu_mb', float('nan')):.0f} |" if gpu else ""))
    command = f".venv/bin/python experiments/bench_training.py --size {args.size} --steps {args.steps}"
    if extra:
        command += " " + " ".join(extra)
    lines += ["", "images/step counts the input images of every stream (the E phase also re-estimates translations).",
              f"Command: `{command}`"]
    result = {"size": args.size, "phases": results}
    if args.device is not None:
        result.update(device=args.device, steps=args.steps, workers=args.workers, failed_phases=failed)
    write_results(name, result, lines, folder=args.results_dir)
    if failed:
        sys.exit(f"failed phases: {', '.join(failed)}")


if __name__ == "__main__":
    main()
