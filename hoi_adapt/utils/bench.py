"""Shared plumbing of the benchmark scripts in ``experiments/``: machine description, ``--device`` and result files."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from hoi_adapt.utils.io import atomic_path, write_json_atomic

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "experiments" / "results"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, threads, load and library versions (numbers depend on them; record them)."""
    import torch

    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import pytorch3d

        p3d = pytorch3d.__version__
    except ImportError:  # pragma: no cover
        p3d = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "pytorch3d": p3d, "python": platform.python_version(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_average": list(os.getloadavg())}


def bench_device(text: str) -> Any:
    """The ``torch.device`` of a benchmark's ``--device`` (cpu, cuda, cuda:N; gpu is an alias of cuda).

    Exits with one line naming the problem when the text is not one of those or CUDA is asked for but missing.
    """
    import torch

    kind, sep, index = text.partition(":")
    if kind not in ("cpu", "cuda", "gpu") or (sep and (kind == "cpu" or not index.isdigit())):
        raise SystemExit(f"--device must be cpu, cuda or cuda:N, got {text!r}")
    device = torch.device("cuda" if kind == "gpu" else kind, int(index) if index else None)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {text}: CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    return device


def write_result_files(json_path: Path, result: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """``json_path`` and its ``.md`` sibling, written atomically (an interrupted benchmark leaves the old ones)."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(json_path, result)
    with atomic_path(json_path.with_suffix(".md")) as tmp:
        tmp.write_text(markdown)
    print(f"wrote {json_path} and {json_path.with_suffix('.md')}")
    return json_path, json_path.with_suffix(".md")


def write_results(name: str, result: dict[str, Any], markdown_lines: list[str], folder: Path = RESULTS) -> tuple[Path, Path]:
    """``<folder>/<name>.json`` (with the machine description) and ``<name>.md``; the markdown is printed too."""
    info = machine_info()
    text = "\n".join(markdown_lines) + (f"\n\nMachine: {info['cpu']}, {info['cores']} cores, {info['torch_threads']} torch threads, "
                                        f"load average {', '.join(f'{x:.1f}' for x in info['load_average'])}; "
                                        f"torch {info['torch']}, pytorch3d {info['pytorch3d']}.\n")
    print(text)
    return write_result_files(folder / f"{name}.json", {**result, "machine": info}, text)
