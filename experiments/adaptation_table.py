"""The method's main table on the synthetic world: baseline / ablations / full method / oracle, with seeds.

One command trains every row (reusing finished runs, resuming interrupted ones: it can be stopped and run
again, in another session too), evaluates all of them on the target-domain hand-object test set with the
``synthetic`` protocol (root-relative 21-joint MPJPE and AUC 20-50 mm, PA-MPJPE, fingertips), breaks the
error down by how much of the hand the object hides, scores the translations against the true hand-only
twins, and at bench scale also scores the baseline and the full method on a third appearance style that no
run trains on, and MediaPipe Hands (the peer, in its own venv; skipped with a note where it is not installed).

Rows (switches in ``experiments/configs/synthetic/``):

* baseline: the stage-0 estimator applied to the hand-object images;
* G without mesh guidance: ``no_mesh_guidance.yaml`` on ``configs/adapt/demo.yaml``;
* mesh guidance without GAN: ``no_gan.yaml``;
* full method: ``full.yaml``;
* oracle: the estimator trained with the target domain's hand-object pose labels, with as many estimator
  updates as the adapted rows (at bench scale: fine-tuned from the same stage 0, ``oracle_bench.yaml``).

Every adapted row and the oracle run once per seed (``seed_everything``: G/D initialisation, data order,
augmentation); the stage 0 is shared (the bench stage 0 of ``experiments/bench_estimator.py``), so the
baseline has no seed spread.

Usage::

    .venv/bin/python experiments/adaptation_table.py --scale bench     # <= 2 h on a 2-core CPU, resumable
    .venv/bin/python experiments/adaptation_table.py --scale demo      # ~1 h, one seed
    .venv/bin/python experiments/adaptation_table.py --scale full      # GPU recommended

Writes ``experiments/results/adaptation_<scale>.{json,md}`` and PNGs in ``experiments/results/adaptation_<scale>/``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.demo import Steps, run_fit

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "experiments" / "configs" / "synthetic"
EST_CFG, ADAPT_CFG = "configs/estimator/demo.yaml", "configs/adapt/demo.yaml"
TEST_SPLIT = "target_test"

SCALES: dict[str, dict[str, Any]] = {
    "demo": {"world_config": "configs/synth/demo.yaml", "world": "outputs/world/demo",
             "stage0": ["--trainer.max_steps=600"],
             # the oracle gets as many estimator updates as the adapted rows: stage 0 + rounds x est_steps
             "oracle": ["--trainer.max_steps=900", "-c", str(CONFIGS / "oracle.yaml")],
             "adapt": ["--model.init_args.schedule.rounds=3", "--model.init_args.schedule.gd_steps=150",
                       "--model.init_args.schedule.est_steps=100"],
             "seeds": [None]},  # the configs' own seed, one run per row
    # the bench world and stage 0 of the estimator issue (experiments/bench_estimator.py); 3 seeds per row
    "bench": {"world_config": "configs/synth/bench.yaml", "world": "outputs/world/bench", "stage0_from": "bench",
              # fine-tuned from the shared stage 0 for the adapted rows' 3 x 100 estimator updates
              "oracle": ["-c", "configs/estimator/bench.yaml", "-c", str(CONFIGS / "oracle_bench.yaml"),
                         "--trainer.max_steps=300", "--trainer.val_check_interval=300"],
              "oracle_from_stage0": True,
              "adapt": ["-c", str(CONFIGS / "adapt_bench.yaml")],
              "seeds": [0, 1, 2],
              "hidden": {"world_config": "configs/synth/hidden_style.yaml", "world": "outputs/world/hidden_style",
                         "split": "hidden_test"}},
    # configs/{estimator,adapt}/full.yaml: 128 px, 20k-step stage 0, 4 rounds x (4k G/D + 4k E) steps
    "full": {"world_config": "configs/synth/full.yaml", "world": "outputs/world/full",
             "stage0": ["-c", "configs/estimator/full.yaml"],
             "oracle": ["-c", "configs/estimator/full.yaml", "--trainer.max_steps=36000", "-c", str(CONFIGS / "oracle.yaml")],
             "adapt": ["-c", "configs/adapt/full.yaml"], "seeds": [None]},
}
ADAPTED = [("G without mesh guidance", "no_mesh_guidance"), ("mesh guidance without GAN", "no_gan"), ("full method", "full")]
ROW_ORDER = ["baseline", *[label for label, _ in ADAPTED], "oracle"]


def _layers(overrides: list[str]) -> list[str]:
    """The text of every YAML an override list layers on, so an edited config starts a new run."""
    return [Path(a).read_text() for a in overrides if a.endswith(".yaml")]


def _seeded(name: str, seed: int | None) -> tuple[str, list[str]]:
    return (name, []) if seed is None else (f"{name}_s{seed}", [f"--seed_everything={seed}"])


def train_rows(scale_name: str, steps: Steps, out: Path, stage0_ckpt: str | None) -> dict[str, Any]:
    """Every row's checkpoints: ``{"baseline": ckpt, "<row>": {seed: ckpt}}`` (finished runs reused)."""
    from hoi_adapt.synth.generator import ensure_world

    scale = SCALES[scale_name]
    world = scale["world"]
    steps.run("world", {"cfg": Path(scale["world_config"]).read_text()}, lambda: str(ensure_world(scale["world_config"], world)))
    if stage0_ckpt is None and "stage0_from" in scale:
        from bench_estimator import stage0_checkpoint

        stage0_ckpt = stage0_checkpoint(scale["stage0_from"])
    stage0 = stage0_ckpt or steps.run("stage0", {"cfg": Path(EST_CFG).read_text(), "o": scale["stage0"]},
                                      lambda: run_fit(EST_CFG, out / "stage0", world, scale["stage0"]))
    ckpts: dict[str, Any] = {"baseline": stage0, "oracle": {}, **{label: {} for label, _ in ADAPTED}}
    for seed in scale["seeds"]:
        name, seed_o = _seeded("oracle", seed)
        o = [*scale["oracle"], *seed_o, *([f"--model.init_args.init_ckpt={stage0}"] if scale.get("oracle_from_stage0") else [])]
        ckpts["oracle"][seed] = steps.run(name, {"cfg": Path(EST_CFG).read_text(), "o": o, "layers": _layers(o)},
                                          lambda o=o: run_fit(EST_CFG, out / "oracle", world, o))
        for label, row in ADAPTED:
            name, seed_o = _seeded(row, seed)
            # the scale first, then the row's switches (a row may remove what the scale configures, e.g. the guidance)
            o = [*scale["adapt"], "-c", str(CONFIGS / f"{row}.yaml"), f"--model.init_args.estimator_ckpt={stage0}", *seed_o]
            ckpts[label][seed] = steps.run(name, {"cfg": Path(ADAPT_CFG).read_text(), "o": o, "layers": _layers(o)},
                                           lambda o=o, row=row: run_fit(ADAPT_CFG, out / row, world, o))
    return ckpts


# ---------------------------------------------------------------------------------------------------------
# Evaluation (each model's scores are a finished step too, so a re-run only scores what is new)
# ---------------------------------------------------------------------------------------------------------
KEEP = ("metrics", "pck", "thresholds_mm", "per_frame", "num_samples", "num_detected", "num_missed", "notes")


def _ckpt_key(ckpt: str) -> dict[str, Any]:
    stat = Path(ckpt).stat()
    return {"ckpt": str(ckpt), "bytes": stat.st_size, "mtime": int(stat.st_mtime)}


def score_model(steps: Steps, world: str, split: str, label: str, ckpt: str, adapt: bool, limit: int | None) -> dict[str, Any]:
    from hoi_adapt.eval.runner import ModelSpec, evaluate_checkpoints

    def run() -> dict[str, Any]:
        res = evaluate_checkpoints([ModelSpec(Path(ckpt), adapt, label)], "synthetic", world, split, limit=limit,
                                   per_frame=True, progress=False)
        return {k: v for k, v in res["rows"][label].items() if k in KEEP}

    slug = "_".join(Path(ckpt).parts[-5:-3]) if len(Path(ckpt).parts) > 4 else Path(ckpt).stem
    return steps.run(f"score_{split}_{slug}{'_adapt' if adapt else ''}",
                     {**_ckpt_key(ckpt), "adapt": adapt, "split": split, "world": world, "limit": limit}, run)


def score_peer(steps: Steps, world: str, split: str, limit: int | None) -> dict[str, Any] | None:
    """MediaPipe on the same crops; None (and a note printed) when its venv is not installed."""
    from hoi_adapt.eval.runner import evaluate_checkpoints
    from hoi_adapt.peers.mediapipe import peer_python
    from hoi_adapt.utils.errors import ConfigError

    try:
        peer_python()
    except ConfigError as exc:
        print(f"[table] no peer row: {exc}", flush=True)
        return None

    def run() -> dict[str, Any]:
        res = evaluate_checkpoints([], "synthetic", world, split, limit=limit, peers=["mediapipe"], per_frame=True,
                                   image_size=64, progress=False)
        return {k: v for k, v in next(iter(res["rows"].values())).items() if k in KEEP}

    return steps.run(f"score_{split}_peer_mediapipe", {"split": split, "world": world, "limit": limit}, run)


def occlusion_of(world: str, split: str) -> Any:
    from hoi_adapt.data.formats.world import load_annotations

    return load_annotations(world, split)["occlusion"]


def seed_stats(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max())}


HEADLINE = {"mpjpe_mm": "rootrel_mpjpe_mm", "auc": "rootrel_auc", "pa_mpjpe_mm": "pa_mpjpe_mm", "tips_auc": "tips_auc"}
"""The table's figures (JSON name -> the protocol's metric), one value per seed."""


def headline(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {name: [r["metrics"][metric] for r in results] for name, metric in HEADLINE.items()}


def row_results(scored: dict[str, dict[Any, dict[str, Any]]], occlusion: Any) -> dict[str, Any]:
    """Per row: the seeds, the per-seed headline numbers and the MPJPE per occlusion bin (per seed)."""
    from hoi_adapt.eval.breakdown import OCCLUSION_BINS, binned_means

    rows: dict[str, Any] = {}
    for label, per_seed in scored.items():
        seeds = list(per_seed)
        bins = []
        for s in seeds:
            pf = per_seed[s]["per_frame"]
            bins.append(binned_means(np.asarray(pf["rootrel_mpjpe_mm"]), occlusion[np.asarray(pf["index"])], OCCLUSION_BINS))
        rows[label] = {
            "seeds": seeds,
            TEST_SPLIT: headline(list(per_seed.values())),
            "occlusion_bins": {"bins": [b["bin"] for b in bins[0]], "count": [b["count"] for b in bins[0]],
                               "mpjpe_mm": [[b["mean"] for b in per] for per in bins]},
        }
    return rows


def bin_means(per_seed: Any) -> Any:
    """Mean over seeds of per-bin values (rows = seeds); NaN where no seed has a value (an empty bin)."""
    a = np.array(per_seed, dtype=np.float64)  # None -> NaN
    ok = np.isfinite(a)
    count = ok.sum(axis=0)
    return np.where(count > 0, np.where(ok, a, 0.0).sum(axis=0) / np.maximum(count, 1), np.nan)


def claims(rows: dict[str, Any], translation: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Claims (a)-(e) of the method, each with its numbers and whether it holds."""
    mean = {label: seed_stats(r[TEST_SPLIT]["mpjpe_mm"]) for label, r in rows.items()}
    base, oracle = mean["baseline"]["mean"], mean["oracle"]["mean"]
    adapted = [label for label, _ in ADAPTED]
    out: dict[str, Any] = {}
    gains = {label: base - mean[label]["mean"] for label in adapted}
    spread = {label: mean[label]["max"] - mean[label]["min"] for label in adapted}
    out["a"] = {"claim": "every adapted row beats the baseline on target_test by more than its seed spread (max - min)",
                "gain_mm": gains, "seed_spread_mm": spread, "holds": all(gains[k] > spread[k] for k in adapted)}
    out["b"] = {"claim": "the oracle is at least as good as every adapted row (mean MPJPE)",
                "oracle_mm": oracle, "adapted_mm": {k: mean[k]["mean"] for k in adapted},
                "holds": all(oracle <= mean[k]["mean"] for k in adapted)}
    gap = (base - mean["full method"]["mean"]) / (base - oracle) if base > oracle else float("nan")
    out["c"] = {"claim": "the full method closes >= 60% of the baseline-to-oracle gap in root-relative MPJPE",
                "gap_closed": gap, "holds": bool(np.isfinite(gap) and gap >= 0.6)}
    per_bin = {}
    for label in adapted:
        gain = bin_means(rows["baseline"]["occlusion_bins"]["mpjpe_mm"]) - bin_means(rows[label]["occlusion_bins"]["mpjpe_mm"])
        per_bin[label] = [float(g) if np.isfinite(g) else None for g in gain]
    filled = np.asarray(rows["baseline"]["occlusion_bins"]["count"]) > 0  # an empty bin has no gain to compare
    full = np.asarray(per_bin["full method"], dtype=np.float64)[filled]
    out["d"] = {"claim": "the full method's gain over the baseline grows with occlusion (non-decreasing over the bins, "
                         "and larger in the top bin than in the bottom one)",
                "bins": rows["baseline"]["occlusion_bins"]["bins"], "gain_mm_per_bin": per_bin,
                "holds": bool(np.all(np.diff(full) >= 0) and full[-1] > full[0])}
    guided = {k: float(np.mean([q["hand_psnr"] for q in v.values()])) for k, v in translation.items()}
    out["e"] = {"claim": "translations are closer to the true hand-only twins with mesh guidance than without "
                         "(hand-region PSNR, mean over seeds)",
                "hand_psnr": guided,
                "holds": guided.get("full method", float("nan")) > guided.get("G without mesh guidance", float("inf"))}
    return out, gap


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=120)
    FigureCanvasAgg(fig)
    return fig


def plot_occlusion(path: Path, rows: dict[str, Any], scale: str) -> None:
    """MPJPE per occlusion bin, one line per row (mean over seeds, bars = min-max over seeds)."""
    from hoi_adapt.utils.io import atomic_path

    fig = _figure((7.5, 4.8))
    ax = fig.add_subplot(111)
    counts = np.asarray(rows["baseline"]["occlusion_bins"]["count"])
    filled = counts > 0
    bins = [b for b, f in zip(rows["baseline"]["occlusion_bins"]["bins"], filled, strict=True) if f]
    x = np.arange(len(bins))
    for k, label in enumerate(ROW_ORDER):
        per_seed = np.asarray(rows[label]["occlusion_bins"]["mpjpe_mm"], dtype=np.float64)[:, filled]
        mean = bin_means(per_seed)
        lo, hi = mean - np.nanmin(per_seed, axis=0), np.nanmax(per_seed, axis=0) - mean
        ax.errorbar(x + (k - 2) * 0.04, mean, yerr=[lo, hi], marker="o", capsize=3, linewidth=1.6,
                    label=f"{label} ({len(per_seed)} seed{'s' if len(per_seed) > 1 else ''})")
    ax.set_xticks(x, [f"{b}\n({n} images)" for b, n in zip(bins, counts[filled], strict=True)])
    ax.set_xlabel("fraction of the hand hidden by the object")
    ax.set_ylabel("root-relative MPJPE (mm)")
    ax.grid(True, linestyle=":", linewidth=0.6)
    ax.set_title(f"Error by occlusion, {TEST_SPLIT} ({scale} scale); bars: min-max over seeds", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def plot_pck(path: Path, scored: dict[str, dict[Any, dict[str, Any]]], peer: dict[str, Any] | None, scale: str) -> None:
    """Root-relative 3D PCK per row (mean curve over seeds); the peer's misses count as failures."""
    from hoi_adapt.eval.metrics import auc
    from hoi_adapt.utils.io import atomic_path

    fig = _figure((7.5, 5.0))
    ax = fig.add_subplot(111)
    for label in ROW_ORDER:
        runs = list(scored[label].values())
        thr = runs[0]["thresholds_mm"]
        curve = np.mean([r["pck"]["rootrel"] for r in runs], axis=0)
        ax.plot(thr, curve, marker="o", markersize=3, linewidth=1.8, label=f"{label} (AUC {auc(curve, thr):.3f})")
    if peer is not None:
        thr, curve = peer["thresholds_mm"], peer["pck"]["rootrel"]
        rate = peer["metrics"]["detection_rate"]
        ax.plot(thr, curve, linestyle="--", linewidth=1.5,
                label=f"MediaPipe Hands (AUC {auc(curve, thr):.3f}; detects {100 * rate:.0f}%, misses = failures)")
    ax.set_xlabel("error threshold (mm)")
    ax.set_ylabel("3D PCK, 21 joints, wrist-aligned")
    ax.set_ylim(0, 1.02)
    ax.grid(True, linestyle=":", linewidth=0.6)
    ax.set_title(f"{TEST_SPLIT} ({scale} scale): mean curve over seeds", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _mm(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pm(values: list[float], fmt: str = "{:.1f}") -> str:
    st = seed_stats(values)
    return fmt.format(st["mean"]) + (f" ± {fmt.format(st['std'])}" if len(values) > 1 else "")


def markdown(scale: str, rows: dict[str, Any], checks: dict[str, Any], translation: dict[str, Any],
             hidden: dict[str, Any], peer: dict[str, Any], minutes: dict[str, Any], command: str) -> list[str]:
    n_seeds = max(len(r["seeds"]) for r in rows.values())
    lines = [f"# The method's table ({scale} scale): target-domain hand-object test set (`{TEST_SPLIT}`)", "",
             f"Mean ± standard deviation over {n_seeds} adaptation seed(s); one shared stage 0, so the baseline has "
             "no spread. MPJPE: 21 joints, wrist-aligned (root-relative), mm. AUC: 3D PCK 20-50 mm of the same.", "",
             "| row | seeds | MPJPE mm | AUC 20-50 | PA-MPJPE mm | fingertip AUC |", "|---|---|---|---|---|---|"]
    for label in ROW_ORDER:
        t = rows[label][TEST_SPLIT]
        lines.append(f"| {label} | {len(rows[label]['seeds'])} | {_pm(t['mpjpe_mm'])} | {_pm(t['auc'], '{:.3f}')} | "
                     f"{_pm(t['pa_mpjpe_mm'])} | {_pm(t['tips_auc'], '{:.3f}')} |")
    if peer.get(TEST_SPLIT):
        p = peer[TEST_SPLIT]
        lines.append(f"| MediaPipe Hands (peer) | - | {_mm(p['mpjpe_mm'])} (detected only) | {p['auc_with_misses']:.3f} "
                     f"(misses = failures) | {_mm(p['pa_mpjpe_mm'])} (detected only) | - |")
        lines += ["", f"MediaPipe Hands {p['version']} found a hand in {100 * p['detection_rate']:.1f}% of the "
                  f"{p['num_samples']} test crops; its errors are over those {p['num_detected']} images only."]
    else:
        lines += ["", "No peer row: the MediaPipe peer venv is not installed (make peers)."]
    lines += ["", "## Claims", ""]
    for key in "abcde":
        c = checks[key]
        lines.append(f"- **({key}) {'holds' if c['holds'] else 'does not hold'}**: {c['claim']}.")
    a, b, c, d = checks["a"], checks["b"], checks["c"], checks["d"]
    lines += ["", "Numbers behind them:", ""]
    lines += ["- (a) gain over the baseline (mm) / seed spread (mm): "
              + "; ".join(f"{k} {a['gain_mm'][k]:+.1f} / {a['seed_spread_mm'][k]:.1f}" for k in a["gain_mm"]),
              f"- (b) oracle {b['oracle_mm']:.1f} mm; adapted rows "
              + ", ".join(f"{k} {v:.1f}" for k, v in b["adapted_mm"].items()) + " mm",
              f"- (c) the full method closes **{100 * c['gap_closed']:.0f}%** of the baseline-to-oracle MPJPE gap (goal: 60%)",
              "- (d) gain over the baseline per occlusion bin (mm): see below"]
    lines += ["", "## Error by occlusion (MPJPE mm, mean over seeds)", "",
              "| row | " + " | ".join(d["bins"]) + " |", "|---" * (len(d["bins"]) + 1) + "|"]
    for label in ROW_ORDER:
        means = bin_means(rows[label]["occlusion_bins"]["mpjpe_mm"])
        lines.append(f"| {label} | " + " | ".join(_mm(v if np.isfinite(v) else None) for v in means) + " |")
    lines.append("| images | " + " | ".join(str(n) for n in rows["baseline"]["occlusion_bins"]["count"]) + " |")
    for label, gains in d["gain_mm_per_bin"].items():
        lines.append(f"| gain of {label} | " + " | ".join("-" if g is None else f"{g:+.1f}" for g in gains) + " |")
    lines += ["", f"![MPJPE by occlusion](adaptation_{scale}/occlusion.png)",
              "", "## Translation quality against the true hand-only twins (mean over seeds)", "",
              "| row | L1 | PSNR | SSIM | hand L1 | hand PSNR | hand SSIM |", "|---|---|---|---|---|---|---|"]
    for label, per_seed in translation.items():
        q = {k: float(np.mean([s[k] for s in per_seed.values()])) for k in ("l1", "psnr", "ssim", "hand_l1", "hand_psnr", "hand_ssim")}
        lines.append(f"| {label} | {q['l1']:.4f} | {q['psnr']:.2f} | {q['ssim']:.3f} | {q['hand_l1']:.4f} | "
                     f"{q['hand_psnr']:.2f} | {q['hand_ssim']:.3f} |")
    lines += ["", "Six test images through each adapted row's first-seed pipeline (input / rendering of E's first mesh / "
              "translation / true hand-only twin / final mesh) and the baseline's vs the row's meshes: "
              + "; ".join(f"{label}: [translations](adaptation_{scale}/{row}/translation_grid.png), "
                          f"[meshes](adaptation_{scale}/{row}/mesh_overlays.png)" for label, row in ADAPTED) + "."]
    if hidden:
        lines += ["", f"## Generalisation: a third appearance style no run trained on (`{hidden['config']}`)", "",
                  "| row | seeds | MPJPE mm | AUC 20-50 | PA-MPJPE mm |", "|---|---|---|---|---|"]
        for label, t in hidden["rows"].items():
            lines.append(f"| {label} | {len(t['mpjpe_mm'])} | {_pm(t['mpjpe_mm'])} | {_pm(t['auc'], '{:.3f}')} | {_pm(t['pa_mpjpe_mm'])} |")
        if peer.get("hidden_test"):
            p = peer["hidden_test"]
            lines.append(f"| MediaPipe Hands (peer) | - | {_mm(p['mpjpe_mm'])} (detected {100 * p['detection_rate']:.0f}%) | "
                         f"{p['auc_with_misses']:.3f} (misses = failures) | {_mm(p['pa_mpjpe_mm'])} |")
    lines += ["", f"![PCK](adaptation_{scale}/pck.png)", "",
              f"Minutes: {minutes['total']:.1f} in all (training {minutes['training']:.1f}, as each run's step marker "
              f"recorded it, plus scoring {minutes['scoring']:.1f}; finished work is reused on a re-run). "
              f"Command: `{command}`"]
    return lines


def _peer_summary(res: dict[str, Any] | None) -> dict[str, Any] | None:
    if res is None:
        return None
    from hoi_adapt.peers.mediapipe import MEDIAPIPE_VERSION

    m = res["metrics"]  # figures of the detected frames are None when nothing was detected
    return {"version": MEDIAPIPE_VERSION, "detection_rate": m["detection_rate"], "mpjpe_mm": m["rootrel_mpjpe_mm"],
            "pa_mpjpe_mm": m["pa_mpjpe_mm"], "auc_detected": m["rootrel_auc"], "auc_with_misses": m["rootrel_auc_with_misses"],
            "num_samples": res["num_samples"], "num_detected": res["num_detected"]}


def spent_minutes(out: Path) -> dict[str, float]:
    """Minutes every finished step took when it ran: the table's training runs and its scoring."""
    training = scoring = 0.0
    for marker in (out / "steps").glob("*.json"):
        seconds = float(json.loads(marker.read_text()).get("seconds", 0.0))
        if marker.stem.startswith(("score_", "translation_")):
            scoring += seconds
        else:
            training += seconds
    return {"training": training / 60, "scoring": scoring / 60, "total": (training + scoring) / 60}


def report(args: argparse.Namespace, steps: Steps, out: Path, ckpts: dict[str, Any], command: str) -> None:
    from hoi_adapt.eval.translation import translation_quality
    from hoi_adapt.synth.generator import ensure_world
    from hoi_adapt.utils.bench import RESULTS, write_result_files

    scale = SCALES[args.scale]
    world, limit = scale["world"], args.eval_limit
    scored: dict[str, dict[Any, dict[str, Any]]] = {
        "baseline": {"shared": score_model(steps, world, TEST_SPLIT, "baseline", ckpts["baseline"], False, limit)}}
    for label in ROW_ORDER[1:]:
        adapt = label != "oracle"
        scored[label] = {seed: score_model(steps, world, TEST_SPLIT, label, ckpt, adapt, limit) for seed, ckpt in ckpts[label].items()}
    rows = row_results(scored, occlusion_of(world, TEST_SPLIT))
    translation = {label: {seed: steps.run(f"translation_{row}_{seed}", {**_ckpt_key(ckpt), "world": world, "limit": limit},
                                           lambda ckpt=ckpt: translation_quality(ckpt, world, TEST_SPLIT, limit=limit, progress=False))
                           for seed, ckpt in ckpts[label].items()}
                   for label, row in ADAPTED}
    peer_test = score_peer(steps, world, TEST_SPLIT, limit)
    peer = {TEST_SPLIT: _peer_summary(peer_test)}
    hidden: dict[str, Any] = {}
    if "hidden" in scale:
        h = scale["hidden"]
        steps.run("world_hidden", {"cfg": Path(h["world_config"]).read_text()}, lambda: str(ensure_world(h["world_config"], h["world"])))
        hidden = {"config": h["world_config"], "split": h["split"], "rows": {}}
        for label, models in (("baseline", {"shared": ckpts["baseline"]}), ("full method", ckpts["full method"])):
            res = [score_model(steps, h["world"], h["split"], label, ckpt, label != "baseline", limit) for ckpt in models.values()]
            hidden["rows"][label] = {"seeds": list(models), **headline(res)}
            rows[label]["hidden_test"] = hidden["rows"][label]
        peer["hidden_test"] = _peer_summary(score_peer(steps, h["world"], h["split"], limit))
    checks, gap = claims(rows, translation)
    minutes = spent_minutes(out)
    figures = RESULTS / f"adaptation_{args.scale}"
    figures.mkdir(parents=True, exist_ok=True)
    plot_occlusion(figures / "occlusion.png", rows, args.scale)
    plot_pck(figures / "pck.png", scored, peer_test, args.scale)
    from hoi_adapt.demo_report import translation_figures

    for label, row in ADAPTED:  # look, do not only read: translations and meshes of the first seed's runs
        (figures / row).mkdir(exist_ok=True)
        translation_figures(figures / row, world, TEST_SPLIT, ckpts["baseline"], next(iter(ckpts[label].values())), label=label)
    peer_present = {k: v for k, v in peer.items() if v is not None}
    lines = markdown(args.scale, rows, checks, translation, hidden, peer_present, minutes, command)
    result = {"rows": rows, "peer_mediapipe": peer_present or None, "gap_closed": gap, "claims": checks,
              "translation": translation, "minutes": minutes["total"], "minutes_detail": minutes, "command": command,
              "checkpoints": ckpts, "stage0_shared": True,
              "budget": {"adapt": scale["adapt"], "oracle": scale["oracle"]}}
    write_result_files(RESULTS / f"adaptation_{args.scale}.json", result, "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="demo")
    parser.add_argument("--out", default=None, help="runs folder (default outputs/experiments/adaptation_<scale>)")
    parser.add_argument("--stage0-ckpt", default=None, help="the shared stage-0 checkpoint (default: train or reuse it)")
    parser.add_argument("--eval-limit", type=int, default=None, help="score this many evenly spaced test images")
    parser.add_argument("--train-only", action="store_true", help="train (or reuse) every run, then stop")
    args = parser.parse_args(argv)
    command = "python experiments/adaptation_table.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    out = Path(args.out or f"outputs/experiments/adaptation_{args.scale}")
    steps = Steps(out)
    t0 = time.time()
    ckpts = train_rows(args.scale, steps, out, args.stage0_ckpt)
    print(f"[table] training done in {time.time() - t0:.0f} s (finished runs reused)", flush=True)
    if args.train_only:
        return
    report(args, steps, out, ckpts, command)


if __name__ == "__main__":
    main()
