"""Same seed -> byte-identical world (any worker count); interrupted + resumed == uninterrupted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hoi_adapt.data.formats import world as fmt
from hoi_adapt.synth import generator
from hoi_adapt.synth.config import SplitSpec, WorldConfig
from hoi_adapt.synth.generator import generate_world
from hoi_adapt.utils.errors import DataFileError


def micro_config(seed: int = 3) -> WorldConfig:
    return WorldConfig(seed=seed, image_size=32, chunk_size=4, view_candidates=8, splits=[
        SplitSpec("hand", 6, "source", False),
        SplitSpec("pairs", 10, "target", True, left_fraction=0.5),
    ])


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    root = generate_world(micro_config(), tmp_path_factory.mktemp("ref") / "w", workers=1, progress=False)
    return snapshot(root)


def test_reference_world_is_complete(reference: dict[str, bytes]) -> None:
    names = set(reference)
    assert fmt.WORLD_FILE in names
    for split, n, kinds in (("hand", 6, ("hand", "mask")), ("pairs", 10, ("hand", "hoi", "mask"))):
        assert f"{split}/{fmt.ANNOTATIONS_FILE}" in names
        for kind in kinds:
            assert sum(k.startswith(f"{split}/{kind}/") for k in names) == n
        assert sum(k.startswith(f"{split}/chunks/") for k in names) == -(-n // 4)
    assert not [k for k in names if k.endswith(".tmp")]


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tmp_path: Path, reference: dict[str, bytes]) -> None:
    again = snapshot(generate_world(micro_config(), tmp_path / "w2", workers=2, progress=False))
    assert again.keys() == reference.keys()
    assert [k for k in reference if reference[k] != again[k]] == []


def test_different_seed_gives_different_world(tmp_path: Path, reference: dict[str, bytes]) -> None:
    other = snapshot(generate_world(micro_config(seed=4), tmp_path / "w", workers=1, progress=False))
    assert other.keys() == reference.keys()
    images = [k for k in reference if k.endswith(".png")]
    assert sum(reference[k] != other[k] for k in images) >= 0.9 * len(images)
    assert other["pairs/annotations.npz"] != reference["pairs/annotations.npz"]


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path, reference: dict[str, bytes],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "w"
    original = generator._do_chunk
    calls = {"n": 0}

    class Interrupted(Exception):
        pass

    def crashing_chunk(task: tuple[str, str, int, int]) -> tuple[str, int]:
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th chunk writes its images, then the "machine dies" before its marker
            original(task)
            _, split, start, _ = task
            fmt.chunk_path(root, split, start // 4).unlink()
            image = fmt.image_path(root, split, "hand", start + 1)
            image.write_bytes(image.read_bytes()[:40])  # a torn write
            (image.parent / f".{image.name}.abc123.tmp").write_bytes(b"partial")  # a temporary left behind
            raise Interrupted
        return original(task)

    monkeypatch.setattr(generator, "_do_chunk", crashing_chunk)
    with pytest.raises(Interrupted):
        generate_world(micro_config(), root, workers=1, progress=False)
    partial = snapshot(root)
    assert "pairs/annotations.npz" not in partial and len(partial) < len(reference)
    monkeypatch.setattr(generator, "_do_chunk", original)

    generate_world(micro_config(), root, workers=1, progress=False)
    resumed = snapshot(root)
    assert resumed.keys() == reference.keys()
    assert [k for k in reference if reference[k] != resumed[k]] == []


def test_resume_redoes_only_unfinished_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = generate_world(micro_config(), tmp_path / "w", workers=1, progress=False)
    (root / "pairs" / fmt.ANNOTATIONS_FILE).unlink()
    fmt.chunk_path(root, "pairs", 1).unlink()
    done: list[tuple[str, int, int]] = []
    original = generator._do_chunk
    monkeypatch.setattr(generator, "_do_chunk", lambda t: (done.append(t[1:]), original(t))[1])
    generate_world(micro_config(), root, workers=1, progress=False)
    assert done == [("pairs", 4, 8)]


def test_other_config_in_the_same_folder_is_refused_untouched(tmp_path: Path) -> None:
    root = generate_world(micro_config(), tmp_path / "w", workers=1, progress=False)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    with pytest.raises(DataFileError, match="different configuration"):
        generate_world(micro_config(seed=9), root, workers=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    # an unrelated non-empty folder is refused too
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DataFileError, match="not empty"):
        generate_world(micro_config(), tmp_path / "other", workers=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_killed_process_resumes_to_identical_bytes(tmp_path: Path, reference: dict[str, bytes]) -> None:
    """A real interruption: SIGKILL the generating process once some chunks are done, then resume."""
    root = tmp_path / "w"
    code = (
        "from test_synth_determinism import micro_config\n"
        "from hoi_adapt.synth.generator import generate_world\n"
        f"generate_world(micro_config(), {str(root)!r}, workers=1, progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((root / "hand" / "chunks").glob("*.npz"))) >= 1:
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            pytest.skip("generation finished before it could be interrupted")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (root / "pairs" / fmt.ANNOTATIONS_FILE).exists()
    generate_world(micro_config(), root, workers=1, progress=False)
    resumed = snapshot(root)
    assert resumed.keys() == reference.keys()
    assert [k for k in reference if reference[k] != resumed[k]] == []
