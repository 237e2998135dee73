"""The package's layering: imports between sub-packages run one way, and never in a cycle.

Every ``import hoi_adapt.X`` / ``from hoi_adapt.X import`` (at module level or inside a function: a lazy
import is still a dependency) is an edge between top-level units of the package (a sub-package or a
root module). Units sit in the layers below; an edge may only point to the same or a lower layer, and the
graph must have no cycle. A failing test names the offending file and import.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hoi_adapt"

# lowest first; a unit may import its own layer or lower ones
LAYERS: list[set[str]] = [
    {"utils", "version", "paths", "io"},
    {"hand"},  # the hand model (MANO or the stand-in)
    {"render"},  # PyTorch3D cameras, rasterisation, shading, overlays
    {"data", "peers"},  # samples, crops, augmentation, dataset formats and loaders, the registry, streams; other models
    {"models", "losses"},  # networks (plain nn.Modules) and their losses
    {"checkpoints", "viz"},  # trained models on disk; pictures people look at
    {"synth", "eval", "callbacks", "deploy"},  # the synthetic world, metrics and protocols, Lightning callbacks, ONNX export/runtime
    {"lit", "export", "prediction"},  # training, dataset export, predict
    {"demo", "demo_report", "cli", "__init__"},  # the applications' entry points
]
LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str:
    """``hoi_adapt.data.crop`` -> ``data``; ``hoi_adapt`` (the package root) -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def edges() -> list[tuple[str, str, str]]:
    """(source unit, target unit, "file:line import") for every import between different units."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent)
        parts = rel.with_suffix("").parts
        source = parts[1] if len(parts) > 1 else "__init__"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
                if node.module == "hoi_adapt":  # from hoi_adapt import x: x is a unit
                    targets = [f"hoi_adapt.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target == "hoi_adapt" or target.startswith("hoi_adapt."):
                    unit = unit_of(target)
                    if unit != source:
                        found.append((source, unit, f"{rel}:{node.lineno} imports {target}"))
    return found


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.is_dir() and (p / "__init__.py").is_file()) or p.suffix == ".py"}
    assert units - set(LAYER_OF) == set(), "new sub-package or root module: give it a layer in LAYERS"
    assert set(LAYER_OF) - units == set()


def test_no_import_points_to_a_higher_layer():
    upward = [where for source, target, where in edges() if LAYER_OF[target] > LAYER_OF[source]]
    assert upward == []


def find_cycle(found: list[tuple[str, str, str]]) -> list[str]:
    """One cycle of units (first unit repeated at the end), or [] when the graph is acyclic."""
    graph: dict[str, set[str]] = {}
    for source, target, _ in found:
        graph.setdefault(source, set()).add(target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                trail = path + [node]
                return trail[trail.index(nxt):] + [nxt]
            if state.get(nxt) is None and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return []

    for unit in sorted(graph):
        if state.get(unit) is None and (cycle := visit(unit, [])):
            return cycle
    return []


def test_no_cycle_between_units():
    cycle = find_cycle(edges())
    assert cycle == [], " -> ".join(cycle)


def test_the_checker_sees_a_cycle(tmp_path, monkeypatch):
    """The graph walk itself: a planted upward import from the data layer to the Lightning layer is reported."""
    pkg = tmp_path / "hoi_adapt"
    for unit in ("data", "lit"):
        (pkg / unit).mkdir(parents=True)
        (pkg / unit / "__init__.py").write_text("")
    (pkg / "data" / "x.py").write_text("def f():\n    from hoi_adapt.lit import y\n")
    (pkg / "lit" / "y.py").write_text("from hoi_adapt.data import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    found = edges()
    assert ("data", "lit", "hoi_adapt/data/x.py:2 imports hoi_adapt.lit") in found
    assert ("lit", "data", "hoi_adapt/lit/y.py:1 imports hoi_adapt.data") in found
    assert [w for s, t, w in found if LAYER_OF[t] > LAYER_OF[s]] == ["hoi_adapt/data/x.py:2 imports hoi_adapt.lit"]
    assert find_cycle(found) == ["data", "lit", "data"]
