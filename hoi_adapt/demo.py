"""``hoi-adapt demo``: the main job, end to end on the built-in synthetic world.

Steps (each reused on re-runs when already complete, resumed when interrupted):

1. the stand-in hand model (and its pose grid);
2. the synthetic hand-object world;
3. stage 0: the estimator on labelled hand-only images (the *baseline*);
4. the adaptation rounds (G/D with E frozen, then E on translations);
5. evaluation of baseline vs adapted on the target-domain hand-object test set;
6. export of a small adapted (de-occluded) dataset;
7. a report folder: results table (markdown + JSON), PCK curves, translation grid, mesh overlays.

``--out`` is one demo: the profile's inputs (configs, overrides, world, splits, limits) are recorded in
``<out>/steps/profile.json``, and a folder holding a demo of other inputs is refused before anything runs,
naming the folder and what differs, unless ``--overwrite`` (then the changed steps run again; earlier
training runs stay untouched in their own folders, evaluation and export are replaced).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hoi_adapt.demo_report import build_report
from hoi_adapt.eval.runner import ModelSpec, evaluate_checkpoints
from hoi_adapt.export import export_dataset
from hoi_adapt.hand.standin import ensure_standin_files
from hoi_adapt.lit.cli import main as fit_main
from hoi_adapt.synth.contact_sheet import write_contact_sheet
from hoi_adapt.synth.generator import ensure_world
from hoi_adapt.utils.errors import ConfigError, DataFileError, HoiAdaptError
from hoi_adapt.utils.io import write_json_atomic
from hoi_adapt.utils.results import check_same_result
from hoi_adapt.viz.pose_grid import write_pose_grid

DEFAULT_PROFILE = "configs/demo/default.yaml"


@dataclass
class DemoProfile:
    """What the demo runs (``configs/demo/*.yaml``)."""

    out: str = "outputs/demo"
    world: str = "outputs/world/demo"
    world_config: str = "configs/synth/demo.yaml"
    estimator_config: str = "configs/estimator/demo.yaml"
    adapt_config: str = "configs/adapt/demo.yaml"
    estimator_overrides: list[str] = field(default_factory=list)
    adapt_overrides: list[str] = field(default_factory=list)
    eval_split: str = "target_test"
    eval_limit: int | None = None
    export_split: str = "target_hoi"
    export_limit: int = 64


def load_profile(path: str | Path) -> DemoProfile:
    import yaml


    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "demo profile not found")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = sorted(set(data) - set(DemoProfile.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"{path}: unknown keys {unknown}; allowed: {sorted(DemoProfile.__dataclass_fields__)}")
    return DemoProfile(**data)


class Steps:
    """Runs named steps with timing, skipping those whose done-marker matches."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.timings: dict[str, float] = {}

    def run(self, name: str, key: dict[str, Any], fn: Callable[[], Any]) -> Any:
        marker = self.out / "steps" / f"{name}.json"
        digest = _digest(key)
        if marker.is_file():
            done = json.loads(marker.read_text())
            if done.get("key") == digest:
                print(f"[demo] {name}: reusing finished result")
                self.timings[name] = 0.0
                return done.get("result")
        print(f"[demo] {name} ...", flush=True)
        t0 = time.time()
        result = fn()
        self.timings[name] = time.time() - t0
        write_json_atomic(marker, {"key": digest, "result": result, "seconds": self.timings[name]})
        print(f"[demo] {name} done in {self.timings[name]:.0f} s", flush=True)
        return result


def _latest_checkpoint(run_dir: Path, name: str = "last.ckpt") -> Path | None:
    found = sorted(run_dir.rglob(name), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def _digest(key: Any) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def fit_args(config: str, run_dir: Path, world: str | None, overrides: list[str]) -> list[str]:
    """The ``hoi-adapt fit`` arguments of a run into ``run_dir`` (``world`` None: real-data streams only).

    ``overrides`` (extra ``-c`` files and flags) come first so that the run folder and the world given here win
    over the folders named in layered configs.
    """
    return ["fit", "-c", config, *overrides, f"--trainer.default_root_dir={run_dir}",
            f"--trainer.logger.init_args.save_dir={run_dir}", f"--data.world={world if world is not None else 'null'}",
            "--data.world_config=null"]


def run_fit(config: str, run_dir: Path, world: str | None, overrides: list[str]) -> str:
    """LightningCLI ``fit`` under ``run_dir/<inputs digest>``; resumes that run's last checkpoint if one exists.

    The digest of the config text, the overrides and the world keeps runs of other inputs apart: a changed
    config starts a new run instead of resuming (and writing into) the run of the old one.
    """
    run_dir = Path(run_dir) / _digest({"config": Path(config).read_text(), "overrides": overrides, "world": world})[:12]
    args = fit_args(config, run_dir, world, overrides)
    resume = _latest_checkpoint(run_dir)
    if resume is not None:
        print(f"[demo] resuming from {resume}")
        args.append(f"--ckpt_path={resume}")
    if fit_main(args) != 0:
        raise HoiAdaptError(f"training with {config} failed (see the error above); fix it and run the demo again to resume")
    last = _latest_checkpoint(run_dir)
    if last is None:
        raise HoiAdaptError(f"training in {run_dir} produced no checkpoint")
    return str(last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hoi-adapt demo", description=__doc__.splitlines()[0])
    parser.add_argument("-c", "--config", default=DEFAULT_PROFILE, help=f"demo profile YAML (default {DEFAULT_PROFILE})")
    parser.add_argument("--out", default=None, help="output folder (overrides the profile)")
    parser.add_argument("--workers", type=int, default=None, help="processes for world generation (default: CPU count)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a demo of another profile (configs, overrides, world, limits) in the output folder")
    args = parser.parse_args(argv)
    try:
        return run_demo(load_profile(args.config), out=args.out, workers=args.workers, overwrite=args.overwrite)
    except HoiAdaptError as exc:
        print(f"hoi-adapt demo: error: {exc}", file=sys.stderr)
        return 1


PROFILE_FILE = "steps/profile.json"


def profile_identity(profile: DemoProfile) -> dict[str, Any]:
    """What a demo's results depend on: the profile with the texts of the configs it names."""
    ident = {k: v for k, v in asdict(profile).items() if k != "out"}
    for key in ("world_config", "estimator_config", "adapt_config"):
        path = Path(getattr(profile, key))
        ident[f"{key}_text"] = path.read_text() if path.is_file() else None
    return ident


def check_profile(out_dir: Path, profile: DemoProfile, overwrite: bool = False) -> None:
    """Refuse an ``out_dir`` holding the demo of another profile (unless ``overwrite``); then record this one."""
    path = out_dir / PROFILE_FILE
    requested = profile_identity(profile)
    recorded = json.loads(path.read_text()) if path.is_file() else None
    check_same_result(out_dir, recorded, requested, sorted(set(requested) | set(recorded or {})), what="demo",
                      overwrite=overwrite)
    write_json_atomic(path, requested)


def run_demo(profile: DemoProfile, out: str | None = None, workers: int | None = None, overwrite: bool = False) -> int:
    """Run (or resume, or reuse) every step into ``out``; ``overwrite`` replaces a demo of another profile there."""
    t_start = time.time()
    out_dir = Path(out or profile.out)
    check_profile(out_dir, profile, overwrite)
    report = out_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    steps = Steps(out_dir)

    def hand_model() -> str:
        ensure_standin_files()
        return str(write_pose_grid(report / "hand_model.png"))

    steps.run("hand_model", {"v": 1}, hand_model)

    def world() -> str:
        root = ensure_world(profile.world_config, profile.world, workers=workers)
        write_contact_sheet(root, report / "synthetic_world.png")
        return str(root)

    steps.run("world", {"config": Path(profile.world_config).read_text(), "world": profile.world}, world)

    est_key = {"config": Path(profile.estimator_config).read_text(), "overrides": profile.estimator_overrides,
               "world": profile.world}
    est_ckpt = steps.run("stage0_estimator", est_key, lambda: run_fit(
        profile.estimator_config, out_dir / "runs" / "estimator", profile.world, profile.estimator_overrides))

    adapt_key = {"config": Path(profile.adapt_config).read_text(), "overrides": profile.adapt_overrides, "stage0": est_key}
    adapt_ckpt = steps.run("adaptation", adapt_key, lambda: run_fit(
        profile.adapt_config, out_dir / "runs" / "adapt", profile.world,
        [f"--model.init_args.estimator_ckpt={est_ckpt}", *profile.adapt_overrides]))

    def evaluate() -> dict[str, Any]:
        models = [ModelSpec(Path(est_ckpt), False, "baseline (stage-0 E on hand-object images)"),
                  ModelSpec(Path(adapt_ckpt), False, "adapted E, no translation"),
                  ModelSpec(Path(adapt_ckpt), True, "full method (E -> R -> G -> E)")]
        res = evaluate_checkpoints(models, "synthetic", profile.world, profile.eval_split, out_dir=report / "eval",
                                   limit=profile.eval_limit, overwrite=overwrite)
        return {"rows": {k: v["metrics"] for k, v in res["rows"].items()}, "files": {k: str(v) for k, v in res["files"].items()},
                "thresholds_mm": next(iter(res["rows"].values()))["thresholds_mm"]}

    results = steps.run("evaluate", {"est": est_ckpt, "adapt": adapt_ckpt, "split": profile.eval_split,
                                     "limit": profile.eval_limit}, evaluate)

    def export() -> dict[str, Any]:
        manifest = export_dataset(adapt_ckpt, "synthetic", profile.world, out_dir / "export", split=profile.export_split,
                                  limit=profile.export_limit, overwrite=overwrite)
        return {"out": str(out_dir / "export"), "count": manifest.get("count")}

    exported = steps.run("export", {"adapt": adapt_ckpt, "split": profile.export_split, "limit": profile.export_limit}, export)

    summary = build_report(report, profile=asdict(profile), results=results, export=exported, est_ckpt=est_ckpt,
                           adapt_ckpt=adapt_ckpt, timings=steps.timings, total_seconds=time.time() - t_start)
    print(summary)
    print(f"\n[demo] report: {report.resolve()}/README.md  (total {time.time() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
