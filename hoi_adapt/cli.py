"""``hoi-adapt`` command line: one entry point, subcommands dispatched lazily.

``fit``/``validate``/``test`` go to LightningCLI (YAML under ``configs/``); the other subcommands are
plain argparse programs living next to the code they drive. Each entry is ``module:function`` taking
``argv: list[str]`` and returning an exit code, so ``hoi-adapt --help`` stays fast.
"""
from __future__ import annotations

import importlib
import sys

from hoi_adapt.version import __version__

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "demo": ("hoi_adapt.demo:main", "the main job: stand-in hand, synthetic world, training, adaptation, evaluation, export, report"),
    "hand-model": ("hoi_adapt.viz.hand_model_cli:main", "build the stand-in hand model (or check a MANO file) and render a pose grid PNG"),
    "synth": ("hoi_adapt.synth.cli:main", "generate the synthetic hand-object world"),
    "fit": ("hoi_adapt.lit.cli:main", "train with LightningCLI: hoi-adapt fit -c configs/<file>.yaml"),
    "validate": ("hoi_adapt.lit.cli:main", "validate a checkpoint with LightningCLI"),
    "test": ("hoi_adapt.lit.cli:main", "test a checkpoint with LightningCLI"),
    "predict": ("hoi_adapt.prediction.cli:main", "run a trained model on your images (joints JSON, .obj mesh, overlay PNG)"),
    "evaluate": ("hoi_adapt.eval.cli:main", "evaluate on a dataset with its standard protocol"),
    "export": ("hoi_adapt.export.cli:main", "export an adapted (de-occluded) dataset with pseudo-labels"),
    "export-onnx": ("hoi_adapt.deploy.cli:main", "export a checkpoint's networks to ONNX, checked against PyTorch (deployment)"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: hoi-adapt <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'hoi-adapt <command> --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"hoi-adapt: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    module_name, func_name = target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    if module_name == "hoi_adapt.lit.cli":
        return int(func([name, *rest]) or 0)
    return int(func(rest) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
