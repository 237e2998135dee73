"""Non-finite losses: the step is skipped and logged, the weights never see it, and a streak stops the run
with an error naming where -- before any checkpoint of the broken state is written.

Losses are poisoned the realistic way: the batch handed to the real loss gets NaN 3D labels, so the
``joints3d`` term (and the total) is NaN.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import CSVLogger

from hoi_adapt.callbacks.phase_checkpoint import PhaseCheckpoint
from hoi_adapt.data.streams import StreamSpec
from hoi_adapt.lit.adapt_module import AdaptModule
from hoi_adapt.lit.cli import main as cli_main
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.lit.estimator_module import EstimatorModule
from hoi_adapt.lit.guards import NonFiniteLossError, norm_statistics
from hoi_adapt.lit.schedule import AdaptSchedule
from hoi_adapt.losses.estimator import EstimatorLoss
from hoi_adapt.losses.translation import TranslationLoss
from hoi_adapt.models.discriminator import PatchDiscriminator
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.models.generator import UNetGenerator


class Poison:
    """Wraps a loss ``forward``: on the chosen calls (0-based) the batch's 3D labels become NaN."""

    def __init__(self, forward: Callable[..., Any], bad: Callable[[int], bool], key: str = "joints3d") -> None:
        self.forward, self.bad, self.key, self.calls = forward, bad, key, 0

    def __call__(self, out: Any, batch: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        i, self.calls = self.calls, self.calls + 1
        if self.bad(i):
            if batch is not None:
                batch = {**batch, self.key: torch.full_like(batch[self.key], float("nan"))}
            else:  # translation loss: keyword inputs; poison the generated image's target
                kwargs = {k: (torch.full_like(v, float("nan")) if k in ("target", "hoi_image") and v is not None else v)
                          for k, v in kwargs.items()}
        return self.forward(out, batch, *args, **kwargs) if batch is not None else self.forward(out, *args, **kwargs)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "hand_model" not in k}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


class StepRecorder(pl.Callback):
    """Per training batch: did the watched networks' weights change?"""

    def __init__(self, *names: str) -> None:
        self.names = names
        self.changed: list[dict[str, bool]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before = {n: weights(getattr(pl_module, n)) for n in self.names}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.changed.append({n: not same(self.before[n], weights(getattr(pl_module, n))) for n in self.names})


def estimator_setup(world: Path, max_nonfinite: int) -> tuple[EstimatorModule, HOIDataModule]:
    torch.manual_seed(0)
    module = EstimatorModule(MeshEstimator(regressor_hidden=32, evidence_width=8), silhouette_size=8, max_nonfinite=max_nonfinite)
    dm = HOIDataModule(world=str(world), image_size=32, batch_size=2, num_workers=0, augment=None,
                       train={"hand_only": StreamSpec(split="source_hand", limit=8)},
                       val={"v": StreamSpec(split="source_hand_test", limit=2)})
    return module, dm


def trainer(root: Path, steps: int, callbacks: list[pl.Callback], logger: Any = False) -> pl.Trainer:
    return pl.Trainer(max_steps=steps, accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, log_every_n_steps=1,
                      default_root_dir=root, callbacks=callbacks)


class Snapshots(pl.Callback):
    """Parameters and normalisation statistics of the estimator after every training batch (and before the first)."""

    def __init__(self) -> None:
        self.params: list[dict[str, torch.Tensor]] = []
        self.stats: list[dict[str, torch.Tensor]] = []

    def _take(self, pl_module: pl.LightningModule) -> None:
        self.params.append({k: v.detach().clone() for k, v in pl_module.estimator.named_parameters()})
        self.stats.append(norm_statistics(pl_module.estimator))

    def on_train_start(self, trainer, pl_module):
        self._take(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._take(pl_module)


def test_nonfinite_steps_are_skipped_logged_and_leave_the_weights_alone(tiny_world, tmp_path, monkeypatch):
    module, dm = estimator_setup(tiny_world, max_nonfinite=3)
    monkeypatch.setattr(module.estimator_loss, "forward", Poison(module.estimator_loss.forward, lambda i: i in (1, 2)))
    snaps = Snapshots()
    t = trainer(tmp_path, 5, [snaps], logger=CSVLogger(tmp_path, name="", version="v"))
    t.fit(module, dm)
    assert len(snaps.params) == 1 + 5 and t.global_step == 5  # a skipped step still counts as a step
    for batch, skipped in enumerate([False, True, True, False, False]):
        before, after = snaps.params[batch], snaps.params[batch + 1]
        assert same(before, after) == skipped, batch
        assert same(snaps.stats[batch], snaps.stats[batch + 1]) == skipped, batch
    assert module.guard.total_skipped == 2 and module.guard.consecutive == 0
    assert all(torch.isfinite(p).all() for p in module.estimator.parameters())
    rows = list(csv.DictReader(open(tmp_path / "v" / "metrics.csv")))
    logged = {int(r["step"]): float(r["train/nonfinite_skipped"]) for r in rows if r.get("train/nonfinite_skipped")}
    assert logged[1] == 1.0 and logged[2] == 2.0 and max(logged.values()) == 2.0 and 0 not in logged


def test_a_nonfinite_image_does_not_poison_batchnorm_statistics(tiny_world, tmp_path, monkeypatch):
    module, dm = estimator_setup(tiny_world, max_nonfinite=3)
    real, calls = module.estimator.forward, []

    def poisoned(image, K):  # E's input: the NaN image passes through BatchNorm before any loss sees it
        calls.append(1)
        if len(calls) == 2:
            image = image.clone().index_fill_(0, torch.tensor([0]), float("nan"))
        return real(image, K)

    monkeypatch.setattr(module.estimator, "forward", poisoned)
    snaps = Snapshots()
    trainer(tmp_path, 3, [snaps]).fit(module, dm)
    assert len(calls) == 3 and module.guard.total_skipped == 1
    assert same(snaps.stats[1], snaps.stats[2]) and same(snaps.params[1], snaps.params[2])
    assert all(torch.isfinite(v).all() for v in norm_statistics(module.estimator).values())
    assert not same(snaps.stats[2], snaps.stats[3])  # the next, clean batch trains normally


def test_a_streak_of_nonfinite_losses_stops_before_any_checkpoint_of_it(tiny_world, tmp_path, monkeypatch):
    module, dm = estimator_setup(tiny_world, max_nonfinite=3)
    monkeypatch.setattr(module.estimator_loss, "forward", Poison(module.estimator_loss.forward, lambda i: i >= 2))
    ckpts = tmp_path / "ckpt"
    t = trainer(tmp_path, 10, [PhaseCheckpoint(dirpath=str(ckpts), every_n_steps=1)])
    saves: list[int] = []
    real_save = t.save_checkpoint
    monkeypatch.setattr(t, "save_checkpoint", lambda path, *a, **k: (saves.append(module.estimator_loss.forward.calls), real_save(path, *a, **k))[1])
    with pytest.raises(NonFiniteLossError, match=r"3 consecutive non-finite losses at step 4 \(non-finite terms: \[.*'joints3d'.*\]\)") as err:
        t.fit(module, dm)
    assert "last checkpoint" in str(err.value)
    at_failure = {k: v.detach().clone() for k, v in module.estimator.named_parameters()}
    # batches 2 and 3 were skipped (and checkpointed: their weights are the finite ones after batch 1);
    # batch 4 raised, and nothing was saved after it
    assert saves == [1, 2, 3, 4] and module.estimator_loss.forward.calls == 5
    saved = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == 4 and saved["hoi_adapt_train_state"]["guard"]["consecutive"] == 2
    for name, value in at_failure.items():
        stored = saved["state_dict"][f"estimator.{name}"]
        assert torch.isfinite(stored).all() and torch.equal(stored, value), name


def test_cli_reports_a_nonfinite_streak_in_one_line(tiny_world, tmp_path, monkeypatch, capsys):
    from test_reliability_resume import stage0_config

    forward = EstimatorLoss.forward
    monkeypatch.setattr(EstimatorLoss, "forward", lambda self, out, batch, *a, **k: forward(
        self, out, {**batch, "joints3d": torch.full_like(batch["joints3d"], float("nan"))}, *a, **k))
    config = stage0_config(tmp_path / "run", tiny_world, max_steps=8, every=1, limits=None)
    rc = cli_main(["fit", "-c", str(config), "--model.init_args.max_nonfinite=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith("hoi-adapt fit: error: 2 consecutive non-finite losses at step 1 (non-finite terms: ['joints3d', 'camera_joints'])")  # both read the NaN labels
    assert "Traceback" not in "\n".join(err)
    saved = torch.load(tmp_path / "run" / "resume" / "last.ckpt", weights_only=True)  # written after the skipped step 0
    assert saved["global_step"] == 1 and all(torch.isfinite(v).all() for v in saved["state_dict"].values())


def adapt_module(max_nonfinite: int, schedule: AdaptSchedule) -> AdaptModule:
    torch.manual_seed(0)
    return AdaptModule(
        estimator=MeshEstimator(regressor_hidden=32, evidence_width=8),
        generator=UNetGenerator(in_channels=3, base_channels=8, num_downs=4),
        discriminator=PatchDiscriminator(base_channels=8, num_layers=2),
        guidance=None, schedule=schedule, translation_loss=TranslationLoss(weight_adversarial=1.0),
        silhouette_size=8, pool_size=2, max_nonfinite=max_nonfinite,
    )


def adapt_data(world: Path) -> HOIDataModule:
    return HOIDataModule(world=str(world), image_size=32, batch_size=2, num_workers=0, augment=None,
                         train={"hand_only": StreamSpec(split="source_hand", limit=4),
                                "pairs": StreamSpec(split="source_pairs", image="hoi", pair=True, amodal_masks=True, limit=4)},
                         val={"v": StreamSpec(split="target_val", image="hoi", pair=True, limit=2)})


def test_adaptation_skips_a_nonfinite_generator_update_but_still_trains_the_discriminator(tiny_world, tmp_path, monkeypatch):
    module = adapt_module(3, AdaptSchedule(stage0_steps=0, rounds=1, gd_steps=3, est_steps=0))
    monkeypatch.setattr(module.translation_loss, "forward", Poison(module.translation_loss.forward, lambda i: i == 1))
    rec = StepRecorder("generator", "discriminator")
    t = pl.Trainer(max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[rec])
    t.fit(module, adapt_data(tiny_world))
    assert [c["generator"] for c in rec.changed] == [True, False, True]
    assert all(c["discriminator"] for c in rec.changed)
    assert module.guard.total_skipped == 1


def test_adaptation_stops_on_a_generator_streak_even_while_the_discriminator_is_finite(tiny_world, tmp_path, monkeypatch):
    """The guard counts streaks per optimiser: finite D losses must not hide a G that never trains."""
    module = adapt_module(2, AdaptSchedule(stage0_steps=0, rounds=1, gd_steps=6, est_steps=0))
    monkeypatch.setattr(module.translation_loss, "forward", Poison(module.translation_loss.forward, lambda i: i >= 1))
    t = pl.Trainer(max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    with pytest.raises(NonFiniteLossError, match="2 consecutive non-finite losses at round 1 G step"):
        t.fit(module, adapt_data(tiny_world))
    assert module.schedule_step == 2  # stopped in the G/D step after the first skip
