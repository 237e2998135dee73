"""hoi-adapt evaluate, command line: files + printed table, model comparison, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hoi_adapt.eval.cli import main

REPO_ARGS = ("--image-size", "64", "--quiet")


@pytest.fixture(scope="module")
def tiny_adapt_ckpt(tmp_path_factory):
    """An untrained adaptation checkpoint: estimator + small generator + mesh guidance."""
    from test_evaluate import responsive_estimator

    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.generator import UNetGenerator
    from hoi_adapt.models.pipeline import GUIDANCE_CHANNELS, MeshGuidance

    est = responsive_estimator(seed=1)
    gen = UNetGenerator(in_channels=3 + GUIDANCE_CHANNELS, base_channels=8, num_downs=4).eval()
    nets = {"estimator": est, "generator": gen, "guidance": MeshGuidance(guidance_size=32)}
    return write_network_checkpoint(tmp_path_factory.mktemp("adapt") / "adapt.ckpt", "adapt", nets)


def test_cli_writes_files_and_prints_table(tiny_estimator_ckpt, tiny_world, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["--ckpt", str(tiny_estimator_ckpt), "--dataset", "synthetic", "--root", str(tiny_world),
               "--out", str(out), "--limit", "4", "--batch-size", "2", *REPO_ARGS])
    printed = capsys.readouterr().out
    assert rc == 0
    for name in ("synthetic.json", "synthetic.md", "synthetic_pck.png", "synthetic_per_sequence.csv"):
        assert (out / name).is_file(), name
    row = json.loads((out / "synthetic.json").read_text())["rows"]["estimator"]
    assert row["num_samples"] == 4 and "limit=4" in row["sample_selection"]
    assert "| method | rootrel_mpjpe_mm |" in printed and "| estimator |" in printed
    assert f"{row['metrics']['rootrel_mpjpe_mm']:.2f}" in printed
    assert str(out / "synthetic.json") in printed


def test_cli_compares_adapted_pipeline_with_its_estimator(tiny_adapt_ckpt, tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["--ckpt", f"adapted={tiny_adapt_ckpt}", "--adapt", "--compare", f"baseline={tiny_adapt_ckpt}",
               "--dataset", "synthetic", "--root", str(tiny_world), "--limit", "3", "--compare-published", *REPO_ARGS])
    assert rc == 0, capsys.readouterr().err
    from hoi_adapt.utils.io import file_digest

    # default folder: dataset, checkpoint stem and digest (runs all call theirs last.ckpt), adapt, compare
    out = tmp_path / "outputs" / "eval" / f"synthetic_adapt_{file_digest(tiny_adapt_ckpt)[:8]}_adapt_compare"
    doc = json.loads((out / "synthetic.json").read_text())
    rows = doc["rows"]
    assert list(rows) == ["adapted", "baseline"]
    assert rows["adapted"]["adapt"] is True and rows["baseline"]["adapt"] is False
    assert rows["adapted"]["checkpoint_kind"] == rows["baseline"]["checkpoint_kind"] == "adapt"
    # The second pass sees the translated image, so the two rows are different models' numbers.
    assert rows["adapted"]["metrics"]["rootrel_mpjpe_mm"] != rows["baseline"]["metrics"]["rootrel_mpjpe_mm"]
    assert doc["published"] == []  # nothing citable for the synthetic world
    md = (out / "synthetic.md").read_text()
    assert "| adapted |" in md and "| baseline |" in md


def _empty_world(tmp_path, tiny_world):
    from hoi_adapt.data.formats import world as fmt

    src = fmt.load_annotations(tiny_world, "target_test")
    root = tmp_path / "empty_world"
    (root / "target_test").mkdir(parents=True)
    np.savez(root / "target_test" / fmt.ANNOTATIONS_FILE, **{k: v[:0] for k, v in src.items()})
    return root


@pytest.mark.parametrize("case, pattern", [
    ("unknown_dataset", "unknown dataset 'nope'; known datasets: dexter_object"),
    ("missing_root", "root folder not found"),
    ("missing_ckpt", "checkpoint not found"),
    ("adapt_with_estimator", "--adapt needs an adaptation checkpoint"),
    ("empty_dataset", "no samples"),
    ("bad_loader_option", "--loader-option expects KEY=VALUE"),
    ("bad_protocol", "unknown evaluation protocol"),
])
def test_cli_bad_inputs_give_one_error_line(case, pattern, tiny_estimator_ckpt, tiny_world, tmp_path, capsys):
    ckpt, dataset, root, extra = str(tiny_estimator_ckpt), "synthetic", str(tiny_world), []
    if case == "unknown_dataset":
        dataset = "nope"
    elif case == "missing_root":
        root = str(tmp_path / "missing")
    elif case == "missing_ckpt":
        ckpt = str(tmp_path / "missing.ckpt")
    elif case == "adapt_with_estimator":
        extra = ["--adapt"]
    elif case == "empty_dataset":
        root = str(_empty_world(tmp_path, tiny_world))
    elif case == "bad_loader_option":
        extra = ["--loader-option", "camera"]
    elif case == "bad_protocol":
        extra = ["--protocol", "nonsense"]
    rc = main(["--ckpt", ckpt, "--dataset", dataset, "--root", root, "--out", str(tmp_path / "o"), *REPO_ARGS, *extra])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and err.startswith("hoi-adapt evaluate: error:"), err
    assert pattern in err
    assert not (tmp_path / "o").exists()


def test_console_entry_reports_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hoi_adapt.cli", "evaluate", "--ckpt", str(tmp_path / "x.ckpt"),
                           "--dataset", "stb", "--root", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "checkpoint not found" in proc.stderr
    usage = subprocess.run([sys.executable, "-m", "hoi_adapt.cli", "evaluate", "--dataset", "stb"],
                           capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and "required" in usage.stderr and "Traceback" not in usage.stderr
