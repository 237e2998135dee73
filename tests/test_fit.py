"""Lightning training through the shipped configs (shrunk), checkpoints and their reloading."""
from __future__ import annotations

import csv
from pathlib import Path

import pytorch_lightning as pl
import torch

from hoi_adapt.checkpoints.load import load_estimator, read_checkpoint
from hoi_adapt.data.streams import StreamSpec
from hoi_adapt.lit.cli import main as cli_main
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.lit.estimator_module import EstimatorModule
from hoi_adapt.models.estimator import MeshEstimator

REPO = Path(__file__).resolve().parents[1]


def shrink(world: Path, out: Path, steps: str) -> list[str]:
    return [
        f"--trainer.default_root_dir={out}", f"--trainer.logger.init_args.save_dir={out}", "--trainer.accelerator=cpu",
        f"--data.world={world}", "--data.world_config=null", "--data.image_size=64", "--data.batch_size=4",
        "--data.num_workers=0", "--model.init_args.silhouette_size=16", steps,
    ]


def read_metrics(run: Path) -> list[dict[str, str]]:
    (metrics,) = run.rglob("metrics.csv")
    return list(csv.DictReader(metrics.open()))


def test_estimator_config_trains_logs_and_checkpoints(tiny_world, tmp_path):
    out = tmp_path / "est"
    args = ["fit", "-c", str(REPO / "configs/estimator/demo.yaml"), *shrink(tiny_world, out, "--trainer.max_steps=4"),
            "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1", "--trainer.log_every_n_steps=1"]
    assert cli_main(args) == 0
    rows = read_metrics(out)
    assert any(r.get("val/mpjpe") for r in rows) and any(r.get("train/loss") for r in rows)
    assert list(out.rglob("config.yaml")) and list(out.rglob("run_info.json")) and list(out.rglob("images/*.png"))
    last = next(out.rglob("last.ckpt"))
    ckpt = read_checkpoint(last)  # weights-only loadable
    assert ckpt["hoi_adapt"]["kind"] == "estimator"
    assert not any("hand_model." in k for k in ckpt["state_dict"])  # no MANO arrays in checkpoints


def test_checkpoint_reloads_to_identical_predictions(tiny_world, tmp_path):
    torch.manual_seed(0)
    module = EstimatorModule(MeshEstimator(regressor_hidden=64, evidence_width=16), silhouette_size=16)
    dm = HOIDataModule(world=str(tiny_world), image_size=64, batch_size=4, num_workers=0,
                       train={"hand_only": StreamSpec(split="source_hand")}, val={"v": StreamSpec(split="source_hand_test")})
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, limit_val_batches=1, default_root_dir=tmp_path)
    trainer.fit(module, dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    batch = next(iter(dm.val_dataloader()[0]))
    module.eval()
    reloaded = load_estimator(path)
    with torch.no_grad():
        a = module.estimator(batch["image"], batch["K"])
        b = reloaded(batch["image"], batch["K"])
    torch.testing.assert_close(a.vertices, b.vertices, rtol=0, atol=0)
    torch.testing.assert_close(a.joints3d, b.joints3d, rtol=0, atol=0)
