#!/usr/bin/env python
"""Generate the synthetic hand-object world (same program as ``hoi-adapt synth``).

    python data_prep/make_synthetic.py [-c configs/synth/demo.yaml] [--out outputs/world/<config name>] [--workers N]
                                       [--splits a,b] [--seed S] [--sheet] [--no-progress]

The on-disk layout is documented in ``hoi_adapt/data/formats/world.py``. Same config and seed give byte-identical
files whatever the worker count; run the command again to resume an interrupted generation.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from hoi_adapt.synth.cli import main as synth_main

    return synth_main(argv)


if __name__ == "__main__":
    sys.exit(main())
