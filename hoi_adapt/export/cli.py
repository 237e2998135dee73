"""``hoi-adapt export``: a trained pipeline over a dataset -> adapted hand-only images + pseudo-labels.

Examples::

    hoi-adapt export --ckpt adapt.ckpt --dataset synthetic --root outputs/world/demo --out outputs/export
    hoi-adapt export --ckpt adapt.ckpt --dataset ho3d --root /data/HO3D_v2 --split train --out /data/ho3d_adapted \\
        --devices 4 --accelerator gpu --batch-size 64 --meshes
    hoi-adapt export --verify outputs/export          # recompute every checksum of the manifest

Rerunning the same command resumes an interrupted export; a different export already in ``--out`` is refused
(naming the folder and each differing setting) unless ``--overwrite``. Layout: :mod:`hoi_adapt.data.formats.adapted`.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hoi_adapt.utils.errors import ConfigError, HoiAdaptError


def _devices(text: str) -> Any:
    return int(text) if text.lstrip("-").isdigit() else text


def _option(text: str) -> tuple[str, Any]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hoi-adapt export",
        description="Export a de-occluded, hand-only version of a hand-object dataset with pseudo-labels "
                    "(images, masks, MANO, 21 joints 3D/2D, K, confidence; optional meshes; FreiHAND-style JSON).",
        epilog="Rerun the same command to resume. Several --devices (or --num-nodes) run DDP with no other change.")
    p.add_argument("--ckpt", help="adaptation checkpoint (or any estimator checkpoint with --no-adapt)")
    p.add_argument("--dataset", help="synthetic, adapted, or a loader name (stb, rhd, freihand, ho3d, obman, ...)")
    p.add_argument("--root", help="dataset folder (synthetic: the world folder)")
    p.add_argument("--out", help="export folder (new, empty, or the same export to resume)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different export already in --out (its files are deleted first)")
    p.add_argument("--split", default=None, help="split (default: target_hoi for synthetic, else train)")
    p.add_argument("--no-adapt", dest="adapt", action="store_false",
                   help="export the input crops with the estimator's pseudo-labels (no translation)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--limit", type=int, default=None, help="export only the first N samples")
    p.add_argument("--devices", type=_devices, default=1, help="Lightning devices (int, list or 'auto')")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--accelerator", default="cpu", help="cpu, gpu, auto")
    p.add_argument("--strategy", default=None, help="Lightning strategy (default: ddp with several devices)")
    p.add_argument("--num-workers", type=int, default=0, help="data-loading workers per process")
    p.add_argument("--meshes", dest="write_meshes", action="store_true", help="also write meshes/<key>.obj")
    p.add_argument("--mano", default=None, help="MANO folder or file (default: the checkpoint's hand model)")
    p.add_argument("--image-size", type=int, default=None, help="network input size (default: from the checkpoint, else 128)")
    p.add_argument("--no-freihand", dest="freihand", action="store_false", help="skip the FreiHAND-style variant")
    p.add_argument("--dataset-option", dest="options", action="append", type=_option, default=[], metavar="KEY=VALUE",
                   help="extra loader argument (YAML value), repeatable")
    p.add_argument("--sheet-rows", type=int, default=8, help="samples in sheet.png (0: none)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.add_argument("--verify", metavar="DIR", default=None, help="only verify the checksums of an export folder")
    return p


def summary_lines(manifest: dict[str, Any], out: Path) -> list[str]:
    """What the user needs after an export: counts, settings, confidence and where to look."""
    src, cfg, run = manifest["source"], manifest["config"], manifest.get("run", {})
    conf = manifest.get("confidence", {}).get("summary", {})
    lines = [
        f"hoi-adapt export: {manifest['count']} samples of {src['dataset']}:{src['split']} ({src['root']}) -> {out}",
        f"  checkpoint {manifest['checkpoint']['path']} ({manifest['checkpoint']['kind']}, sha256 "
        f"{manifest['checkpoint']['sha256'][:12]}...), adapt={cfg['adapt']}, image {cfg['image_size']} px, "
        f"hand model {manifest['hand_model']['type']}",
        f"  files: {manifest.get('counts', {}).get('files', '?')} (checksums in {out / 'manifest.json'})",
    ]
    if conf:
        lines.append(f"  confidence: mean {conf['mean']:.3f}, median {conf['median']:.3f}, p10 {conf['p10']:.3f}, "
                     f"p90 {conf['p90']:.3f}")
    if run:
        speed = f", {run['samples_per_second']:.2f} samples/s" if run.get("samples_per_second") else ""
        lines.append(f"  this run: {run['predicted']} predicted, {run['skipped']} already done, {run['seconds']:.1f} s{speed}")
    if (out / "sheet.png").is_file():
        lines.append(f"  contact sheet: {out / 'sheet.png'}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.verify:
            from hoi_adapt.data.formats.adapted import verify_export

            report = verify_export(args.verify)
            print(json.dumps(report, indent=1))
            return 0 if report["ok"] else 1
        missing = [f"--{n}" for n in ("ckpt", "dataset", "root", "out") if not getattr(args, n)]
        if missing:
            raise ConfigError(f"missing required option(s): {', '.join(missing)}")
        from hoi_adapt.export.run import export_dataset

        manifest = export_dataset(
            args.ckpt, args.dataset, args.root, args.out, split=args.split, adapt=args.adapt, batch_size=args.batch_size,
            limit=args.limit, devices=args.devices, accelerator=args.accelerator, strategy=args.strategy,
            num_workers=args.num_workers, write_meshes=args.write_meshes, mano_path=args.mano, progress=args.progress,
            image_size=args.image_size, freihand=args.freihand, dataset_options=dict(args.options),
            num_nodes=args.num_nodes, sheet_rows=args.sheet_rows, overwrite=args.overwrite)
    except HoiAdaptError as exc:
        print(f"hoi-adapt export: error: {exc}", file=sys.stderr)
        return 1
    if manifest.get("run", {}).get("global_rank", 0) == 0:
        print("\n".join(summary_lines(manifest, Path(args.out).expanduser().resolve())))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
