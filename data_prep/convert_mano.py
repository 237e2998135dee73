#!/usr/bin/env python
"""Convert an official MANO .pkl (chumpy inside) into a clean .npz that loads without chumpy or pickle.

    python data_prep/convert_mano.py MANO_RIGHT.pkl MANO_RIGHT.npz [--force]

MANO is obtained from https://mano.is.tue.mpg.de (registration required). The input is read with
hoi_adapt's restricted unpickler (chumpy objects are evaluated with numpy, nothing is executed); the
output is verified by reloading it. The MD5 of the input is compared with the official v1.2 files' and
reported (a mismatch is only reported, never an error).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from hoi_adapt.hand.mano_file import (
        load_mano_arrays,
        official_match,
        side_from_geometry,
        side_from_name,
        write_mano_npz,
    )
    from hoi_adapt.utils.errors import HoiAdaptError

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="MANO_RIGHT.pkl / MANO_LEFT.pkl (or an .npz)")
    parser.add_argument("output", type=Path, help="the .npz to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--side", choices=("right", "left"), default=None,
                        help="expected side (default: from the file name; always checked against the geometry)")
    args = parser.parse_args(argv)

    if args.output.exists() and not args.force:
        print(f"convert_mano: {args.output} exists; pass --force to overwrite", file=sys.stderr)
        return 1
    if args.output.suffix != ".npz":
        print(f"convert_mano: the output should end in .npz, got {args.output.name}", file=sys.stderr)
        return 1
    try:
        arrays = load_mano_arrays(args.input)
        side = side_from_geometry(arrays)
        expected = args.side or side_from_name(args.input)
        if expected is not None and expected != side:
            print(f"convert_mano: {args.input} holds a {side} hand, not {expected}", file=sys.stderr)
            return 1
        match = official_match(args.input)
        print(f"input:  {args.input} ({side} hand)")
        print("MD5:    " + (f"matches the official MANO_{match.upper()}.pkl v1.2" if match
                            else "does not match the official MANO v1.2 files (converting anyway)"))
        write_mano_npz(arrays, args.output)
        back = load_mano_arrays(args.output)
        for key, value in arrays.items():
            same = np.array_equal(back[key], value) if isinstance(value, np.ndarray) else back[key] == value
            if not same:
                print(f"convert_mano: verification failed for key {key!r}", file=sys.stderr)
                return 1
    except HoiAdaptError as exc:
        print(f"convert_mano: {exc}", file=sys.stderr)
        return 1
    print(f"wrote:  {args.output} ({args.output.stat().st_size / 1e6:.1f} MB), keys: {', '.join(back)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
