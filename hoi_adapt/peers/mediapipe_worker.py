"""MediaPipe Hands worker: a standalone script run by the PEER venv's interpreter, never imported by hoi_adapt.

Usage::

    .venv-peers/bin/python -I mediapipe_worker.py REQUEST.json RESPONSE.json

It imports only the standard library, numpy, OpenCV (a mediapipe dependency) and mediapipe, so it runs in the
venv that ``make peers`` builds (mediapipe==0.10.14, the last release whose wheel bundles the palm-detection and
hand-landmark models; the legacy ``solutions.hands`` graph loads them from the wheel and needs no network. The
Tasks API ``HandLandmarker`` needs a ``hand_landmarker.task`` bundle that the wheel does not ship, so it is not
used).

Request (JSON object)::

    {"images": [path, ...],               # required
     "max_hands": 2, "min_detection_confidence": 0.5, "min_tracking_confidence": 0.5,
     "static_image_mode": true,           # false = video tracking across the listed images, in order
     "model_complexity": 1,               # 0 = lite, 1 = full landmark model
     "upscale_to": null,                  # int: enlarge (bicubic) images whose longer side is smaller
     "timing": null}                      # {"repeats": N, "warmup": W}: speed measurement, see below

Response (JSON object)::

    {"protocol": 1, "mediapipe_version": "0.10.14", "settings": {...},
     "results": [{"path", "ok", "error", "width", "height", "seconds",
                  "hands": [{"side", "mediapipe_label", "score", "landmarks_px", "world_m", "box_xyxy"}]}]}

One result per requested image, in order. An unreadable image gives ``ok: false`` and a reason; it never stops
the batch. Per hand, in MediaPipe's own landmark order (which equals OpenPose-21):

- ``landmarks_px`` (21x3): ``u = x*width, v = y*height`` of MediaPipe's normalised landmarks, i.e. continuous
  pixel coordinates with the origin at the image's top-left *corner*; ``z*width`` is MediaPipe's relative depth
  (wrist = 0, smaller = nearer the camera) on the same pixel scale as ``u``. Always in the ORIGINAL image's
  pixels, also with ``upscale_to``.
- ``world_m`` (21x3): MediaPipe's world landmarks, metres, origin near the hand's centre (see the host module
  :mod:`hoi_adapt.peers.mediapipe` for their axes).
- ``side``: the anatomical side for an ordinary (non-mirrored) photo. The legacy solution labels hands as if the
  input were a mirrored selfie, so its "Left" is an anatomical right hand in a normal photo and vice versa
  (measured: flipping an image flips the label, and the label agrees with the 3D chirality of the landmarks
  only after swapping). ``mediapipe_label`` keeps the raw label.
- ``box_xyxy``: the tight box of the 21 ``(u, v)`` points.

Timing mode (``"timing"`` given): the graph is built once, each image is read once, then per image ``warmup``
untimed and ``repeats`` timed ``Hands.process`` calls on the same RGB array; each result gains ``"timing":
{"seconds": [per call], "median_s", "hands_found": calls that found a hand}``. Start-up, model loading and
image decoding are outside the timed calls. With ``static_image_mode: true`` every call runs palm detection
and then the landmark model on each detected hand (detection + landmarks); with ``false`` and ``max_hands: 1``
the calls after the first track the hand: the landmark model runs on the region derived from the previous
call's landmarks and palm detection is skipped (landmarks only, MediaPipe's own per-frame video path). The
``hands`` reported are those of the last call.

Exit codes: 0 = response written (per-image failures are inside it); 2 = bad request; 3 = mediapipe unusable.
"""
from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Any

PROTOCOL_VERSION = 1

# Legacy-solution label -> anatomical side in a NON-mirrored image (the solution assumes selfie mirroring).
ANATOMICAL_SIDE: dict[str, str] = {"Left": "right", "Right": "left"}

DEFAULTS: dict[str, Any] = {
    "max_hands": 2,
    "min_detection_confidence": 0.5,
    "min_tracking_confidence": 0.5,
    "static_image_mode": True,
    "model_complexity": 1,
    "upscale_to": None,
}


TIMING_KEYS = ("repeats", "warmup")


class RequestError(Exception):
    """The request file is missing, not JSON, or has invalid fields."""


def _read_request(path: str) -> dict[str, Any]:
    """Parse and validate the request; unknown keys are an error so typos do not silently use defaults."""
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except OSError as exc:
        raise RequestError(f"{path}: cannot read request ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"{path}: request is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise RequestError(f"{path}: request must be a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(DEFAULTS) - {"images", "timing"})
    if unknown:
        raise RequestError(f"{path}: unknown request keys {unknown}; known: images, timing, {', '.join(DEFAULTS)}")
    images = raw.get("images")
    if not isinstance(images, list) or not all(isinstance(p, str) for p in images):
        raise RequestError(f"{path}: 'images' must be a list of path strings")
    req = {**DEFAULTS, **raw}
    if not isinstance(req["max_hands"], int) or req["max_hands"] < 1:
        raise RequestError(f"{path}: 'max_hands' must be an integer >= 1, got {req['max_hands']!r}")
    for key in ("min_detection_confidence", "min_tracking_confidence"):
        value = req[key]
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise RequestError(f"{path}: {key!r} must be a number in [0, 1], got {value!r}")
    if not isinstance(req["static_image_mode"], bool):
        raise RequestError(f"{path}: 'static_image_mode' must be true or false")
    if req["model_complexity"] not in (0, 1):
        raise RequestError(f"{path}: 'model_complexity' must be 0 or 1, got {req['model_complexity']!r}")
    up = req["upscale_to"]
    if up is not None and (not isinstance(up, int) or up < 1):
        raise RequestError(f"{path}: 'upscale_to' must be null or an integer >= 1, got {up!r}")
    timing = raw.get("timing")
    if timing is not None:
        if not isinstance(timing, dict) or sorted(timing) != sorted(TIMING_KEYS):
            raise RequestError(f"{path}: 'timing' must be null or an object with exactly the keys {list(TIMING_KEYS)}")
        if not all(isinstance(timing[k], int) and not isinstance(timing[k], bool) for k in TIMING_KEYS) \
                or timing["repeats"] < 1 or timing["warmup"] < 0:
            raise RequestError(f"{path}: 'timing' needs integers repeats >= 1 and warmup >= 0, got {timing!r}")
    req["timing"] = timing
    return req


def _load_rgb(path: str, upscale_to: int | None) -> tuple[Any, int, int]:
    """Read an image as contiguous RGB uint8 (optionally enlarged); return it with the ORIGINAL width, height."""
    import cv2

    if os.path.isdir(path):
        raise IsADirectoryError("is a directory, not an image file")
    if not os.path.isfile(path):
        raise FileNotFoundError("file not found")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)  # 3-channel 8-bit whatever the file's depth/alpha
    if bgr is None or bgr.size == 0:
        raise ValueError("not a readable image (OpenCV could not decode it)")
    height, width = bgr.shape[:2]
    if upscale_to is not None and max(width, height) < upscale_to:
        scale = upscale_to / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), width, height


def _hands_of(result: Any, width: int, height: int) -> list[dict[str, Any]]:
    """Convert one ``Hands.process`` result to plain lists in the original image's pixels."""
    import numpy as np

    if not result.multi_hand_landmarks:
        return []
    worlds = result.multi_hand_world_landmarks or [None] * len(result.multi_hand_landmarks)
    hands = []
    for image_lms, world_lms, handedness in zip(result.multi_hand_landmarks, worlds, result.multi_handedness):  # noqa: B905 - the worker also runs on Python 3.9 (no strict=)
        norm = np.array([[p.x, p.y, p.z] for p in image_lms.landmark], dtype=np.float64)
        # Normalised coords do not depend on the (possibly upscaled) processing size: map to original pixels.
        px = norm * np.array([width, height, width], dtype=np.float64)
        world = (np.array([[p.x, p.y, p.z] for p in world_lms.landmark], dtype=np.float64)
                 if world_lms is not None else None)
        label = handedness.classification[0].label
        hands.append({
            "side": ANATOMICAL_SIDE.get(label, "unknown"),
            "mediapipe_label": label,
            "score": float(handedness.classification[0].score),
            "landmarks_px": px.tolist(),
            "world_m": world.tolist() if world is not None else None,
            "box_xyxy": [float(px[:, 0].min()), float(px[:, 1].min()), float(px[:, 0].max()), float(px[:, 1].max())],
        })
    return hands


def _timed(hands: Any, rgb: Any, repeats: int, warmup: int) -> tuple[Any, dict[str, Any]]:
    """``warmup`` untimed then ``repeats`` timed ``process`` calls on one image; the last result and the times."""
    for _ in range(warmup):
        hands.process(rgb)
    seconds, found, result = [], 0, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = hands.process(rgb)
        seconds.append(time.perf_counter() - t0)
        found += bool(result.multi_hand_landmarks)
    ordered = sorted(seconds)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
    return result, {"seconds": seconds, "median_s": median, "hands_found": found}


def run(req: dict[str, Any]) -> dict[str, Any]:
    """Run MediaPipe Hands on every requested image; per-image failures are recorded, not raised."""
    import mediapipe as mp

    settings = {k: req[k] for k in DEFAULTS}
    results = []
    with mp.solutions.hands.Hands(
        static_image_mode=req["static_image_mode"],
        max_num_hands=req["max_hands"],
        model_complexity=req["model_complexity"],
        min_detection_confidence=float(req["min_detection_confidence"]),
        min_tracking_confidence=float(req["min_tracking_confidence"]),
    ) as hands:
        for path in req["images"]:
            entry: dict[str, Any] = {"path": path, "ok": False, "error": None, "width": None, "height": None,
                                     "seconds": None, "hands": []}
            start = time.perf_counter()
            try:
                rgb, width, height = _load_rgb(path, req["upscale_to"])
                entry["width"], entry["height"] = width, height
                if req["timing"] is not None:
                    result, entry["timing"] = _timed(hands, rgb, req["timing"]["repeats"], req["timing"]["warmup"])
                else:
                    result = hands.process(rgb)
                entry["hands"] = _hands_of(result, width, height)
                entry["ok"] = True
            except Exception as exc:  # one bad image must not stop the batch
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["seconds"] = time.perf_counter() - start
            results.append(entry)
    return {"protocol": PROTOCOL_VERSION, "mediapipe_version": getattr(mp, "__version__", "unknown"),
            "settings": settings, "timing": req["timing"], "results": results}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} REQUEST.json RESPONSE.json", file=sys.stderr)
        return 2
    try:
        req = _read_request(argv[1])
    except RequestError as exc:
        print(f"mediapipe_worker: {exc}", file=sys.stderr)
        return 2
    # The folder of this script holds hoi_adapt's host module ``mediapipe.py``; when run as a script that folder
    # is sys.path[0] and would shadow the real package, so drop it (the host also runs us with ``-I``).
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ INFO/WARNING lines are noise here
    warnings.filterwarnings("ignore", category=UserWarning, module="google.protobuf")
    try:
        import mediapipe  # noqa: F401
    except Exception as exc:
        print(f"mediapipe_worker: cannot import mediapipe with {sys.executable} ({type(exc).__name__}: {exc}); "
              "build the peer venv with 'make peers'", file=sys.stderr)
        return 3
    response = run(req)
    tmp = argv[2] + ".part"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(response, fh)
    os.replace(tmp, argv[2])  # the host never sees a half-written response
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
