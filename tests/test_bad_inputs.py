"""Bad input through the user-facing commands: one error line naming the file or key, no traceback, a
non-zero exit code, and nothing already in the output folder is touched.

Cases (the issue's list): corrupt / truncated images (also inside a DataLoader worker during training),
missing annotation files, wrong array shapes, a MANO file that is not MANO, a checkpoint from another
model (or another project, or truncated, or a malicious pickle), an empty dataset folder and a config
with an unknown key.
"""
from __future__ import annotations

import hashlib
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hoi_adapt.cli import main as hoi_adapt
from hoi_adapt.data.formats import world as fmt

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """An output folder that already holds results of an earlier run."""
    folder = tmp_path / "out"
    (folder / "version_0" / "checkpoints").mkdir(parents=True)
    (folder / "version_0" / "metrics.csv").write_text("epoch,step,train/loss\n0,0,1.0\n")
    (folder / "version_0" / "checkpoints" / "last.ckpt").write_bytes(b"earlier weights")
    (folder / "notes.txt").write_text("the user's own notes")
    return folder


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Exit code and the one error line (asserting there is exactly one and no traceback)."""
    rc = hoi_adapt(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("hoi-adapt ") and ": error:" in line[:40]
              or line.startswith("hoi-adapt hand-model: ")]
    assert rc != 0, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1, err[-3000:]
    return rc, errors[0]


def fit_args(world: Path, out: Path, *extra: str) -> list[str]:
    from test_reliability_resume import stage0_config

    config = stage0_config(out.parent / "cfg", world, max_steps=3, limits=(6, 4))
    return ["fit", "-c", str(config), f"--data.world={world}", f"--trainer.default_root_dir={out}",
            f"--trainer.logger.init_args.save_dir={out}", f"--trainer.callbacks.init_args.dirpath={out / 'resume'}", *extra]


def copy_world(world: Path, dest: Path) -> Path:
    shutil.copytree(world, dest)
    return dest


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# ----------------------------------------------------------------------------- training
def test_fit_corrupt_image_read_in_a_worker_process(tiny_world, tmp_path, out, capsys):
    world = copy_world(tiny_world, tmp_path / "world")
    ann = fmt.load_annotations(world, "source_hand")
    bad = fmt.image_path(world, "source_hand", "hand", int(ann["index"][3]))
    truncate(bad)
    before = snapshot(out)
    rc, line = run(fit_args(world, out, "--data.num_workers=2"), capsys)
    assert rc == 1 and line.startswith(f"hoi-adapt fit: error: {bad}: ")
    assert snapshot(out).items() >= before.items()  # nothing that was there changed


def test_fit_annotations_with_wrong_shapes(tiny_world, tmp_path, out, capsys):
    world = copy_world(tiny_world, tmp_path / "world")
    path = world / "source_hand" / fmt.ANNOTATIONS_FILE
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["joints3d"] = arrays["joints3d"][:, :20]
    np.savez(path, **arrays)
    before = snapshot(out)
    rc, line = run(fit_args(world, out), capsys)
    assert rc == 1 and line.startswith(f"hoi-adapt fit: error: {path}: array 'joints3d' has shape (24, 20, 3), expected (24, 21, 3)")
    assert snapshot(out).items() >= before.items()


def test_fit_on_an_empty_dataset_folder(tmp_path, out, capsys):
    empty = tmp_path / "empty_world"
    empty.mkdir()
    before = snapshot(out)
    rc, line = run(fit_args(empty, out), capsys)
    assert rc == 1 and f"{empty / 'source_hand' / fmt.ANNOTATIONS_FILE}: " in line and "not found" in line
    assert snapshot(out).items() >= before.items()


@pytest.mark.parametrize("yaml_text, key", [
    ("trainer:\n  max_stepz: 3\n", "trainer.max_stepz"),
    ("model:\n  init_args:\n    silhouete_size: 16\n", "silhouete_size"),
    ("data:\n  train:\n    hand_only: {dataset: synthetic, splitt: source_hand}\n", "splitt"),
])
def test_fit_config_with_an_unknown_key(tiny_world, tmp_path, out, capsys, yaml_text, key):
    typo = tmp_path / "typo.yaml"
    typo.write_text(yaml_text)
    before = snapshot(out)
    rc, line = run([*fit_args(tiny_world, out), "-c", str(typo)], capsys)
    assert rc == 2 and f"'{key}'" in line and line.endswith("(see 'hoi-adapt fit --help')")
    assert snapshot(out) == before  # parsing fails before anything is created


def _foreign_checkpoint(path: Path) -> Path:
    torch.save({"state_dict": {"backbone.weight": torch.zeros(3)}, "epoch": 3}, path)  # another project's Lightning ckpt
    return path


def _malicious_checkpoint(path: Path, sentinel: Path) -> Path:
    class Evil:
        def __reduce__(self):
            import os

            return os.system, (f"touch {sentinel}",)

    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    return path


def test_fit_resume_from_a_checkpoint_it_cannot_use(tiny_world, tiny_estimator_ckpt, tmp_path, out, capsys):
    sentinel = Path(tempfile.gettempdir()) / "hoi_adapt_bad_ckpt_sentinel"
    sentinel.unlink(missing_ok=True)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(tiny_estimator_ckpt.read_bytes()[:5000])
    cases = {
        _foreign_checkpoint(tmp_path / "foreign.ckpt"): "not a hoi_adapt checkpoint",
        truncated: "not a loadable checkpoint",
        _malicious_checkpoint(tmp_path / "evil.ckpt", sentinel): "not a loadable checkpoint (UnpicklingError",
        tiny_estimator_ckpt: "holds network weights only",
        tmp_path / "missing.ckpt": "checkpoint not found",
    }
    before = snapshot(out)
    for ckpt, problem in cases.items():
        rc, line = run([*fit_args(tiny_world, out), f"--ckpt_path={ckpt}"], capsys)
        assert rc == 1 and line.startswith(f"hoi-adapt fit: error: {ckpt}: ") and problem in line, line
    assert not sentinel.exists()  # the malicious pickle never ran
    # an estimator checkpoint handed to the adaptation config: the kind is checked first
    adapt = ["fit", "-c", str(REPO / "configs/adapt/demo.yaml"), f"--data.world={tiny_world}", "--data.world_config=null",
             f"--trainer.default_root_dir={out}", f"--ckpt_path={tiny_estimator_ckpt}"]
    rc, line = run(adapt, capsys)
    assert "is a checkpoint of kind 'estimator' but the configured model AdaptModule resumes from 'adapt' checkpoints" in line
    assert snapshot(out) == before


# ----------------------------------------------------------------------------- inference / evaluation
def test_predict_with_another_models_checkpoint_or_a_truncated_image(tiny_estimator_ckpt, tmp_path, out, capsys):
    import cv2

    images = tmp_path / "images"
    images.mkdir()
    img = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(images / "hand.jpg"), img)
    before = snapshot(out)
    foreign = _foreign_checkpoint(tmp_path / "foreign.ckpt")
    rc, line = run(["predict", "--ckpt", str(foreign), "--input", str(images), "--out", str(out), "--no-progress"], capsys)
    assert line.startswith(f"hoi-adapt predict: error: {foreign}: not a hoi_adapt checkpoint")
    truncate(images / "hand.jpg", 0.4)
    # --fail-fast: the first bad file stops the run with one error naming it
    rc, line = run(["predict", "--ckpt", str(tiny_estimator_ckpt), "--input", str(images), "--out", str(out), "--no-progress",
                    "--input-size", "32", "--detector", "none", "--fail-fast"], capsys)
    assert line.startswith("hoi-adapt predict: error: ") and str(images / "hand.jpg") in line
    assert {k for k in snapshot(out) if not k.endswith("predictions.json")} == set(before)  # no prediction written
    # by default a folder run reports the bad file, skips it and exits non-zero
    rc = hoi_adapt(["predict", "--ckpt", str(tiny_estimator_ckpt), "--input", str(images), "--out", str(out), "--no-progress",
                    "--input-size", "32", "--detector", "none"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"hoi-adapt predict: warning: skipping {images / 'hand.jpg'}: truncated" in err


def test_a_mano_file_that_is_not_mano(tiny_estimator_ckpt, tmp_path, out, capsys):
    not_mano = tmp_path / "MANO_RIGHT.pkl"
    not_mano.write_bytes(pickle.dumps({"weights": np.zeros(3), "note": "a pickle, but not a hand model"}, protocol=2))
    jpeg_named_pkl = tmp_path / "MANO_LEFT.pkl"
    jpeg_named_pkl.write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    before = snapshot(out)
    rc, line = run(["hand-model", "--mano", str(not_mano), "--out", str(out)], capsys)
    assert str(not_mano) in line and "v_template" in line
    rc, line = run(["hand-model", "--mano", str(jpeg_named_pkl), "--out", str(out)], capsys)
    assert str(jpeg_named_pkl) in line and "pickle" in line
    images = tmp_path / "images"
    images.mkdir()
    import cv2

    cv2.imwrite(str(images / "a.png"), np.zeros((32, 32, 3), np.uint8))
    rc, line = run(["predict", "--ckpt", str(tiny_estimator_ckpt), "--input", str(images), "--out", str(out),
                    "--mano", str(not_mano), "--no-progress"], capsys)
    assert line.startswith("hoi-adapt predict: error: ") and str(not_mano) in line
    assert snapshot(out) == before


def test_evaluate_with_a_missing_annotation_file(tiny_estimator_ckpt, tmp_path, out, capsys):
    from fixtures_datasets import write_freihand

    root = tmp_path / "freihand"
    write_freihand(root, n=2, size=32)
    (root / "training_xyz.json").unlink()
    before = snapshot(out)
    rc, line = run(["evaluate", "--ckpt", str(tiny_estimator_ckpt), "--dataset", "freihand", "--root", str(root),
                    "--split", "train", "--out", str(out), "--image-size", "32", "--quiet"], capsys)
    assert line.startswith("hoi-adapt evaluate: error: ") and str(root / "training_xyz.json") in line
    assert snapshot(out) == before
