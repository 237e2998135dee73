"""The run folder: one folder per training run, whatever the logger, holding every file the run writes.

Lightning puts a run's checkpoints into ``<save_dir>/<name>/<version>/checkpoints`` for every logger
(CSV and TensorBoard: ``version_N``; W&B: ``<project>/<run id>``) and into
``<default_root_dir>/checkpoints`` without one. hoi_adapt takes the parent of that folder as *the run
folder* and writes everything there: ``config.yaml``, ``run_info.json``, ``images/``, phase and rolling
checkpoints, and (``hoi-adapt fit``) W&B's own offline record. ``trainer.log_dir`` is not used for this:
under W&B it is the logger's shared ``save_dir``, so every run would write into the same folder.

A run is identified by its run id (W&B: the W&B run id), recorded in ``run_info.json`` and in every
checkpoint (:data:`RUN_KEY`). Resuming from a checkpoint continues in the folder of the run that wrote it;
a folder that holds another run is refused (:func:`claim_run_folder`), never written into.
"""
from __future__ import annotations

import json
import re
import secrets
import string
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from hoi_adapt.utils.results import check_same_result

RUN_KEY = "hoi_adapt_run"
"""Checkpoint entry ``{"run_id", "run_dir", "logger", "folder"}``: which run wrote it, and where."""
RUN_INFO_FILE = "run_info.json"
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_run_id() -> str:
    """8 random lowercase letters and digits (W&B's own id format, so it serves as a W&B run id too)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def run_folder_of(trainer: pl.Trainer) -> Path:
    """This process's view of the run folder (Lightning's checkpoint folder rule, minus ``checkpoints``).

    Local, no communication: under DDP only rank 0's answer counts, see :func:`run_dir`.
    """
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    version = logger.version
    folder = version if isinstance(version, str) else f"version_{version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name or "") / folder


def run_dir(trainer: pl.Trainer) -> Path:
    """The run folder, the same on every rank (rank 0 broadcasts it: call it on every rank, or rank 0 waits)."""
    return Path(trainer.strategy.broadcast(str(run_folder_of(trainer))))


def next_version_folder(base: str | Path) -> str:
    """``version_N`` with N one above the highest existing ``version_*`` folder in ``base`` (CSVLogger's rule)."""
    base = Path(base)
    numbers = [int(m.group(1)) for p in (base.iterdir() if base.is_dir() else ())
               if p.is_dir() and (m := re.fullmatch(r"version_(\d+)", p.name))]
    return f"version_{max(numbers) + 1 if numbers else 0}"


def read_run_info(folder: str | Path) -> dict[str, Any] | None:
    """``run_info.json`` of a run folder; None when there is none (unreadable counts as none)."""
    path = Path(folder) / RUN_INFO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def claim_run_folder(folder: str | Path, run_id: str, flag: str | None = None, started: bool = False) -> None:
    """Refuse to run in ``folder`` when it holds another run's files.

    Args:
        folder: the run folder.
        run_id: this run's id (a resumed run keeps the id its checkpoints recorded).
        flag: the option that chose the folder, named in the error (e.g. ``--trainer.logger.init_args.version``).
        started: the loggers and the config callback may already have written here (the check inside
            ``fit``); before ``fit`` any file without a ``run_info.json`` of this run counts as another run's.
    """
    folder = Path(folder)
    info = read_run_info(folder)
    if info is None and (started or not folder.is_dir() or not any(folder.iterdir())):
        return
    recorded = {"run_id": (info or {}).get("run_id")}
    check_same_result(folder, recorded, {"run_id": run_id}, ("run_id",), what="run", new_folder_flag=flag,
                      overwrite_flag=None,
                      hint="to continue that run, pass --ckpt_path with one of its checkpoints instead")


__all__ = ["RUN_INFO_FILE", "RUN_KEY", "claim_run_folder", "new_run_id", "next_version_folder", "read_run_info",
           "run_dir", "run_folder_of"]
