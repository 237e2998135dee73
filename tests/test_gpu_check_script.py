"""experiments/gpu_check.sh (the prepared check for a GPU machine): syntax, usage, and its summary plumbing with
every step skipped (about a second; the steps themselves need the environment and, for real, a GPU)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "gpu_check.sh"
STEPS = ("install", "smi", "facts", "tests", "world", "train", "infer")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # the summary runs on the first python3 on PATH: make it this interpreter's
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path, **(env or {})})


def test_syntax() -> None:
    out = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_help_and_usage_errors() -> None:
    out = _run("--help")
    assert out.returncode == 0
    assert "--dry-run" in out.stdout and "HOI_ADAPT_PYTHON" in out.stdout and "OUT" in out.stdout
    assert _run("--no-such-option").returncode == 2
    assert _run("--budget", "soon").returncode == 2


def test_summary_with_every_step_skipped(tmp_path: Path) -> None:
    results, out_dir = tmp_path / "results", tmp_path / "out"
    out = _run("--dry-run", "--skip", ",".join(STEPS), "--results-dir", str(results), env={"OUT": str(out_dir)})
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads((results / "gpu_check.json").read_text())
    assert summary["dry_run"] is True and summary["ok"] is True
    assert [s["name"] for s in summary["steps"]] == list(STEPS)
    assert {s["status"] for s in summary["steps"]} == {"skipped"}
    assert "| train | skipped |" in (results / "gpu_check.md").read_text()
    assert (out_dir / "gpu_check.json").exists() and (out_dir / "gpu_check.md").exists()
    assert (out_dir / "gpu_check_logs" / "gpu_check.log").exists()
