"""The main job end to end on the tiny profile (every step, the report files, and reuse on re-run)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hoi_adapt.demo import load_profile, run_demo

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_tiny_profile_runs_every_step_and_reuses_them(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    profile = load_profile(REPO / "configs/demo/tiny.yaml")
    profile.world = str(tmp_path / "world")
    out = tmp_path / "demo"
    assert run_demo(profile, out=str(out), workers=1) == 0
    report = out / "report"
    for name in ("README.md", "translation_grid.png", "mesh_overlays.png", "hand_model.png", "synthetic_world.png",
                 "eval/synthetic.json", "eval/synthetic_pck.png"):
        assert (report / name).is_file(), name
    text = (report / "README.md").read_text()
    assert "full method" in text and "baseline" in text and "AUC" in text
    rows = json.loads((report / "eval/synthetic.json").read_text())
    assert len(rows) >= 3
    assert (out / "export" / "manifest.json").is_file()
    capsys.readouterr()
    assert run_demo(profile, out=str(out), workers=1) == 0  # second run reuses every step
    printed = capsys.readouterr().out
    assert printed.count("reusing finished result") == 6


def test_demo_profile_rejects_unknown_keys(tmp_path):
    from hoi_adapt.utils.errors import ConfigError

    bad = tmp_path / "p.yaml"
    bad.write_text("out: x\nworld_cofig: y\n")
    with pytest.raises(ConfigError, match="world_cofig"):
        load_profile(bad)
