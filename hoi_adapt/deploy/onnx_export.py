"""Export a checkpoint's E (and G) to ONNX and prove the files compute what PyTorch computes.

Writes ``estimator.onnx`` (+ ``generator.onnx`` for adaptation checkpoints) and ``export_onnx.json``: the
checkpoint (path, SHA-256), input size, graph inputs/outputs and, per graph and output, the largest absolute
difference between ONNX Runtime and PyTorch on the same test inputs, at a batch size other than the traced one
(so the dynamic batch axis is exercised too). An output fails when that difference exceeds
``tolerance * max(1, max |PyTorch value|)``; then the report says ``ok: false`` and :class:`ExportCheckError`
is raised, so a broken export never passes silently. The end-to-end ``OnnxPredictor`` against ``Predictor``
is reported too, for information only: the mesh guidance thresholds (skin > 0.5, silhouette > 0.5) may flip
a pixel on float noise, which is not an export error.

Tracing uses the TorchScript-based exporter: the hand model's kinematic chain indexes a Python list with the
parent buffer, which the tracer bakes in as constants while ``torch.export`` rejects it as data-dependent.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch

from hoi_adapt.checkpoints.load import checkpoint_input_size, checkpoint_sha256, read_checkpoint
from hoi_adapt.checkpoints.predictor import Predictor, load_predictor
from hoi_adapt.deploy.graphs import (
    ESTIMATOR_INPUTS,
    ESTIMATOR_OUTPUTS,
    GENERATOR_INPUTS,
    GENERATOR_OUTPUTS,
    EstimatorGraph,
    GeneratorGraph,
    example_intrinsics,
)
from hoi_adapt.deploy.runtime import ESTIMATOR_FILE, GENERATOR_FILE, INT8_FILES, REPORT_FILE, OnnxModel, OnnxPredictor
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.utils.errors import ConfigError, HoiAdaptError
from hoi_adapt.utils.io import write_json_atomic
from hoi_adapt.version import __version__

OPSET = 17
TRACE_BATCH = 2
CHECK_BATCH = 3
DEFAULT_TOLERANCE = 1e-4


class ExportCheckError(HoiAdaptError, RuntimeError):
    """An exported graph disagrees with PyTorch beyond the tolerance."""


def check_inputs(size: int, batch: int = CHECK_BATCH, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded images in [0,1] with structure (a bright blob on noise, so heatmaps and masks vary) and crop intrinsics."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centres = torch.rand(batch, 2, generator=g) - 0.5
    blob = torch.exp(-((xs - centres[:, 0, None, None]) ** 2 + (ys - centres[:, 1, None, None]) ** 2) / 0.15)
    noise = torch.rand(batch, 3, size, size, generator=g)
    image = (0.6 * blob[:, None] * torch.tensor([0.9, 0.7, 0.6])[None, :, None, None] + 0.4 * noise).clamp(0, 1)
    return image, example_intrinsics(size, batch)


def _export(graph: torch.nn.Module, inputs: tuple[torch.Tensor, ...], names: tuple[str, ...], outputs: tuple[str, ...],
            path: Path) -> None:
    graph.eval()
    with warnings.catch_warnings():  # tracer notes about constants (the fixed kinematic tree) and the exporter's age
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, inputs, str(path), input_names=list(names), output_names=list(outputs),
                          dynamic_axes={n: {0: "batch"} for n in (*names, *outputs)}, opset_version=OPSET, dynamo=False)
    graph.eval()  # the exporter restores the training flag it found, recursively; keep every submodule in eval
    import onnx

    onnx.checker.check_model(str(path), full_check=True)  # a valid file by the ONNX spec, not only to ONNX Runtime


def _compare(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor], tolerance: float) -> dict[str, dict[str, Any]]:
    rows = {}
    for name, value in ref.items():
        scale = max(1.0, float(value.abs().max()))
        err = float((got[name].to(value.dtype) - value).abs().max())
        rows[name] = {"max_abs_error": err, "scale": scale, "limit": tolerance * scale, "ok": err <= tolerance * scale}
    return rows


def _load(ckpt: Path, adapt: bool, mano_path: str | None) -> Predictor:
    read_checkpoint(ckpt)  # a missing or foreign file fails here, naming it
    return load_predictor(ckpt, adapt=adapt, mano_path=mano_path)


def export_onnx(ckpt: str | Path, out: str | Path, adapt: bool = False, input_size: int | None = None,
                tolerance: float = DEFAULT_TOLERANCE, mano_path: str | None = None,
                int8_calibration: str | Path | None = None) -> dict[str, Any]:
    """Export and check; returns the report written to ``out/export_onnx.json`` (raises if the check fails).

    ``int8_calibration``: a folder of hand crops; also writes int8-convolution variants of the graphs
    (:mod:`hoi_adapt.deploy.quantize`, opt-in) and reports their deviation from PyTorch on held-out crops.
    """
    ckpt, out = Path(ckpt), Path(out)
    if tolerance <= 0:
        raise ConfigError(f"tolerance must be > 0, got {tolerance}")
    predictor = _load(ckpt, adapt, mano_path)
    size = int(input_size or checkpoint_input_size(read_checkpoint(ckpt)) or 128)
    if size < 32 or size % 32:
        raise ConfigError(f"--input-size must be a multiple of 32 (>= 32), got {size}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    estimator = predictor.estimator
    e_graph = EstimatorGraph(estimator, size)
    _export(e_graph, check_inputs(size, TRACE_BATCH, seed=1), ESTIMATOR_INPUTS, ESTIMATOR_OUTPUTS, out / ESTIMATOR_FILE)
    image, K = check_inputs(size)
    e_onnx = OnnxModel(out / ESTIMATOR_FILE, ESTIMATOR_OUTPUTS)
    with torch.inference_mode():  # references from the checkpoint's own modules, not the export's rewritten copies
        e_out = estimator(image, K)
        e_ref = {name: getattr(e_out, name) for name in ESTIMATOR_OUTPUTS}
    graphs = {"estimator": {"file": ESTIMATOR_FILE, "inputs": list(ESTIMATOR_INPUTS), "outputs": list(ESTIMATOR_OUTPUTS),
                            "check": _compare(e_ref, e_onnx(image, K), tolerance)}}
    end_to_end = None
    if adapt:
        pipeline = predictor.model
        guided = pipeline.guidance is not None
        with torch.inference_mode():
            guidance = (MeshGuidance.as_input(pipeline.guidance(e_ref["vertices"], estimator.hand_model.faces, K, image,
                                                                torch.sigmoid(e_ref["mask_logits"]))) if guided else None)
        g_graph = GeneratorGraph(pipeline.generator, guided, size)
        g_inputs = (image, guidance) if guided else (image,)
        g_names = GENERATOR_INPUTS if guided else GENERATOR_INPUTS[:1]
        _export(g_graph, tuple(x[:TRACE_BATCH] for x in g_inputs), g_names, GENERATOR_OUTPUTS, out / GENERATOR_FILE)
        g_onnx = OnnxModel(out / GENERATOR_FILE, GENERATOR_OUTPUTS)
        with torch.inference_mode():
            g_ref = {"translated": pipeline.generator(*g_inputs)}
        graphs["generator"] = {"file": GENERATOR_FILE, "inputs": list(g_names), "outputs": list(GENERATOR_OUTPUTS),
                               "guided": guided, "check": _compare(g_ref, g_onnx(*g_inputs), tolerance)}
        with torch.inference_mode():
            end_to_end = _compare(predictor(image, K), OnnxPredictor(predictor, e_onnx, g_onnx)(image, K), tolerance)

    ok = all(row["ok"] for g in graphs.values() for row in g["check"].values())
    int8 = _int8(predictor, out, size, Path(int8_calibration)) if ok and int8_calibration is not None else None
    report = {
        "ok": ok, "hoi_adapt": __version__, "torch": torch.__version__, "onnxruntime": _ort_version(), "opset": OPSET,
        "checkpoint": {"path": str(ckpt.resolve()), "sha256": checkpoint_sha256(ckpt)}, "adapt": adapt,
        "input_size": size, "check_batch": CHECK_BATCH, "trace_batch": TRACE_BATCH, "tolerance": tolerance,
        "tolerance_rule": "max |onnx - torch| <= tolerance * max(1, max |torch|), per output",
        "inputs": {"image": "(batch, 3, S, S) float32 RGB in [0, 1]", "K": "(batch, 3, 3) float32 intrinsics of the crop"},
        "graphs": graphs,
        "end_to_end_predictor": end_to_end,
        "int8": int8,
        "hand_model": estimator.hand_model.describe(),
        "seconds": time.perf_counter() - started,
    }
    write_json_atomic(out / REPORT_FILE, report)
    if not ok:
        bad = [f"{g}.{name}: {row['max_abs_error']:.3g} > {row['limit']:.3g}" for g, spec in graphs.items()
               for name, row in spec["check"].items() if not row["ok"]]
        raise ExportCheckError(f"{out / REPORT_FILE}: ONNX Runtime disagrees with PyTorch: " + "; ".join(bad))
    return report


def _int8(predictor: Predictor, out: Path, size: int, folder: Path) -> dict[str, Any]:
    """Quantise the exported graphs' convolutions on half of ``folder``'s crops; deviation on the other half."""
    from hoi_adapt.deploy.quantize import calibration_images, quantize_convolutions

    images = calibration_images(folder, size)
    calibrate, held_out = images[0::2], images[1::2]
    K = example_intrinsics(size, 1)
    quantize_convolutions(out / ESTIMATOR_FILE, out / INT8_FILES[ESTIMATOR_FILE], [{"image": im[None], "K": K} for im in calibrate])
    if predictor.adapt:
        pipeline = predictor.model
        feeds = []
        with torch.inference_mode():
            for im in calibrate:
                first = predictor.estimator(im[None], K)
                feed = {"image": im[None]}
                if pipeline.guidance is not None:
                    feed["guidance"] = MeshGuidance.as_input(pipeline.guidance(first.vertices, predictor.faces, K, im[None],
                                                                               torch.sigmoid(first.mask_logits)))
                feeds.append(feed)
        quantize_convolutions(out / GENERATOR_FILE, out / INT8_FILES[GENERATOR_FILE], feeds)
    quantised = OnnxPredictor(predictor, OnnxModel(out / INT8_FILES[ESTIMATOR_FILE], ESTIMATOR_OUTPUTS),
                              OnnxModel(out / INT8_FILES[GENERATOR_FILE], GENERATOR_OUTPUTS) if predictor.adapt else None)
    Ks = example_intrinsics(size, len(held_out))
    with torch.inference_mode():
        ref, got = predictor(held_out, Ks), quantised(held_out, Ks)
    deviation = {k: {"max_abs": float((got[k] - v).abs().max()), "mean_abs": float((got[k] - v).abs().mean())} for k, v in ref.items()}
    return {"files": [INT8_FILES[ESTIMATOR_FILE]] + ([INT8_FILES[GENERATOR_FILE]] if predictor.adapt else []),
            "calibration": {"folder": str(folder.resolve()), "images": len(calibrate)}, "held_out_images": len(held_out),
            "deviation_vs_torch": deviation,
            "note": "opt-in numerics change (int8 convolutions): check accuracy on labelled data before use"}


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)
