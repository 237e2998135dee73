"""Write evaluation results as JSON (every number), a markdown table and a PCK-curve PNG.

``results`` is either one result of :func:`~hoi_adapt.eval.protocols.evaluate_protocol` or a mapping
``{row label: result}`` (several methods or ablations on one benchmark). Published rows
(:func:`~hoi_adapt.eval.published.comparison_rows`) may be passed as ``comparison``; they are listed with
their citation and grid, and plotted dashed when they carry a curve. All writes are atomic.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hoi_adapt.eval.metrics import auc
from hoi_adapt.utils.io import atomic_path, jsonable, write_json_atomic

_COUNT_KEYS = ("num_frames", "num_evaluated_frames", "num_skipped_frames", "num_valid_joints")


def _is_single(results: Mapping[str, Any]) -> bool:
    return "protocol" in results and "metrics" in results


def _rows(results: Mapping[str, Any], name: str) -> dict[str, dict[str, Any]]:
    rows = {name: dict(results)} if _is_single(results) else {str(k): dict(v) for k, v in results.items()}
    for label, r in rows.items():
        if not _is_single(r):
            raise ValueError(f"result {label!r} is not an evaluate_protocol() result (needs 'protocol', 'metrics')")
    return rows


def _published_dicts(comparison: Sequence[Any] | None) -> list[dict[str, Any]]:
    out = []
    for row in comparison or []:
        out.append(row.to_dict() if hasattr(row, "to_dict") else dict(row))
    return out


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    v = float(value)
    return f"{v:.2f}" if key.endswith("_mm") else f"{v:.3f}"


def _variant_of(primary: str) -> str:
    for suffix in ("_mpjpe_mm", "_mpvpe_mm", "_median_mm", "_auc"):
        if primary.endswith(suffix):
            return primary[: -len(suffix)]
    return primary


def _grid_line(r: Mapping[str, Any]) -> str:
    t = r["thresholds_mm"]
    return (f"`{r['threshold_grid']}` — {len(t)} thresholds {t[0]:.2f}–{t[-1]:.2f} mm "
            f"({r.get('threshold_grid_source', '')})")


def _markdown(name: str, rows: dict[str, dict[str, Any]], published: list[dict[str, Any]]) -> str:
    lines = [f"# {name}", ""]
    by_protocol: dict[str, list[str]] = {}
    for label, r in rows.items():
        by_protocol.setdefault(r["protocol"], []).append(label)
    for protocol, labels in by_protocol.items():
        first = rows[labels[0]]
        lines += [f"## Protocol `{protocol}`", "", first.get("description", ""), "",
                  f"- Threshold grid: {_grid_line(first)}",
                  f"- PCK: {first.get('pck_mode')} (per variant: "
                  + ", ".join(f"{k}={v}" for k, v in first.get("pck_modes", {}).items()) + ")",
                  f"- Primary metric: `{first.get('primary_metric')}`; errors in mm after the stated alignment", ""]
        keys: list[str] = []
        for label in labels:
            keys += [k for k in rows[label]["metrics"] if k not in keys]
        header = ["method", *keys, "frames", "skipped", "valid joints"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for label in labels:
            r = rows[label]
            cells = [label, *[_fmt(k, r["metrics"].get(k)) for k in keys],
                     str(r.get("num_frames", "–")), str(r.get("num_skipped_frames", "–")),
                     str(r.get("num_valid_joints", "–"))]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for label in labels:
            per_seq = rows[label].get("per_sequence")
            if not per_seq:
                continue
            seq_keys: list[str] = []
            for s in per_seq.values():
                seq_keys += [k for k in s["metrics"] if k not in seq_keys]
            header = ["sequence", *seq_keys, "frames", "skipped", "valid joints"]
            lines += [f"### Per sequence: {label}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for seq, s in per_seq.items():
                cells = [seq, *[_fmt(k, s["metrics"].get(k)) for k in seq_keys], str(s.get("num_frames", "–")),
                         str(s.get("num_skipped_frames", "–")), str(s.get("num_valid_joints", "–"))]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    if published:
        lines += ["## Published results (cited; check the grid before comparing)", "",
                  "| method | dataset | metrics | grid | source | note |", "|---|---|---|---|---|---|"]
        for p in published:
            m = ", ".join(f"{k}={_fmt(k, v)}" for k, v in p.get("metrics", {}).items())
            lines.append(f"| {p.get('method')} | {p.get('dataset')} | {m} | {p.get('grid')} | "
                         f"{p.get('citation')} | {p.get('note', '')} |")
        lines.append("")
    return "\n".join(lines)


def _plot(path: Path, name: str, rows: dict[str, dict[str, Any]], published: list[dict[str, Any]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    fig = Figure(figsize=(7.5, 5.2), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    grids: list[str] = []
    single = len(rows) == 1
    for label, r in rows.items():
        thr = r["thresholds_mm"]
        grid_desc = f"{r['threshold_grid']} ({len(thr)} thr, {thr[0]:.1f}–{thr[-1]:.1f} mm)"
        if grid_desc not in grids:
            grids.append(grid_desc)
        primary = _variant_of(r.get("primary_metric", ""))
        variants = list(r["pck"]) if single else [v for v in r["pck"] if v == primary] or list(r["pck"])[:1]
        for variant in variants:
            curve = r["pck"][variant]
            name_v = variant if single else f"{label} · {variant}"
            ax.plot(thr, curve, marker="o" if len(thr) <= 30 else None, markersize=3, linewidth=1.8,
                    label=f"{name_v} (AUC={auc(curve, thr):.3f})")
    for p in published:
        if p.get("pck") and p.get("thresholds_mm"):
            ax.plot(p["thresholds_mm"], p["pck"], linestyle="--", linewidth=1.2,
                    label=f"{p['method']} [published] (AUC={auc(p['pck'], p['thresholds_mm']):.3f})")
    ax.set_xlabel("error threshold (mm)")
    ax.set_ylabel("3D PCK")
    ax.set_ylim(0.0, 1.02)
    ax.grid(True, linestyle=":", linewidth=0.6)
    has_published = any(p.get("pck") for p in published)
    note = "  (dashed: published, each on its own grid)" if has_published else ""
    ax.set_title(f"{name}: 3D PCK\ngrid {'; '.join(grids)}{note}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def write_results(
    results: Mapping[str, Any], out_dir: str | Path, name: str, *, comparison: Sequence[Any] | None = None,
    identity: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``<name>.json``, ``<name>.md`` and ``<name>_pck.png`` into ``out_dir``; return their paths.

    Args:
        results: one ``evaluate_protocol`` result, or ``{row label: result}``.
        out_dir: output folder (created).
        name: file stem and title.
        comparison: optional published rows (``PublishedRow`` or their dicts).
        identity: which evaluation this is (stored as ``identity`` so a later run can tell whether it would
            replace a different result; see :func:`hoi_adapt.eval.runner.check_out_dir`).
    """
    rows = _rows(results, name)
    published = _published_dicts(comparison)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "md": out / f"{name}.md", "png": out / f"{name}_pck.png"}
    record: dict[str, Any] = {"name": name, "rows": rows, "published": published}
    if identity is not None:
        record["identity"] = identity
    write_json_atomic(paths["json"], jsonable(record))
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(_markdown(name, rows, published), encoding="utf-8")
    _plot(paths["png"], name, rows, published)
    return paths
