"""Peers as evaluation rows: what users would run instead of our model, scored with our metrics on our crops.

A peer sees exactly the images our estimator sees (the loader's crops, as [0, 1] RGB), runs in its own
environment (:mod:`hoi_adapt.peers`), and returns wrist-rooted joints in our frame plus whether it found a
hand at all; :func:`hoi_adapt.eval.runner.score` scores the detected frames and counts the misses as
failures in the PCK curves. A peer has no camera translation, so only its root-relative and
Procrustes-aligned figures mean anything (its "abs" figures are computed from a wrist at the origin).
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoi_adapt.data.image_io import write_png
from hoi_adapt.peers.mediapipe import MEDIAPIPE_VERSION, convert_hand, peer_python, run_mediapipe
from hoi_adapt.utils.errors import ConfigError

PEERS: dict[str, str] = {"mediapipe": f"MediaPipe Hands {MEDIAPIPE_VERSION} (peer)"}
"""Peer name -> its row label."""

PredictFn = Callable[[Mapping[str, Any]], Mapping[str, Any]]


def peer_label(name: str) -> str:
    key = name.lower().strip()
    if key not in PEERS:
        raise ConfigError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    return PEERS[key]


def batch_images_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) [0, 1] float images -> (B, H, W, 3) uint8, as they would be saved to disk."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
    array = images.detach().float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1)
    return array.cpu().numpy()


def mediapipe_predict_fn(upscale_to: int | None = None, min_detection_confidence: float = 0.5,
                         venv: Path | None = None) -> PredictFn:
    """A ``predict(batch)`` running MediaPipe Hands (static images, its most confident hand) on the batch's crops.

    Returns ``joints3d`` (B, 21, 3): MediaPipe's world landmarks re-rooted at the wrist (zeros where no hand
    was found) and ``detected`` (B,) bool. Fails at once, naming the command that builds the peer venv, when
    the venv is missing.
    """
    peer_python(venv)  # the clear "peer not installed" error before any data is read

    def predict(batch: Mapping[str, Any]) -> Mapping[str, Any]:
        images = batch_images_uint8(batch["image"])
        joints = np.zeros((len(images), 21, 3), dtype=np.float64)
        detected = np.zeros(len(images), dtype=bool)
        with tempfile.TemporaryDirectory(prefix="hoi_adapt_peer_eval_") as tmp:
            paths = [write_png(Path(tmp) / f"{i:05d}.png", image) for i, image in enumerate(images)]
            results = run_mediapipe(paths, max_hands=1, upscale_to=upscale_to,
                                    min_detection_confidence=min_detection_confidence, venv=venv)
        for i, result in enumerate(results):
            if result.get("ok") and result.get("hands"):
                joints[i] = convert_hand(result["hands"][0]).joints3d_rel
                detected[i] = True
        return {"joints3d": torch.from_numpy(joints), "detected": torch.from_numpy(detected)}

    return predict


def peer_predict_fn(name: str, **options: Any) -> PredictFn:
    """The ``predict(batch)`` of a named peer (see :data:`PEERS`)."""
    peer_label(name)
    return mediapipe_predict_fn(**options)
