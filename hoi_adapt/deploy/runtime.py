"""Run exported E (and G) with ONNX Runtime behind the ``Predictor`` interface.

:class:`OnnxPredictor` is a drop-in for :class:`hoi_adapt.checkpoints.predictor.Predictor`: same call
``(image (B,3,S,S) in [0,1], K (B,3,3)) -> dict`` with the same keys, shapes and meanings, and the same
``adapt``/``estimator``/``faces`` attributes, so predict, evaluate and export can take either. Why ONNX
Runtime: at batch 1 on a CPU its fused, blocked-layout convolutions and its single graph call (no Python per
layer, no per-op dispatch) run E about twice as fast as eager PyTorch (``experiments/bench_inference.py``).

The mesh guidance between the passes stays in PyTorch (PyTorch3D's rasteriser has no ONNX form): the torch
modules of the checkpoint are kept for it, for the hand model and for the faces.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from hoi_adapt.checkpoints.load import checkpoint_sha256
from hoi_adapt.checkpoints.predictor import Predictor, estimator_fields, first_pass_fields, load_predictor
from hoi_adapt.deploy.graphs import ESTIMATOR_OUTPUTS, GENERATOR_OUTPUTS
from hoi_adapt.models.pipeline import MeshGuidance
from hoi_adapt.utils.errors import CheckpointError, ConfigError, DataFileError

ESTIMATOR_FILE = "estimator.onnx"
GENERATOR_FILE = "generator.onnx"
REPORT_FILE = "export_onnx.json"
INT8_FILES = {ESTIMATOR_FILE: "estimator.int8.onnx", GENERATOR_FILE: "generator.int8.onnx"}  # opt-in, export-onnx --int8
PRECISIONS = ("fp32", "int8")


def session(path: str | Path, threads: int | None = None, spin: bool = True) -> Any:
    """An ONNX Runtime CPU session with every graph optimisation, ``threads`` intra-op threads (default: torch's).

    ``spin=False`` stops the intra-op threads from busy-waiting after a run. Spinning pays when graph calls come
    back to back (E alone: 179 vs 151 images/s at 2 threads, 128 px); between the adapted pipeline's calls
    PyTorch3D and torch work, and spinning threads take their cores (0.63x as fast on 2 cores, measured).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fusions + NCHWc conv layout
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """One exported graph: numpy in, named torch tensors out (zero-copy both ways)."""

    def __init__(self, path: str | Path, outputs: tuple[str, ...], threads: int | None = None, spin: bool = True) -> None:
        self.path = Path(path)
        self.session = session(self.path, threads, spin)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_size = self.session.get_inputs()[0].shape[-1]
        got = tuple(o.name for o in self.session.get_outputs())
        if got != outputs:
            raise DataFileError(self.path, f"graph outputs {got} are not the expected {outputs}",
                                "re-export it with this version: hoi-adapt export-onnx")
        self.outputs = outputs

    def __call__(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        size = inputs[0].shape[-1]
        if isinstance(self.input_size, int) and size != self.input_size:
            raise ConfigError(f"{self.path} was exported for {self.input_size}-px inputs, got {size} px "
                              f"(re-export with --input-size {size})")
        feed = {name: np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy()) for name, x in zip(self.input_names, inputs, strict=True)}
        return {name: torch.from_numpy(v) for name, v in zip(self.outputs, self.session.run(None, feed), strict=True)}


def _fields(prefix: str, out: dict[str, torch.Tensor], predictor: Predictor, K: torch.Tensor) -> dict[str, torch.Tensor]:
    """``Predictor``'s per-pass fields from the graph's outputs, by the torch path's own function (so the
    skeleton definition the predictor was asked for applies here too)."""
    return estimator_fields(prefix, SimpleNamespace(**out), predictor.estimator, predictor.skeleton, K)


class OnnxPredictor:
    """``Predictor`` with E (and G) run by ONNX Runtime; ``torch_predictor`` supplies hand model, faces and guidance.

    Args:
        torch_predictor: the checkpoint's :class:`Predictor` (its networks are not run, except the guidance).
        estimator: the exported E.
        generator: the exported G (adaptation checkpoints, ``torch_predictor.adapt``), else None.
    """

    def __init__(self, torch_predictor: Predictor, estimator: OnnxModel, generator: OnnxModel | None = None) -> None:
        self.torch_predictor = torch_predictor
        self.adapt = torch_predictor.adapt
        if self.adapt and generator is None:
            raise ConfigError("an adapted OnnxPredictor needs the exported generator")
        self.estimator_graph, self.generator_graph = estimator, generator
        self.guidance: MeshGuidance | None = torch_predictor.model.guidance if self.adapt else None

    @property
    def estimator(self) -> torch.nn.Module:
        return self.torch_predictor.estimator

    @property
    def faces(self) -> torch.Tensor:
        return self.torch_predictor.faces

    @property
    def skeleton(self) -> str:
        return self.torch_predictor.skeleton

    def to(self, device: str | torch.device) -> OnnxPredictor:
        if torch.device(device).type != "cpu":
            raise ConfigError(f"the ONNX runtime runs on the CPU only, not {device!r}; use the torch runtime for {device!r}")
        return self

    def eval(self) -> OnnxPredictor:
        return self

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, K: torch.Tensor) -> dict[str, torch.Tensor]:
        image, K = image.to("cpu", torch.float32), K.to("cpu", torch.float32)
        first = self.estimator_graph(image, K)
        if not self.adapt:
            return _fields("", first, self.torch_predictor, K)
        assert self.generator_graph is not None
        skin = torch.sigmoid(first["mask_logits"])
        if self.guidance is not None:
            guidance = self.guidance(first["vertices"], self.faces, K, image, skin)
            translated = self.generator_graph(image, MeshGuidance.as_input(guidance))["translated"]
        else:
            translated = self.generator_graph(image)["translated"]
        fields = _fields("", self.estimator_graph(translated, K), self.torch_predictor, K)
        fields.update(first_pass_fields(SimpleNamespace(**first), self.estimator, self.skeleton, K))
        fields["translated"] = translated
        return fields

    forward = __call__


def read_report(folder: str | Path) -> dict[str, Any]:
    """The export's JSON sidecar (``export_onnx.json``), naming the file when it is missing or unreadable."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        raise DataFileError(path, "not found; is this a folder written by 'hoi-adapt export-onnx'?")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFileError(path, f"unreadable export report ({exc})") from None


def is_onnx_export(path: str | Path) -> bool:
    """True for a folder written by ``hoi-adapt export-onnx`` (evaluate and predict accept one for ``--ckpt``)."""
    return Path(path).is_dir() and (Path(path) / REPORT_FILE).is_file()


def resolve_model(path: str | Path, adapt: bool) -> tuple[Path, Path | None]:
    """What a ``--ckpt`` names: ``(checkpoint, None)``, or for an export folder ``(its checkpoint, the folder)``.

    An export holds E alone or the adapted pipeline; asking for the other one is a :class:`ConfigError`.
    """
    if not is_onnx_export(path):
        return Path(path), None
    report = read_report(path)
    if bool(report["adapt"]) != bool(adapt):
        raise ConfigError(f"{path} exports {'the adapted pipeline' if report['adapt'] else 'the estimator alone'}; "
                          f"{'add' if report['adapt'] else 'drop'} --adapt for it")
    return Path(report["checkpoint"]["path"]), Path(path)


def load_model_predictor(ckpt: Path, onnx_dir: Path | None, adapt: bool, mano_path: str | None = None,
                         device: str | torch.device = "cpu", skeleton: str | None = None,
                         precision: str = "fp32") -> Predictor | OnnxPredictor:
    """The predictor of a :func:`resolve_model` result: PyTorch for a checkpoint, ONNX Runtime for an export."""
    if onnx_dir is None:
        return load_predictor(ckpt, adapt=adapt, mano_path=mano_path, device=device, skeleton=skeleton)
    return load_onnx_predictor(onnx_dir, ckpt, mano_path, precision=precision, skeleton=skeleton).to(device)


def load_onnx_predictor(folder: str | Path, ckpt: str | Path | None = None, mano_path: str | None = None,
                        threads: int | None = None, precision: str = "fp32", skeleton: str | None = None) -> OnnxPredictor:
    """The :class:`OnnxPredictor` of an ``export-onnx`` folder; ``ckpt`` defaults to the exported checkpoint.

    ``precision="int8"`` takes the int8-convolution graphs of ``export-onnx --int8`` (a numerics change; see
    the report's ``int8.deviation_vs_torch``). ``skeleton`` as in :class:`~hoi_adapt.checkpoints.predictor.Predictor`.

    The checkpoint must be the one exported (same SHA-256): the ONNX files carry E's and G's weights, the
    checkpoint the hand model and guidance settings, and they must belong together.
    """
    folder = Path(folder)
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    report = read_report(folder)
    if precision == "int8" and not report.get("int8"):
        raise DataFileError(folder / REPORT_FILE, "has no int8 graphs; export with 'hoi-adapt export-onnx --int8 CROPS_DIR'")
    if not report.get("ok"):
        raise DataFileError(folder / REPORT_FILE, "the export failed its numerical check; do not deploy it")
    ckpt = Path(ckpt) if ckpt is not None else Path(report["checkpoint"]["path"])
    if checkpoint_sha256(ckpt) != report["checkpoint"]["sha256"]:
        raise CheckpointError(ckpt, f"is not the checkpoint exported to {folder} (SHA-256 differs)")
    adapt = bool(report["adapt"])
    torch_predictor = load_predictor(ckpt, adapt=adapt, mano_path=mano_path, skeleton=skeleton)
    files = INT8_FILES if precision == "int8" else {name: name for name in INT8_FILES}
    spin = not adapt  # the adapted pipeline runs torch and PyTorch3D between its graph calls
    estimator = OnnxModel(folder / files[ESTIMATOR_FILE], ESTIMATOR_OUTPUTS, threads, spin)
    generator = OnnxModel(folder / files[GENERATOR_FILE], GENERATOR_OUTPUTS, threads, spin) if adapt else None
    return OnnxPredictor(torch_predictor, estimator, generator)
