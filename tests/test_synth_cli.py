"""``hoi-adapt synth`` / ``data_prep/make_synthetic.py`` and the contact sheet."""
from __future__ import annotations

import runpy
from pathlib import Path

import cv2
import numpy as np
import pytest

from hoi_adapt.cli import main as hoi_adapt_main
from hoi_adapt.data.formats import world as fmt
from hoi_adapt.synth.cli import SHEET_NAME, main
from hoi_adapt.synth.contact_sheet import mask_colors, pick_samples, write_contact_sheet
from hoi_adapt.utils.errors import DataFileError

REPO = Path(__file__).resolve().parents[1]
TINY = str(REPO / "configs/synth/tiny.yaml")


def state(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("cli") / "world"
    rc = hoi_adapt_main(["synth", "-c", TINY, "--out", str(out), "--workers", "1", "--no-progress", "--sheet"])
    return out, rc


def test_cli_writes_the_world_and_the_sheet(cli_world: tuple[Path, int], tiny_world: Path, capsys) -> None:
    out, rc = cli_world
    assert rc == 0
    for split in ("source_hand", "source_pairs", "target_hoi", "target_val", "target_test", "source_hand_test"):
        assert (out / split / fmt.ANNOTATIONS_FILE).is_file()
    # the same config and seed as the session's tiny world: the same bytes
    ours = {k: v[1] for k, v in state(out).items() if k != SHEET_NAME}
    theirs = {k: v[1] for k, v in state(tiny_world).items()}
    assert ours.keys() == theirs.keys() and all(ours[k] == theirs[k] for k in ours)
    sheet = cv2.imread(str(out / SHEET_NAME))
    assert sheet is not None and sheet.shape[0] > 1000 and sheet.shape[1] > 700


def test_cli_rerun_reuses_the_world(cli_world: tuple[Path, int], capsys) -> None:
    out, _ = cli_world
    before = {k: v for k, v in state(out).items()}
    assert main(["-c", TINY, "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    assert "reused" in capsys.readouterr().out
    assert state(out) == before


def test_cli_refuses_another_config_without_touching_files(cli_world: tuple[Path, int], capsys) -> None:
    out, _ = cli_world
    before = state(out)
    assert main(["-c", TINY, "--out", str(out), "--seed", "7", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and str(out) in err
    assert main(["-c", str(REPO / "configs/synth/demo.yaml"), "--out", str(out), "--no-progress"]) == 2
    assert state(out) == before


def test_cli_errors_are_one_line_messages(tmp_path: Path, capsys) -> None:
    assert main(["-c", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "w")]) == 2
    assert "synthetic-world config not found" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\nimage_sise: 64\n")
    assert main(["-c", str(bad), "--out", str(tmp_path / "w")]) == 2
    assert "image_sise" in capsys.readouterr().err
    assert main(["-c", TINY, "--out", str(tmp_path / "w"), "--splits", "source_hand,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["-c", TINY, "--out", str(tmp_path / "w"), "--workers", "0"]) == 2
    assert not (tmp_path / "w").exists()


def test_cli_generates_only_the_chosen_splits_via_the_data_prep_wrapper(tmp_path: Path) -> None:
    wrapper = runpy.run_path(str(REPO / "data_prep/make_synthetic.py"))
    out = tmp_path / "w"
    assert wrapper["main"](["-c", TINY, "--out", str(out), "--workers", "1", "--no-progress", "--splits", "target_val"]) == 0
    done = sorted(p.parent.name for p in out.glob(f"*/{fmt.ANNOTATIONS_FILE}"))
    assert done == ["target_val"]


def test_contact_sheet_content(cli_world: tuple[Path, int], tmp_path: Path) -> None:
    out, _ = cli_world
    path = write_contact_sheet(out, tmp_path / "sheet.png", rows_per_style=2)
    small = cv2.imread(str(path))
    big = cv2.imread(str(out / SHEET_NAME))
    assert small.shape[1] == big.shape[1] and small.shape[0] < big.shape[0]  # fewer rows
    rgb = big[..., ::-1]
    # all three mask classes appear in their legend colours
    for colour in ((60, 200, 80), (235, 60, 60), (60, 120, 240)):
        assert (np.abs(rgb.astype(int) - colour).sum(-1) == 0).sum() > 500, colour
    with pytest.raises(DataFileError, match="world record"):
        write_contact_sheet(tmp_path, tmp_path / "x.png")


def test_mask_colours_and_sample_picking() -> None:
    m = np.zeros((2, 3, 3), np.uint8)
    m[0, 0] = (255, 255, 0)  # visible hand
    m[0, 1] = (0, 255, 255)  # occluded hand behind the object
    m[0, 2] = (0, 0, 255)  # object
    c = mask_colors(m)
    assert tuple(c[0, 0]) == (60, 200, 80) and tuple(c[0, 1]) == (235, 60, 60) and tuple(c[0, 2]) == (60, 120, 240)
    assert tuple(c[1, 0]) == (25, 25, 25)
    occ = np.array([0.5, 0.1, 0.9, 0.3, 0.0])
    assert pick_samples(occ, 3) == [4, 3, 2]  # lowest, median, highest occlusion
    assert pick_samples(occ, 10) == [4, 1, 3, 0, 2]
