"""``hoi-adapt predict``: the command line over :func:`hoi_adapt.prediction.predict`."""
from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hoi_adapt.prediction.core import RunReport, iter_predictions
from hoi_adapt.prediction.detection import DETECTORS
from hoi_adapt.prediction.inputs import PredictNote, PredictWarning, parse_box, parse_K
from hoi_adapt.prediction.schema import INDEX_FILE
from hoi_adapt.utils.errors import HoiAdaptError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hoi-adapt predict",
        description="3D hand joints (JSON), MANO meshes (.obj) and overlays (PNG) for every hand in your images.",
        epilog="Without --K the camera is assumed (fx=fy=1.2*max(H,W)); 3D scale/depth are then approximate. "
               "Without boxes the hands are found by MediaPipe Hands (make peers), else one hand per image by the "
               "estimator's two-pass crop. Unreadable files are reported and skipped (exit code 1); a rerun into "
               "the same --out skips images it finished.")
    p.add_argument("--ckpt", required=True,
                   help="estimator or adaptation checkpoint (.ckpt), or a folder of 'hoi-adapt export-onnx' (ONNX Runtime, CPU)")
    p.add_argument("--onnx-precision", choices=("fp32", "int8"), default="fp32",
                   help="graphs of an ONNX export folder: fp32 (default) or the int8 ones of export-onnx --int8")
    p.add_argument("--input", required=True, nargs="+", help="image file(s) or a folder of images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true",
                   help="replace predictions of another checkpoint (or --adapt / --input-size) already in --out, and "
                        "recompute images an earlier run finished")
    cam = p.add_mutually_exclusive_group()
    cam.add_argument("--K", dest="K", metavar="fx,fy,cx,cy", help="intrinsics of the images (pixels)")
    cam.add_argument("--K-file", metavar="FILE.json", help="one K (3x3 or {fx,fy,cx,cy}) or file name -> K")
    box = p.add_mutually_exclusive_group()
    box.add_argument("--box", metavar="x0,y0,x1,y1", help="hand box of a single image (pixels); no detector runs")
    box.add_argument("--boxes", metavar="FILE.json",
                     help='file name -> [x0, y0, x1, y1], {"box": [...], "side": "left"} or a list of these '
                          "(null: detect)")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="hand detector for images without boxes: auto (mediapipe when installed), mediapipe, none "
                        "(one hand per image, the estimator's two-pass crop)")
    p.add_argument("--max-hands", type=int, default=2, help="most hands detected per image (default 2)")
    p.add_argument("--adapt", action="store_true", help="adapted pipeline: translate to hand-only, then estimate")
    p.add_argument("--left", action="store_true", help="every hand is a left hand (overrides the detector's side)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first unreadable image")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--mano", default=None, help="MANO folder or file (default: the checkpoint's hand model)")
    p.add_argument("--input-size", type=int, default=None, help="network input size (default: from the checkpoint, else 128)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        from tqdm.auto import tqdm

        kind = "note" if issubclass(category, PredictNote) else "warning"
        tqdm.write(f"hoi-adapt predict: {kind}: {message}", file=sys.stderr)

    inputs: Any = args.input if len(args.input) > 1 else args.input[0]
    report = RunReport()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", PredictWarning)
            warnings.showwarning = show
            K = parse_K(args.K) if args.K else (Path(args.K_file) if args.K_file else None)
            boxes = parse_box(args.box) if args.box else (Path(args.boxes) if args.boxes else None)
            for _ in iter_predictions(args.ckpt, inputs, args.out, K=K, boxes=boxes, adapt=args.adapt, left=args.left,
                                      batch_size=args.batch_size, device=args.device, mano_path=args.mano,
                                      input_size=args.input_size, progress=not args.no_progress,
                                      overwrite=args.overwrite, detector=args.detector, max_hands=args.max_hands,
                                      fail_fast=args.fail_fast, report=report, onnx_precision=args.onnx_precision):
                pass
    except HoiAdaptError as exc:
        print(f"hoi-adapt predict: error: {exc}", file=sys.stderr)
        if report.done or report.failed:
            print(f"hoi-adapt predict: stopped: {report.summary()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hoi-adapt predict: interrupted: {report.summary()}; run the same command again to resume",
              file=sys.stderr)
        return 130
    index = Path(args.out) / INDEX_FILE
    print(f"hoi-adapt predict: {report.summary()} -> {index if index.is_file() else args.out}")
    return 1 if report.failed else 0
