"""``hoi-adapt synth``: generate (or resume) the synthetic hand-object world.

    hoi-adapt synth                                    # configs/synth/demo.yaml -> outputs/world/demo
    hoi-adapt synth -c configs/synth/tiny.yaml --out DIR --workers 2 --sheet
    hoi-adapt synth --splits source_pairs,target_hoi   # only these splits (others can follow later)

Re-running on the same folder resumes an interrupted run and reuses finished splits; a folder holding a
world made with another configuration (or seed) is refused before anything is written.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hoi_adapt.utils.errors import ConfigError, HoiAdaptError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = "configs/synth/demo.yaml"
DEFAULT_OUT = "outputs/world/<config name>"
SHEET_NAME = "contact_sheet.png"


def resolve_config(path: str | Path) -> Path:
    """A config path as given, else relative to the source checkout (so the default works from any folder)."""
    p = Path(path).expanduser()
    if p.is_file() or p.is_absolute():
        return p
    candidate = REPO_ROOT / p
    return candidate if candidate.is_file() else p


def _parse_splits(text: str | None, available: list[str]) -> list[str] | None:
    if text is None:
        return None
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [n for n in names if n not in available]
    if not names or unknown:
        raise ConfigError(f"--splits: unknown split(s) {unknown or [text]}; this config has {available}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hoi-adapt synth",
        description="Generate the synthetic hand-object world (hand-only / hand-object pairs, masks, 3D labels). "
        "Deterministic by seed, resumable (run again after an interruption), parallel over CPU workers.",
    )
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                        help=f"world YAML (configs/synth/{{tiny,demo,full}}.yaml; default {DEFAULT_CONFIG})")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output folder (default {DEFAULT_OUT}, e.g. outputs/world/demo as the training configs expect)")
    parser.add_argument("--workers", type=int, default=None, help="CPU worker processes (default: all cores)")
    parser.add_argument("--splits", default=None, help="comma-separated split names to generate (default: all)")
    parser.add_argument("--seed", type=int, default=None, help="override the config's master seed")
    parser.add_argument("--sheet", action="store_true", help=f"also write <out>/{SHEET_NAME} (both domain styles)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from hoi_adapt.synth.generator import generate_world, load_world_config, world_is_complete

        config_path = resolve_config(args.config)
        cfg = load_world_config(config_path)
        out = args.out if args.out is not None else Path("outputs/world") / config_path.stem
        if args.seed is not None:
            cfg.seed = int(args.seed)
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {args.workers}")
        splits = _parse_splits(args.splits, [s.name for s in cfg.splits])
        wanted = [s for s in cfg.splits if splits is None or s.name in splits]
        reused = world_is_complete(cfg, out, [s.name for s in wanted])
        start = time.perf_counter()
        root = generate_world(cfg, out, workers=args.workers, progress=not args.no_progress, splits=splits)
        elapsed = time.perf_counter() - start
        total = sum(s.count for s in wanted)
        verb = "reused" if reused else f"generated in {elapsed:.1f} s"
        print(f"synthetic world {root} ({cfg.image_size} px, seed {cfg.seed}, fingerprint {cfg.fingerprint()}): "
              f"{verb}; {total} samples in {len(wanted)} split(s): " + ", ".join(f"{s.name}={s.count}" for s in wanted))
        if args.sheet:
            from hoi_adapt.synth.contact_sheet import write_contact_sheet

            sheet = write_contact_sheet(root, root / SHEET_NAME)
            print(f"wrote {sheet}")
    except HoiAdaptError as exc:
        print(f"hoi-adapt synth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hoi-adapt synth: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
