"""No run overwrites another: every ``hoi-adapt fit`` gets a folder of its own under every logger.

Each test runs tiny fits of the shipped stage-0 config (``configs/estimator/demo.yaml``, 32 px, 2 steps)
through the CLI with the shipped callbacks (Lightning's best-model checkpoint, the rolling/phase
checkpoint, the image logger) and compares file hashes. W&B runs offline into temporary folders
(``WANDB_MODE=offline``, ``WANDB_DIR`` etc.); its record is read back from the offline run folder.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from hoi_adapt.callbacks.run_folder import RUN_KEY
from hoi_adapt.lit.cli import main as cli_main
from hoi_adapt.utils.io import file_digest

REPO = Path(__file__).resolve().parents[1]
WANDB = "pytorch_lightning.loggers.WandbLogger"
LOGGERS: dict[str, Any] = {
    "csv": {"class_path": "pytorch_lightning.loggers.CSVLogger", "init_args": {"name": ""}},
    "wandb": {"class_path": WANDB, "init_args": {"project": "hoi_adapt", "offline": True}},
    "tensorboard": {"class_path": "pytorch_lightning.loggers.TensorBoardLogger", "init_args": {"name": ""}},
    "none": False,
}
HAS_TENSORBOARD = any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


@pytest.fixture
def offline_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B without network and without touching the home folder or the repository."""
    home = tmp_path / "wandb_home"
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var, value in (("WANDB_MODE", "offline"), ("WANDB_SILENT", "true"), ("WANDB_CONSOLE", "off"),
                       ("WANDB_DISABLE_GIT", "true"), ("WANDB_DISABLE_CODE", "true")):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)  # anything written to a relative path lands in the test's folder


def fit_config(tmp: Path, world: Path, logger: str) -> Path:
    """configs/estimator/demo.yaml, 32 px and 2 steps, with ``logger`` writing under ``tmp/runs``."""
    cfg = yaml.safe_load((REPO / "configs/estimator/demo.yaml").read_text())
    runs = tmp / "runs"
    t = cfg["trainer"]
    t.update(accelerator="cpu", devices=1, max_steps=2, val_check_interval=2, check_val_every_n_epoch=None,
             limit_val_batches=1, log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
             default_root_dir=str(runs))
    spec = LOGGERS[logger]
    if spec is not False:
        spec = {"class_path": spec["class_path"], "init_args": {**spec["init_args"], "save_dir": str(runs)}}
    t["logger"] = spec
    t["callbacks"] = [c for c in t["callbacks"] if not c["class_path"].endswith("TQDMProgressBar")]
    for cb in t["callbacks"]:
        if cb["class_path"].endswith("PhaseCheckpoint"):
            cb["init_args"]["every_n_steps"] = 1
        if cb["class_path"].endswith("ImageLogger"):
            cb["init_args"]["max_images"] = 2
    m = cfg["model"]["init_args"]
    m["estimator"]["init_args"].update(regressor_hidden=64, evidence_width=16)
    m["silhouette_size"] = 16
    m.pop("one_cycle", None)  # a schedule laid out over max_steps cannot be extended; the resume tests extend
    d = cfg["data"]
    d.update(world=str(world), world_config=None, image_size=32, batch_size=2, num_workers=0)
    d["train"]["pairs_hand"]["batch_size"] = 2
    d["val"] = {"hand_only_train": {**d["val"]["hand_only_train"], "limit": 2}}
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"fit_{logger}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def fit(config: Path, *extra: str) -> None:
    assert cli_main(["fit", "-c", str(config), *extra]) == 0


def snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks W&B makes are named, not followed)."""
    return {p.relative_to(root).as_posix(): (file_digest(p) if not p.is_symlink() else "link")
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_symlink()}


def inside(path: Path, folder: Path) -> bool:
    """``path`` lies in ``folder`` (symlinks not followed: W&B links its shared core log into each run)."""
    return path == folder or folder in path.parents


def run_folders(runs: Path) -> list[Path]:
    return sorted(p.parent for p in runs.rglob("run_info.json"))


def only_run_folder(runs: Path, before: set[Path] = frozenset()) -> Path:  # type: ignore[assignment]
    new = [p for p in run_folders(runs) if p not in before]
    assert len(new) == 1, new
    return new[0]


def assert_complete_run(folder: Path, logger: str) -> None:
    for name in ("config.yaml", "run_info.json", "checkpoints/last.ckpt"):
        assert (folder / name).is_file(), name
    assert list(folder.glob("checkpoints/best-*.ckpt")) and list(folder.glob("images/step*.png"))
    metrics = {"csv": "metrics.csv", "tensorboard": "events.out.tfevents.*", "wandb": "wandb/offline-run-*/run-*.wandb"}
    if logger in metrics:
        assert list(folder.glob(metrics[logger])), f"no {metrics[logger]} in {folder}"
    ckpt = torch.load(folder / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    info = json.loads((folder / "run_info.json").read_text())
    assert ckpt[RUN_KEY]["run_id"] == info["run_id"] and Path(ckpt[RUN_KEY]["run_dir"]) == folder.resolve()


def two_fits(config: Path, runs: Path, logger: str) -> tuple[Path, Path]:
    """Fit twice (the second with another seed and length); both runs complete, each in its own folder, and the
    first run's files byte for byte as it left them. Returns the two run folders."""
    fit(config)
    first = only_run_folder(runs)
    files = snapshot(runs)
    assert files and all(inside(runs / rel, first) for rel in files)  # everything it wrote is in its run folder
    assert_complete_run(first, logger)

    fit(config, "--seed_everything=5", "--trainer.max_steps=1", "--trainer.val_check_interval=1")
    second = only_run_folder(runs, {first})
    assert not inside(second, first) and not inside(first, second)
    after = snapshot(runs)
    assert {rel: after.get(rel) for rel in files} == files  # the first run's files: all there, unchanged
    assert all(rel in files or inside(runs / rel, second) for rel in after)
    assert_complete_run(second, logger)
    a, b = (torch.load(f / "checkpoints/last.ckpt", map_location="cpu", weights_only=True) for f in (first, second))
    assert (a["global_step"], b["global_step"]) == (2, 1)
    return first, second


@pytest.mark.parametrize("logger", ["csv", "none", pytest.param("tensorboard", marks=pytest.mark.skipif(
    not HAS_TENSORBOARD, reason="tensorboard not installed"))])
def test_two_fits_never_share_or_change_a_folder(logger, tiny_world, tmp_path, offline_wandb):
    runs = tmp_path / "runs"
    first, second = two_fits(fit_config(tmp_path, tiny_world, logger), runs, logger)
    if logger == "none":
        assert (first, second) == (runs / "version_0", runs / "version_1")


@pytest.mark.slow
def test_wandb_offline_runs_keep_their_own_folders_metrics_and_image_grids(tiny_world, tmp_path, offline_wandb):
    runs = tmp_path / "runs"
    first, second = two_fits(fit_config(tmp_path, tiny_world, "wandb"), runs, "wandb")
    for folder in (first, second):  # <save_dir>/<project>/<W&B run id>, W&B's offline record inside
        run_id = json.loads((folder / "run_info.json").read_text())["run_id"]
        assert folder == runs / "hoi_adapt" / run_id
        assert [s.name[-9:] for s in folder.glob("wandb/offline-run-*")] == [f"-{run_id}"]

    (session,) = first.glob("wandb/offline-run-*")
    history = wandb_history(session)
    losses = {row["trainer/global_step"]: row["train/loss"] for row in history if "train/loss" in row}
    assert sorted(losses) == [0, 1] and all(np.isfinite(v) for v in losses.values())
    val = [row for row in history if "val/mpjpe" in row]
    assert len(val) == 1 and val[0]["trainer/global_step"] == 1 and val[0]["val/mpjpe"] > 0
    images = [row["val/visuals"] for row in history if "val/visuals" in row]
    assert len(images) == 1 and images[0]["_type"] == "images/separated" and images[0]["count"] == 1
    (media,) = session.glob("files/" + images[0]["filenames"][0])
    from hoi_adapt.data.image_io import read_image

    grid = read_image(media)
    np.testing.assert_array_equal(grid, read_image(first / "images/step0000002.png"))  # the grid the run saved itself
    assert 0 < grid.mean() < 255  # W&B casts float images to uint8 unscaled: a float grid would arrive black


def test_an_explicit_version_in_use_is_refused_untouched(tiny_world, tmp_path, capsys, offline_wandb):
    folder = tmp_path / "runs" / "version_7"
    folder.mkdir(parents=True)
    (folder / "run_info.json").write_text(json.dumps({"run_id": "earlier1"}))
    (folder / "metrics.csv").write_text("step,train/loss\n0,1.0\n")
    before = snapshot(tmp_path / "runs")
    config = fit_config(tmp_path, tiny_world, "csv")
    assert cli_main(["fit", "-c", str(config), "--trainer.logger.init_args.version=7"]) == 1
    err = capsys.readouterr().err
    assert f"{folder} holds a different run (run_id: 'earlier1' in the folder" in err
    assert "--trainer.logger.init_args.version" in err and "--ckpt_path" in err
    assert snapshot(tmp_path / "runs") == before


@pytest.mark.parametrize("logger", ["csv", pytest.param("wandb", marks=pytest.mark.slow)])
def test_resuming_continues_in_the_run_folder(logger, tiny_world, tmp_path, offline_wandb):
    config = fit_config(tmp_path, tiny_world, logger)
    runs = tmp_path / "runs"
    fit(config)
    folder = only_run_folder(runs)
    run_id = json.loads((folder / "run_info.json").read_text())["run_id"]
    last = folder / "checkpoints/last.ckpt"
    fit(config, f"--ckpt_path={last}", "--trainer.max_steps=4", "--trainer.val_check_interval=2")
    assert run_folders(runs) == [folder]  # no new folder
    info = json.loads((folder / "run_info.json").read_text())
    assert info["run_id"] == run_id and info["resumed_from"] == str(last)
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert sorted(p.name for p in folder.glob("images/step*.png")) == ["step0000002.png", "step0000004.png"]
    if logger == "wandb":
        sessions = sorted(folder.glob("wandb/offline-run-*"))
        assert len(sessions) == 2 and all(s.name.endswith(f"-{run_id}") for s in sessions)  # the same W&B run, resumed
        before, resumed = ([row["trainer/global_step"] for row in wandb_history(s) if "train/loss" in row] for s in sessions)
        assert len(before) == len(resumed) == 2 and min(resumed) > max(before)  # the run's history continues
    else:
        with (folder / "metrics.csv").open() as fh:
            steps = [int(r["step"]) for r in csv.DictReader(fh) if r.get("train/loss")]
        assert len(steps) == 4 and steps == sorted(steps)  # both sessions' metrics in the one file


# ------------------------------------------------------------------------- reading W&B's offline record
def wandb_history(session: Path) -> list[dict[str, Any]]:
    """The history rows of an offline run's ``run-<id>.wandb`` (W&B's LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2

    (path,) = session.glob("run-*.wandb")
    rows = []
    for payload in _leveldb_records(path.read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            row: dict[str, Any] = {}
            for item in record.history.item:  # media are split into nested keys: ("val/visuals", "_type"), ...
                *parents, leaf = [item.key] if item.key else list(item.nested_key)
                node = row
                for key in parents:
                    node = node.setdefault(key, {})
                node[leaf] = json.loads(item.value_json)
            rows.append(row)
    return rows


def _leveldb_records(data: bytes, block: int = 32768) -> list[bytes]:
    """W&B's datastore: a 7-byte header, then 32 KiB blocks of chunks ``crc32 (4), length (2), type (1), data``."""
    assert data[:4] == b":W&B", "not a W&B datastore file"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer: zero padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == 1:  # full
            records.append(chunk)
        elif kind == 2:  # first
            pending = chunk
        elif kind == 3:  # middle
            pending += chunk
        elif kind == 4:  # last
            records.append(pending + chunk)
            pending = b""
    return records
