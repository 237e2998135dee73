"""Hand detection on full images: where the hands are and which side each one is, before the estimator runs.

The estimator sees one hand crop at a time and only predicts right hands, so predict first needs a box and a
side per hand. A :class:`HandDetector` is a named function from input images to :class:`ImageDetections`;
:func:`mediapipe_detector` runs MediaPipe Hands through the peer adapter (its own venv, one worker process per
chunk of images), and tests or callers inject their own. Without a detector predict falls back to the
estimator's two-pass crop: one hand per image, side unknown.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.data.image_io import write_png
from hoi_adapt.peers.mediapipe import MEDIAPIPE_VERSION, convert_hand, install_command, peer_python, run_mediapipe
from hoi_adapt.prediction.geometry import CROP_SCALE, LANDMARK_BOX_SCALE
from hoi_adapt.prediction.inputs import InputImage, _warn
from hoi_adapt.utils.errors import ConfigError, PeerError

DETECTORS = ("auto", "mediapipe", "none")
DETECT_CHUNK = 32
"""Images per detector call: a MediaPipe worker loads its graph once per call (about a second)."""


@dataclass(frozen=True)
class Detection:
    """One detected hand: ``box_xyxy`` in original pixels (pixel-centre convention), anatomical ``side``."""

    box_xyxy: np.ndarray
    side: str | None = None  # "left" / "right"; None: the detector does not know
    score: float | None = None


@dataclass
class ImageDetections:
    """What a detector found in one image; ``error`` (a reason) when it could not look at it."""

    hands: list[Detection] = field(default_factory=list)
    size: tuple[int, int] | None = None  # (width, height) the detector saw, to catch a differently decoded file
    error: str | None = None


DetectFn = Callable[[Sequence[InputImage]], Sequence[ImageDetections]]


@dataclass(frozen=True)
class HandDetector:
    """A detection function with what predict records about it.

    ``box_scale`` turns a detected box into the crop side (longer box side times it): :data:`CROP_SCALE` for
    boxes around the whole hand, :data:`LANDMARK_BOX_SCALE` for boxes around joints.
    """

    name: str
    detect: DetectFn
    version: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    box_scale: float = CROP_SCALE

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "settings": dict(self.settings), "box_scale": self.box_scale}


def _mediapipe_detect(items: Sequence[InputImage], max_hands: int, venv: Path | None) -> list[ImageDetections]:
    """MediaPipe on files as they are on disk; in-memory arrays go through temporary PNGs."""
    if not items:
        return []
    with tempfile.TemporaryDirectory(prefix="hoi_adapt_detect_") as tmp:
        paths = []
        for i, item in enumerate(items):
            if item.path is not None:
                paths.append(item.path)
            else:
                paths.append(write_png(Path(tmp) / f"{i:05d}.png", item.load()))
        try:
            results = run_mediapipe(paths, max_hands=max_hands, venv=venv)
        except PeerError as exc:  # a worker crash or hang: find the image that causes it, keep the others
            if len(items) == 1:
                return [ImageDetections(error=f"MediaPipe failed on it: {exc}")]
            return [found for item in items for found in _mediapipe_detect([item], max_hands, venv)]
    found = []
    for result in results:
        if not result["ok"]:
            found.append(ImageDetections(error=f"MediaPipe could not read it: {result['error']}"))
            continue
        hands = [convert_hand(h) for h in result["hands"]]
        found.append(ImageDetections([Detection(h.box_xyxy, h.side, h.score) for h in hands],
                                     (int(result["width"]), int(result["height"]))))
    return found


def mediapipe_detector(max_hands: int = 2, venv: Path | None = None) -> HandDetector:
    """MediaPipe Hands (legacy solution, static images) through :mod:`hoi_adapt.peers.mediapipe`.

    Its boxes are the tight boxes of its 21 landmarks (hence :data:`LANDMARK_BOX_SCALE`), its sides are
    anatomical (corrected for the solution's selfie labels) and its score is its handedness confidence (it
    reports no separate detection score). Raises :class:`ConfigError` with the install command when the peer
    venv is missing.
    """
    if int(max_hands) < 1:
        raise ConfigError(f"max_hands must be >= 1, got {max_hands}")
    peer_python(venv)
    return HandDetector("mediapipe", lambda items: _mediapipe_detect(items, int(max_hands), venv),
                        version=MEDIAPIPE_VERSION, settings={"max_hands": int(max_hands)}, box_scale=LANDMARK_BOX_SCALE)


def resolve_detector(detector: str | HandDetector | None, max_hands: int = 2) -> HandDetector | None:
    """``"auto"`` (MediaPipe when its peer venv exists, else None with one warning), ``"mediapipe"``,
    ``"none"``/None (the estimator's two-pass crop) or a :class:`HandDetector`."""
    if detector is None or isinstance(detector, HandDetector):
        return detector
    if detector not in DETECTORS:
        raise ConfigError(f"unknown hand detector {detector!r}; choose one of {', '.join(DETECTORS)}")
    if detector == "none":
        return None
    if detector == "auto":
        try:
            peer_python()
        except ConfigError:
            _warn("hand detector MediaPipe is not installed, so each image gets one hand found by the estimator's "
                  f"two-pass crop; install it with: {install_command()} (or set $HOI_ADAPT_PEER_VENV to its venv)")
            return None
    return mediapipe_detector(max_hands)
