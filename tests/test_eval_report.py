"""Report files (JSON/MD/PNG) and the cited published rows."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from hoi_adapt.eval.metrics import auc
from hoi_adapt.eval.protocols import evaluate_protocol
from hoi_adapt.eval.published import comparison_rows
from hoi_adapt.eval.report import write_results


def _results():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(12, 21, 3)) * 0.04 + np.array([0.0, 0.0, 0.5])
    valid = np.ones((12, 21), bool)
    valid[0, :] = False  # one frame without GT -> skipped
    seq = np.array(["Grasp1", "Rigid", "Pinch"] * 4)
    out = {}
    for label, noise in (("baseline", 0.02), ("adapted", 0.008)):
        pred = gt + rng.normal(size=gt.shape) * noise
        out[label] = evaluate_protocol("dexter_object", pred, gt, valid, sequences=seq)
    return out


def _strict_json(path):
    def bad(token):
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=bad)


def test_write_results_files(tmp_path):
    res = _results()
    paths = write_results(res, tmp_path / "out", "dexter_object", comparison=comparison_rows("dexter_object"))
    data = _strict_json(paths["json"])
    assert set(data["rows"]) == {"baseline", "adapted"}
    row = data["rows"]["adapted"]
    assert row["metrics"]["tips_auc"] == pytest.approx(res["adapted"]["metrics"]["tips_auc"])
    assert row["thresholds_mm"] == pytest.approx(list(np.linspace(20, 50, 16)))
    assert row["num_skipped_frames"] == 1 and set(row["per_sequence"]) == {"Grasp1", "Pinch", "Rigid"}
    assert data["published"] and all(p["citation"] and p["grid"] for p in data["published"])

    md = paths["md"].read_text()
    assert "| method | tips_mpjpe_mm |" in md
    assert f"| adapted | {res['adapted']['metrics']['tips_mpjpe_mm']:.2f} |" in md
    assert "`20-50mm`" in md and "Per sequence: baseline" in md and "| Rigid |" in md
    assert "CalciferZh/minimal-hand: plot.py" in md

    img = np.asarray(Image.open(paths["png"]).convert("L"), dtype=np.float64)
    assert img.shape[0] > 300 and img.shape[1] > 400 and img.std() > 10.0
    assert not list((tmp_path / "out").glob("*.tmp"))  # atomic writes left nothing behind


def test_write_single_result_and_nonfinite_values(tmp_path):
    r = _results()["baseline"]
    r["metrics"]["weird"] = float("nan")
    paths = write_results(r, tmp_path, "single")
    data = _strict_json(paths["json"])
    assert list(data["rows"]) == ["single"] and data["rows"]["single"]["metrics"]["weird"] is None
    with pytest.raises(ValueError):
        write_results({"x": {"not": "a result"}}, tmp_path, "bad")


def test_published_rows_are_cited_and_self_consistent():
    # the minimal-hand curves integrate to the AUCs quoted as "paper" values in the Minimal-Hand-pytorch README
    expected = {"rhd": 0.856, "stb": 0.898, "dexter_object": 0.948, "egodexter": 0.811}
    for ds, value in expected.items():
        rows = comparison_rows(ds)
        curve = [r for r in rows if r.pck is not None and "Zhou" in r.method]
        assert len(curve) == 1
        assert auc(curve[0].pck, curve[0].thresholds_mm) == pytest.approx(value, abs=5e-4)
        assert curve[0].thresholds_mm == pytest.approx(tuple(np.linspace(20, 50, 16)))
        assert all(r.citation and r.grid for r in rows)
    assert comparison_rows("ho3d") == [] and comparison_rows("synthetic") == []
    assert comparison_rows("do") == comparison_rows("dexter_object")
