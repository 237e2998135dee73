"""MediaPipe Hands peer: conversions and error paths without mediapipe, the real worker when .venv-peers exists.

Tests marked ``needs_peer`` run the real MediaPipe worker and skip (with the install command) when the peer
venv is absent, e.g. on CI, which does not build it.
"""
from __future__ import annotations

import ast
import json
import os
import re
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from fixtures_peers import needs_peer

from hoi_adapt.hand.joint_maps import OPENPOSE_NAMES
from hoi_adapt.peers import mediapipe_worker as worker
from hoi_adapt.peers.mediapipe import (
    DEFAULTS,
    MEDIAPIPE_NAMES,
    MEDIAPIPE_TO_OPENPOSE,
    PEER_VENV_ENV,
    PROTOCOL_VERSION,
    convert_hand,
    install_command,
    parse_response,
    peer_python,
    request_settings,
    run_mediapipe,
    side_from_mediapipe_label,
    to_openpose_2d,
    to_openpose_root_relative,
)
from hoi_adapt.utils.errors import ConfigError, DataFileError, PeerError


# ----------------------------------------------------------------------------------------------- joint order
def test_mediapipe_order_is_openpose_joint_for_joint() -> None:
    assert MEDIAPIPE_TO_OPENPOSE == tuple(range(21))
    assert len(set(MEDIAPIPE_NAMES)) == 21
    # Finger by finger and joint by joint (OpenPose's thumb mcp/pip/dip = anatomical CMC/MCP/IP).
    assert MEDIAPIPE_NAMES[1:5] == ("THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP")
    for finger, mp_finger in (("index", "INDEX_FINGER"), ("middle", "MIDDLE_FINGER"), ("ring", "RING_FINGER"),
                              ("pinky", "PINKY")):
        for joint in ("mcp", "pip", "dip", "tip"):
            assert MEDIAPIPE_NAMES[OPENPOSE_NAMES.index(f"{finger}_{joint}")] == f"{mp_finger}_{joint.upper()}"


# ----------------------------------------------------------------------------------------- frame conversion
def _synthetic_world() -> np.ndarray:
    """21 MediaPipe-order world landmarks: wrist off the origin, joint i at wrist + i*(1, -2, 0.5) mm."""
    i = np.arange(21, dtype=np.float64)[:, None]
    return np.array([0.010, 0.020, -0.005]) + i * np.array([0.001, -0.002, 0.0005])


def test_root_relative_values() -> None:
    rel = to_openpose_root_relative(_synthetic_world())
    assert rel.shape == (21, 3)
    np.testing.assert_allclose(rel[0], [0.0, 0.0, 0.0], atol=1e-15)
    # Axes are kept (MediaPipe world = x right, y down, z away from camera, as ours): index tip (8) and pinky tip (20).
    np.testing.assert_allclose(rel[8], [0.008, -0.016, 0.004], atol=1e-12)
    np.testing.assert_allclose(rel[20], [0.020, -0.040, 0.010], atol=1e-12)


def test_root_relative_does_not_depend_on_mediapipe_origin() -> None:
    world = _synthetic_world()
    np.testing.assert_allclose(to_openpose_root_relative(world + [0.3, -0.2, 0.1]), to_openpose_root_relative(world),
                               atol=1e-12)


def test_2d_conversion_moves_to_pixel_centres_and_drops_depth() -> None:
    px = np.zeros((21, 3))
    px[:, 0] = np.arange(21) + 10.0
    px[:, 1] = 2 * np.arange(21)
    px[:, 2] = -7.0  # relative depth, not part of 2D
    uv = to_openpose_2d(px)
    assert uv.shape == (21, 2)
    np.testing.assert_allclose(uv[0], [9.5, -0.5])
    np.testing.assert_allclose(uv[8], [17.5, 15.5])


@pytest.mark.parametrize("bad, message", [(np.zeros((20, 3)), r"shape \(21, 3\)"),
                                          (np.full((21, 3), np.nan), "NaN or inf")])
def test_conversions_reject_bad_arrays(bad: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_openpose_root_relative(bad)
    with pytest.raises(ValueError, match=message):
        to_openpose_2d(bad)


def test_convert_hand() -> None:
    px = np.column_stack([np.linspace(10, 30, 21), np.linspace(40, 60, 21), np.zeros(21)])
    hand = {"side": "right", "mediapipe_label": "Left", "score": 0.9, "landmarks_px": px.tolist(),
            "world_m": _synthetic_world().tolist(), "box_xyxy": [10.0, 40.0, 30.0, 60.0]}
    converted = convert_hand(hand)
    assert converted.side == "right" and converted.score == pytest.approx(0.9)
    np.testing.assert_allclose(converted.box_xyxy, [9.5, 39.5, 29.5, 59.5])
    np.testing.assert_allclose(converted.joints3d_rel[8], [0.008, -0.016, 0.004], atol=1e-12)


# ------------------------------------------------------------------------------------------------ handedness
def test_side_swaps_mediapipe_selfie_labels() -> None:
    assert side_from_mediapipe_label("Left") == "right"
    assert side_from_mediapipe_label("Right") == "left"
    assert side_from_mediapipe_label("Left", mirrored=True) == "left"
    assert worker.ANATOMICAL_SIDE == {"Left": "right", "Right": "left"}
    with pytest.raises(ValueError, match="unknown MediaPipe handedness label 'left'"):
        side_from_mediapipe_label("left")


# ------------------------------------------------------------------------------------------- response parsing
def _response(results: list[dict]) -> dict:
    return {"protocol": PROTOCOL_VERSION, "mediapipe_version": "0.10.14", "settings": dict(DEFAULTS),
            "results": results}


def _result(path: str, hands: list[dict] | None = None) -> dict:
    return {"path": path, "ok": True, "error": None, "width": 64, "height": 64, "seconds": 0.01, "hands": hands or []}


def test_parse_response_rejects_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "resp.json"
    path.write_text('{"protocol": 1, "results": [', encoding="utf-8")
    with pytest.raises(DataFileError, match=r"resp\.json: MediaPipe response is not valid JSON"):
        parse_response(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.update(protocol=99), "worker protocol 99"),
    (lambda r: r.update(results="nope"), "'results' list"),
    (lambda r: r["results"][0].update(ok=False), "failed without an error message"),
    (lambda r: r["results"][0].pop("hands"), r"lacks \['hands'\]"),
    (lambda r: r["results"][0]["hands"].append({"side": "right", "score": 1.0, "landmarks_px": [[0, 0, 0]] * 20,
                                                "world_m": None, "box_xyxy": [0, 0, 1, 1]}),
     r"hand 0: landmarks_px must have shape \(21, 3\)"),
    (lambda r: r["results"][0]["hands"].append({"side": "Left", "score": 1.0, "landmarks_px": [[0, 0, 0]] * 21,
                                                "world_m": None, "box_xyxy": [0, 0, 1, 1]}),
     "neither 'left' nor 'right'"),
])
def test_parse_response_names_the_problem(tmp_path: Path, mutate, message: str) -> None:
    data = _response([_result("/img/a.png")])
    mutate(data)
    path = tmp_path / "resp.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataFileError, match=message) as info:
        parse_response(path)
    assert str(path) in str(info.value)


def test_parse_response_checks_the_answered_images(tmp_path: Path) -> None:
    path = tmp_path / "resp.json"
    path.write_text(json.dumps(_response([_result("/img/b.png"), _result("/img/a.png")])), encoding="utf-8")
    assert len(parse_response(path, ["/img/b.png", "/img/a.png"])) == 2
    with pytest.raises(DataFileError, match="do not match"):
        parse_response(path, ["/img/a.png", "/img/b.png"])


# ------------------------------------------------------------------------- request validation (worker, stdlib)
def test_worker_imports_only_stdlib_at_module_level() -> None:
    """The worker runs in the peer venv and is imported here: numpy/cv2/mediapipe only inside functions."""
    tree = ast.parse(Path(worker.__file__).read_text(encoding="utf-8"))
    top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
    top |= {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.module}
    assert top <= {"__future__", "json", "os", "sys", "time", "warnings", "typing"}, top


def test_request_settings_match_worker_keys() -> None:
    settings = request_settings(max_hands=np.int64(1), upscale_to=np.int32(256))
    assert set(settings) == set(DEFAULTS)
    assert type(settings["max_hands"]) is int and type(settings["upscale_to"]) is int
    json.dumps(settings)


@pytest.mark.parametrize("request_obj, message", [
    ({"images": ["a.png"], "max_hand": 2}, r"unknown request keys \['max_hand'\]"),
    ({"images": "a.png"}, "'images' must be a list"),
    ({"images": [], "min_detection_confidence": 1.5}, r"must be a number in \[0, 1\]"),
    ({"images": [], "model_complexity": 2}, "'model_complexity' must be 0 or 1"),
    ([1, 2], "must be a JSON object"),
])
def test_worker_rejects_bad_requests(tmp_path: Path, capsys: pytest.CaptureFixture, request_obj, message: str) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps(request_obj), encoding="utf-8")
    # main() validates before importing mediapipe, so this runs in our env.
    assert worker.main(["worker", str(req), str(tmp_path / "resp.json")]) == 2
    err = capsys.readouterr().err
    assert str(req) in err
    assert re.search(message, err), err
    assert not (tmp_path / "resp.json").exists()


# --------------------------------------------------------------------------------- venv location and failures
def test_missing_peer_venv_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    venv = tmp_path / "no-such-venv"
    monkeypatch.setenv(PEER_VENV_ENV, str(venv))
    with pytest.raises(ConfigError) as info:
        peer_python()
    text = str(info.value)
    assert str(venv / "bin" / "python") in text and f"${PEER_VENV_ENV}" in text
    assert "pip install --no-deps mediapipe==0.10.14" in text and "requirements-mediapipe.txt" in text
    with pytest.raises(ConfigError):  # run_mediapipe fails the same way before starting anything
        run_mediapipe([tmp_path / "x.png"])


def test_default_install_command_is_make_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PEER_VENV_ENV, raising=False)
    assert install_command().endswith(" peers") and install_command().startswith("make -C ")


def test_no_images_needs_no_peer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PEER_VENV_ENV, str(tmp_path / "absent"))
    assert run_mediapipe([]) == []


def _fake_interpreter(tmp_path: Path, body: str) -> Path:
    """A venv folder whose bin/python is a shell script (to exercise the host's failure handling)."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return tmp_path / "venv"


@pytest.mark.skipif(os.name == "nt", reason="shell-script interpreter")
def test_worker_crash_is_reported_with_its_stderr(tmp_path: Path) -> None:
    venv = _fake_interpreter(tmp_path, 'echo "Segmentation fault in palm detector" >&2; exit 139')
    with pytest.raises(PeerError, match=r"exited with code 139[\s\S]*Segmentation fault in palm detector"):
        run_mediapipe([tmp_path / "a.png"], venv=venv)


@pytest.mark.skipif(os.name == "nt", reason="shell-script interpreter")
def test_worker_timeout_is_reported(tmp_path: Path) -> None:
    venv = _fake_interpreter(tmp_path, "exec sleep 30")
    with pytest.raises(PeerError, match="timed out after 0.3 s on 1 images"):
        run_mediapipe([tmp_path / "a.png"], venv=venv, timeout_s=0.3)


def test_interpreter_without_mediapipe_is_a_config_error(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # our env: no mediapipe, by design
    with pytest.raises(ConfigError, match=r"cannot import mediapipe[\s\S]*Rebuild it with: python3\.11 -m venv"):
        run_mediapipe([tmp_path / "a.png"], venv=venv)


# ------------------------------------------------------------------------------------- the real peer worker
@needs_peer
def test_landmark_names_match_the_installed_mediapipe() -> None:
    import subprocess

    code = "import mediapipe as mp; print(','.join(l.name for l in mp.solutions.hands.HandLandmark))"
    out = subprocess.run([str(peer_python()), "-I", "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert tuple(out.stdout.strip().split(",")) == MEDIAPIPE_NAMES


@needs_peer
@pytest.mark.slow
def test_real_worker_reports_bad_files_per_item(tmp_path: Path) -> None:
    not_image = tmp_path / "not_an_image.png"
    not_image.write_text("this is text, not a PNG", encoding="utf-8")
    blank = tmp_path / "blank.png"
    import cv2

    cv2.imwrite(str(blank), np.full((48, 64, 3), 255, np.uint8))
    results = run_mediapipe([not_image, tmp_path / "missing.png", tmp_path, blank], chunk_size=3)
    assert [r["ok"] for r in results] == [False, False, False, True]
    assert "not a readable image" in results[0]["error"]
    assert "file not found" in results[1]["error"]
    assert "is a directory" in results[2]["error"]
    assert results[3]["hands"] == [] and (results[3]["width"], results[3]["height"]) == (64, 48)
    assert results[0]["path"] == str(not_image.absolute())


def _chirality_side(joints: np.ndarray) -> str:
    """Side implied by 3D geometry in a right-handed x-right/y-down/z-forward frame (OpenPose order).

    For a right hand, (index MCP - wrist) x (pinky MCP - wrist) points out of the palm, and flexed fingertips lie
    on the palm side; for a left hand both flip. Reliable for curled hands, a coin toss for flat ones.
    """
    normal = np.cross(joints[5] - joints[0], joints[17] - joints[0])
    curl = joints[[8, 12, 16, 20]].mean(0) - joints[[5, 9, 13, 17]].mean(0)
    return "right" if float(normal @ curl) > 0 else "left"


@needs_peer
@pytest.mark.slow
def test_real_worker_on_rendered_hands_matches_ground_truth(tiny_world: Path) -> None:
    """MediaPipe on our stand-in renders (hand-only, 64 px): the landmarks land on the hand and the converted
    3D joints have our axes. Measured when written: 19/24 detected, x/y/z correlation 0.98/0.97/0.73."""
    from hoi_adapt.data.formats.world import image_path, load_annotations

    ann = load_annotations(tiny_world, "source_hand")
    paths = [image_path(tiny_world, "source_hand", "hand", int(i)) for i in ann["index"]]
    results = run_mediapipe(paths, max_hands=1)
    assert all(r["ok"] for r in results)
    detected = [(i, convert_hand(r["hands"][0])) for i, r in enumerate(results) if r["hands"]]
    assert len(detected) >= len(paths) // 4, f"only {len(detected)}/{len(paths)} rendered hands detected"
    on_hand, corr, agree = [], [], []
    for i, hand in detected:
        gt2, gt3 = ann["joints2d"][i], ann["joints3d"][i] - ann["joints3d"][i][0]
        err = np.linalg.norm(hand.joints2d - gt2, axis=1).mean()
        on_hand.append(err < 0.2 * np.ptp(gt2, axis=0).max())
        corr.append([np.corrcoef(hand.joints3d_rel[:, k], gt3[:, k])[0, 1] for k in range(3)])
        agree.append(_chirality_side(hand.joints3d_rel) == hand.side)
        assert 0.03 < np.linalg.norm(hand.joints3d_rel[9]) < 0.2  # wrist to middle MCP: a hand-sized metre value
        assert np.all(hand.box_xyxy[:2] <= hand.joints2d.min(0)) and np.all(hand.box_xyxy[2:] >= hand.joints2d.max(0))
    assert np.mean(on_hand) >= 0.8
    x, y, z = np.median(np.asarray(corr), axis=0)
    assert x > 0.8 and y > 0.8 and z > 0.2, (x, y, z)  # no axis flipped relative to our camera frame
    # The reported (swapped) side agrees with the chirality of MediaPipe's own 3D output; unswapped labels would
    # agree in the minority (measured 18/19 agree when written).
    assert np.mean(agree) >= 0.7, agree


# ------------------------------------------------------------------------------------------------ timing mode
@pytest.mark.parametrize("timing, message", [
    ({"repeats": 3}, r"exactly the keys \['repeats', 'warmup'\]"),
    ({"repeats": 0, "warmup": 1}, "integers repeats >= 1 and warmup >= 0"),
    ({"repeats": 2, "warmup": True}, "integers repeats >= 1 and warmup >= 0"),
    ([3, 1], "must be null or an object"),
])
def test_worker_rejects_bad_timing(tmp_path: Path, capsys: pytest.CaptureFixture, timing, message: str) -> None:
    req = tmp_path / "req.json"
    req.write_text(json.dumps({"images": ["a.png"], "timing": timing}), encoding="utf-8")
    assert worker.main(["worker", str(req), str(tmp_path / "resp.json")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_worker_times_only_the_process_calls() -> None:
    """``_timed``: warm-up calls are untimed, every timed call is counted, and calls that find a hand are tallied."""
    class FakeHands:
        def __init__(self) -> None:
            self.calls = 0

        def process(self, rgb):
            self.calls += 1
            return type("Result", (), {"multi_hand_landmarks": [1] if self.calls % 2 else None})()

    hands = FakeHands()
    result, timing = worker._timed(hands, None, repeats=5, warmup=2)
    assert hands.calls == 7 and len(timing["seconds"]) == 5
    assert timing["hands_found"] == 3  # calls 3, 5, 7 of 7 return a hand
    assert timing["median_s"] == sorted(timing["seconds"])[2]
    assert result.multi_hand_landmarks == [1]


@pytest.mark.skipif(os.name == "nt", reason="shell-script interpreter")
def test_time_mediapipe_pools_the_workers_timings(tmp_path: Path) -> None:
    from hoi_adapt.peers.mediapipe import time_mediapipe

    paths = [str((tmp_path / f"{i}.png").absolute()) for i in range(2)]
    results = [{**_result(p), "timing": {"seconds": [0.01 * (i + 1), 0.03, 0.02], "median_s": 0.02, "hands_found": 3}}
               for i, p in enumerate(paths)]
    canned = tmp_path / "canned.json"
    canned.write_text(json.dumps(_response(results)), encoding="utf-8")
    venv = _fake_interpreter(tmp_path, f'grep -q \'"timing": {{"repeats": 3, "warmup": 1}}\' "$3" || exit 9; '
                                       f'grep -q \'"static_image_mode": false\' "$3" || exit 8; cp {canned} "$4"')
    timing = time_mediapipe(paths, "landmarks", repeats=3, warmup=1, venv=venv)
    assert timing.images == 2 and timing.hands_found == 6 and len(timing.seconds) == 6
    assert timing.median_s == pytest.approx(0.02) and timing.images_per_s == pytest.approx(50.0)
    with pytest.raises(PeerError, match="MediaPipe timing failed"):  # the canned answer has 3 timings, not 4
        time_mediapipe(paths, "landmarks", repeats=4, warmup=1, venv=_fake_interpreter(tmp_path / "b", f'cp {canned} "$4"'))
    with pytest.raises(ConfigError, match="timing mode must be one of"):
        time_mediapipe(paths, "palms", venv=venv)


@needs_peer
@pytest.mark.slow
def test_real_worker_timing_runs_the_landmark_model(tiny_world: Path) -> None:
    from hoi_adapt.data.formats.world import image_path
    from hoi_adapt.peers.mediapipe import time_mediapipe

    paths = [image_path(tiny_world, "source_hand", "hand", i) for i in range(6)]
    detected = [p for p, r in zip(paths, run_mediapipe(paths, max_hands=1), strict=True) if r["hands"]][:2]
    assert detected, "no rendered hand detected"
    for mode in ("landmarks", "detection+landmarks"):
        timing = time_mediapipe(detected, mode, repeats=3, warmup=2)
        assert len(timing.seconds) == 3 * len(detected) and all(t > 0 for t in timing.seconds)
        assert timing.hands_found >= len(detected)  # the hand is found, so the landmark model ran
