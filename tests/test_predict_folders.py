"""``hoi-adapt predict`` on whole folders: bad files are reported and skipped (or stop the run with --fail-fast),
a rerun resumes (finished images skipped, changed ones redone), an interrupted run leaves a folder it can resume."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from hoi_adapt.peers.mediapipe import PEER_VENV_ENV
from hoi_adapt.prediction import iter_predictions
from hoi_adapt.prediction.cli import main
from hoi_adapt.prediction.schema import INDEX_FILE
from hoi_adapt.utils.io import file_digest

SIZE = 32


def _photo(path: Path, seed: int, size: tuple[int, int] = (60, 80)) -> Path:
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), size[::-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


def _args(ckpt: Path, folder: Path, out: Path, *extra: str) -> list[str]:
    return ["--ckpt", str(ckpt), "--input", str(folder), "--out", str(out), "--K", "60,60,40,30",
            "--input-size", str(SIZE), "--no-progress", "--batch-size", "2", *extra]


def _summary(stdout: str) -> str:
    return stdout.strip().splitlines()[-1]


@pytest.fixture()
def bad_folder(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    good = _photo(d / "c_good.png", 0)
    jpeg = _photo(d / "full.jpg", 1)
    (d / "a_truncated.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    jpeg.unlink()
    (d / "b_text.png").write_text("not an image, just text\n")
    assert good.is_file()
    return d


def test_bad_files_are_reported_skipped_and_listed(tiny_estimator_ckpt, bad_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(PEER_VENV_ENV, str(tmp_path / "no_such_venv"))  # detector auto falls back, saying so once
    out = tmp_path / "out"
    assert main(_args(tiny_estimator_ckpt, bad_folder, out)) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert sum("MediaPipe is not installed" in line and "peers" in line for line in err) == 1
    assert any(f"skipping {bad_folder / 'a_truncated.jpg'}: truncated" in line for line in err)
    assert any(f"skipping {bad_folder / 'b_text.png'}: not a readable image" in line for line in err)
    assert _summary(captured.out) == (f"hoi-adapt predict: 1 image(s) done, 1 hand(s) found, 0 skipped as already "
                                      f"finished, 2 failed -> {out / INDEX_FILE}")
    rec = json.loads((out / "c_good.json").read_text())
    assert rec["detector"]["name"] == "two-pass" and len(rec["hands"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["c_good.json", "c_good_hand0.obj", "c_good_overlay.png", INDEX_FILE]
    index = json.loads((out / INDEX_FILE).read_text())
    assert [e["name"] for e in index["images"]] == ["c_good"]
    failures = {f["name"]: f for f in index["failures"]}
    assert sorted(failures) == ["a_truncated", "b_text"]
    assert failures["a_truncated"]["path"] == str(bad_folder / "a_truncated.jpg")
    assert failures["a_truncated"]["reason"].startswith("truncated")
    assert failures["b_text"]["reason"].startswith("not a readable image (24 bytes)")

    # The rerun skips the finished image and still reports (and lists) the bad ones.
    assert main(_args(tiny_estimator_ckpt, bad_folder, out)) == 1
    assert ", 1 skipped as already finished, 2 failed" in _summary(capsys.readouterr().out)

    # --fail-fast stops at the first bad file (a_truncated.jpg, the first in name order): nothing else is done.
    fast = tmp_path / "fast"
    assert main(_args(tiny_estimator_ckpt, bad_folder, fast, "--fail-fast", "--detector", "none")) == 1
    err = capsys.readouterr().err
    assert f"error: {bad_folder / 'a_truncated.jpg'}: truncated" in err and "b_text" not in err
    assert not (fast / "c_good.json").exists()
    assert [f["name"] for f in json.loads((fast / INDEX_FILE).read_text())["failures"]] == ["a_truncated"]


def test_mediapipe_detector_missing_is_one_clear_error(tiny_estimator_ckpt, bad_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(PEER_VENV_ENV, str(tmp_path / "no_such_venv"))
    assert main(_args(tiny_estimator_ckpt, bad_folder, tmp_path / "o", "--detector", "mediapipe")) == 1
    err = capsys.readouterr().err
    assert "MediaPipe peer venv not found" in err and "Build it with" in err and not (tmp_path / "o").exists()


def test_rerun_resumes_and_redoes_changed_images(tiny_estimator_ckpt, tmp_path, capsys):
    d = tmp_path / "photos"
    one, two = _photo(d / "one.png", 0), _photo(d / "two.png", 1)
    out = tmp_path / "out"
    args = _args(tiny_estimator_ckpt, d, out, "--detector", "none")
    assert main(args) == 0
    assert "2 image(s) done, 2 hand(s) found, 0 skipped" in _summary(capsys.readouterr().out)
    entry = json.loads((out / INDEX_FILE).read_text())["images"][0]
    assert set(entry) == {"name", "image", "finished", "input", "settings", "sides", "files", "sha256"}
    assert entry["input"] == {"size": one.stat().st_size, "mtime_ns": one.stat().st_mtime_ns, "sha256": file_digest(one)}
    assert entry["settings"]["K"] == [[60.0, 0.0, 40.0], [0.0, 60.0, 30.0], [0.0, 0.0, 1.0]]
    assert entry["settings"]["detector"] == "two-pass" and entry["sides"] == ["right"]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    assert main(args) == 0  # nothing to do: both finished, no file rewritten but the index
    captured = capsys.readouterr()
    assert "2 of 2 image(s) already finished" in captured.err and "note:" in captured.err
    assert "0 image(s) done, 0 hand(s) found, 2 skipped as already finished, 0 failed" in _summary(captured.out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != INDEX_FILE} == \
        {k: v for k, v in stamps.items() if k != INDEX_FILE}

    _photo(two, 7, size=(70, 90))  # a changed input is redone, the other one is not
    assert main(args) == 0
    assert "1 image(s) done, 1 hand(s) found, 1 skipped" in _summary(capsys.readouterr().out)
    assert json.loads((out / "two.json").read_text())["image"]["sha256"] == file_digest(two)
    assert (out / "one.json").stat().st_mtime_ns == stamps["one.json"]

    # Other settings (another K) redo everything; --overwrite recomputes finished images too.
    assert main([*args, "--K", "70,70,40,30"]) == 0
    assert "2 image(s) done" in _summary(capsys.readouterr().out)
    assert main([*args, "--K", "70,70,40,30", "--overwrite"]) == 0
    assert "2 image(s) done, 2 hand(s) found, 0 skipped" in _summary(capsys.readouterr().out)


def test_an_interrupted_run_leaves_a_folder_that_resumes(tiny_estimator_ckpt, tmp_path, monkeypatch):
    """Stopped while writing an image's files: they are recorded as ours (not refused as foreign on the rerun),
    the image is not finished, and the rerun completes it."""
    import hoi_adapt.prediction.writer as writer

    d = tmp_path / "photos"
    for i, name in enumerate(("a", "b", "c")):
        _photo(d / f"{name}.png", i)
    out = tmp_path / "out"
    real = writer.hands_overlay
    calls = []

    def interrupted(image, hands, K):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(image, hands, K)

    monkeypatch.setattr(writer, "hands_overlay", interrupted)
    results = iter_predictions(tiny_estimator_ckpt, d, out, K=[60, 60, 40, 30], input_size=SIZE, batch_size=1,
                               detector="none")
    assert next(results)["image"]["name"] == "a"
    with pytest.raises(KeyboardInterrupt):
        next(results)
    monkeypatch.setattr(writer, "hands_overlay", real)
    index = {e["name"]: e for e in json.loads((out / INDEX_FILE).read_text())["images"]}
    assert index["a"]["finished"] is True and index["b"]["finished"] is False
    assert index["b"]["files"] == ["b_hand0.obj"] and (out / "b_hand0.obj").is_file()  # written before the stop
    done = [r["image"]["name"] for r in iter_predictions(tiny_estimator_ckpt, d, out, K=[60, 60, 40, 30],
                                                          input_size=SIZE, batch_size=1, detector="none")]
    assert done == ["b", "c"]
    index = json.loads((out / INDEX_FILE).read_text())
    assert [(e["name"], e["finished"]) for e in index["images"]] == [("a", True), ("b", True), ("c", True)]
