"""``hoi-adapt fit|validate|test -c configs/<file>.yaml``: LightningCLI over hoi_adapt's modules.

The model is chosen by ``class_path`` in YAML (stage-0 :class:`EstimatorModule` or the adaptation
module); networks are injected by nested ``class_path`` entries. The resolved config is saved as
``config.yaml`` in the run folder; :class:`RunInfo` adds the run id, seed, devices and the effective batch
size. Unknown keys are rejected by jsonargparse with an error naming the key.

Every run gets a folder of its own (:mod:`hoi_adapt.callbacks.run_folder`), whatever the logger:

* CSV / TensorBoard: ``<save_dir>/<name>/version_N`` (the logger's own versioning);
* W&B: ``<save_dir>/<project>/<run id>``, the run id chosen here (or given), W&B's offline record inside it
  (``<run>/wandb/offline-run-*``);
* no logger (``logger: false``): ``<default_root_dir>/version_N``.

``--ckpt_path`` of a hoi_adapt run continues in that run's folder (same version; W&B: same run id, so the
W&B run resumes). A folder that holds another run (an explicit ``version``/``id`` already used) is refused
before anything is written.

Errors a user can fix (an unknown or invalid config key, a bad ``--ckpt_path``, missing or malformed data,
repeated non-finite losses) end the command with one line ``hoi-adapt <cmd>: error: ...`` and a non-zero
exit code instead of a usage dump or a traceback. ``--ckpt_path`` is checked before Lightning touches it:
it must be a hoi_adapt checkpoint of the configured model kind, read with ``weights_only=True``.
"""
from __future__ import annotations

import os
import re
import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback

from hoi_adapt.callbacks.run_folder import RUN_KEY, claim_run_folder, new_run_id, next_version_folder, run_dir, run_folder_of
from hoi_adapt.callbacks.run_info import RunInfo
from hoi_adapt.checkpoints.load import read_checkpoint
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.utils.errors import CheckpointError, HoiAdaptError

# LightningModule class -> the hoi_adapt checkpoint kind it resumes from
MODULE_KINDS: dict[str, str] = {
    "hoi_adapt.lit.estimator_module.EstimatorModule": "estimator",
    "hoi_adapt.lit.adapt_module.AdaptModule": "adapt",
}


WANDB_LOGGER = "WandbLogger"


class RunConfigSaver(SaveConfigCallback):
    """Saves the resolved config as ``config.yaml`` in the run folder (LightningCLI's own callback writes to
    ``trainer.log_dir``, which under W&B is shared by every run). The folder was claimed for this run before
    ``fit`` started, and a resumed run rewrites its own config, so replacing the file is safe."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        folder = run_dir(trainer)  # a broadcast: every rank asks
        if trainer.is_global_zero:
            folder.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(folder / self.config_filename), skip_none=False, overwrite=True,
                             multifile=self.multifile)
        self.already_saved = True


class HoiAdaptCLI(LightningCLI):
    """LightningCLI with the data module fixed to :class:`HOIDataModule`, one folder per run and a run-info record."""

    _resume: dict[str, Any] | None = None  # RUN_KEY record of a fit's --ckpt_path
    _run_id: str | None = None
    _run_flag: str | None = None  # the option that names the run folder, for errors

    def before_instantiate_classes(self) -> None:
        sub = self.subcommand
        if sub:
            self._run_id, self._run_flag = place_run(self.config[sub]["trainer"], self._resume if sub == "fit" else None)

    def before_fit(self) -> None:
        from pytorch_lightning.utilities import rank_zero_only

        folder = run_folder_of(self.trainer)  # no process group yet: this process's view (rank 0's is the one used)
        if rank_zero_only.rank == 0:
            # Only rank 0's run id is recorded; other DDP ranks draw their own and may start after rank 0 has
            # claimed the folder, so checking there would refuse the run's own folder.
            claim_run_folder(folder, self._run_id or "", flag=self._run_flag)
        for logger in self.trainer.loggers:
            if type(logger).__name__ == WANDB_LOGGER:
                _put_wandb_record_into(logger, folder)
            if self._resume is not None:
                _keep_csv_metrics(logger)
        if not any(isinstance(cb, RunInfo) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(RunInfo(seed=self.config.get(self.subcommand, {}).get("seed_everything"),
                                                  run_id=self._run_id))

    def _parse_ckpt_path(self) -> None:
        """Do not merge a checkpoint's ``hyper_parameters`` into the config (LightningCLI's default).

        The command line and config files define the run; ``--ckpt_path`` supplies state only. Merging would
        let a checkpoint silently override settings and name classes or callables (``_class_path``,
        optimiser factories) for jsonargparse to import and instantiate.
        """

    def parse_arguments(self, parser, args) -> None:  # type: ignore[no-untyped-def]
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        if sub:
            record = check_resume_checkpoint(self.config[sub].get("ckpt_path"), self.config[sub].get("model"),
                                             resume=sub == "fit")
            self._resume = record if sub == "fit" else None


def _put_wandb_record_into(logger: Any, folder: Path) -> None:
    """Point W&B's own files (``wandb/offline-run-*``: metrics, media, config) into the run folder.

    WandbLogger hands one folder, ``save_dir``, to both ``wandb.init(dir=...)`` and Lightning, and Lightning
    derives the run folder from it; so the folder W&B writes into is set in the init arguments the logger
    keeps for its lazy ``wandb.init`` (before ``fit`` creates the run). Only where W&B runs (rank 0).
    """
    from pytorch_lightning.utilities import rank_zero_only

    init = getattr(logger, "_wandb_init", None)
    if rank_zero_only.rank != 0 or not isinstance(init, dict) or getattr(logger, "_experiment", None) is not None:
        return
    folder.mkdir(parents=True, exist_ok=True)  # W&B falls back to a temporary folder if it is missing
    init["dir"] = str(folder)


def _keep_csv_metrics(logger: Any) -> None:
    """A resumed run appends to its ``metrics.csv`` instead of losing it.

    CSVLogger deletes ``metrics.csv`` when it opens a folder that is not empty ("previous log files will be
    deleted"), which is right for a new run but drops the first sessions of a resumed one. The file is read
    first, put back after the logger opened the folder, and its columns handed to the logger's writer so that
    new rows extend it (rows of steps after the checkpoint, from a killed session, are kept as they were).
    """
    import csv

    from pytorch_lightning.loggers import CSVLogger
    from pytorch_lightning.utilities import rank_zero_only

    if not isinstance(logger, CSVLogger) or rank_zero_only.rank != 0:
        return
    path = Path(logger.log_dir) / "metrics.csv"
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8")
    writer = logger.experiment  # opening the folder deletes metrics.csv
    path.write_text(text, encoding="utf-8")
    header = next(csv.reader([text.splitlines()[0]])) if text.strip() else []
    writer.metrics_keys = sorted(header)


def _logger_name(cfg: Any) -> str:
    return str(cfg.get("class_path", "")).rsplit(".", 1)[-1]


def _default_logger(trainer_cfg: Any) -> Any:
    """``logger: true``/``null`` made explicit (Lightning's default: TensorBoard if installed, else CSV), so that
    a resumed run can be pointed at its version."""
    from jsonargparse import Namespace
    from lightning_fabric.loggers.tensorboard import _TENSORBOARD_AVAILABLE, _TENSORBOARDX_AVAILABLE

    cls = "TensorBoardLogger" if (_TENSORBOARD_AVAILABLE or _TENSORBOARDX_AVAILABLE) else "CSVLogger"
    return Namespace(class_path=f"pytorch_lightning.loggers.{cls}",
                     init_args=Namespace(save_dir=trainer_cfg.get("default_root_dir") or os.getcwd()))


def place_run(trainer_cfg: Any, resume: dict[str, Any] | None) -> tuple[str, str]:
    """Fix the run folder in the trainer config before anything is built; returns (run id, folder option).

    A resumed run (``resume``: the ``RUN_KEY`` record of its checkpoint, same logger class) keeps its run id
    and its folder name: the CSV/TensorBoard version, the W&B run id, the ``version_N`` without a logger.
    Anything else gets a new id and a new folder. Explicitly configured versions and ids are kept (and
    checked by :func:`claim_run_folder` before ``fit``).
    """
    resume = resume if isinstance(resume, dict) and resume.get("run_id") else None
    logger = trainer_cfg.get("logger")
    if (logger is None or logger is True) and not trainer_cfg.get("fast_dev_run"):
        logger = trainer_cfg["logger"] = _default_logger(trainer_cfg)
    first = logger[0] if isinstance(logger, list) and logger else logger
    # no logger (fast_dev_run replaces any logger by a dummy that names no folder)
    if first is False or first is None or (isinstance(logger, list) and not logger) or trainer_cfg.get("fast_dev_run"):
        same = resume is not None and resume.get("logger") is None
        base = Path(trainer_cfg.get("default_root_dir") or os.getcwd())
        trainer_cfg["default_root_dir"] = str(base / (resume["folder"] if same else next_version_folder(base)))
        return (resume["run_id"] if same else new_run_id()), "--trainer.default_root_dir"
    name, init = _logger_name(first), first.get("init_args")
    same = resume is not None and resume.get("logger") == name and init is not None
    if name == WANDB_LOGGER and init is not None:
        run_id = init.get("id") or init.get("version") or (resume["folder"] if same else None) or new_run_id()
        init["id"], init["version"] = str(run_id), None
        return str(run_id), "--trainer.logger.init_args.id"
    if init is not None and "version" in init:
        if same and init.get("version") is None:
            folder = str(resume["folder"])
            init["version"] = int(folder[len("version_"):]) if re.fullmatch(r"version_\d+", folder) else folder
        return (resume["run_id"] if same else new_run_id()), "--trainer.logger.init_args.version"
    return new_run_id(), "--trainer.logger"


def check_resume_checkpoint(path: str | None, model: object, resume: bool = True) -> dict[str, Any] | None:
    """A ``--ckpt_path`` must be a readable hoi_adapt checkpoint (weights only) of the configured model's kind.

    Runs before Lightning loads it, so a truncated file, an arbitrary pickle or another model's checkpoint
    is one :class:`CheckpointError` naming the file. ``resume``: ``fit`` also needs the trainer state.
    Returns the checkpoint's run record (``RUN_KEY``: which run wrote it, where), None if it has none.
    """
    if not path:
        return None
    ckpt = read_checkpoint(path)
    kind = ckpt["hoi_adapt"].get("kind")
    class_path = getattr(model, "class_path", None) or (model.get("class_path") if isinstance(model, dict) else None)
    expected = MODULE_KINDS.get(str(class_path))
    if expected is not None and kind != expected:
        raise CheckpointError(path, f"is a checkpoint of kind {kind!r} but the configured model {class_path.rsplit('.', 1)[-1]} "  # type: ignore[union-attr]
                                    f"resumes from {expected!r} checkpoints")
    if resume and ("loops" not in ckpt or "optimizer_states" not in ckpt):
        raise CheckpointError(path, "holds network weights only (no trainer state), so training cannot resume from it",
                              hint="start a new run from it instead, e.g. --model.init_args.estimator_ckpt for adaptation")
    record = ckpt.get(RUN_KEY)
    return dict(record) if isinstance(record, dict) else None


def main(argv: list[str] | None = None) -> int:
    """Run LightningCLI; user errors become one ``hoi-adapt <cmd>: error:`` line and exit code 2 (usage) or 1."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = f"hoi-adapt {args[0]}" if args and not args[0].startswith("-") else "hoi-adapt fit"
    saved_argv = sys.argv
    # LightningCLI reads `args` from sys.argv (no warning about both being set), and DDP's launcher re-runs
    # `sys.argv` in every other process: it must hold this command, not be emptied.
    sys.argv = [sys.argv[0], *args]
    try:
        _run()
    except ArgumentError as exc:  # jsonargparse: unknown key, bad value (exit_on_error=False: no usage dump)
        print(f"{prog}: error: {_one_line(str(exc))} (see '{prog} --help')", file=sys.stderr)
        return 2
    except HoiAdaptError as exc:
        print(f"{prog}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 1
    finally:
        sys.argv = saved_argv
    return 0


def _one_line(message: str) -> str:
    """jsonargparse's multi-line report as one line; for a nested class, just the key and its problem."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("- Problem with given class_path"):
            detail = [line[2:].rstrip(":")]
            for nxt in lines[i + 1:]:
                if nxt.startswith("- "):
                    break
                detail.append(nxt)
            return f"{lines[0]} {': '.join(detail)}"
    out = lines[0] if lines else message
    for prev, line in zip(lines, lines[1:], strict=False):
        out += (" " if prev.endswith(":") else " | ") + line
    return out


def _run() -> None:
    try:
        HoiAdaptCLI(
            model_class=pl.LightningModule,
            datamodule_class=HOIDataModule,
            subclass_mode_model=True,
            subclass_mode_data=False,
            save_config_callback=RunConfigSaver,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},
            args=None,  # sys.argv (set by main)
            auto_configure_optimizers=False,
        )
    finally:
        _finish_wandb()


def _finish_wandb() -> None:
    """End this command's W&B run (WandbLogger never does), so that its files are complete and a next command in
    the same process starts its own run instead of logging into this one."""
    wandb = sys.modules.get("wandb")  # never imported here: only if a logger used it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
