"""MediaPipe Hands as a comparison peer: run it in its own venv and convert its output to our conventions.

This module imports neither mediapipe nor anything of the peer venv: :func:`run_mediapipe` starts
``mediapipe_worker.py`` with the peer venv's interpreter (built by ``make peers``; see :func:`peer_python`) and
exchanges JSON files with it. The conversions below are plain numpy.

What MediaPipe's output is (mediapipe 0.10.14, legacy ``solutions.hands``; measured on 40 real hand photos, the
gesture-recognizer test images of MediaPipe's own repository, and on our synthetic renders with ground truth):

* **Landmark order** is WRIST, THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP, then INDEX/MIDDLE/RING/PINKY each
  MCP, PIP, DIP, TIP. That is OpenPose-21 joint for joint (OpenPose's thumb "mcp/pip/dip" are CMC/MCP/IP), so
  :data:`MEDIAPIPE_TO_OPENPOSE` is the identity, written out by name so a change would be caught.
* **Handedness**: the legacy solution assumes a mirrored (selfie) input. In an ordinary photo its "Left" is an
  anatomical RIGHT hand: flipping an image flips the label (30/30 single-hand photos), and the label matches the
  3D chirality of its own landmarks only after swapping (30/31 confident hands). The worker reports the swapped,
  anatomical ``side`` (:func:`side_from_mediapipe_label`).
* **Image landmarks** are normalised by the image width/height, i.e. continuous coordinates with the origin at
  the image's top-left corner; :func:`to_openpose_2d` subtracts half a pixel to reach our OpenCV pixel-centre
  convention (the measured bias on our 64-px renders, |bias| < 0.5 px, is far below MediaPipe's own error, so
  this choice is convention, not accuracy).
* **World landmarks** are in metres with the origin at the hand's approximate geometric centre (MediaPipe docs).
  Their axes point the same way as our camera frame: x right, y down (image directions) and z away from the
  camera. Measured: per-axis correlation of world vs. image landmarks 0.99 / 0.99 / +0.2..0.9 on real photos
  with det +1 (a rotation, not a reflection); against our synthetic ground truth 0.97 / 0.97 / 0.74 (correctly
  handed detections). So the conversion to our frame is a re-rooting at the wrist with no axis flip.

They are NOT camera-frame coordinates: there is no translation (no depth), the metric scale is MediaPipe's
estimate of the hand's size, and the orientation is only undone *in the image plane*: the landmark network sees
an upright-rotated crop, and MediaPipe rotates its world output back by that crop's in-plane angle only
(``WorldLandmarkProjectionCalculator``), with no correction for perspective. A hand seen off the optical axis
is therefore rotated relative to the camera frame by up to the angle between its viewing ray and the optical
axis (a few degrees near the image centre, 20-30 degrees in the corners of a wide-angle image). Compare
root-relative joints (:func:`to_openpose_root_relative`); report Procrustes-aligned errors too, which remove
that rotation and the scale. When MediaPipe gets the handedness wrong, its z axis tends to be mirrored (it saw
the mirror-image hand: on our renders z correlates -0.2 with ground truth for wrong-side detections against
+0.74 for right-side ones), so such detections have large root-relative errors.

On our stand-in renders (bench ``target_test``, 64 px, 600 images) MediaPipe detects a hand in 57% of the
hand-only images but only 8% of the hand-object images; enlarging them to 256 px first (``upscale_to``) lowers
both (44% / 4%). Its handedness is right for only ~40% of the detected (all right) stand-in hands: compare
per-side results with care.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.hand.joint_maps import OPENPOSE_NAMES, OPENPOSE_ROOT
from hoi_adapt.peers.mediapipe_worker import ANATOMICAL_SIDE, DEFAULTS, PROTOCOL_VERSION
from hoi_adapt.utils.errors import ConfigError, DataFileError, PeerError

MEDIAPIPE_VERSION = "0.10.14"
PEER_VENV_ENV = "HOI_ADAPT_PEER_VENV"
"""Environment variable naming the peer venv folder (default: ``<repo>/.venv-peers``)."""

MEDIAPIPE_NAMES: tuple[str, ...] = (
    "WRIST",
    "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)
"""``mediapipe.solutions.hands.HandLandmark`` names in their index order."""

# MediaPipe name -> OpenPose name (OpenPose's thumb mcp/pip/dip are the anatomical CMC/MCP/IP).
_MEDIAPIPE_TO_OPENPOSE_NAME: dict[str, str] = {
    "WRIST": "wrist",
    "THUMB_CMC": "thumb_mcp", "THUMB_MCP": "thumb_pip", "THUMB_IP": "thumb_dip", "THUMB_TIP": "thumb_tip",
    **{f"{mp}_{joint.upper()}": f"{ours}_{joint}"
       for mp, ours in (("INDEX_FINGER", "index"), ("MIDDLE_FINGER", "middle"), ("RING_FINGER", "ring"),
                        ("PINKY", "pinky"))
       for joint in ("mcp", "pip", "dip", "tip")},
}

_OPENPOSE_TO_MEDIAPIPE_NAME = {ours: mp for mp, ours in _MEDIAPIPE_TO_OPENPOSE_NAME.items()}
MEDIAPIPE_TO_OPENPOSE: tuple[int, ...] = tuple(
    MEDIAPIPE_NAMES.index(_OPENPOSE_TO_MEDIAPIPE_NAME[name]) for name in OPENPOSE_NAMES
)
"""Gather index: ``openpose = mediapipe[MEDIAPIPE_TO_OPENPOSE]`` (the identity, derived from the names)."""

DEFAULT_CHUNK = 256
DEFAULT_TIMEOUT_S = 600.0


def repo_root() -> Path:
    """The checkout holding this package (``hoi_adapt/peers/mediapipe.py`` -> two levels up)."""
    return Path(__file__).resolve().parents[2]


def worker_script() -> Path:
    return Path(__file__).resolve().with_name("mediapipe_worker.py")


def peer_venv() -> Path:
    """The peer venv folder: ``$HOI_ADAPT_PEER_VENV`` or ``<repo>/.venv-peers``."""
    value = os.environ.get(PEER_VENV_ENV)
    return Path(value).expanduser() if value else repo_root() / ".venv-peers"


def install_command(venv: Path | None = None) -> str:
    """The shell command that builds the peer venv (what every 'peer missing' error tells the user)."""
    venv = venv or peer_venv()
    default = repo_root() / ".venv-peers"
    if venv.resolve() == default.resolve() and (repo_root() / "Makefile").is_file():
        return f"make -C {repo_root()} peers"
    reqs = Path(__file__).resolve().with_name("requirements-mediapipe.txt")
    return (f"python3.11 -m venv {venv} && {venv}/bin/python -m pip install --no-deps mediapipe=={MEDIAPIPE_VERSION}"
            f" && {venv}/bin/python -m pip install -r {reqs}")


def peer_python(venv: Path | None = None) -> Path:
    """The peer venv's interpreter; raise :class:`ConfigError` with the install command when it is missing."""
    if venv is not None:
        venv, source = Path(venv), "given"
    else:
        venv, source = peer_venv(), (f"from ${PEER_VENV_ENV}" if os.environ.get(PEER_VENV_ENV) else "default")
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        raise ConfigError(
            f"MediaPipe peer venv not found: {python} does not exist ({source} location). "
            f"mediapipe=={MEDIAPIPE_VERSION} must live in its own venv, never in hoi_adapt's. Build it with: "
            f"{install_command(venv)}  (or point ${PEER_VENV_ENV} at an existing one)"
        )
    return python


def side_from_mediapipe_label(label: str, mirrored: bool = False) -> str:
    """Anatomical side ("left"/"right") of a legacy-solution handedness label.

    The solution labels as if the image were a mirrored selfie; for a normal photo the label is swapped.
    Pass ``mirrored=True`` for images that really are mirrored (front-camera previews).
    """
    if label not in ANATOMICAL_SIDE:
        raise ValueError(f"unknown MediaPipe handedness label {label!r}; expected 'Left' or 'Right'")
    return label.lower() if mirrored else ANATOMICAL_SIDE[label]


def _as_21x3(values: Any, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (21, 3):
        raise ValueError(f"{what} must have shape (21, 3), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} contains NaN or inf")
    return array


def to_openpose_root_relative(world_m: Any) -> np.ndarray:
    """MediaPipe world landmarks (21x3 m, MediaPipe order) -> wrist-rooted OpenPose-21 joints in our frame.

    Our frame is the camera frame's axes (x right, y down, z forward; metres). MediaPipe's world axes already
    point that way (module docstring), so only the order and the root change; the result is comparable with
    ``joints3d - joints3d[:, :1]`` of our annotations up to MediaPipe's perspective/scale caveats.
    """
    world = _as_21x3(world_m, "world landmarks")[list(MEDIAPIPE_TO_OPENPOSE)]
    return world - world[OPENPOSE_ROOT]


def to_openpose_2d(landmarks_px: Any) -> np.ndarray:
    """Worker ``landmarks_px`` (21x3, corner-origin pixels) -> OpenPose-21 ``(u, v)`` in our pixel-centre convention."""
    px = _as_21x3(landmarks_px, "image landmarks")[list(MEDIAPIPE_TO_OPENPOSE)]
    return px[:, :2] - 0.5


@dataclass(frozen=True)
class PeerHand:
    """One MediaPipe hand in our conventions (OpenPose-21 order)."""

    side: str                 # anatomical side for a non-mirrored image
    score: float              # MediaPipe's handedness confidence (it has no separate detection score per hand)
    joints2d: np.ndarray      # (21, 2) pixels, OpenCV pixel-centre convention
    joints3d_rel: np.ndarray  # (21, 3) metres, wrist-rooted, camera-frame axes (see caveats above)
    box_xyxy: np.ndarray      # (4,) tight box of joints2d


def convert_hand(hand: dict[str, Any]) -> PeerHand:
    """Convert one worker hand entry (see :mod:`hoi_adapt.peers.mediapipe_worker`) to :class:`PeerHand`."""
    joints2d = to_openpose_2d(hand["landmarks_px"])
    if hand.get("world_m") is None:
        raise ValueError("hand has no world landmarks")
    box = np.concatenate([joints2d.min(axis=0), joints2d.max(axis=0)])
    return PeerHand(side=str(hand["side"]), score=float(hand["score"]), joints2d=joints2d,
                    joints3d_rel=to_openpose_root_relative(hand["world_m"]), box_xyxy=box)


def _check_hand(hand: Any, where: str) -> None:
    if not isinstance(hand, dict):
        raise ValueError(f"{where}: hand entry is not an object")
    missing = [k for k in ("side", "score", "landmarks_px", "world_m", "box_xyxy") if k not in hand]
    if missing:
        raise ValueError(f"{where}: hand entry lacks {missing}")
    if hand["side"] not in ("left", "right"):
        raise ValueError(f"{where}: side {hand['side']!r} is neither 'left' nor 'right'")
    if not isinstance(hand["score"], (int, float)) or not math.isfinite(hand["score"]):
        raise ValueError(f"{where}: score {hand['score']!r} is not a finite number")
    _as_21x3(hand["landmarks_px"], f"{where}: landmarks_px")
    if hand["world_m"] is not None:
        _as_21x3(hand["world_m"], f"{where}: world_m")
    box = hand["box_xyxy"]
    if not (isinstance(box, list) and len(box) == 4):
        raise ValueError(f"{where}: box_xyxy must be 4 numbers")


def parse_response(path: str | Path, expected_paths: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Read and validate a worker response file; any problem raises :class:`DataFileError` naming the file.

    ``expected_paths`` (the request's image list) checks that the results answer exactly those images in order.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataFileError(path, f"cannot read MediaPipe response ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"MediaPipe response is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise DataFileError(path, "MediaPipe response must be an object with a 'results' list")
    if data.get("protocol") != PROTOCOL_VERSION:
        raise DataFileError(path, f"worker protocol {data.get('protocol')!r}, this host speaks {PROTOCOL_VERSION}",
                            "the worker script and host module come from different versions")
    results = data["results"]
    if expected_paths is not None:
        got = [r.get("path") if isinstance(r, dict) else None for r in results]
        if got != list(expected_paths):
            raise DataFileError(path, f"results answer {len(got)} images that do not match the {len(expected_paths)} "
                                      "requested (count or order differs)")
    for i, result in enumerate(results):
        where = f"result {i}"
        try:
            if not isinstance(result, dict):
                raise ValueError(f"{where}: not an object")
            missing = [k for k in ("path", "ok", "error", "width", "height", "hands") if k not in result]
            if missing:
                raise ValueError(f"{where}: lacks {missing}")
            where = f"result {i} ({result['path']})"
            if result["ok"] is not True and result["ok"] is not False:
                raise ValueError(f"{where}: 'ok' must be true or false")
            if not result["ok"] and not result["error"]:
                raise ValueError(f"{where}: failed without an error message")
            if not isinstance(result["hands"], list):
                raise ValueError(f"{where}: 'hands' must be a list")
            for j, hand in enumerate(result["hands"]):
                _check_hand(hand, f"{where} hand {j}")
        except ValueError as exc:
            raise DataFileError(path, f"malformed MediaPipe response: {exc}") from None
    return results


def _stderr_tail(text: str, lines: int = 15) -> str:
    """The worker's last stderr lines, minus MediaPipe's unconditional C++ log chatter."""
    noise = ("W0000 ", "I0000 ", "INFO: Created TensorFlow Lite", "WARNING: All log messages before absl")
    kept = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith(noise)]
    return "\n".join(kept[-lines:]) or "(no stderr)"


def _run_chunk(python: Path, request: dict[str, Any], workdir: Path, name: str, timeout_s: float) -> list[dict]:
    req_path, resp_path = workdir / f"{name}.request.json", workdir / f"{name}.response.json"
    req_path.write_text(json.dumps(request), encoding="utf-8")
    # -I: isolated mode, so neither our PYTHONPATH nor the script's own folder (whose mediapipe.py is THIS
    # module) shadows the peer venv's mediapipe package.
    cmd = [str(python), "-I", str(worker_script()), str(req_path), str(resp_path)]
    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        raise PeerError(f"MediaPipe worker timed out after {timeout_s:g} s on {len(request['images'])} images "
                        f"(first: {request['images'][0]}); pass a larger timeout_s or a smaller chunk_size") from None
    except OSError as exc:
        raise PeerError(f"cannot start the MediaPipe worker with {python}: {exc}") from None
    if proc.returncode == 3:
        raise ConfigError(f"the peer venv at {python.parent.parent} cannot import mediapipe: "
                          f"{_stderr_tail(proc.stderr, 3)}. Rebuild it with: {install_command(python.parent.parent)}")
    if proc.returncode != 0:
        raise PeerError(f"MediaPipe worker {worker_script()} exited with code {proc.returncode} "
                        f"(request {req_path}):\n{_stderr_tail(proc.stderr)}")
    return parse_response(resp_path, expected_paths=request["images"])


def request_settings(
    max_hands: int = 2,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    static_image_mode: bool = True,
    model_complexity: int = 1,
    upscale_to: int | None = None,
) -> dict[str, Any]:
    """The worker request's settings as plain JSON types (numpy scalars would not serialise)."""
    settings = {
        "max_hands": int(max_hands), "min_detection_confidence": float(min_detection_confidence),
        "min_tracking_confidence": float(min_tracking_confidence), "static_image_mode": bool(static_image_mode),
        "model_complexity": int(model_complexity), "upscale_to": None if upscale_to is None else int(upscale_to),
    }
    if set(settings) != set(DEFAULTS):  # the worker rejects unknown keys; keep both sides in step
        raise PeerError(f"host settings {sorted(settings)} differ from the worker's {sorted(DEFAULTS)}")
    return settings


def run_mediapipe(
    image_paths: Sequence[str | Path],
    max_hands: int = 2,
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    static_image_mode: bool = True,
    model_complexity: int = 1,
    upscale_to: int | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    venv: Path | None = None,
) -> list[dict[str, Any]]:
    """Run MediaPipe Hands on images in the peer venv; one validated worker result per image, in order.

    Each result is the worker's dict (``path`` absolute, ``ok``, ``error``, ``width``, ``height``, ``seconds``,
    ``hands``); convert hands with :func:`convert_hand`. Images go to one worker process per ``chunk_size``
    images (each loads the graph once, ~1 s) with ``timeout_s`` per chunk. ``static_image_mode=False`` tracks
    across consecutive images, so then all images go to a single process. ``upscale_to`` enlarges small images
    before detection; landmarks stay in the original image's pixels.
    """
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
    paths = [str(Path(p).expanduser().absolute()) for p in image_paths]
    if not paths:
        return []
    python = peer_python(venv)
    settings = request_settings(max_hands, min_detection_confidence, min_tracking_confidence, static_image_mode,
                                model_complexity, upscale_to)
    step = chunk_size if static_image_mode else len(paths)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hoi_adapt_mediapipe_") as tmp:
        for start in range(0, len(paths), step):
            request = {"images": paths[start:start + step], **settings}
            results.extend(_run_chunk(python, request, Path(tmp), f"chunk{start // step:05d}", timeout_s))
    return results


TIMING_MODES = {
    # mode: (static_image_mode, what one timed call runs)
    "landmarks": (False, "the landmark model on the region tracked from the previous call (palm detection skipped)"),
    "detection+landmarks": (True, "palm detection on the whole image, then the landmark model on the detected hand"),
}


@dataclass(frozen=True)
class PeerTiming:
    """Per-call seconds of MediaPipe Hands in one mode, pooled over the images (start-up and loading excluded)."""

    mode: str
    seconds: tuple[float, ...]
    images: int
    hands_found: int  # timed calls that returned a hand (a call without one skips the landmark model)
    model_complexity: int

    @property
    def median_s(self) -> float:
        return float(np.median(self.seconds))

    @property
    def images_per_s(self) -> float:
        return 1.0 / self.median_s


def time_mediapipe(
    image_paths: Sequence[str | Path],
    mode: str,
    repeats: int = 30,
    warmup: int = 3,
    model_complexity: int = 1,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    venv: Path | None = None,
) -> PeerTiming:
    """Time MediaPipe Hands per image in the peer venv, one hand per image (``max_hands=1``).

    ``mode`` is ``"landmarks"`` (video tracking: after the warm-up the landmark model runs alone on the tracked
    region, MediaPipe's per-frame cost once a hand is found) or ``"detection+landmarks"`` (static images: palm
    detection then landmarks on every call). One worker process loads the graph once; each image gets
    ``warmup`` untimed and ``repeats`` timed calls (see :mod:`hoi_adapt.peers.mediapipe_worker`).
    """
    if mode not in TIMING_MODES:
        raise ConfigError(f"timing mode must be one of {sorted(TIMING_MODES)}, got {mode!r}")
    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    paths = [str(Path(p).expanduser().absolute()) for p in image_paths]
    if not paths:
        raise ConfigError("time_mediapipe needs at least one image")
    python = peer_python(venv)
    settings = request_settings(max_hands=1, static_image_mode=TIMING_MODES[mode][0], model_complexity=model_complexity)
    request = {"images": paths, **settings, "timing": {"repeats": int(repeats), "warmup": int(warmup)}}
    with tempfile.TemporaryDirectory(prefix="hoi_adapt_mediapipe_timing_") as tmp:
        results = _run_chunk(python, request, Path(tmp), "timing", timeout_s)
    seconds: list[float] = []
    found = 0
    for result in results:
        timing = result.get("timing")
        if not result["ok"] or not isinstance(timing, dict) or len(timing.get("seconds") or []) != repeats:
            raise PeerError(f"MediaPipe timing failed on {result['path']}: {result['error'] or 'no timing in the response'}")
        seconds.extend(float(t) for t in timing["seconds"])
        found += int(timing["hands_found"])
    return PeerTiming(mode=mode, seconds=tuple(seconds), images=len(paths), hands_found=found, model_complexity=model_complexity)


if __name__ == "__main__":  # tiny manual check: python -m hoi_adapt.peers.mediapipe IMAGE...
    for item in run_mediapipe(sys.argv[1:]):
        sides = [h["side"] for h in item["hands"]]
        print(item["path"], "ok" if item["ok"] else f"FAILED ({item['error']})", sides)
