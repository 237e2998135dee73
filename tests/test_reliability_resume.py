"""Fault injection: ``hoi-adapt fit`` SIGKILLed mid-phase resumes from its last checkpoint to the same weights.

The killed run is a real subprocess (``tests/fault_injection.py``'s KillAtStep callback: SIGKILL inside a
training step, no clean-up runs); the uninterrupted and the resumed runs go through the same CLI in this process. On CPU with
``num_workers=0`` the resumed weights equal the uninterrupted ones exactly: same data order (resumable
loaders), same augmentation (per-sample seeds), same dropout/ImagePool draws (RNG in the checkpoint).
The configs are the shipped ``configs/estimator/demo.yaml`` and ``configs/adapt/demo.yaml``, shrunk.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import yaml
from fault_injection import kill_at_step_args

from hoi_adapt.lit.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
PHASE_CKPT = "hoi_adapt.callbacks.phase_checkpoint.PhaseCheckpoint"


def _trainer(cfg: dict[str, Any], out: Path, every: int, **over: Any) -> None:
    t = cfg["trainer"]
    t.update(accelerator="cpu", devices=1, log_every_n_steps=1, default_root_dir=str(out), enable_progress_bar=False,
             limit_val_batches=1, check_val_every_n_epoch=None, **over)
    t["logger"]["init_args"]["save_dir"] = str(out)
    # the rolling step checkpoint resumption needs; no image logger, progress bar or best-model checkpoint
    t["callbacks"] = [{"class_path": PHASE_CKPT, "init_args": {"dirpath": str(out / "resume"), "every_n_steps": every}}]


def stage0_config(out: Path, world: Path, max_steps: int = 4, every: int = 2, size: int = 32, batch: int = 2,
                  limits: tuple[int, int] | None = (6, 4)) -> Path:
    """configs/estimator/demo.yaml with a small estimator, tiny batches and a rolling step checkpoint.

    ``limits`` shrink the two training streams so that within a few steps one stream is cycled and an
    epoch ends (both are resumption edge cases).
    """
    cfg = yaml.safe_load((REPO / "configs/estimator/demo.yaml").read_text())
    _trainer(cfg, out, every, max_steps=max_steps, val_check_interval=3)
    m = cfg["model"]["init_args"]
    m["estimator"]["init_args"].update(regressor_hidden=64, evidence_width=16)
    m["silhouette_size"] = 16
    d = cfg["data"]
    d.update(world=str(world), world_config=None, image_size=size, batch_size=batch, num_workers=0)
    d["train"]["pairs_hand"]["batch_size"] = batch
    if limits:
        d["train"]["hand_only"]["limit"], d["train"]["pairs_hand"]["limit"] = limits
    d["val"] = {"hand_only_train": {**d["val"]["hand_only_train"], "limit": None}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.yaml").write_text(yaml.safe_dump(cfg))
    return out / "fit.yaml"


def adapt_config(out: Path, world: Path, every: int = 1) -> Path:
    """configs/adapt/demo.yaml with tiny networks and schedule: stage 0 (1 step), G/D (2 steps), E (1 step)."""
    cfg = yaml.safe_load((REPO / "configs/adapt/demo.yaml").read_text())
    _trainer(cfg, out, every, val_check_interval=2)
    m = cfg["model"]["init_args"]
    m["estimator"]["init_args"].update(regressor_hidden=64, evidence_width=16)
    m["generator"]["init_args"].update(base_channels=8, num_downs=4)
    m["discriminator"]["init_args"].update(base_channels=8, num_layers=2)
    m.update(schedule={"stage0_steps": 1, "rounds": 1, "gd_steps": 2, "est_steps": 1}, silhouette_size=16, pool_size=4)
    d = cfg["data"]
    d.update(world=str(world), world_config=None, image_size=32, batch_size=2, num_workers=0)
    for name, limit in (("hand_only", 4), ("pairs", 4), ("hoi", 2)):
        d["train"][name]["limit"] = limit
    out.mkdir(parents=True, exist_ok=True)
    (out / "fit.yaml").write_text(yaml.safe_dump(cfg))
    return out / "fit.yaml"


def fit_in_process(config: Path, *extra: str) -> None:
    assert cli_main(["fit", "-c", str(config), *extra]) == 0


def fit_killed_at(config: Path, step: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "hoi_adapt.cli", "fit", "-c", str(config), *kill_at_step_args(step)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-5, msg=key)


def test_stage0_killed_mid_epoch_resumes_to_the_uninterrupted_weights(tiny_world, tmp_path):
    whole = tmp_path / "whole"
    fit_in_process(stage0_config(whole, tiny_world))

    cut = tmp_path / "cut"
    config = stage0_config(cut, tiny_world)
    proc = fit_killed_at(config, step=3)  # inside the 4th step; the rolling checkpoint is from step 2
    assert proc.returncode == -9, proc.stderr[-2000:]  # SIGKILL: nothing ran after it
    resume = cut / "resume" / "last.ckpt"
    saved = torch.load(resume, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 2
    positions = saved["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    # hand_only: 3 batches per pass, pairs_hand: 2 -> the pairs stream has just rolled over to its 2nd pass
    assert [(p["pass"], p["batch"]) for p in positions] == [(0, 2), (1, 0)]
    # A checkpoint's hyper-parameters never reach the config (LightningCLI would merge them, and a class
    # path there would be instantiated): tampering with them changes nothing.
    saved["hyper_parameters"].update(_class_path="hoi_adapt.lit.adapt_module.AdaptModule", silhouette_size=999)
    torch.save(saved, resume)

    fit_in_process(config, f"--ckpt_path={resume}")
    final = torch.load(resume, map_location="cpu", weights_only=True)
    reference = torch.load(whole / "resume" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == reference["global_step"] == 4
    positions = final["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert positions == reference["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert [(p["pass"], p["batch"]) for p in positions] == [(1, 1), (2, 0)]  # an epoch ended after step 3
    assert_same_weights(reference["state_dict"], final["state_dict"])
    for a, b in zip(reference["optimizer_states"][0]["state"].values(), final["optimizer_states"][0]["state"].values(), strict=True):
        torch.testing.assert_close(b["exp_avg"], a["exp_avg"], rtol=0, atol=1e-6)


class _StartState(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        type(self).seen = (pl_module.schedule_step, pl_module.phase().name, pl_module.phase().step)


def test_adaptation_killed_mid_phase_resumes_in_the_same_phase_and_step(tiny_world, tmp_path):
    whole = tmp_path / "whole"
    fit_in_process(adapt_config(whole, tiny_world))

    cut = tmp_path / "cut"
    config = adapt_config(cut, tiny_world)
    # killed in the G update of G/D step 2 of 2; last.ckpt holds schedule step 2. Stage 0's dropout has used
    # the RNG and the ImagePool is full, so its random swaps in that step need the saved RNG state.
    proc = fit_killed_at(config, step=2)
    assert proc.returncode == -9, proc.stderr[-2000:]
    resume = cut / "resume" / "last.ckpt"
    saved = torch.load(resume, map_location="cpu", weights_only=True)["hoi_adapt_schedule"]
    assert saved["schedule_step"] == 2 and len(saved["pool"]["images"]) == 4
    assert not (cut / "resume" / "round1_gd.ckpt").exists()  # the phase never ended in the killed run

    fit_in_process(config, f"--ckpt_path={resume}", f"--trainer.callbacks+={__name__}._StartState")
    assert _StartState.seen == (2, "gd", 1)  # same phase, same step
    final = torch.load(resume, map_location="cpu", weights_only=True)
    reference = torch.load(whole / "resume" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["hoi_adapt_schedule"]["schedule_step"] == reference["hoi_adapt_schedule"]["schedule_step"] == 4
    assert_same_weights(reference["state_dict"], final["state_dict"])
    for a, b in zip(final["hoi_adapt_schedule"]["pool"]["images"], reference["hoi_adapt_schedule"]["pool"]["images"], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)  # the ImagePool's random swaps replayed too
    tags = ["last.ckpt", "round1_est.ckpt", "round1_gd.ckpt", "stage0.ckpt"]
    assert sorted(p.name for p in (cut / "resume").glob("*.ckpt")) == sorted(p.name for p in (whole / "resume").glob("*.ckpt")) == tags
