"""Opt-in int8 convolutions for the exported graphs (a numerics change: never the default).

Why: at batch 1 on a CPU the fp32 convolutions of E's ResNet trunk alone take longer than MediaPipe's whole
landmark call; ONNX Runtime's int8 convolutions (VNNI) run them ~3x faster. Only ``Conv`` nodes are quantised
(static, per-channel weights, activations calibrated on the user's hand crops); the regressor, the hand model,
the camera solve and the generator's transposed convolutions stay fp32, so the geometry is exact given the
network's parameters. The outputs move by a few percent of their range, so the accuracy on a labelled set
must be checked before use (``experiments/bench_inference.py`` and the export report give the deviation).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoi_adapt.utils.errors import ConfigError, DataFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MIN_CALIBRATION_IMAGES = 4


def calibration_images(folder: str | Path, size: int, limit: int = 64) -> torch.Tensor:
    """(N,3,S,S) float RGB in [0,1]: the images of ``folder`` (hand crops), resized to ``size``, sorted by name."""
    import cv2

    folder = Path(folder)
    if not folder.is_dir():
        raise DataFileError(folder, "calibration folder not found", "give a folder of hand crops for --int8")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    images = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataFileError(path, "not a readable image")
        rgb = cv2.cvtColor(cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        images.append(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    if len(images) < MIN_CALIBRATION_IMAGES:
        raise DataFileError(folder, f"{len(images)} images; int8 calibration needs at least {MIN_CALIBRATION_IMAGES} hand crops")
    return torch.stack(images)


class _Feeds:
    """ONNX Runtime's calibration reader protocol over a list of input dicts."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - some calibrators call it
        raise ConfigError("calibration feeds cannot be rewound")


def quantize_convolutions(src: Path, dst: Path, feeds: Sequence[dict[str, Any]]) -> Path:
    """``dst``: ``src`` with static int8 QDQ convolutions calibrated (min-max) on ``feeds`` (batch-1 input dicts)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Feeds, CalibrationDataReader):
        pass

    numpy_feeds = [{k: np.ascontiguousarray(v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else v) for k, v in f.items()}
                   for f in feeds]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs advice (pre-processing, bias layout) on the root logger
    pre = dst.with_name(dst.stem + ".pre.onnx")
    try:
        # shape inference + ONNX Runtime's graph fusions first: without them part of the convolutions stay fp32
        # with weights dequantised on every call (measured: 12 of 28 fused in E, slower than plain fp32)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Reader(numpy_feeds), quant_format=QuantFormat.QDQ, op_types_to_quantize=["Conv"],
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
        pre.unlink(missing_ok=True)
    return dst
