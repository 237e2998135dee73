"""evaluate / predict / export / demo twice into the same place: the same result is refreshed or resumed, a
different one (another checkpoint or setting) is refused untouched, naming the folder and ``--overwrite``,
and ``--overwrite`` replaces it without leaving the old result's files behind."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hoi_adapt.utils.errors import ConfigError
from hoi_adapt.utils.io import file_digest

REPO = Path(__file__).resolve().parents[1]
SIZE = 32


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): file_digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def two_runs(tiny_estimator_ckpt, tmp_path_factory) -> tuple[Path, Path]:
    """Two different estimator checkpoints, both named ``last.ckpt`` as every run names its own."""
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator

    root = tmp_path_factory.mktemp("runs")
    a = root / "version_0" / "checkpoints" / "last.ckpt"
    a.parent.mkdir(parents=True)
    shutil.copyfile(tiny_estimator_ckpt, a)
    torch.manual_seed(1)
    other = MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32).eval()
    b = write_network_checkpoint(root / "version_1" / "checkpoints" / "last.ckpt", "estimator", {"estimator": other})
    assert file_digest(a) != file_digest(b)
    return a, b


# ----------------------------------------------------------------------------------------------- evaluate
def test_evaluate_gives_each_checkpoint_its_folder_and_refuses_to_replace_another(two_runs, tiny_world, tmp_path,
                                                                                  monkeypatch, capsys):
    from hoi_adapt.eval.cli import main

    a, b = two_runs
    monkeypatch.chdir(tmp_path)
    common = ["--dataset", "synthetic", "--root", str(tiny_world), "--limit", "4", "--image-size", str(SIZE),
              "--batch-size", "4", "--quiet"]
    assert main(["--ckpt", str(a), *common]) == 0
    assert main(["--ckpt", str(b), *common]) == 0  # the default folder carries the checkpoint's digest
    folders = sorted((tmp_path / "outputs/eval").iterdir())
    assert [f.name for f in folders] == sorted(f"synthetic_last_{file_digest(c)[:8]}" for c in (a, b))
    folder_a = next(f for f in folders if f.name.endswith(file_digest(a)[:8]))
    result_a = json.loads((folder_a / "synthetic.json").read_text())
    assert result_a["identity"]["models"] == {"last": {"checkpoint_sha256": file_digest(a), "adapt": False}}

    assert main(["--ckpt", str(a), *common]) == 0  # the same evaluation again: refreshed in place, same numbers
    again = json.loads((folder_a / "synthetic.json").read_text())
    assert again["rows"]["last"]["metrics"] == result_a["rows"]["last"]["metrics"]

    before = snapshot(folder_a)
    capsys.readouterr()
    for extra in (["--ckpt", str(b)], ["--ckpt", str(a), "--limit", "3"]):  # another checkpoint; another selection
        assert main([*common, *extra, "--out", str(folder_a)]) == 1
        err = capsys.readouterr().err
        assert f"{folder_a} holds a different synthetic evaluation" in err and "--overwrite" in err and "--out" in err
        assert ("models differs" if str(b) in extra else "selection:") in err
    assert snapshot(folder_a) == before

    assert main(["--ckpt", str(b), *common, "--out", str(folder_a), "--overwrite"]) == 0
    replaced = json.loads((folder_a / "synthetic.json").read_text())
    assert replaced["identity"]["models"]["last"]["checkpoint_sha256"] == file_digest(b)


# ------------------------------------------------------------------------------------------------ predict
def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (8, 10, 3), dtype=np.uint8), (80, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def test_predict_adds_to_its_own_folder_and_refuses_another_checkpoints(two_runs, tmp_path, capsys):
    from hoi_adapt.prediction.cli import main
    from hoi_adapt.prediction.schema import INDEX_FILE

    a, b = two_runs
    one, two = _photo(tmp_path / "photos/one.png", 0), _photo(tmp_path / "photos/two.png", 1)
    out = tmp_path / "pred"

    def args(ckpt: Path, *inputs: Path) -> list[str]:
        return ["--ckpt", str(ckpt), "--input", *map(str, inputs), "--out", str(out), "--K", "60,60,40,30",
                "--input-size", str(SIZE), "--no-progress"]

    assert main(args(a, one)) == 0
    assert main(args(a, two)) == 0  # more images, same checkpoint and settings: added to the folder
    index = json.loads((out / INDEX_FILE).read_text())
    assert sorted(e["name"] for e in index["images"]) == ["one", "two"]
    before = snapshot(out)

    capsys.readouterr()
    assert main(args(b, one)) == 1
    err = capsys.readouterr().err
    assert f"{out} holds a different set of predictions (checkpoint.sha256: " in err and "--overwrite" in err
    assert snapshot(out) == before

    assert main([*args(b, one), "--overwrite"]) == 0
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["checkpoint"]["sha256"] == file_digest(b) and [e["name"] for e in index["images"]] == ["one"]
    assert not list(out.glob("two*"))  # the replaced predictions leave nothing behind
    assert snapshot(out)["one.json"] != before["one.json"]


# ------------------------------------------------------------------------------------------------- export
def test_export_refuses_another_checkpoints_export_and_overwrite_replaces_it(two_runs, tiny_world, tmp_path, capsys):
    from hoi_adapt.data.formats.adapted import read_manifest, verify_export
    from hoi_adapt.export.cli import main

    a, b = two_runs
    out = tmp_path / "export"

    def args(ckpt: Path) -> list[str]:
        return ["--ckpt", str(ckpt), "--dataset", "synthetic", "--root", str(tiny_world), "--out", str(out), "--no-adapt",
                "--limit", "4", "--batch-size", "4", "--image-size", str(SIZE), "--no-freihand", "--sheet-rows", "0",
                "--no-progress"]

    assert main(args(a)) == 0
    (out / "notes.txt").write_text("mine")  # a file of the user's in the export folder
    before = snapshot(out)
    capsys.readouterr()
    assert main(args(b)) == 1
    err = capsys.readouterr().err
    assert f"{out} holds a different export (checkpoint.sha256: " in err and "--overwrite" in err
    assert snapshot(out) == before

    assert main([*args(b), "--overwrite"]) == 0
    assert read_manifest(out)["checkpoint"]["sha256"] == file_digest(b)
    report = verify_export(out)  # every file is the new export's: none missing, changed or left over
    assert report["complete"] and not report["missing"] and not report["mismatched"] and report["extra"] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert snapshot(out)["annotations.npz"] != before["annotations.npz"]


# --------------------------------------------------------------------------------------------------- demo
def test_demo_refuses_a_folder_holding_another_profile_before_running_anything(tmp_path, monkeypatch):
    from hoi_adapt.demo import PROFILE_FILE, check_profile, load_profile, run_demo

    monkeypatch.chdir(REPO)  # the profile names configs relative to the repository
    profile = load_profile(REPO / "configs/demo/tiny.yaml")
    out = tmp_path / "demo"
    check_profile(out, profile)
    check_profile(out, profile)  # the same profile again: fine (an interrupted demo resumes)
    recorded = (out / PROFILE_FILE).read_text()

    other = replace(profile, eval_limit=2, estimator_overrides=[*profile.estimator_overrides, "--trainer.max_steps=8"])
    with pytest.raises(ConfigError) as err:
        run_demo(other, out=str(out))
    msg = str(err.value)
    assert f"{out} holds a different demo" in msg and "eval_limit: 8 in the folder, 2 requested" in msg
    assert "estimator_overrides differs" in msg and "--overwrite" in msg
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["steps", PROFILE_FILE]  # nothing ran
    assert (out / PROFILE_FILE).read_text() == recorded

    check_profile(out, other, overwrite=True)
    assert json.loads((out / PROFILE_FILE).read_text())["eval_limit"] == 2
