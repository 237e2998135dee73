"""The package version (a module of its own, so low layers can record it without importing the package root)."""
from __future__ import annotations

__version__ = "0.1.0"
