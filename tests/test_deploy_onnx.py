"""``hoi-adapt export-onnx`` and the ONNX runtime: exported E and G compute what PyTorch computes.

Skips when onnx/onnxruntime are missing (they are dependencies, so CI has them).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from fixtures_checkpoints import write_tiny_adapt_checkpoint  # noqa: E402

from hoi_adapt.checkpoints.predictor import load_predictor  # noqa: E402
from hoi_adapt.cli import main as cli_main  # noqa: E402
from hoi_adapt.deploy.graphs import ESTIMATOR_OUTPUTS, FixedAdaptiveAvgPool2d  # noqa: E402
from hoi_adapt.deploy.onnx_export import ExportCheckError, check_inputs, export_onnx  # noqa: E402
from hoi_adapt.deploy.runtime import load_onnx_predictor  # noqa: E402
from hoi_adapt.utils.errors import ConfigError, DataFileError  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def estimator_export(tiny_estimator_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "estimator"
    assert cli_main(["export-onnx", "--ckpt", str(tiny_estimator_ckpt), "--out", str(out), "--input-size", str(SIZE)]) == 0
    return out


def test_estimator_export_writes_the_graph_and_a_passing_report(estimator_export: Path, tiny_estimator_ckpt: Path) -> None:
    report = json.loads((estimator_export / "export_onnx.json").read_text())
    assert report["ok"] and report["input_size"] == SIZE and not report["adapt"]
    assert (estimator_export / "estimator.onnx").is_file() and not (estimator_export / "generator.onnx").exists()
    check = report["graphs"]["estimator"]["check"]
    assert set(check) == set(ESTIMATOR_OUTPUTS)
    for name, row in check.items():
        assert row["max_abs_error"] <= row["limit"], name
    assert check["vertices"]["max_abs_error"] < 1e-5  # metres
    assert report["checkpoint"]["path"] == str(tiny_estimator_ckpt.resolve())


def test_onnx_predictor_agrees_with_predictor_at_any_batch(estimator_export: Path, tiny_estimator_ckpt: Path) -> None:
    onnx_pred = load_onnx_predictor(estimator_export, threads=1)
    torch_pred = load_predictor(tiny_estimator_ckpt)
    for batch in (1, 4):  # traced at 2: the batch axis is dynamic
        image, K = check_inputs(SIZE, batch, seed=batch)
        ref, got = torch_pred(image, K), onnx_pred(image, K)
        assert set(got) == set(ref)
        for key, value in ref.items():
            assert got[key].shape == value.shape, key
            tol = 1e-3 if key == "joints2d" else 1e-5  # pixels vs metres, radians, probabilities
            torch.testing.assert_close(got[key], value, atol=tol, rtol=0, msg=key)
    assert onnx_pred.faces is torch_pred.faces or torch.equal(onnx_pred.faces, torch_pred.faces)
    options = onnx_pred.estimator_graph.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"  # E alone: calls back to back


def test_onnx_predictor_returns_the_skeleton_definition_its_predictor_was_asked_for(estimator_export: Path, tiny_estimator_ckpt: Path) -> None:
    onnx_pred = load_onnx_predictor(estimator_export, threads=1)
    onnx_pred.torch_predictor.skeleton = "kinematic"  # as evaluation asks for a kinematic-labelled dataset
    torch_pred = load_predictor(tiny_estimator_ckpt, skeleton="kinematic")
    image, K = check_inputs(SIZE, 2, seed=5)
    ref, got, own = torch_pred(image, K), onnx_pred(image, K), load_predictor(tiny_estimator_ckpt)(image, K)
    torch.testing.assert_close(got["joints3d"], ref["joints3d"], atol=1e-5, rtol=0)
    torch.testing.assert_close(got["joints2d"], ref["joints2d"], atol=1e-3, rtol=0)
    assert float((got["joints3d"] - own["joints3d"]).abs().max()) > 1e-5  # not the estimator's own (mesh) joints


@pytest.mark.slow
@pytest.mark.parametrize("guided", [True, False])
def test_adapt_export_checks_generator_and_the_whole_pipeline(tmp_path: Path, guided: bool) -> None:
    ckpt = write_tiny_adapt_checkpoint(tmp_path / "adapt.ckpt", guided)
    report = export_onnx(ckpt, tmp_path / "out", adapt=True, input_size=SIZE)
    assert report["ok"] and report["graphs"]["generator"]["guided"] == guided
    assert report["graphs"]["generator"]["check"]["translated"]["max_abs_error"] < 1e-5
    e2e = report["end_to_end_predictor"]
    assert {"translated", "first_joints3d", "joints3d", "mask_prob"} <= set(e2e)
    assert e2e["joints3d"]["max_abs_error"] < 1e-5 and e2e["translated"]["max_abs_error"] < 1e-5
    onnx_pred = load_onnx_predictor(tmp_path / "out", threads=1)
    assert onnx_pred.adapt
    for graph in (onnx_pred.estimator_graph, onnx_pred.generator_graph):  # torch works between the calls: no busy-waiting
        assert graph.session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    image, K = check_inputs(SIZE, 1, seed=5)
    got, ref = onnx_pred(image, K), load_predictor(ckpt, adapt=True)(image, K)
    assert set(got) == set(ref)
    torch.testing.assert_close(got["translated"], ref["translated"], atol=1e-5, rtol=0)


def test_export_refuses_bad_input_naming_the_file(tiny_estimator_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.ckpt"
    assert cli_main(["export-onnx", "--ckpt", str(missing), "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "checkpoint not found" in err and err.count("\n") == 1
    assert cli_main(["export-onnx", "--ckpt", str(tiny_estimator_ckpt), "--adapt", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert str(tiny_estimator_ckpt) in err and "needs an adaptation checkpoint" in err and "'estimator'" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_failed_check_fails_loudly_and_is_not_deployable(tiny_estimator_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportCheckError, match=r"export_onnx\.json: ONNX Runtime disagrees with PyTorch: estimator\."):
        export_onnx(tiny_estimator_ckpt, tmp_path, input_size=SIZE, tolerance=1e-15)
    assert json.loads((tmp_path / "export_onnx.json").read_text())["ok"] is False
    with pytest.raises(DataFileError, match="failed its numerical check"):
        load_onnx_predictor(tmp_path)


def test_runtime_refuses_another_checkpoint_and_another_size(estimator_export: Path, tmp_path: Path) -> None:
    other = write_tiny_adapt_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(DataFileError, match="is not the checkpoint exported"):
        load_onnx_predictor(estimator_export, ckpt=other)
    image, K = check_inputs(2 * SIZE, 1)
    with pytest.raises(ValueError, match=f"exported for {SIZE}-px inputs, got {2 * SIZE} px"):
        load_onnx_predictor(estimator_export)(image, K)


@pytest.mark.parametrize("size, out", [((8, 8), (4, 4)), ((6, 7), (4, 4)), ((5, 3), (2, 3))])
def test_fixed_adaptive_pool_equals_torch(size: tuple[int, int], out: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size)
    torch.testing.assert_close(FixedAdaptiveAvgPool2d(out, size)(x), torch.nn.functional.adaptive_avg_pool2d(x, out))


@pytest.mark.slow
def test_int8_is_opt_in_calibrated_and_reported(estimator_export: Path, tiny_estimator_ckpt: Path, tmp_path: Path) -> None:
    import cv2

    with pytest.raises(DataFileError, match="has no int8 graphs"):  # the default export has none
        load_onnx_predictor(estimator_export, precision="int8")
    crops = tmp_path / "crops"
    crops.mkdir()
    images, _ = check_inputs(SIZE, 8, seed=3)
    for i, im in enumerate(images):
        cv2.imwrite(str(crops / f"{i}.png"), (im.permute(1, 2, 0).numpy()[..., ::-1] * 255).round().astype("uint8"))
    report = export_onnx(tiny_estimator_ckpt, tmp_path / "out", input_size=SIZE, int8_calibration=crops)
    int8 = report["int8"]
    assert int8["files"] == ["estimator.int8.onnx"] and int8["calibration"]["images"] == 4 and int8["held_out_images"] == 4
    dev = int8["deviation_vs_torch"]["joints3d"]
    assert 0 < dev["mean_abs"] < 0.05  # a numerics change (not zero), small next to a hand (metres)
    pred = load_onnx_predictor(tmp_path / "out", precision="int8", threads=1)
    assert pred.estimator_graph.path.name == "estimator.int8.onnx"
    image, K = check_inputs(SIZE, 2, seed=4)
    assert torch.isfinite(pred(image, K)["joints3d"]).all()
    with pytest.raises(DataFileError, match="calibration needs at least 4"):
        export_onnx(tiny_estimator_ckpt, tmp_path / "few", input_size=SIZE, int8_calibration=tmp_path / "out")


def test_evaluate_runs_an_export_folder_with_the_checkpoints_numbers(estimator_export: Path, tiny_estimator_ckpt: Path,
                                                                     tiny_world: Path, tmp_path: Path) -> None:
    """``hoi-adapt evaluate --ckpt <export folder>``: ONNX Runtime gives the torch checkpoint's figures."""
    from hoi_adapt.eval.runner import ModelSpec, default_out_dir, evaluate_checkpoints


    models = [ModelSpec(tiny_estimator_ckpt, label="torch"), ModelSpec(estimator_export, label="onnx")]
    rows = evaluate_checkpoints(models, "synthetic", tiny_world, limit=6, image_size=SIZE, progress=False)["rows"]
    assert rows["onnx"]["runtime"].startswith("onnxruntime fp32") and rows["torch"]["runtime"] == "torch"
    assert rows["onnx"]["checkpoint_sha256"] == rows["torch"]["checkpoint_sha256"]
    for key, value in rows["torch"]["metrics"].items():
        assert rows["onnx"]["metrics"][key] == pytest.approx(value, abs=1e-3), key
    assert default_out_dir("synthetic", models[1]).name == f"synthetic_{estimator_export.name}_onnx_fp32"
    with pytest.raises(ConfigError, match="exports the estimator alone; drop --adapt"):
        evaluate_checkpoints([ModelSpec(estimator_export, adapt=True)], "synthetic", tiny_world, limit=2, progress=False)


def test_predict_runs_an_export_folder_like_its_checkpoint(estimator_export: Path, tiny_estimator_ckpt: Path,
                                                           tiny_world: Path) -> None:
    """``hoi-adapt predict --ckpt <export folder>``: the same hands as the checkpoint, run by ONNX Runtime."""
    from hoi_adapt.data.formats.world import image_path
    from hoi_adapt.prediction import predict

    image = image_path(tiny_world, "target_test", "hoi", 0)
    kwargs = {"boxes": [2, 2, 60, 60], "detector": "none", "input_size": SIZE}
    ref = predict(tiny_estimator_ckpt, image, **kwargs)[0]["hands"][0]
    got = predict(estimator_export, image, **kwargs)[0]["hands"][0]
    for key in ("joints3d", "joints2d", "vertices"):
        np.testing.assert_allclose(got[key], ref[key], atol=1e-3 if key == "joints2d" else 1e-5, err_msg=key)
    with pytest.raises(ConfigError, match="drop --adapt"):
        predict(estimator_export, image, adapt=True, **kwargs)
