"""``hoi-adapt evaluate``: score checkpoints on a benchmark with its standard protocol.

Examples::

    hoi-adapt evaluate --ckpt runs/est.ckpt --dataset stb --root /data/STB
    hoi-adapt evaluate --ckpt adapted=runs/adapt.ckpt --adapt --compare baseline=runs/est.ckpt \\
        --dataset dexter_object --root /data/dexter+object --compare-published
    hoi-adapt evaluate --ckpt runs/adapt.ckpt --adapt --dataset synthetic --root outputs/world/demo --limit 200
    hoi-adapt evaluate --peer mediapipe --ckpt runs/adapt.ckpt --adapt --dataset do --root /data/dexter+object

Several models share one table and one PCK plot: repeat ``--ckpt`` (all run with ``--adapt`` if given) and/or
add ``--compare`` checkpoints (run with ``--compare-adapt`` if given); each may be written ``LABEL=PATH``.
``--ckpt A --adapt --compare A`` compares an adapted pipeline with its own estimator alone. ``--peer mediapipe``
adds MediaPipe Hands (run in its own venv, built by ``make peers``) on the same crops: detection rate, and
root-relative / Procrustes errors over the detected images; its PCK curve counts misses as failures.

Outputs in ``--out`` (default ``outputs/eval/<dataset>_<ckpt stem>_<sha256[:8]>[_adapt]/``, so another
run's ``last.ckpt`` gets its own folder): ``<dataset>.json`` (every number, threshold grid, protocol, counts,
checkpoint sha256, dataset root/split, crop note, and the evaluation's identity), ``<dataset>.md`` (the
table, printed at the end), ``<dataset>_pck.png`` and ``<dataset>_per_sequence.csv``. Rerunning the same
evaluation refreshes them; a folder holding a different evaluation of ``<dataset>`` (other checkpoints, split,
root, protocol, ``--limit`` or input size) is refused before anything runs unless ``--overwrite``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hoi_adapt.utils.errors import ConfigError, HoiAdaptError

PROG = "hoi-adapt evaluate"


def _parser() -> argparse.ArgumentParser:
    from hoi_adapt.data.registry import ENTRIES
    from hoi_adapt.eval.peer import PEERS
    from hoi_adapt.eval.protocols import PROTOCOLS

    splits = ", ".join(f"{e.name}: {e.eval_split}" for e in ENTRIES)
    names = ", ".join(f"{e.name} ({', '.join(e.aliases)})" if e.aliases else e.name for e in ENTRIES)
    p = argparse.ArgumentParser(
        prog=PROG, description=(__doc__ or "").replace("``", "").replace("::", ":"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Default splits — {splits}. Input crops are the loaders' (from GT boxes/keypoints/masks), as is "
               "standard for these benchmarks.",
    )
    p.add_argument("--ckpt", action="append", default=[], metavar="[LABEL=]PATH",
                   help="checkpoint, or a folder of 'hoi-adapt export-onnx' (run by ONNX Runtime) to evaluate "
                        "(repeatable; --ckpt or --peer is required)")
    p.add_argument("--onnx-precision", choices=("fp32", "int8"), default="fp32",
                   help="graphs of ONNX export folders: fp32 (default) or the int8 ones of export-onnx --int8")
    p.add_argument("--adapt", action="store_true", help="run the --ckpt checkpoints as the adapted pipeline (E, G, E)")
    p.add_argument("--compare", action="append", default=[], metavar="[LABEL=]PATH",
                   help="further checkpoint(s) for the same table and plot")
    p.add_argument("--compare-adapt", action="store_true", help="run the --compare checkpoints as adapted pipelines")
    p.add_argument("--peer", action="append", default=[], choices=sorted(PEERS),
                   help="add a peer method's row, run on the same crops (repeatable)")
    p.add_argument("--peer-upscale", type=int, default=None, metavar="PX",
                   help="enlarge the crops to PX before the peer's detector sees them (default: as they are)")
    p.add_argument("--dataset", required=True, help=f"one of: {names}")
    p.add_argument("--root", required=True, help="dataset root folder (synthetic: the world folder)")
    p.add_argument("--split", default=None, help="dataset split (default: the dataset's evaluation split)")
    p.add_argument("--protocol", default=None, help=f"override the protocol: {', '.join(PROTOCOLS)}")
    p.add_argument("--out", default=None,
                   help="output folder (default outputs/eval/<dataset>_<ckpt stem>_<sha256[:8]>[_adapt]/)")
    p.add_argument("--overwrite", action="store_true", help="replace a different evaluation already in --out")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced samples only (a quick look)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--image-size", type=int, default=None,
                   help="network input size (default: the checkpoint's recorded size, else 128)")
    p.add_argument("--mano", default=None, metavar="PATH",
                   help="MANO model file/folder (the predictor's hand model; GT meshes of FreiHAND/HO-3D)")
    p.add_argument("--loader-option", action="append", default=[], metavar="KEY=VALUE",
                   help="extra dataset-loader argument, YAML value (e.g. camera=BB for STB); repeatable")
    p.add_argument("--compare-published", action="store_true", help="add cited published results to the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _model_arg(text: str, adapt: bool, precision: str = "fp32") -> Any:
    """``PATH`` or ``LABEL=PATH`` (an existing file named with '=' stays a path)."""
    from hoi_adapt.eval.runner import ModelSpec

    label = None
    path = text
    if "=" in text and not Path(text).exists():
        label, path = text.split("=", 1)
        if not label or not path:
            raise ConfigError(f"expected PATH or LABEL=PATH, got {text!r}")
    return ModelSpec(Path(path).expanduser(), adapt, label, precision)


def _loader_options(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--loader-option expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--loader-option {key}: cannot parse {value!r} ({exc})") from None
    return out


def _run(args: argparse.Namespace) -> int:
    from hoi_adapt.eval.runner import default_out_dir, evaluate_checkpoints

    models = ([_model_arg(c, args.adapt, args.onnx_precision) for c in args.ckpt]
              + [_model_arg(c, args.compare_adapt, args.onnx_precision) for c in args.compare])
    options = _loader_options(args.loader_option)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    if not models and not args.peer:
        raise ConfigError("give at least one --ckpt or --peer")
    dataset_key = str(args.dataset).lower()
    if args.out:
        out_dir = Path(args.out)
    elif models:
        out_dir = default_out_dir(dataset_key, models[0])
        if len(models) + len(args.peer) > 1:
            out_dir = out_dir.with_name(out_dir.name + "_compare")
    else:
        out_dir = Path("outputs/eval") / f"{dataset_key}_{'_'.join(args.peer)}"
    result = evaluate_checkpoints(
        models, args.dataset, args.root, args.split, out_dir=out_dir, batch_size=args.batch_size, device=args.device,
        limit=args.limit, num_workers=args.num_workers, mano_path=args.mano, compare_published=args.compare_published,
        protocol=args.protocol, image_size=args.image_size, dataset_options=options or None, progress=not args.quiet,
        overwrite=args.overwrite, peers=args.peer,
        peer_options={"upscale_to": args.peer_upscale} if args.peer_upscale else None,
    )
    files = result["files"]
    print(Path(files["md"]).read_text(encoding="utf-8"))
    print("written:")
    for kind in ("json", "md", "png", "csv"):
        print(f"  {kind:4s} {files[kind]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse already printed usage and the error (or the help)
        return int(exc.code or 0)
    try:
        return _run(args)
    except (HoiAdaptError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
