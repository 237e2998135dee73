"""Where generated artefacts live (never inside the package, never committed)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Root for generated models and data: ``$HOI_ADAPT_CACHE`` or ``~/.cache/hoi_adapt``."""
    root = os.environ.get("HOI_ADAPT_CACHE")
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "hoi_adapt"
    path.mkdir(parents=True, exist_ok=True)
    return path


def standin_model_dir() -> Path:
    """Folder holding the generated stand-in hand model files."""
    path = cache_dir() / "standin_hand"
    path.mkdir(parents=True, exist_ok=True)
    return path
