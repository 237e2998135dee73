"""The paper's protocol runs on real data: baseline / ablations / full method / oracle on D+O, EgoDexter and STB.

For users with the datasets, the MANO files and a GPU (hours to days; it cannot run on the project's CPU
machine, where the datasets are not available). Every row is a config in ``experiments/configs/``:

* baseline — stage 0: the estimator on FreiHAND + RHD + STB-train hand-only images (``real/stage0.yaml``);
* G without mesh guidance / mesh guidance without GAN / full method — ``configs/adapt/real_ho3d.yaml``
  (HO-3D v3 hand-object images with masks, no pose; ObMan pairs; FreiHAND hand-only) with the row's
  ``synthetic/<row>.yaml`` switches, starting from the baseline checkpoint;
* oracle — stage 0's streams plus HO-3D v3 images *with* pose labels, same estimator budget (``real/oracle.yaml``).

All rows are evaluated with the standard protocols (D+O and EgoDexter: 5 fingertips, centroid-and-scale
alignment; STB: B1Counting + B1Random, palm-rooted; AUC over 20-50 mm). HO-3D's evaluation split has
root joints only (its scores come from the authors' server), so HO-3D is a training source here.
Results: ``experiments/results/paper_real.{json,md}`` and per-dataset folders with PCK curves.

The configs name ``/data/<dataset>`` roots; ``--roots ROOTS.yaml`` maps them to your copies (keys:
``freihand rhd stb ho3d obman dexter_object egodexter mano``). Check each copy first with
``data_prep/check_dataset.py``. Finished runs are reused and interrupted ones resume.

Usage::

    .venv/bin/python experiments/paper_table.py --dry-run                     # print every command
    .venv/bin/python experiments/paper_table.py --roots roots.yaml --device cuda
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml
from adaptation_table import ADAPTED as SYNTHETIC_ROWS

from hoi_adapt.utils.bench import RESULTS
from hoi_adapt.utils.errors import ConfigError, HoiAdaptError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "experiments" / "configs"

PLACEHOLDER_ROOTS = {
    "freihand": "/data/FreiHAND_pub_v2", "rhd": "/data/RHD_published_v2", "stb": "/data/STB", "ho3d": "/data/HO3D_v3",
    "obman": "/data/obman", "dexter_object": "/data/DexterObject", "egodexter": "/data/EgoDexter", "mano": "/data/mano/models",
}
EVAL_DATASETS = ("dexter_object", "egodexter", "stb")
EST_CONFIG, ADAPT_CONFIG = "configs/estimator/demo.yaml", "configs/adapt/demo.yaml"
ROW_CONFIGS = {"stage0": [CONFIGS / "real/stage0.yaml"], "oracle": [CONFIGS / "real/stage0.yaml", CONFIGS / "real/oracle.yaml"]}
ADAPT_ROWS = SYNTHETIC_ROWS  # the same ablation switches (experiments/configs/synthetic/<row>.yaml) on real data
ROOTED_CONFIGS = [CONFIGS / "real/stage0.yaml", CONFIGS / "real/oracle.yaml", REPO / "configs/adapt/real_ho3d.yaml"]


def load_roots(path: str | None) -> dict[str, str]:
    """Placeholder roots updated from the user's YAML; unknown keys are an error, not silently ignored."""
    roots = dict(PLACEHOLDER_ROOTS)
    if path is None:
        return roots
    try:
        given = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(path, f"cannot read the roots file: {exc}") from None
    if not isinstance(given, dict):
        raise ConfigError(path, "expected a mapping dataset -> folder")
    unknown = sorted(set(given) - set(roots))
    if unknown:
        raise ConfigError(path, f"unknown keys {unknown}; known: {sorted(roots)}")
    roots.update({k: str(v) for k, v in given.items()})
    return roots


def localised_configs(roots: dict[str, str], folder: Path) -> dict[Path, Path]:
    """Copies of the configs that name dataset roots, with the placeholders replaced by ``roots``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in ROOTED_CONFIGS:
        text = src.read_text()
        for key, placeholder in PLACEHOLDER_ROOTS.items():
            text = text.replace(placeholder, roots[key])
        dst = folder / f"{src.parent.name}_{src.name}"
        dst.write_text(text)
        out[src] = dst
    return out


def missing_roots(roots: dict[str, str]) -> list[str]:
    return [f"{key}: {root}" for key, root in roots.items() if not Path(root).exists()]


def plan(roots: dict[str, str], out: Path, trainer: str) -> list[tuple[str, str, list[str]]]:
    """(name, base config, overrides) of every training run, in order; adapted rows use ``{stage0}``."""
    local = localised_configs(roots, out / "configs")
    use = lambda p: str(local.get(p, p))  # noqa: E731
    runs = [(name, EST_CONFIG, [a for p in cfgs for a in ("-c", use(p))] + ["-c", trainer]) for name, cfgs in ROW_CONFIGS.items()]
    for _, name in ADAPT_ROWS:
        runs.append((name, ADAPT_CONFIG, ["-c", use(REPO / "configs/adapt/real_ho3d.yaml"), "-c", str(CONFIGS / f"synthetic/{name}.yaml"),
                                          "-c", trainer, "--model.init_args.estimator_ckpt={stage0}"]))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roots", default=None, help="YAML mapping dataset -> folder (default: the /data/<name> placeholders)")
    parser.add_argument("--out", default="outputs/experiments/real", help="runs folder")
    parser.add_argument("--trainer", default="configs/trainer/gpu.yaml", help="trainer config layered on every run")
    parser.add_argument("--device", default="cuda", help="device of the evaluations")
    parser.add_argument("--eval-limit", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HoiAdaptError as exc:
        print(f"paper_table: error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    from hoi_adapt.demo import Steps, fit_args, run_fit

    roots, out = load_roots(args.roots), Path(args.out)
    runs = plan(roots, out, args.trainer)
    if args.dry_run:
        for name, config, overrides in runs:
            print(f"# {name}\nhoi-adapt " + shlex.join(fit_args(config, out / name, None, overrides)))
        for ds in EVAL_DATASETS:
            print(f"# evaluate every row on {ds}: hoi-adapt evaluate --dataset {ds} --root {roots[ds]} ...")
        return 0
    missing = missing_roots(roots)
    if missing:
        raise ConfigError(args.roots or "experiments/configs/real", "dataset or MANO folders not found: " + "; ".join(missing)
                          + " (give --roots, and check each copy with data_prep/check_dataset.py)")
    steps, ckpts = Steps(out), {}
    for name, config, overrides in runs:
        overrides = [o.replace("{stage0}", str(ckpts.get("stage0"))) for o in overrides]
        ckpts[name] = steps.run(name, {"cfg": Path(config).read_text(), "o": overrides},
                                lambda c=config, n=name, o=overrides: run_fit(c, out / n, None, o))
    return report(ckpts, roots, args)


def report(ckpts: dict[str, str], roots: dict[str, str], args: argparse.Namespace) -> int:
    from hoi_adapt.eval.protocols import get_protocol
    from hoi_adapt.eval.runner import ModelSpec, evaluate_checkpoints
    from hoi_adapt.utils.bench import write_result_files

    models = [ModelSpec(Path(ckpts["stage0"]), False, "baseline")]
    models += [ModelSpec(Path(ckpts[name]), True, label) for label, name in ADAPT_ROWS]
    models.append(ModelSpec(Path(ckpts["oracle"]), False, "oracle"))
    table: dict[str, dict[str, Any]] = {m.label: {} for m in models}
    for ds in EVAL_DATASETS:
        res = evaluate_checkpoints(models, ds, roots[ds], out_dir=RESULTS / "paper_real" / ds, device=args.device,
                                   mano_path=roots["mano"], limit=args.eval_limit, compare_published=True, overwrite=True)
        key = get_protocol(ds).primary_metric
        for label, row in res["rows"].items():
            table.setdefault(label, {})[ds] = {"auc": row["metrics"][key], "metric": key,
                                               "thresholds_mm": row["thresholds_mm"]}
    lines = ["# Real-data protocols: AUC 20-50 mm", "", "| row | " + " | ".join(EVAL_DATASETS) + " |",
             "|---" * (len(EVAL_DATASETS) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{r[ds]['auc']:.3f}" if ds in r else "-" for ds in EVAL_DATASETS) + " |"
              for label, r in table.items()]
    write_result_files(RESULTS / "paper_real.json", {"rows": table, "checkpoints": ckpts, "roots": roots}, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
