#!/usr/bin/env python
"""Generate the built-in stand-in hand model files (NOT MANO; a procedural MANO-compatible hand).

    python data_prep/make_hand_model.py [--out DIR]

Writes STANDIN_MANO_RIGHT/LEFT.pkl (MANO key layout, sparse J_regressor like the official files) and .npz
twins into DIR (default: ``$HOI_ADAPT_CACHE/standin_hand``). Generation is deterministic: running it twice
gives byte-identical files, and existing identical files are left untouched.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from hoi_adapt.hand.standin import ensure_standin_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the hoi_adapt cache)")
    args = parser.parse_args(argv)
    paths = ensure_standin_files(args.out, verify=True)
    for side, pkl in paths.items():
        print(f"{side}: {pkl}")
        print(f"{side}: {pkl.with_suffix('.npz')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
