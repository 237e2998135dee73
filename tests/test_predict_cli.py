"""``hoi-adapt predict`` end to end: files, their contents, CLI/API agreement, --adapt, errors, no data loss."""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from hoi_adapt.cli import main as cli_main
from hoi_adapt.io.mesh_io import read_obj
from hoi_adapt.prediction import predict
from hoi_adapt.prediction.cli import main
from hoi_adapt.prediction.schema import INDEX_FILE
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError

SIZE = 64
JSON_KEYS = {"schema", "schema_version", "image", "camera", "detector", "joint_order", "joint_names", "skeleton", "hand_model",
             "checkpoint", "adapt", "hands", "notes", "files"}
HAND_KEYS = {"side", "side_source", "score", "box", "crop", "joints3d", "joints2d", "mano", "mesh", "files"}


def _write(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[:, :, ::-1]))
    return path


def _image(h, w, seed):
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), (w, h))
    cv2.circle(img, (w // 2, h // 2), min(h, w) // 4, (220, 170, 140), -1)
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    _write(d / "wide.png", _image(90, 160, 0))
    _write(d / "tall.jpg", _image(140, 70, 1))
    return d


@pytest.fixture(scope="module")
def adapt_ckpt(tmp_path_factory):
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator
    from hoi_adapt.models.generator import UNetGenerator
    from hoi_adapt.models.pipeline import MeshGuidance

    torch.manual_seed(0)
    nets = {"estimator": MeshEstimator(backbone_depth=18, regressor_hidden=32, evidence_width=8).eval(),
            "generator": UNetGenerator(in_channels=8, base_channels=8, num_downs=4),
            "guidance": MeshGuidance(guidance_size=32)}
    return write_network_checkpoint(tmp_path_factory.mktemp("adapt") / "adapt.ckpt", "adapt", nets)


def test_cli_writes_valid_files_and_agrees_with_the_api(tiny_estimator_ckpt, folder, tmp_path, capsys):
    from hoi_adapt.checkpoints.load import checkpoint_sha256

    kfile = tmp_path / "K.json"
    kfile.write_text(json.dumps({"wide.png": [[200, 0, 80], [0, 210, 45], [0, 0, 1]], "*": {"fx": 150, "fy": 150, "cx": 34, "cy": 70}}))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"tall.jpg": [10, 40, 60, 100], "wide.png": None}))
    out = tmp_path / "out"
    rc = cli_main(["predict", "--ckpt", str(tiny_estimator_ckpt), "--input", str(folder), "--out", str(out),
                   "--K-file", str(kfile), "--boxes", str(boxes), "--input-size", str(SIZE), "--batch-size", "1",
                   "--detector", "none"])
    assert rc == 0, capsys.readouterr().err
    api = {r["image"]["name"]: r["hands"][0]
           for r in predict(tiny_estimator_ckpt, folder, K=kfile, boxes=boxes, input_size=SIZE, detector="none")}
    index = json.loads((out / INDEX_FILE).read_text())
    assert sorted(e["name"] for e in index["images"]) == ["tall", "wide"]
    for name, (h, w) in (("wide", (90, 160)), ("tall", (140, 70))):
        rec = json.loads((out / f"{name}.json").read_text())
        assert set(rec) == JSON_KEYS and rec["skeleton"] == "mesh" and rec["schema_version"] == 2 and rec["adapt"] is False and len(rec["hands"]) == 1
        hand = rec["hands"][0]
        assert set(hand) == HAND_KEYS and hand["side"] == "right" and hand["side_source"] == "default"
        assert (rec["image"]["width"], rec["image"]["height"]) == (w, h)
        assert rec["checkpoint"]["sha256"] == checkpoint_sha256(tiny_estimator_ckpt)
        assert rec["hand_model"]["type"] == "stand-in" and len(rec["joint_names"]) == 21
        assert rec["joint_names"][0] == "wrist" and rec["joint_names"][4] == "thumb_tip"
        j3, j2, K = np.array(hand["joints3d"]), np.array(hand["joints2d"]), np.array(rec["camera"]["K"])
        assert j3.shape == (21, 3) and j2.shape == (21, 2) and not rec["camera"]["assumed"]
        m = hand["mano"]
        assert (len(m["global_orient"]), len(m["hand_pose"]), len(m["betas"]), len(m["transl"])) == (3, 45, 10, 3)
        np.testing.assert_allclose(j2, project(j3, K), atol=1e-3)
        # OBJ = the predicted mesh; PNG = the original image size.
        v, f = read_obj(out / hand["files"]["obj"])
        np.testing.assert_allclose(v, api[name]["vertices"], atol=1e-6)
        np.testing.assert_array_equal(f, api[name]["faces"])
        assert cv2.imread(str(out / rec["files"]["overlay"])).shape == (h, w, 3)
        # The API returns the same numbers (up to float32 batching differences: it used batches of 8).
        np.testing.assert_allclose(j3, api[name]["joints3d"], atol=1e-6)
        np.testing.assert_allclose(j2, api[name]["joints2d"], atol=1e-3)
        np.testing.assert_allclose(hand["crop"]["affine"], api[name]["crop"]["affine"])
    wide, tall = (json.loads((out / f"{n}.json").read_text()) for n in ("wide", "tall"))
    assert wide["camera"]["K"][1][1] == 210 and tall["camera"]["K"][0][2] == 34  # per-file and "*" entries
    assert tall["hands"][0]["crop"]["source"] == "box" and wide["hands"][0]["crop"]["source"] in ("auto", "full_image")
    assert tall["detector"]["name"] == "boxes" and wide["detector"]["name"] == "two-pass"
    assert tall["hands"][0]["crop"]["center"] == [35.0, 70.0] and tall["hands"][0]["box"] == [10, 40, 60, 100]
    # The overlay changed pixels only where the mesh or skeleton is drawn, never the image size.
    overlay = cv2.imread(str(out / "tall_overlay.png"))[:, :, ::-1]
    assert (overlay != cv2.imread(str(folder / "tall.jpg"))[:, :, ::-1]).any()


def test_adapt_writes_the_hand_only_image_and_first_pass(adapt_ckpt, folder, tmp_path, tiny_estimator_ckpt):
    out = tmp_path / "out"
    rc = main(["--ckpt", str(adapt_ckpt), "--input", str(folder / "wide.png"), "--out", str(out), "--adapt",
               "--K", "200,200,80,45", "--input-size", str(SIZE), "--no-progress", "--detector", "none"])
    assert rc == 0
    rec = json.loads((out / "wide.json").read_text())
    assert rec["adapt"] is True and rec["checkpoint"]["kind"] == "adapt"
    hand = rec["hands"][0]
    assert hand["files"] == {"obj": "wide_hand0.obj", "hand_only": "wide_hand0_hand_only.png"}
    hand_only = cv2.imread(str(out / hand["files"]["hand_only"]))
    assert hand_only.shape == (SIZE, SIZE, 3)
    first3d, first2d = np.array(hand["first_pass"]["joints3d"]), np.array(hand["first_pass"]["joints2d"])
    assert first3d.shape == (21, 3) and np.isfinite(first3d).all()
    np.testing.assert_allclose(first2d, project(first3d, np.array(rec["camera"]["K"])), atol=1e-3)
    # The left-hand path of the adapted pipeline mirrors the translation back.
    r_right = predict(adapt_ckpt, folder / "wide.png", K="200,200,80,45", adapt=True, input_size=SIZE,
                      detector="none")[0]["hands"][0]
    img = cv2.imread(str(folder / "wide.png"))[:, :, ::-1]
    r_left = predict(adapt_ckpt, np.ascontiguousarray(img[:, ::-1]), K=[200, 200, 159 - 80, 45], adapt=True, left=True,
                     input_size=SIZE, detector="none")[0]["hands"][0]
    np.testing.assert_array_equal(r_left["hand_only_image"], r_right["hand_only_image"][:, ::-1])
    np.testing.assert_allclose(r_left["first_pass"]["joints3d"][:, 0], -r_right["first_pass"]["joints3d"][:, 0], atol=1e-6)
    # An estimator checkpoint cannot be used with --adapt.
    with pytest.raises(CheckpointError, match="adaptation checkpoint"):
        predict(tiny_estimator_ckpt, folder / "wide.png", K="200,200,80,45", adapt=True, input_size=SIZE)


def test_rerun_into_the_input_folder_never_loses_data(tiny_estimator_ckpt, tmp_path, capsys):
    d = tmp_path / "photos"
    _write(d / "a.png", _image(60, 80, 2))
    _write(d / "a.jpg", _image(60, 80, 3))  # same stem: distinct outputs
    args = ["--ckpt", str(tiny_estimator_ckpt), "--input", str(d), "--out", str(d), "--K", "90,90,40,30",
            "--input-size", str(SIZE), "--no-progress", "--detector", "none"]
    assert main(args) == 0
    index = {e["name"]: e["image"] for e in json.loads((d / INDEX_FILE).read_text())["images"]}
    assert index == {"a": str(d / "a.jpg"), "a_png": str(d / "a.png")}  # sorted: a.jpg comes first
    assert (d / "a_png_hand0.obj").is_file() and (d / "a_hand0.obj").is_file()
    before = {p.name for p in d.iterdir()}
    assert main(args) == 0  # outputs of the first run are recognised, neither re-read as inputs nor refused
    assert {p.name for p in d.iterdir()} == before
    assert sorted(e["name"] for e in json.loads((d / INDEX_FILE).read_text())["images"]) == ["a", "a_png"]
    # A file predict did not write is never overwritten.
    (d / "a.json").unlink()
    (d / "a.json").write_text("my notes")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "a.json" in err and "refusing to overwrite" in err
    assert (d / "a.json").read_text() == "my notes"
    # An output name equal to an input image is refused.
    e = tmp_path / "clash"
    _write(e / "b.png", _image(40, 40, 4))
    _write(e / "b_overlay.png", _image(40, 40, 5))
    with pytest.raises(ConfigError, match="overwrite an input image"):
        predict(tiny_estimator_ckpt, [e / "b.png", e / "b_overlay.png"], out_dir=e, K=[50, 50, 20, 20], input_size=SIZE)
    assert sorted(p.name for p in e.iterdir()) == ["b.png", "b_overlay.png"]


def test_errors_name_the_problem(tiny_estimator_ckpt, folder, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataFileError, match="broken.png"):
        predict(tiny_estimator_ckpt, bad, K=[50, 50, 20, 20])
    assert main(["--ckpt", str(tiny_estimator_ckpt), "--input", str(bad), "--out", str(tmp_path / "o"),
                 "--detector", "none"]) == 1
    assert "broken.png" in capsys.readouterr().err
    # The bad file is listed in the folder's index, and nothing else was written.
    assert [p.name for p in (tmp_path / "o").iterdir()] == [INDEX_FILE]
    index = json.loads((tmp_path / "o" / INDEX_FILE).read_text())
    assert index["images"] == [] and [f["path"] for f in index["failures"]] == [str(bad)]
    shutil.rmtree(tmp_path / "o")
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        predict(tmp_path / "missing.ckpt", folder / "wide.png")
    with pytest.raises(DataFileError, match="not found"):
        predict(tiny_estimator_ckpt, tmp_path / "nope.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="no images"):
        predict(tiny_estimator_ckpt, empty)
    for k in ("1,2,3", "a,b,c,d", "-100,100,10,10", "100,100,nan,10"):
        assert main(["--ckpt", str(tiny_estimator_ckpt), "--input", str(folder / "wide.png"), "--out",
                     str(tmp_path / "o"), f"--K={k}"]) == 1
        assert "--K" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="outside the 160x90 image"):
        predict(tiny_estimator_ckpt, folder / "wide.png", K=[200, 200, 80, 45], boxes=[170, 10, 200, 40])
    with pytest.raises(ConfigError, match="x1 > x0"):
        predict(tiny_estimator_ckpt, folder / "wide.png", K=[200, 200, 80, 45], boxes=[50, 10, 20, 40])
    with pytest.raises(ConfigError, match="single box"):
        predict(tiny_estimator_ckpt, folder, K=[200, 200, 80, 45], boxes=[5, 5, 40, 40])
    with pytest.raises(ConfigError, match="uint8"):
        predict(tiny_estimator_ckpt, np.zeros((20, 20, 3), np.float32))
    kbad = tmp_path / "Kbad.json"
    kbad.write_text("{not json")
    with pytest.raises(DataFileError, match="Kbad.json"):
        predict(tiny_estimator_ckpt, folder / "wide.png", K=kbad)
    assert not (tmp_path / "o").exists()  # nothing was written by the failed runs
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            predict(tiny_estimator_ckpt, folder / "wide.png", device="cuda")


def test_mapping_entries_that_match_no_image_are_reported(tiny_estimator_ckpt, folder):
    from hoi_adapt.prediction.inputs import PredictWarning

    with pytest.warns(PredictWarning, match="matched no input image: wdie.png"):
        r = predict(tiny_estimator_ckpt, folder / "wide.png", K={"wdie.png": [1, 1, 0, 0], "*": [200, 200, 80, 45]},
                    input_size=SIZE, detector="none")[0]
    assert r["camera"]["K"][0][0] == 200 and r["camera"]["source"].endswith("['*']")


def test_package_level_predict_stays_callable_after_the_submodule_import(tiny_estimator_ckpt, folder):
    import hoi_adapt
    import hoi_adapt.prediction as module

    assert hoi_adapt.predict is module.predict
    r = hoi_adapt.predict(tiny_estimator_ckpt, folder / "wide.png", K=[200, 200, 80, 45], boxes=[60, 20, 100, 70],
                          input_size=SIZE)
    assert len(r) == 1 and r[0]["hands"][0]["crop"]["source"] == "box"
