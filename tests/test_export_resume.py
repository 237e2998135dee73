"""An export killed mid-way (SIGKILL in a subprocess, files of a batch written but not its shard) and resumed
gives byte-identical files and manifest to an uninterrupted export."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_checkpoints import write_tiny_adapt_checkpoint

from hoi_adapt.export import export_dataset, verify_export
from hoi_adapt.utils.errors import DataFileError

REPO = Path(__file__).resolve().parents[1]
SIZE, BATCH, LIMIT = 64, 3, 9  # three batches: committed / files only / untouched at the kill




def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_export_resumes_to_identical_files_and_manifest(tiny_world, tmp_path):
    from hoi_adapt.data.registry import build_dataset

    ckpt = write_tiny_adapt_checkpoint(tmp_path / "adapt.ckpt")
    kw = dict(batch_size=BATCH, limit=LIMIT, write_meshes=True, progress=False, image_size=SIZE)
    ref = tmp_path / "uninterrupted"
    export_dataset(ckpt, "synthetic", tiny_world, ref, **kw)

    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    cmd = [sys.executable, str(REPO / "tests" / "fault_injection.py"), "export", "2", "--ckpt", str(ckpt), "--dataset", "synthetic",
           "--root", str(tiny_world), "--out", str(out), "--batch-size", str(BATCH), "--limit", str(LIMIT),
           "--image-size", str(SIZE), "--meshes", "--no-progress"]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]

    # the state a hard kill leaves: batch 1 committed, batch 2's files without a shard, batch 3 never started
    assert sorted(p.name for p in (out / "shards").iterdir()) == ["00000000.npz"]
    assert (out / "images" / "00000005.png").is_file() and not (out / "images" / "00000006.png").exists()
    assert not (out / "annotations.npz").exists() and json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises(DataFileError, match="not finished"):
        build_dataset("adapted", out, "all")
    (out / "images" / ".00000006.png.x1y2z3.tmp").write_bytes(b"half a png")  # an atomic write cut short

    resumed = export_dataset(ckpt, "synthetic", tiny_world, out, **kw)
    assert resumed["run"]["skipped"] == BATCH and resumed["run"]["predicted"] == LIMIT - BATCH
    assert _tree(out) == _tree(ref)  # every file, manifest included, byte for byte
    assert verify_export(out)["ok"]
