"""Peers as evaluation rows (``hoi-adapt evaluate --peer mediapipe``): image hand-over, errors, a real run.

The real-run test needs the MediaPipe peer venv (``make peers``) and skips cleanly without it.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from fixtures_peers import needs_peer

from hoi_adapt.eval.cli import main
from hoi_adapt.eval.peer import PEERS, batch_images_uint8, peer_label, peer_predict_fn
from hoi_adapt.peers.mediapipe import PEER_VENV_ENV
from hoi_adapt.utils.errors import ConfigError


def test_batch_images_become_the_bytes_a_file_would_hold():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    images = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    out = batch_images_uint8(images)
    assert out.shape == (2, 5, 7, 3) and out.dtype == np.uint8
    assert np.array_equal(out, pixels)
    assert batch_images_uint8(torch.full((1, 3, 2, 2), 1.7)).max() == 255  # out-of-range values clamp
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        batch_images_uint8(torch.zeros(3, 4, 4))


def test_unknown_peer_names_the_known_ones():
    assert peer_label("MediaPipe") == PEERS["mediapipe"]
    with pytest.raises(ConfigError, match="unknown peer 'hamer'; known: mediapipe"):
        peer_label("hamer")


def test_missing_peer_venv_fails_before_any_data_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv(PEER_VENV_ENV, str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="make -C|pip install"):
        peer_predict_fn("mediapipe")


def test_cli_peer_without_venv_is_one_error_line(tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(PEER_VENV_ENV, str(tmp_path / "absent"))
    rc = main(["--peer", "mediapipe", "--dataset", "synthetic", "--root", str(tiny_world), "--out", str(tmp_path / "o"),
               "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "peer" in err.lower()
    assert not (tmp_path / "o").exists()


def test_cli_needs_a_checkpoint_or_a_peer(tiny_world, tmp_path, capsys):
    rc = main(["--dataset", "synthetic", "--root", str(tiny_world), "--out", str(tmp_path / "o")])
    assert rc == 1 and "give at least one --ckpt or --peer" in capsys.readouterr().err


@needs_peer
def test_cli_scores_mediapipe_on_hand_crops(tiny_world, tmp_path, capsys):
    """MediaPipe on the tiny world's hand-only crops: rows, detection rate, misses counted in the PCK."""
    out = tmp_path / "o"
    rc = main(["--peer", "mediapipe", "--dataset", "synthetic", "--root", str(tiny_world), "--split", "source_hand",
               "--image-size", "64", "--limit", "12", "--out", str(out), "--quiet"])
    assert rc == 0
    row = json.loads((out / "synthetic.json").read_text())["rows"][PEERS["mediapipe"]]
    m = row["metrics"]
    assert row["num_samples"] == 12 and row["num_detected"] + row["num_missed"] == 12
    assert 0 < m["detection_rate"] <= 1 and m["detection_rate"] == pytest.approx(row["num_detected"] / 12)
    assert 0 < m["rootrel_mpjpe_mm"] < 150  # a hand-sized error on the detected crops, not garbage
    for detected, overall in zip(row["pck_detected"]["rootrel"], row["pck"]["rootrel"], strict=True):
        assert overall == pytest.approx(detected * m["detection_rate"])  # all joints valid: exact scaling
    assert PEERS["mediapipe"] in capsys.readouterr().out
