"""``hoi-adapt hand-model``: build the stand-in hand model, or check a user's MANO file.

    hoi-adapt hand-model                      # (re)build the stand-in into the cache, print a summary
    hoi-adapt hand-model --out DIR            # ... into DIR
    hoi-adapt hand-model --mano MANO_RIGHT.pkl [--out DIR]   # validate (and convert to .npz in DIR)
    hoi-adapt hand-model --mano models/       # a folder: both MANO_RIGHT and MANO_LEFT
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hoi_adapt.utils.errors import HoiAdaptError


def _mesh_summary(arrays: dict) -> str:
    from hoi_adapt.hand.standin import mesh_report

    r = mesh_report(arrays["v_template"], arrays["f"])
    return (f"mesh: {r['num_verts']} vertices, {r['num_faces']} faces, boundary loops {r['boundary_loops']}, "
            f"non-manifold edges {r['nonmanifold_edges']}, self-intersections {r['self_intersections']}, "
            f"signed volume {r['signed_volume'] * 1e6:.0f} cm^3")


def pose_grid_png(model_path: Path | None, side: str, out_dir: Path) -> Path | None:
    """Render the model in several poses and views to ``<out_dir>/hand_model_<side>.png``."""
    from hoi_adapt.viz.pose_grid import write_pose_grid

    model = model_path if model_path is None or Path(model_path).is_file() else Path(model_path) / f"STANDIN_MANO_{side.upper()}.npz"
    return write_pose_grid(Path(out_dir) / f"hand_model_{side}.png", model, side)


def _check_mano(path: Path, out: Path | None, side: str | None) -> int:
    from hoi_adapt.hand.mano_file import load_mano_arrays, side_from_geometry, summarize, write_mano_npz

    if path.is_dir():
        files = [p for s in ("RIGHT", "LEFT") for p in (path / f"MANO_{s}.pkl", path / f"MANO_{s}.npz") if p.is_file()]
        if side:
            files = [p for p in files if side.upper() in p.name]
        if not files:
            print(f"hoi-adapt hand-model: error: no MANO_RIGHT/LEFT .pkl or .npz in {path}", file=sys.stderr)
            return 1
    else:
        files = [path]
    for file in files:
        arrays = load_mano_arrays(file)
        print(summarize(arrays, file))
        print(_mesh_summary(arrays))
        if out is not None:
            target = out / f"MANO_{side_from_geometry(arrays).upper()}.npz"
            if target.resolve() != file.resolve():
                write_mano_npz(arrays, target)
                print(f"wrote {target}")
        grid = pose_grid_png(file, side_from_geometry(arrays), out or file.parent)
        if grid is not None:
            print(f"wrote {grid}")
        print()
    return 0


def _build_standin(out: Path | None) -> int:
    from hoi_adapt.hand.mano_file import load_mano_arrays
    from hoi_adapt.hand.standin import ensure_standin_files

    paths = ensure_standin_files(out, verify=True)
    for side, pkl in paths.items():
        print(f"{side}: {pkl}\n       {pkl.with_suffix('.npz')}")
    arrays = load_mano_arrays(paths["right"].with_suffix(".npz"))
    print(arrays["standin_notice"])
    print(_mesh_summary(arrays))
    grid = pose_grid_png(paths["right"].parent, "right", out or paths["right"].parent)
    if grid is not None:
        print(f"wrote {grid}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hoi-adapt hand-model",
        description="Build the built-in stand-in hand model (default) or validate a MANO model file.",
    )
    parser.add_argument("--mano", type=Path, default=None,
                        help="a MANO .pkl/.npz file or a folder with MANO_RIGHT/LEFT files to validate")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (stand-in: default is the hoi_adapt cache; with --mano: write clean .npz)")
    parser.add_argument("--side", choices=("right", "left"), default=None, help="only this side of a --mano folder")
    args = parser.parse_args(argv)
    try:
        if args.mano is not None:
            return _check_mano(args.mano, args.out, args.side)
        return _build_standin(args.out)
    except HoiAdaptError as exc:
        print(f"hoi-adapt hand-model: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
