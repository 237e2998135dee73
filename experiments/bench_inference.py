"""Inference throughput against the MediaPipe Hands peer, measured in the same run: E alone and the adapted
pipeline, batch 1, 128 px, CPU.

Goals (issue 15): E alone >= the peer's landmark rate, and the full adapted pipeline (E -> R -> G -> E)
>= the peer's detection + landmark rate, as ratios of rates measured in the same run. Rounds interleave ours
and the peer's measurements, so load from other jobs on the machine hits both sides alike; each rate is the
median per-call time pooled over the rounds.

Ours: the shipped networks of ``configs/adapt/demo.yaml`` (seeded, untrained: speed does not depend on the
weights), guidance at half the input size, on real renders of the stand-in hand, per runtime step:
``torch``: eager PyTorch with PyTorch3D guidance; ``onnx``: E and G exported and run by ONNX Runtime, the
guidance still rendered by PyTorch3D (the ``OnnxPredictor`` that deployment uses, including the conversion to
``Predictor``'s outputs); ``onnx int8``: the same with int8 convolutions (opt-in; numerics change).

Peer (its own venv, ``make peers`` or ``$HOI_ADAPT_PEER_VENV``; one worker process per measurement, graph
loaded before timing, see ``hoi_adapt/peers/mediapipe_worker.py``): ``landmarks`` = video mode with one
tracked hand on the 128-px crops, so each timed call runs the landmark model (full, model_complexity 1) on the
tracked region and skips palm detection; ``detection+landmarks`` = static mode on the 256-px full renders,
palm detection then landmarks on every call. Only images on which MediaPipe finds the hand are used, so the
landmark model really runs. MediaPipe's inference is single-threaded on Linux (measured: ~0.85 CPU-seconds
per wall-second), hence ``--threads 1`` for ours by default.

``--device cuda`` (or ``cuda:N``, or an explicit ``cpu``) measures instead eager PyTorch only (E alone and the
adapted pipeline, same networks and renders) on that device at each of ``--batch-sizes``, with
``torch.cuda.synchronize()`` closing every timed call, and writes ``gpu_inference.{json,md}`` (``cpu_inference``
for ``--device cpu``): ONNX Runtime (CPU provider) and the MediaPipe peer (CPU) are not part of a device run.
Without ``--device`` the benchmark is the CPU one above, unchanged.

Usage::

    HOI_ADAPT_PEER_VENV=/path/.venv-peers .venv/bin/python experiments/bench_inference.py [--size 128] [--threads 1]
    .venv/bin/python experiments/bench_inference.py --device cuda --size 128 --batch-sizes 1,64
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import torch
from torch import nn

from hoi_adapt.checkpoints.format import write_network_checkpoint
from hoi_adapt.checkpoints.predictor import load_predictor
from hoi_adapt.data.image_io import read_image
from hoi_adapt.deploy.graphs import example_intrinsics
from hoi_adapt.deploy.onnx_export import export_onnx
from hoi_adapt.deploy.runtime import load_onnx_predictor
from hoi_adapt.models.config import adapt_networks_from_config
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.peers.mediapipe import install_command, peer_python, run_mediapipe, time_mediapipe
from hoi_adapt.utils.bench import REPO, RESULTS, bench_device, write_results
from hoi_adapt.utils.errors import ConfigError

PEER_MODES = ("landmarks", "detection+landmarks")


def call_times(fn: Callable[[int], object], calls: int, warmup: int = 2) -> list[float]:
    """Seconds of each of ``calls`` calls ``fn(i)`` after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(calls):
        t0 = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t0)
    return times


class TrueMeshGuidance(nn.Module):
    """The pipeline's own guidance module, given the true mesh of the crop being timed instead of E's mesh.

    Why: the networks are untrained (their speed does not depend on the weights), but the renderer's does depend
    on the mesh: PyTorch3D's CPU rasteriser costs ~5 us per face it is handed, and only faces on screen are.
    An untrained E's mesh lands partly off the crop and would flatter R; a trained E's covers the hand, like
    the true mesh. Set :attr:`current` to the true meshes (B, V, 3) of the batch before each call.
    """

    def __init__(self, guidance: MeshGuidance) -> None:
        super().__init__()
        self.inner = guidance
        self.current: torch.Tensor | None = None

    def forward(self, verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image: torch.Tensor,
                skin_prob: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        assert self.current is not None and self.current.shape == verts.shape, "set .current to the batch's true meshes"
        return self.inner(self.current, faces, K, image, skin_prob)


class PrecomputedGuidance(nn.Module):
    """Returns guidance maps rendered beforehand (set :attr:`current`): the pipeline with R's cost taken out.

    Why: a lower bound, not a runtime. Timed beside the real pipeline and the peer, it shows how many ms the
    renderer may take for the adapted pipeline to match the peer, so that budget is a measurement.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current: dict[str, torch.Tensor] | None = None

    def forward(self, verts: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, image: torch.Tensor,
                skin_prob: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        assert self.current is not None, "set .current to the batch's guidance maps"
        return self.current


def use_true_meshes(predictors: list[Any]) -> TrueMeshGuidance:
    """Swap every guided predictor's guidance (torch pipeline or ONNX) for one shared :class:`TrueMeshGuidance`."""
    shim = None
    for pred in predictors:
        holder = pred.model if hasattr(pred, "model") else pred
        if holder.guidance is not None:
            shim = shim or TrueMeshGuidance(holder.guidance)
            holder.guidance = shim
    assert shim is not None, "no guided predictor given"
    return shim


def render_hands(folder: Path, count: int, size: int) -> tuple[list[Path], list[Path], list[torch.Tensor], list[torch.Tensor]]:
    """``count`` stand-in hand renders at 2x ``size`` (the peer's full images), their ``size``-px versions, and
    each crop's true mesh (1, V, 3) and intrinsics (1, 3, 3)."""
    from hoi_adapt.data.formats.world import image_path, load_annotations
    from hoi_adapt.hand.model import HandModel
    from hoi_adapt.render.cameras import resize_intrinsics
    from hoi_adapt.synth.generator import generate_world, load_world_config

    config = folder / "world.yaml"
    config.write_text(f"seed: 0\nimage_size: {2 * size}\nchunk_size: {count}\n"
                      f"splits:\n  - {{name: source_hand, count: {count}, style: source, with_object: false}}\n")
    root = generate_world(load_world_config(config), folder / "world", workers=1, progress=False)
    full = [image_path(root, "source_hand", "hand", i) for i in range(count)]
    crops = []
    for path in full:
        crop = folder / f"crop_{path.name}"
        cv2.imwrite(str(crop), cv2.resize(cv2.imread(str(path)), (size, size), interpolation=cv2.INTER_AREA))
        crops.append(crop)
    labels = load_annotations(root, "source_hand")
    a = {k: torch.as_tensor(labels[k], dtype=torch.float32)
         for k in ("K", "mano_global_orient", "mano_hand_pose", "mano_betas", "mano_transl")}
    with torch.no_grad():
        verts = HandModel()(a["mano_global_orient"], a["mano_hand_pose"], a["mano_betas"], a["mano_transl"]).vertices
    Ks = resize_intrinsics(a["K"], (2 * size, 2 * size), (size, size))
    return full, crops, [v[None] for v in verts], [k[None] for k in Ks]


def peer_status() -> str | None:
    """None when the peer venv exists, else why not (with the command that builds it)."""
    try:
        peer_python()
    except ConfigError:
        return f"not installed ({install_command()})"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime intra-op threads (the peer uses 1)")
    parser.add_argument("--repeats", type=int, default=24, help="timed calls per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=8, help="hand images (those MediaPipe detects, of 2x as many renders)")
    parser.add_argument("--no-batch32", dest="batch32", action="store_false", help="skip the batch-32 row")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N: eager PyTorch on that device only (see above)")
    parser.add_argument("--batch-sizes", default="1,64", help="with --device: comma-separated batch sizes (default 1,64)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="folder of the result files (default experiments/results)")
    args = parser.parse_args()
    if args.device is not None:
        main_device(args)
        return
    torch.set_num_threads(args.threads)
    s = args.size
    load_start = list(os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="bench_inference_"))

    # --- ours: the demo networks as adaptation checkpoints (with and without mesh guidance), exported to ONNX ----
    full, crops, meshes, crop_Ks = render_hands(tmp, 2 * args.images, s)
    calibration = tmp / "calibration"
    calibration.mkdir()
    for crop in crops:
        (calibration / crop.name).write_bytes(crop.read_bytes())
    exports, preds = {}, {}
    for guided in (True, False):
        tag = "" if guided else "_unguided"
        ckpt = write_network_checkpoint(tmp / f"adapt{tag}.ckpt", "adapt", adapt_networks_from_config(REPO / "configs/adapt/demo.yaml", s, guided))
        exports[guided] = export_onnx(ckpt, tmp / f"onnx{tag}", adapt=True, input_size=s, int8_calibration=calibration)
        preds[guided] = (load_predictor(ckpt, adapt=True), load_onnx_predictor(tmp / f"onnx{tag}", threads=args.threads),
                         load_onnx_predictor(tmp / f"onnx{tag}", threads=args.threads, precision="int8"))
    export = exports[True]
    torch_pred, onnx_pred, onnx_int8 = preds[True]
    _, onnx_unguided, onnx_int8_unguided = preds[False]
    pipeline = torch_pred.model
    estimator = torch_pred.estimator

    missing = peer_status()
    if missing is None:  # keep the renders MediaPipe detects, so its landmark model runs on every timed call
        found = [bool(r["hands"]) for r in run_mediapipe(full, max_hands=1)]
        keep = [i for i, ok in enumerate(found) if ok][: args.images] or list(range(args.images))
    else:
        keep = list(range(args.images))
    full, crops = [full[i] for i in keep], [crops[i] for i in keep]
    meshes, crop_Ks = [meshes[i] for i in keep], [crop_Ks[i] for i in keep]
    images = load_crops(crops)
    n = len(images)
    shim = use_true_meshes([torch_pred, onnx_pred, onnx_int8])
    bound = load_onnx_predictor(tmp / "onnx", threads=args.threads, precision="int8")  # own guidance slot
    bound.guidance = PrecomputedGuidance()
    with torch.inference_mode():  # the maps the real pipeline renders for each crop (its first pass's skin mask)
        guidance_maps = []
        for i in range(n):
            shim.current = meshes[i]
            skin = torch.sigmoid(onnx_int8.estimator_graph(images[i], crop_Ks[i])["mask_logits"])
            guidance_maps.append(shim(meshes[i], onnx_int8.faces, crop_Ks[i], images[i], skin))

    def on_crop(fn: Callable[[torch.Tensor, torch.Tensor], object]) -> Callable[[int], object]:
        """``fn`` on crop ``i mod n`` with its true intrinsics, the guidance set to its true mesh."""
        def call(i: int) -> object:
            shim.current = meshes[i % n]
            bound.guidance.current = guidance_maps[i % n]
            return fn(images[i % n], crop_Ks[i % n])
        return call

    ours: dict[str, Callable[[int], object]] = {
        "E torch": on_crop(estimator),
        "E onnx": on_crop(onnx_pred.estimator_graph),
        "pipeline torch": on_crop(pipeline),
        "pipeline onnx": on_crop(onnx_pred),
        "E onnx int8": on_crop(onnx_int8.estimator_graph),
        "pipeline onnx int8": on_crop(onnx_int8),
        "pipeline onnx unguided": on_crop(onnx_unguided),
        "pipeline onnx int8 unguided": on_crop(onnx_int8_unguided),
        "pipeline onnx int8 R precomputed": on_crop(bound),
    }
    times: dict[str, list[float]] = {k: [] for k in [*ours, *PEER_MODES]}
    hands_found = {m: 0 for m in PEER_MODES}
    per_round: list[dict[str, float]] = []
    peer_repeats = max(3, args.repeats // 2)
    with torch.inference_mode():
        for _ in range(args.rounds):
            medians = {}
            for name, fn in ours.items():
                t = call_times(fn, args.repeats)
                times[name] += t
                medians[name] = statistics.median(t)
            if missing is None:
                for mode, paths in zip(PEER_MODES, (crops, full), strict=True):
                    timing = time_mediapipe(paths, mode, repeats=peer_repeats, warmup=3)
                    times[mode] += list(timing.seconds)
                    hands_found[mode] += timing.hands_found
                    medians[mode] = timing.median_s
            per_round.append(medians)

        rates = {k: 1.0 / statistics.median(v) for k, v in times.items() if v}
        shim.current = meshes[0]
        breakdown = _breakdown(estimator, pipeline, images[0], crop_Ks[0], args.repeats, onnx_pred, onnx_int8)
        pick = [i % n for i in range(32)]
        shim.current = torch.cat([meshes[i] for i in pick])
        batch32 = (_batch32(estimator, pipeline, onnx_pred, torch.cat([images[i] for i in pick]), torch.cat([crop_Ks[i] for i in pick]))
                   if args.batch32 else None)

    peer = {m: ({"img_s": rates[m], "ms": 1000 / rates[m], "calls": len(times[m]), "calls_with_hand": hands_found[m]}
                if missing is None else missing) for m in PEER_MODES}
    variants = {"torch": ("E torch", "pipeline torch"), "onnx": ("E onnx", "pipeline onnx"),
                "onnx int8 (opt-in, numerics change)": ("E onnx int8", "pipeline onnx int8"),
                "onnx, G without mesh guidance": ("E onnx", "pipeline onnx unguided"),
                "onnx int8, G without mesh guidance": ("E onnx int8", "pipeline onnx int8 unguided"),
                "bound: onnx int8, R precomputed (not a runtime)": ("E onnx int8", "pipeline onnx int8 R precomputed")}
    table = {}
    for variant, (e_key, p_key) in variants.items():
        row: dict[str, Any] = {"estimator_img_s": rates[e_key], "pipeline_img_s": rates[p_key]}
        if missing is None:
            row["estimator_vs_peer_landmarks"] = rates[e_key] / rates["landmarks"]
            row["pipeline_vs_peer_detection_landmarks"] = rates[p_key] / rates["detection+landmarks"]
            row["per_round_ratios"] = [[r["landmarks"] / r[e_key], r["detection+landmarks"] / r[p_key]] for r in per_round]
        table[variant] = row

    r_budget = None
    if missing is None:  # ms R may take (peer minus the pipeline without R) and what it takes inside the int8 pipeline
        bound_ms = 1000 / rates["pipeline onnx int8 R precomputed"]
        r_budget = {"peer_detection_landmarks_ms": 1000 / rates["detection+landmarks"], "pipeline_int8_ms": 1000 / rates["pipeline onnx int8"],
                    "pipeline_int8_without_R_ms": bound_ms, "R_budget_ms": 1000 / rates["detection+landmarks"] - bound_ms,
                    "R_in_pipeline_ms": 1000 / rates["pipeline onnx int8"] - bound_ms}

    command = f"HOI_ADAPT_PEER_VENV=... .venv/bin/python experiments/bench_inference.py --size {s} --threads {args.threads}"
    lines = [f"# Inference throughput vs MediaPipe Hands, {s} px, batch 1, CPU, {args.threads} thread(s), same run", "",
             "| runtime | E img/s | E ÷ peer landmarks | pipeline img/s | pipeline ÷ peer det+landmarks |", "|---|---|---|---|---|"]
    for variant, row in table.items():
        ratio_e = f"{row['estimator_vs_peer_landmarks']:.2f}" if missing is None else "not installed"
        ratio_p = f"{row['pipeline_vs_peer_detection_landmarks']:.2f}" if missing is None else "not installed"
        lines.append(f"| {variant} | {row['estimator_img_s']:.1f} | {ratio_e} | {row['pipeline_img_s']:.1f} | {ratio_p} |")
    for mode in PEER_MODES:
        cell = f"{peer[mode]['img_s']:.1f} img/s" if missing is None else peer[mode]
        lines.append(f"| MediaPipe {mode} | {cell} | | | |")
    lines += ["", "Runtimes: torch = eager PyTorch with PyTorch3D guidance; onnx = E and G in ONNX Runtime, guidance by "
              "PyTorch3D (OnnxPredictor, the deployment path, numerically equal to PyTorch); onnx int8 = the same with int8 convolutions (export-onnx --int8, calibrated on half of the crops; "
              "NOT numerically equal, see below); G without mesh guidance = the ablation row's pipeline E -> G -> E "
              "(no R; G reads the image alone; its E column is the same E); bound = the int8 pipeline with the guidance maps rendered "
              "beforehand (R costs nothing; not a runtime: peer ms minus this row's ms is the time R may take for the guided pipeline "
              "to match the peer). E alone: torch = MeshEstimator, onnx = the "
              "exported graph. Guidance renders each crop's true mesh (what a trained E gives; an untrained E's mesh "
              "lands partly off the crop and would flatter R), at half the input size, wrist capped and back faces culled. "
              "Rates: 1 / median seconds per call pooled over "
              f"{args.rounds} interleaved rounds of {args.repeats} calls (peer: {peer_repeats} per image on {len(keep)} images).",
              "Peer landmarks = video mode, one tracked hand, 128-px crops (landmark model only); det+landmarks = static mode, "
              "256-px renders (palm detection + landmarks every call).",
              *([f"Renderer budget (int8): the peer's det+landmarks {r_budget['peer_detection_landmarks_ms']:.1f} ms minus the int8 pipeline "
                 f"without R {r_budget['pipeline_int8_without_R_ms']:.1f} ms leaves {r_budget['R_budget_ms']:.1f} ms for R; inside the int8 "
                 f"pipeline R takes {r_budget['R_in_pipeline_ms']:.1f} ms ({r_budget['pipeline_int8_ms']:.1f} minus "
                 f"{r_budget['pipeline_int8_without_R_ms']:.1f})."] if r_budget else []),
              "", "Batch-1 breakdown (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())]
    if batch32:
        lines += ["", "Batch 32 (absolute img/s, not a goal): " + ", ".join(f"{k} {v:.1f}" for k, v in batch32.items())]
    e_check = export["graphs"]["estimator"]["check"]
    lines += ["", f"ONNX check (max abs error vs PyTorch): vertices {e_check['vertices']['max_abs_error']:.1e} m, "
                  f"joints2d {e_check['joints2d']['max_abs_error']:.1e} px, translated "
                  f"{export['graphs']['generator']['check']['translated']['max_abs_error']:.1e}.",
              f"int8 (opt-in) vs PyTorch on {export['int8']['held_out_images']} held-out crops (untrained networks): joints3d "
              f"mean {1000 * export['int8']['deviation_vs_torch']['joints3d']['mean_abs']:.1f} mm, max "
              f"{1000 * export['int8']['deviation_vs_torch']['joints3d']['max_abs']:.1f} mm; its accuracy must be checked on labelled "
              "data before use (experiments/README.md).",
              f"Load average at start {', '.join(f'{x:.1f}' for x in load_start)}.", f"Command: `{command}`"]
    write_results("bench_inference" if args.threads == 1 else f"bench_inference_{args.threads}threads", {
        "image_size": s, "batch": 1, "threads": args.threads, "rounds": args.rounds, "repeats": args.repeats,
        "ours": table, "peer": peer, "peer_images": len(keep), "breakdown_batch1_ms": breakdown, "batch32_img_s": batch32, "renderer_budget": r_budget,
        "onnx_check": {g: {k: v["max_abs_error"] for k, v in spec["check"].items()} for g, spec in export["graphs"].items()},
        "int8_deviation_vs_torch": export["int8"]["deviation_vs_torch"],
        "load_average_start": load_start, "command": command, "argv": sys.argv[1:],
        "goals": {"estimator_vs_peer_landmarks": 1.0, "pipeline_vs_peer_detection_landmarks": 1.0},
    }, lines, folder=args.results_dir)
    shutil.rmtree(tmp, ignore_errors=True)


def _breakdown(estimator: Any, pipeline: Any, image: torch.Tensor, K: torch.Tensor, repeats: int,
               onnx_pred: Any = None, onnx_int8: Any = None, sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median ms per stage at batch 1: eager PyTorch, plus the ONNX graphs when given (``sync`` closes every call)."""
    first = estimator(image, K)
    skin = torch.sigmoid(first.mask_logits)
    faces = estimator.hand_model.faces
    g_in = MeshGuidance.as_input(pipeline.guidance(first.vertices, faces, K, image, skin))
    onnx = onnx_pred is not None
    stages: list[tuple[str, Callable[[], object], bool]] = [
        ("E torch", lambda: estimator(image, K), True), ("E onnx", lambda: onnx_pred.estimator_graph(image, K), onnx),
        ("backbone torch", lambda: estimator.backbone(image), True),
        ("hand model torch", lambda: estimator.hand_model(first.global_orient, first.hand_pose, first.betas), True),
        ("guidance pytorch3d", lambda: pipeline.guidance(first.vertices, faces, K, image, skin), True),
        ("G torch", lambda: pipeline.generator(image, g_in), True), ("G onnx", lambda: onnx_pred.generator_graph(image, g_in), onnx),
        ("E onnx int8", lambda: onnx_int8.estimator_graph(image, K), onnx_int8 is not None),
        ("G onnx int8", lambda: onnx_int8.generator_graph(image, g_in), onnx_int8 is not None),
    ]
    return {name: 1000 * statistics.median(call_times(lambda i, fn=fn: (fn(), sync()), repeats))
            for name, fn, wanted in stages if wanted}


def load_crops(paths: list[Path]) -> list[torch.Tensor]:
    """(1, 3, S, S) [0, 1] RGB tensors of the crop files."""
    return [torch.from_numpy(read_image(p)).permute(2, 0, 1)[None].float() / 255 for p in paths]


def _batch32(estimator: Any, pipeline: Any, onnx_pred: Any, image: torch.Tensor, K: torch.Tensor) -> dict[str, float]:
    out = {}
    for name, fn in (("E torch", lambda: estimator(image, K)), ("E onnx", lambda: onnx_pred.estimator_graph(image, K)),
                     ("pipeline torch", lambda: pipeline(image, K)), ("pipeline onnx", lambda: onnx_pred(image, K))):
        out[name] = 32 / statistics.median(call_times(lambda i, fn=fn: fn(), 3, warmup=1))
    return out


def main_device(args: argparse.Namespace) -> None:
    """``--device``: E alone and the adapted pipeline in eager PyTorch on one device, per batch size."""
    device = bench_device(args.device)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if cuda else "CPU"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    s = args.size
    tmp = Path(tempfile.mkdtemp(prefix="bench_inference_"))
    nets = adapt_networks_from_config(REPO / "configs/adapt/demo.yaml", s)
    ckpt = write_network_checkpoint(tmp / "adapt.ckpt", "adapt", nets)
    _, crops, _, _ = render_hands(tmp, args.images, s)
    pred = load_predictor(ckpt, adapt=True, device=device)
    pipeline, estimator = pred.model, pred.estimator
    crops_t = torch.cat(load_crops(crops)).to(device)
    n = crops_t.shape[0]
    rows: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        for b in batch_sizes:
            batches = [crops_t[(torch.arange(b) + i) % n] for i in range(n)]  # every call a different mix of renders
            K = example_intrinsics(s, b).to(device)
            if cuda:
                torch.cuda.reset_peak_memory_stats(device)
            row: dict[str, float] = {}
            for label, fn in (("estimator", estimator), ("pipeline", pipeline)):
                t = call_times(lambda i, fn=fn: (fn(batches[i % n], K), sync()), args.repeats, warmup=3)
                row[f"{label}_img_s"] = b / statistics.median(t)
                row[f"{label}_ms_per_call"] = 1000 * statistics.median(t)
            if cuda:
                row["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
            rows[str(b)] = row
            print(f"batch {b}: {row}", flush=True)
        breakdown = _breakdown(estimator, pipeline, crops_t[:1], example_intrinsics(s, 1).to(device), args.repeats, sync=sync)
    missing = peer_status()
    command = f".venv/bin/python experiments/bench_inference.py --device {args.device} --size {s} --batch-sizes {args.batch_sizes}"
    lines = [f"# Inference throughput, eager PyTorch, {s} px, {name} ({args.device})", "",
             "| batch | E img/s | E ms/call | pipeline img/s | pipeline ms/call |" + (" peak GPU (MB) |" if cuda else ""),
             "|---|---|---|---|---|" + ("---|" if cuda else "")]
    for b, row in rows.items():
        lines.append(f"| {b} | {row['estimator_img_s']:.1f} | {row['estimator_ms_per_call']:.2f} | {row['pipeline_img_s']:.1f} | "
                     f"{row['pipeline_ms_per_call']:.2f} |" + (f" {row['peak_gpu_mb']:.0f} |" if cuda else ""))
    lines += ["", "E = MeshEstimator; pipeline = E -> R (PyTorch3D guidance at half size) -> G -> E, the shipped networks of "
              f"configs/adapt/demo.yaml (seeded, untrained). Rates: batch / median seconds per call over {args.repeats} calls "
              "(3 untimed warm-up calls each), inputs cycled over renders of the stand-in hand.",
              "", "Batch-1 breakdown (ms): " + ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items()),
              "", "Not measured here: ONNX Runtime (CPU provider) and the MediaPipe peer "
              f"({'installed' if missing is None else missing}); see bench_inference.md for the CPU comparison.",
              f"Command: `{command}`"]
    write_results(("gpu" if cuda else "cpu") + "_inference", {
        "image_size": s, "device": args.device, "device_name": name, "threads": args.threads, "repeats": args.repeats,
        "batch_sizes": batch_sizes, "batches": rows, "breakdown_batch1_ms": breakdown,
        "torch_cuda": torch.version.cuda, "peer": "not measured in a device run", "command": command, "argv": sys.argv[1:],
    }, lines, folder=args.results_dir)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
