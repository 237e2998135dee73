"""The demo's report folder: a README with the results table, plus the pictures people look at."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hoi_adapt.checkpoints.load import load_estimator, load_pipeline, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.data.image_io import write_png
from hoi_adapt.render.cameras import resize_intrinsics
from hoi_adapt.render.overlay import overlay
from hoi_adapt.utils.io import atomic_path
from hoi_adapt.viz.drawing import adapt_panels, draw_skeleton, to_uint8

ROW_METRICS = (
    ("rootrel_mpjpe_mm", "MPJPE (mm, root-rel.)"),
    ("rootrel_auc", "AUC 20-50 mm (21 joints, root-aligned)"),
    ("tips_auc", "AUC 20-50 mm (tips, centroid/scale)"),
    ("pa_mpjpe_mm", "PA-MPJPE (mm)"),
)


def results_table(rows: dict[str, dict[str, float]]) -> str:
    head = "| model | " + " | ".join(name for _, name in ROW_METRICS) + " |"
    sep = "|---" * (len(ROW_METRICS) + 1) + "|"
    lines = [head, sep]
    for label, metrics in rows.items():
        cells = []
        for key, _ in ROW_METRICS:
            value = metrics.get(key)
            cells.append("-" if value is None else (f"{value:.1f}" if key.endswith("_mm") else f"{value:.3f}"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _header(titles: list[str], width: int, height: int = 18) -> np.ndarray:
    import cv2

    bar = np.full((height, width * len(titles), 3), 255, np.uint8)
    for i, title in enumerate(titles):
        cv2.putText(bar, title, (i * width + 3, height - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return bar


def _grid(panels: torch.Tensor, columns: int, titles: list[str]) -> np.ndarray:
    tiles = [to_uint8(p) for p in panels]
    h, w = tiles[0].shape[:2]
    rows = [np.concatenate(tiles[i : i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate([_header(titles, w), *rows], axis=0)


def _upsample(batch: dict[str, Any], factor: int) -> dict[str, Any]:
    """Bigger pictures for small (64 px) models: images nearest-upsampled, K and 2D scaled alike."""
    if factor == 1:
        return batch
    h, w = batch["image"].shape[-2:]
    out = dict(batch)
    for key in ("image", "image_hand_only"):
        out[key] = torch.nn.functional.interpolate(batch[key], scale_factor=factor, mode="bilinear", align_corners=False)
    out["K"] = resize_intrinsics(batch["K"], (h, w), (h * factor, w * factor))
    return out


def translation_figures(report: Path, world: str, split: str, est_ckpt: str, adapt_ckpt: str, n: int = 6,
                        label: str = "full method") -> dict[str, str]:
    """translation_grid.png (input / first-mesh rendering / translation / true twin / final mesh) and
    mesh_overlays.png (baseline vs adapted meshes on the same hand-object images; ``label`` names the adapted column)."""
    from torch.utils.data import DataLoader

    size = read_checkpoint(adapt_ckpt)["hoi_adapt"].get("input_size") or 128
    ds = SyntheticHandDataset(world, split, image="hoi", pair=True, out_size=size)
    batch = next(iter(DataLoader(ds, batch_size=n)))
    pipeline = load_pipeline(adapt_ckpt)
    baseline = load_estimator(est_ckpt)
    with torch.no_grad():
        out = pipeline(batch["image"], batch["K"])
        base = baseline(batch["image"], batch["K"])
    files = {}
    panels = adapt_panels(batch, out, pipeline.estimator.hand_model.faces)
    grid = _grid(torch.nn.functional.interpolate(panels, scale_factor=2, mode="nearest"), 5,
                 ["hand-object input", "rendering of 1st mesh", "translation (G)", "true hand-only", "final mesh"])
    files["translation_grid"] = str(report / "translation_grid.png")
    write_png(report / "translation_grid.png", grid)

    big = _upsample(batch, 2)
    scale = 2.0
    tiles = []
    faces = pipeline.estimator.hand_model.faces
    for i in range(batch["image"].shape[0]):
        img = to_uint8(big["image"][i])
        gt = draw_skeleton(img, batch["joints2d"][i].numpy() * scale + (scale - 1) / 2)
        a = draw_skeleton(overlay(img, base.vertices[i], faces, big["K"][i], color=(1.0, 0.55, 0.4)), base.joints2d[i].numpy() * scale + (scale - 1) / 2)
        b = draw_skeleton(overlay(img, out.final.vertices[i], faces, big["K"][i]), out.final.joints2d[i].numpy() * scale + (scale - 1) / 2)
        tiles += [img, gt, a, b]
    stacked = torch.from_numpy(np.stack(tiles)).permute(0, 3, 1, 2).float() / 255
    files["mesh_overlays"] = str(report / "mesh_overlays.png")
    write_png(report / "mesh_overlays.png", _grid(stacked, 4, ["input", "ground truth", "baseline", label]))
    return files


def build_report(report: Path, *, profile: dict[str, Any], results: dict[str, Any], export: dict[str, Any],
                 est_ckpt: str, adapt_ckpt: str, timings: dict[str, float], total_seconds: float) -> str:
    translation_figures(report, profile["world"], profile["eval_split"], est_ckpt, adapt_ckpt)
    table = results_table(results["rows"])
    grid = results.get("thresholds_mm", [])
    grid_text = f"{len(grid)} thresholds from {grid[0]:g} to {grid[-1]:g} mm" if grid else "n/a"
    timing_lines = "\n".join(f"| {name} | {sec:.0f} |" for name, sec in timings.items())
    pck = Path(results["files"].get("png", "")).name if results.get("files") else ""
    text = f"""# hoi_adapt demo report

Synthetic target-domain hand-object test set (`{profile['eval_split']}` of `{profile['world']}`), built-in
stand-in hand model (not MANO). AUC threshold grid: {grid_text}.

{table}

* baseline: the stage-0 estimator (trained on labelled hand-only images) applied to hand-object images;
* adapted E, no translation: the estimator after adaptation, applied directly to hand-object images;
* full method: image -> E -> mesh -> renderer -> G (hand-only translation) -> E -> skeleton from the final mesh.

## Pictures
* translation grid: [translation_grid.png](translation_grid.png) — input, rendering of E's first mesh (G's
  guidance), G's hand-only translation, the true hand-only twin, the final mesh;
* meshes on the inputs, baseline vs full method: [mesh_overlays.png](mesh_overlays.png);
* PCK curves: [eval/{pck}](eval/{pck}); full numbers: [eval/synthetic.json](eval/synthetic.json);
* the synthetic world: [synthetic_world.png](synthetic_world.png); the hand model: [hand_model.png](hand_model.png).

## Exported adapted dataset
{export.get('count', 0)} samples of `{profile['export_split']}` in `{export.get('out')}` (format: `hoi_adapt/data/formats/adapted.py`).

## Checkpoints
* stage 0: `{est_ckpt}`
* adaptation: `{adapt_ckpt}`

## Time (seconds; 0 = reused from an earlier run)
| step | seconds |
|---|---|
{timing_lines}
| total | {total_seconds:.0f} |

Reproduce: `hoi-adapt demo` (or `make demo`); each step's command is in `README.md` of the repository.
"""
    with atomic_path(report / "README.md") as tmp:
        tmp.write_text(text)
    return table
