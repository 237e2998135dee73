"""Safe loading, enforced on the source tree: every deserialisation of a file goes through a safe path.

Rules (README "Safety"): ``torch.load`` only with ``weights_only=True``; pickles only through
``hoi_adapt/utils/safe_pickle.py``; ``np.load`` only with ``allow_pickle=False``; YAML only with
``yaml.safe_load``; no ``eval``/``exec``/``compile``/``__import__``; dynamic imports only in the few places
that resolve names from a fixed table or an allow-list. The scanner works on the syntax tree (comments and
strings cannot fool it) and is itself tested on planted violations.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("hoi_adapt", "data_prep", "experiments")
PICKLE_MODULE = "hoi_adapt/utils/safe_pickle.py"
# dynamic imports: the CLI's fixed command table, lazy package exports, and build_network's allow-list
IMPORT_MODULE_ALLOWED = {"hoi_adapt/cli.py", "hoi_adapt/utils/lazy.py", "hoi_adapt/models/config.py"}
BANNED_CALLS = {"eval", "exec", "compile", "__import__", "execfile"}
BANNED_MODULES = {"marshal", "shelve", "dill", "cloudpickle", "joblib"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _kw(call: ast.Call, name: str) -> object:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return "<missing>"


def violations(source: str, rel: str) -> list[str]:
    """Unsafe-loading patterns in one file's source (``rel``: its path relative to the repository)."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        where = f"{rel}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in BANNED_MODULES:
                    out.append(f"{where}: imports {name}")
            if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("pickle", "_pickle", "cPickle")
                    and rel != PICKLE_MODULE and any(a.name in ("load", "loads", "Unpickler", "_loads", "_load") for a in node.names)):
                out.append(f"{where}: imports a pickle loader (use hoi_adapt.utils.safe_pickle)")  # dumps is fine
            if isinstance(node, ast.ImportFrom) and node.module == "yaml" and any(a.name in ("load", "unsafe_load", "full_load", "load_all") for a in node.names):
                out.append(f"{where}: imports an unsafe yaml loader")
            if isinstance(node, ast.ImportFrom) and node.module == "torch" and any(a.name == "load" for a in node.names):
                out.append(f"{where}: from torch import load (call torch.load(..., weights_only=True))")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if isinstance(node.func, ast.Name) and node.func.id in BANNED_CALLS:
            out.append(f"{where}: calls {node.func.id}()")
        elif name == "torch.load" and _kw(node, "weights_only") is not True:
            out.append(f"{where}: torch.load without weights_only=True")
        elif name in ("np.load", "numpy.load") and _kw(node, "allow_pickle") is not False:
            out.append(f"{where}: np.load without allow_pickle=False")
        elif name.split(".")[-1] in ("load", "loads", "Unpickler") and name.split(".")[0] in ("pickle", "_pickle") and rel != PICKLE_MODULE:
            out.append(f"{where}: {name} (use hoi_adapt.utils.safe_pickle.load_pickle)")
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            out.append(f"{where}: {name} (use yaml.safe_load)")
        elif name.endswith("import_module") and rel not in IMPORT_MODULE_ALLOWED:
            out.append(f"{where}: dynamic import")
        elif name in ("torch.jit.load", "torch.hub.load", "torch.hub.load_state_dict_from_url", "urllib.request.urlopen"):
            out.append(f"{where}: {name}")
        if any(kw.arg == "allow_pickle" and isinstance(kw.value, ast.Constant) and kw.value.value is True for kw in node.keywords):
            out.append(f"{where}: allow_pickle=True")
    return out


def test_the_source_tree_loads_files_only_safely():
    found: list[str] = []
    files = 0
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            found += violations(path.read_text(encoding="utf-8"), rel)
            files += 1
    assert files > 50
    assert not found, "\n".join(found)


@pytest.mark.parametrize("snippet", [
    "import torch\nx = torch.load('a.ckpt')",
    "import torch\nx = torch.load('a.ckpt', weights_only=False)",
    "from torch import load",
    "import pickle\nx = pickle.load(open('a', 'rb'))",
    "import pickle\nx = pickle.loads(b'')",
    "from pickle import Unpickler",
    "import numpy as np\nx = np.load('a.npy')",
    "import numpy as np\nx = np.load('a.npz', allow_pickle=True)",
    "import yaml\nx = yaml.load(open('c.yaml'))",
    "import yaml\nx = yaml.unsafe_load('a: 1')",
    "x = eval('1 + 1')",
    "exec('print(1)')",
    "import importlib\nm = importlib.import_module('os')",
    "import marshal",
    "import torch\nm = torch.jit.load('m.pt')",
])
def test_the_scanner_catches_planted_violations(snippet):
    assert violations(snippet, "hoi_adapt/some_module.py"), snippet


def test_the_scanner_accepts_the_safe_forms():
    safe = ("import torch, yaml, numpy as np\nfrom hoi_adapt.utils.safe_pickle import load_pickle\n"
            "a = torch.load('a.ckpt', map_location='cpu', weights_only=True)\nb = np.load('b.npz', allow_pickle=False)\n"
            "c = yaml.safe_load('x: 1')\nd = load_pickle('m.pkl')\nmodel.eval()\n# torch.load('x') in a comment\ns = 'eval(1)'\n")
    assert violations(safe, "hoi_adapt/some_module.py") == []


def test_a_checkpoint_that_references_code_is_refused_without_running_it(tmp_path):
    import pathlib

    import torch

    from hoi_adapt.checkpoints.load import read_checkpoint
    from hoi_adapt.utils.errors import CheckpointError

    path = tmp_path / "object.ckpt"
    torch.save({"state_dict": {}, "extra": pathlib.PurePosixPath("x")}, path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="contains objects other than tensors and plain data; refused"):
        read_checkpoint(path)
    assert path.read_bytes() == before
