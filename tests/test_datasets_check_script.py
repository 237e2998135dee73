"""data_prep/check_dataset.py on good and broken fabricated copies."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from fixtures_datasets import write_dexter_object, write_ho3d, write_obman, write_rhd, write_stb

SCRIPT = Path(__file__).resolve().parents[1] / "data_prep" / "check_dataset.py"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_dataset", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


def run(check, capsys, *args):
    code = check([str(a) for a in args])
    return code, capsys.readouterr().out


@pytest.mark.parametrize("name,writer,extra", [("dexter_object", write_dexter_object, []),
                                               ("stb", write_stb, ["--split", "test"]),
                                               ("rhd", write_rhd, ["--split", "train"]),
                                               ("ho3d", write_ho3d, []),
                                               ("obman", write_obman, ["--split", "train"])])
def test_good_copies_pass_with_allow_partial(check, capsys, tmp_path, name, writer, extra):
    writer(tmp_path / "data")
    code, out = run(check, capsys, "--dataset", name, "--root", tmp_path / "data", "--cache-dir", tmp_path / "c",
                    "--allow-partial", *extra)
    assert code == 0, out
    assert "RESULT: OK" in out and "index cache:" in out
    assert list((tmp_path / "c" / "index").glob(f"{name}_*.npz"))


def test_published_counts_are_problems_by_default(check, capsys, tmp_path):
    write_dexter_object(tmp_path / "do")
    code, out = run(check, capsys, "--dataset", "dexter_object", "--root", tmp_path / "do", "--cache-dir", tmp_path / "c")
    assert code == 1
    assert "frames (all 6 sequences): 12, published 3014" in out and "[PROBLEM]" in out


def test_broken_copy_reports_each_problem(check, capsys, tmp_path):
    root = tmp_path / "do"
    write_dexter_object(root)
    ann = root / "data/Rotate/annotations/Rotate3D.txt"
    ann.write_text(ann.read_text().replace("1.0, 2.0, 3.0", "x").split("\n")[0] + "\n1,2,3;1,2;1,2,3;1,2,3;1,2,3\n")
    img = root / "data/Grasp2/color/00001.png"
    img.write_bytes(img.read_bytes()[:60])
    (root / "data/Pinch/annotations/Pinch3D.txt").unlink()
    code, out = run(check, capsys, "--dataset", "dexter_object", "--root", root, "--cache-dir", tmp_path / "c",
                    "--allow-partial", "--full")
    assert code == 1
    assert "missing file data/Pinch/annotations/Pinch3D.txt" in out
    assert "cannot open the split" in out and "Pinch3D.txt" in out
    code, out = run(check, capsys, "--dataset", "dexter_object", "--root", root, "--cache-dir", tmp_path / "c",
                    "--allow-partial", "--full", "--option", "sequences=[Grasp2, Rotate]")
    assert code == 1
    assert "Rotate3D.txt: line 2: entry 2" in out
    assert "unreadable image" in out and "Grasp2/color/00001.png" in out
    assert "index cache not written" in out


def test_bad_command_lines(check, capsys, tmp_path):
    assert check(["--dataset", "nope", "--root", str(tmp_path)]) == 2
    code, out = run(check, capsys, "--dataset", "rhd", "--root", tmp_path / "missing")
    assert code == 1 and "root folder not found" in out


def test_stb_flat_layout_is_accepted(check, capsys, tmp_path):
    write_stb(tmp_path / "stb", layout="flat")
    code, out = run(check, capsys, "--dataset", "stb", "--root", tmp_path / "stb", "--cache-dir", tmp_path / "c",
                    "--split", "test", "--allow-partial")
    assert code == 0, out
    assert "images/B1Counting|B1Counting/SK_color_*.png: 2 files" in out
