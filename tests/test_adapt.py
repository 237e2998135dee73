"""The alternating adaptation schedule: phases, parameter isolation, checkpoints and resumption."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from hoi_adapt.callbacks.phase_checkpoint import PhaseCheckpoint
from hoi_adapt.checkpoints.format import write_network_checkpoint
from hoi_adapt.checkpoints.load import load_pipeline, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.streams import StreamSpec
from hoi_adapt.lit.adapt_module import AdaptModule
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.lit.schedule import AdaptSchedule
from hoi_adapt.losses.translation import TranslationLoss
from hoi_adapt.models.discriminator import PatchDiscriminator
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.models.generator import UNetGenerator
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.utils.errors import CheckpointError


def test_schedule_phases():
    s = AdaptSchedule(stage0_steps=2, rounds=2, gd_steps=3, est_steps=1)
    names = [(p.name, p.round, p.step) for p in map(s.phase_at, range(s.total_steps + 1))]
    assert names == [("stage0", 0, 0), ("stage0", 0, 1), ("gd", 1, 0), ("gd", 1, 1), ("gd", 1, 2), ("est", 1, 0),
                     ("gd", 2, 0), ("gd", 2, 1), ("gd", 2, 2), ("est", 2, 0), ("done", 2, 0)]
    assert s.total_steps == 10 and s.phase_at(4).is_last_step and s.phase_at(4).tag == "round1_gd"


def make_module(guidance: bool = True, adversarial: float = 1.0, schedule: AdaptSchedule | None = None,
                estimator_ckpt: str | None = None) -> AdaptModule:
    torch.manual_seed(0)
    return AdaptModule(
        estimator=MeshEstimator(regressor_hidden=64, evidence_width=16),
        generator=UNetGenerator(in_channels=8 if guidance else 3, base_channels=8, num_downs=4),
        discriminator=PatchDiscriminator(base_channels=8, num_layers=2),
        guidance=MeshGuidance(guidance_size=32) if guidance else None,
        schedule=schedule or AdaptSchedule(stage0_steps=1, rounds=1, gd_steps=1, est_steps=1),
        translation_loss=TranslationLoss(weight_adversarial=adversarial),
        silhouette_size=16, pool_size=4, estimator_ckpt=estimator_ckpt,
    )


def make_data(world: Path) -> HOIDataModule:
    return HOIDataModule(
        world=str(world), image_size=64, batch_size=2, num_workers=0,
        train={"hand_only": StreamSpec(split="source_hand"),
               "pairs": StreamSpec(split="source_pairs", image="hoi", pair=True, amodal_masks=True),
               "hoi": StreamSpec(split="target_hoi", image="hoi", labels=False)},
        val={"target_val": StreamSpec(split="target_val", image="hoi", pair=True)},
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items() if "hand_model" not in k}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before)


class Recorder(pl.Callback):
    """Records, per schedule step, which networks' weights or buffers changed."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, dict[str, bool]]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.before = {n: snapshot(getattr(pl_module, n)) for n in ("estimator", "generator", "discriminator")}
        self.phase = pl_module.phase().name

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        after = {n: snapshot(getattr(pl_module, n)) for n in self.before}
        self.changes.append((self.phase, {n: changed(self.before[n], after[n]) for n in after}))


def fit(module: AdaptModule, world: Path, root: Path, callbacks=(), ckpt_path=None) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=-1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, num_sanity_val_steps=0, limit_val_batches=1,
                         val_check_interval=2, check_val_every_n_epoch=None, default_root_dir=root,
                         callbacks=list(callbacks))
    trainer.fit(module, make_data(world), ckpt_path=ckpt_path)
    return trainer


def test_each_phase_updates_only_its_networks(tiny_world, tmp_path):
    rec = Recorder()
    fit(make_module(), tiny_world, tmp_path, [rec])
    assert [p for p, _ in rec.changes] == ["stage0", "gd", "est"]
    expected = {
        "stage0": {"estimator": True, "generator": False, "discriminator": False},
        "gd": {"estimator": False, "generator": True, "discriminator": True},
        "est": {"estimator": True, "generator": False, "discriminator": False},
    }
    for phase, did in rec.changes:
        assert did == expected[phase], (phase, did)


@pytest.mark.parametrize("guidance,adversarial", [(False, 1.0), (True, 0.0)])
def test_ablations_train(tiny_world, tmp_path, guidance, adversarial):
    rec = Recorder()
    fit(make_module(guidance=guidance, adversarial=adversarial), tiny_world, tmp_path, [rec])
    gd = dict(rec.changes)["gd"]
    assert gd["generator"] and gd["discriminator"] == (adversarial > 0)


def test_generator_channels_must_match_guidance():
    from hoi_adapt.utils.errors import ConfigError

    with pytest.raises(ConfigError, match="input channels"):
        AdaptModule(MeshEstimator(regressor_hidden=32, evidence_width=8), UNetGenerator(in_channels=3, base_channels=8, num_downs=3),
                    PatchDiscriminator(base_channels=8), guidance=MeshGuidance(guidance_size=16))


@pytest.mark.slow
def test_schedule_checkpoints_and_resumes(tiny_world, tmp_path):
    schedule = AdaptSchedule(stage0_steps=1, rounds=2, gd_steps=2, est_steps=1)
    ckpts = tmp_path / "ckpt"
    module = make_module(schedule=schedule)
    fit(module, tiny_world, tmp_path / "a", [PhaseCheckpoint(dirpath=str(ckpts), every_n_steps=0)])
    assert module.schedule_step == schedule.total_steps
    tags = sorted(p.stem for p in ckpts.glob("*.ckpt"))
    assert tags == ["last", "round1_est", "round1_gd", "round2_est", "round2_gd", "stage0"]
    mid = read_checkpoint(ckpts / "round1_gd.ckpt")
    assert mid["hoi_adapt_schedule"]["schedule_step"] == 3 and mid["hoi_adapt_schedule"]["phase"] == "est"

    # Resume from the middle: state is restored exactly, and the schedule continues from step 3 to the end.
    class Check(pl.Callback):
        def on_train_start(self, trainer, pl_module):
            self.step = pl_module.schedule_step
            self.pool = len(pl_module.pool)
            self.weights = snapshot(pl_module.generator)

    check = Check()
    resumed = make_module(schedule=schedule)
    fit(resumed, tiny_world, tmp_path / "b", [check], ckpt_path=ckpts / "round1_gd.ckpt")
    assert check.step == 3 and check.pool == len(mid["hoi_adapt_schedule"]["pool"]["images"])
    saved_g = {k[len("generator."):]: v for k, v in mid["state_dict"].items() if k.startswith("generator.")}
    assert all(torch.equal(check.weights[k], saved_g[k]) for k in saved_g)
    assert resumed.schedule_step == schedule.total_steps

    pipeline = load_pipeline(ckpts / "last.ckpt")
    batch = next(iter(DataLoader(SyntheticHandDataset(tiny_world, "target_test", image="hoi"), batch_size=2)))
    with torch.no_grad():
        out = pipeline(batch["image"], batch["K"])
    assert out.translated.shape == batch["image"].shape and out.final.joints3d.shape == (2, 21, 3)


def stage0_file(path: Path, **estimator_args) -> Path:
    """A stage-0 checkpoint for make_module's E (64 px like make_data), seeded apart from make_module's own E."""
    torch.manual_seed(5)
    net = MeshEstimator(regressor_hidden=64, evidence_width=16, **estimator_args)
    return write_network_checkpoint(path, "estimator", {"estimator": net}, input_size=64)


def estimator_weights(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and "hand_model" not in k}


class StartWeights(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.estimator = snapshot(pl_module.estimator)


def test_resuming_continues_its_own_estimator_without_reading_the_stage0_checkpoint(tiny_world, tmp_path):
    schedule = AdaptSchedule(stage0_steps=0, rounds=2, gd_steps=1, est_steps=1)
    stage0, ckpts, start = stage0_file(tmp_path / "stage0.ckpt"), tmp_path / "ckpt", StartWeights()
    fit(make_module(schedule=schedule, estimator_ckpt=str(stage0)), tiny_world, tmp_path / "a",
        [start, PhaseCheckpoint(dirpath=str(ckpts), every_n_steps=0)])
    initial = estimator_weights(read_checkpoint(stage0)["state_dict"], "estimator.")
    assert not changed(initial, start.estimator)  # the fresh run started from stage 0

    stage0.unlink()  # moved away after the run started: the resumed run must not need it
    mid = read_checkpoint(ckpts / "round1_est.ckpt")
    resumed, start = make_module(schedule=schedule, estimator_ckpt=str(stage0)), StartWeights()
    fit(resumed, tiny_world, tmp_path / "b", [start], ckpt_path=ckpts / "round1_est.ckpt")
    assert resumed.schedule_step == schedule.total_steps
    saved = estimator_weights(mid["state_dict"], "estimator.")
    assert changed(initial, saved) and not changed(saved, start.estimator)  # E as trained in round 1, not stage 0


def test_a_stage0_checkpoint_for_another_fingertip_preset_is_refused(tiny_world, tmp_path):
    stage0 = stage0_file(tmp_path / "stage0.ckpt", tip_preset="freihand")
    with pytest.raises(CheckpointError, match="tip_preset 'freihand' in the checkpoint, tip_preset 'smplx' in this run") as err:
        fit(make_module(estimator_ckpt=str(stage0)), tiny_world, tmp_path)
    assert str(stage0) in str(err.value)
