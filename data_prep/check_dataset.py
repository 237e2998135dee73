#!/usr/bin/env python
"""Check a local copy of a hand dataset and build its index cache.

    python data_prep/check_dataset.py --dataset stb --root /data/STB
    python data_prep/check_dataset.py --dataset ho3d --root /data/HO3D_v2 --split train --full
    python data_prep/check_dataset.py --dataset egodexter --root /data/EgoDexter --option image_source=color_on_depth

Reports, per split: the expected tree (present / missing / optional absent), file counts against the
published sizes, malformed annotations (file and line), sampled (or, with ``--full``, all) unreadable or
truncated images, a few fully loaded samples, and finally writes the index cache so that training starts
without re-parsing. Exit status: 0 all good, 1 problems found, 2 bad command line. The expected trees
live in the loaders (``expected_layout``), so this report and ``data_prep/README.md`` never disagree with
the code.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from hoi_adapt.data.datasets.base import HandDataset, LayoutEntry
from hoi_adapt.data.image_io import is_image_file, read_raw
from hoi_adapt.data.registry import REGISTRY, build_dataset, dataset_entry
from hoi_adapt.utils.errors import HoiAdaptError

CHECK_SPLITS: dict[str, tuple[str, ...]] = {"stb": ("all",)}
"""Splits checked by default (others: every distinct split of the loader)."""


class Report:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def line(self, text: str = "") -> None:
        print(text, flush=True)

    def ok(self, text: str) -> None:
        self.line(f"  [ok]      {text}")

    def problem(self, text: str) -> None:
        self.problems.append(text)
        self.line(f"  [PROBLEM] {text}")

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        self.line(f"  [warning] {text}")


def _count(folder: Path, pattern: str) -> int:
    return sum(1 for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def check_layout(root: Path, entries: list[LayoutEntry], rep: Report, allow_partial: bool) -> None:
    seen: set[tuple[str, str | None]] = set()
    for e in entries:
        if (e.path, e.count_glob) in seen:
            continue
        seen.add((e.path, e.count_glob))
        matches: list[Path] = []
        for alt in e.path.split("|"):  # alternatives: the first layout that exists wins
            found = sorted(root.glob(alt)) if any(c in alt for c in "*?[") else [root / alt]
            matches = [m for m in found if (m.is_dir() if e.kind == "dir" else m.is_file())]
            if matches:
                break
        note = f"  ({e.note})" if e.note else ""
        if not matches:
            if e.required:
                rep.problem(f"missing {e.kind} {e.path}{note}")
            else:
                rep.line(f"  [absent]  {e.path} (optional){note}")
            continue
        if e.count_glob is None:
            rep.ok(f"{e.path}{note}")
            continue
        n = sum(_count(m, e.count_glob) for m in matches)
        if n == 0 and not e.required:
            rep.line(f"  [absent]  {e.path}/{e.count_glob} (optional){note}")
            continue
        where = f"{e.path}/{e.count_glob}: {n} files" + (f" in {len(matches)} folders" if len(matches) > 1 else "")
        if e.expected_count is not None and n != e.expected_count:
            msg = f"{where}, published {e.expected_count}{note}"
            (rep.warn if allow_partial or not e.required else rep.problem)(msg)
        else:
            rep.ok(where + (f" (published {e.expected_count})" if e.expected_count is not None else "") + note)


def _indices(n: int, sample: int, full: bool) -> list[int]:
    if full or n <= sample:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, sample).round().astype(int).tolist()))


def check_split(name: str, root: Path, split: str, options: dict[str, Any], args: argparse.Namespace, rep: Report) -> None:
    rep.line(f"== {name} split {split!r} ==")
    common = dict(cache_dir=args.cache_dir, **options)
    try:
        ds = build_dataset(name, root, split, strict=False, use_cache=False, **common)
    except HoiAdaptError as exc:
        rep.problem(f"cannot open the split: {exc}")
        return
    rep.ok(f"annotations parsed: {len(ds)} samples")
    for text in ds.problems:
        rep.problem(f"malformed annotation: {text}")
    for text in ds.warnings:
        rep.warn(text)
    for what, found, published in ds.size_checks():
        msg = f"{what}: {found}, published {published}"
        if found == published:
            rep.ok(msg)
        else:
            (rep.warn if args.allow_partial else rep.problem)(msg)

    idx = _indices(len(ds), args.sample, args.full)
    bad = 0
    n_files = 0
    for i in idx:
        try:
            files = ds.record_files(i)
        except HoiAdaptError as exc:
            rep.problem(str(exc))
            bad += 1
            continue
        for path in files:
            if not is_image_file(path):
                continue  # annotation files were parsed above
            n_files += 1
            try:
                read_raw(path)
            except HoiAdaptError as exc:
                bad += 1
                rep.problem(f"unreadable image: {exc}")
    scope = "all" if len(idx) == len(ds) else f"{len(idx)} sampled"
    rep.line(f"  images: checked {n_files} files of {scope} samples, {bad} unreadable")
    for i in idx[: args.load]:
        try:
            ds[i]
        except HoiAdaptError as exc:
            rep.problem(f"sample {i} does not load: {exc}")
        except Exception as exc:  # noqa: BLE001 - report any loader failure instead of crashing the report
            rep.problem(f"sample {i} does not load ({type(exc).__name__}: {exc})")
    if not ds.problems:
        try:
            cached: HandDataset = build_dataset(name, root, split, use_cache=True, **common)
            rep.ok(f"index cache: {cached._cache_path()}")
        except HoiAdaptError as exc:
            rep.problem(f"index cache not written: {exc}")
    else:
        rep.line("  index cache not written (fix the problems above first)")


def parse_options(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=sorted(n for n, e in REGISTRY.items() if issubclass(e.loader, HandDataset)))
    ap.add_argument("--root", required=True, type=Path, help="dataset root (see data_prep/README.md)")
    ap.add_argument("--split", action="append", help="split to check (repeatable; default: every split)")
    ap.add_argument("--full", action="store_true", help="read every image instead of a sample")
    ap.add_argument("--sample", type=int, default=200, help="samples whose files are read (default 200)")
    ap.add_argument("--load", type=int, default=3, help="samples loaded end-to-end through the loader (default 3)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="index cache root (default $HOI_ADAPT_CACHE)")
    ap.add_argument("--allow-partial", action="store_true", help="count mismatches are warnings, not problems")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="loader option, value in YAML (e.g. camera=BB, negate_xy=false)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    cls = dataset_entry(args.dataset).loader
    options = parse_options(args.option)
    splits = args.split or list(CHECK_SPLITS.get(args.dataset, tuple(dict.fromkeys(cls.SPLITS.values()))))
    rep = Report()
    rep.line(f"Checking {args.dataset} at {args.root}")
    if not args.root.is_dir():
        rep.problem(f"root folder not found: {args.root}")
    else:
        rep.line("== expected tree ==")
        entries: list[LayoutEntry] = []
        for split in splits:
            try:
                entries += cls.expected_layout(split if split in cls.SPLITS else None)
            except KeyError:
                entries += cls.expected_layout(None)
        check_layout(args.root, entries, rep, args.allow_partial)
        for split in splits:
            check_split(args.dataset, args.root, split, options, args, rep)
    rep.line()
    if rep.problems:
        rep.line(f"RESULT: {len(rep.problems)} problem(s), {len(rep.warnings)} warning(s)")
        return 1
    rep.line(f"RESULT: OK ({len(rep.warnings)} warning(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
