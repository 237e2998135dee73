"""``hoi-adapt fit|validate|test -c configs/<file>.yaml``: LightningCLI over hoi_adapt's modules.

The model is chosen by ``class_path`` in YAML (stage-0 :class:`EstimatorModule` or the adaptation
module); networks are injected by nested ``class_path`` entries. LightningCLI saves the resolved config as
``config.yaml`` in the run folder; :class:`RunInfo` adds seed, devices and the effective batch size.
Unknown keys are rejected by jsonargparse with an error naming the key.
"""
from __future__ import annotations

import sys

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI

from hoi_adapt.data.datamodule import HOIDataModule


class HoiAdaptCLI(LightningCLI):
    """LightningCLI with the data module fixed to :class:`HOIDataModule` and a run-info record."""

    def before_fit(self) -> None:
        from hoi_adapt.callbacks.run_info import RunInfo

        if not any(isinstance(cb, RunInfo) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(RunInfo(seed=self.config.get(self.subcommand, {}).get("seed_everything")))


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    HoiAdaptCLI(
        model_class=pl.LightningModule,
        datamodule_class=HOIDataModule,
        subclass_mode_model=True,
        subclass_mode_data=False,
        save_config_kwargs={"overwrite": True},
        args=args,
        auto_configure_optimizers=False,
    )
    return 0
