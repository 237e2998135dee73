"""``hoi-adapt export-onnx``: a checkpoint's E (and G) as ONNX files, checked against PyTorch.

Examples::

    hoi-adapt export-onnx --ckpt estimator.ckpt --out deploy/estimator
    hoi-adapt export-onnx --ckpt adapt.ckpt --adapt --out deploy/adapt --input-size 128

Writes ``estimator.onnx`` (+ ``generator.onnx`` with ``--adapt``) and ``export_onnx.json`` (max abs error of
every output against PyTorch); exits 1 when an output exceeds the tolerance. Graph inputs: ``image``
(batch, 3, S, S) float RGB in [0, 1] and ``K`` (batch, 3, 3); the batch axis is dynamic, S is fixed.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hoi_adapt.utils.errors import HoiAdaptError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hoi-adapt export-onnx", description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", required=True, help="estimator or adaptation checkpoint")
    p.add_argument("--adapt", action="store_true", help="also export G (needs an adaptation checkpoint)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--input-size", type=int, default=None, help="crop size S (default: from the checkpoint, else 128)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="max |onnx - torch| per output, relative to max(1, max |torch|) (default 1e-4)")
    p.add_argument("--mano", default=None, help="MANO folder or file (default: the checkpoint's hand model)")
    p.add_argument("--int8", metavar="CROPS_DIR", default=None,
                   help="also write int8-convolution graphs calibrated on these hand crops (opt-in: changes the "
                        "numbers by a few percent; the report gives the deviation on held-out crops)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        from hoi_adapt.deploy.onnx_export import DEFAULT_TOLERANCE, export_onnx

        report = export_onnx(args.ckpt, args.out, adapt=args.adapt, input_size=args.input_size,
                             tolerance=args.tolerance or DEFAULT_TOLERANCE, mano_path=args.mano, int8_calibration=args.int8)
    except ImportError as exc:
        print(f"hoi-adapt export-onnx: error: {exc.name or exc} is not installed (pip install onnx onnxruntime)", file=sys.stderr)
        return 1
    except HoiAdaptError as exc:
        print(f"hoi-adapt export-onnx: error: {exc}", file=sys.stderr)
        return 1
    for graph in report["graphs"].values():
        worst = max(graph["check"].items(), key=lambda kv: kv[1]["max_abs_error"] / kv[1]["limit"])
        print(f"{args.out}/{graph['file']}: {len(graph['check'])} outputs agree with PyTorch "
              f"(worst {worst[0]}: max abs error {worst[1]['max_abs_error']:.2e}, limit {worst[1]['limit']:.1e})")
    if report["int8"]:
        dev = report["int8"]["deviation_vs_torch"]
        print(f"int8 graphs: {', '.join(report['int8']['files'])}; on {report['int8']['held_out_images']} held-out crops "
              f"joints3d differ from PyTorch by {1000 * dev['joints3d']['mean_abs']:.2f} mm on average "
              f"(max {1000 * dev['joints3d']['max_abs']:.2f} mm) - check accuracy before use")
    print(f"report: {args.out}/export_onnx.json ({report['input_size']} px, dynamic batch, {report['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
