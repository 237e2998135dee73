"""``hoi-adapt fit|validate|test -c configs/<file>.yaml``: LightningCLI over hoi_adapt's modules.

The model is chosen by ``class_path`` in YAML (stage-0 :class:`EstimatorModule` or the adaptation
module); networks are injected by nested ``class_path`` entries. LightningCLI saves the resolved config as
``config.yaml`` in the run folder; :class:`RunInfo` adds seed, devices and the effective batch size.
Unknown keys are rejected by jsonargparse with an error naming the key.

Errors a user can fix (an unknown or invalid config key, a bad ``--ckpt_path``, missing or malformed data,
repeated non-finite losses) end the command with one line ``hoi-adapt <cmd>: error: ...`` and a non-zero
exit code instead of a usage dump or a traceback. ``--ckpt_path`` is checked before Lightning touches it:
it must be a hoi_adapt checkpoint of the configured model kind, read with ``weights_only=True``.
"""
from __future__ import annotations

import sys
from argparse import ArgumentError

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI

from hoi_adapt.data.datamodule import HOIDataModule
from hoi_adapt.utils.errors import CheckpointError, HoiAdaptError

# LightningModule class -> the hoi_adapt checkpoint kind it resumes from
MODULE_KINDS: dict[str, str] = {
    "hoi_adapt.lit.estimator_module.EstimatorModule": "estimator",
    "hoi_adapt.lit.adapt_module.AdaptModule": "adapt",
}


class HoiAdaptCLI(LightningCLI):
    """LightningCLI with the data module fixed to :class:`HOIDataModule` and a run-info record."""

    def before_fit(self) -> None:
        from hoi_adapt.callbacks.run_info import RunInfo

        if not any(isinstance(cb, RunInfo) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(RunInfo(seed=self.config.get(self.subcommand, {}).get("seed_everything")))
        from hoi_adapt.callbacks.fault_injection import kill_callback_from_env

        kill = kill_callback_from_env()  # test-only (HOI_ADAPT_TEST_KILL_AT_STEP)
        if kill is not None:
            self.trainer.callbacks.append(kill)

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
            check_resume_checkpoint(self.config[sub].get("ckpt_path"), self.config[sub].get("model"), resume=sub == "fit")


def check_resume_checkpoint(path: str | None, model: object, resume: bool = True) -> None:
    """A ``--ckpt_path`` must be a readable hoi_adapt checkpoint (weights only) of the configured model's kind.

    Runs before Lightning loads it, so a truncated file, an arbitrary pickle or another model's checkpoint
    is one :class:`CheckpointError` naming the file. ``resume``: ``fit`` also needs the trainer state.
    """
    if not path:
        return
    from hoi_adapt.lit.load import read_checkpoint

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
    for prev, line in zip(lines, lines[1:]):
        out += (" " if prev.endswith(":") else " | ") + line
    return out


def _run() -> None:
    HoiAdaptCLI(
        model_class=pl.LightningModule,
        datamodule_class=HOIDataModule,
        subclass_mode_model=True,
        subclass_mode_data=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"exit_on_error": False},
        args=None,  # sys.argv (set by main)
        auto_configure_optimizers=False,
    )
