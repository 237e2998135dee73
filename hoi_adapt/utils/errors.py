"""Errors that name the file (or config key) and the problem, so users never debug numpy tracebacks."""
from __future__ import annotations

from pathlib import Path


class HoiAdaptError(Exception):
    """Base class for every error hoi_adapt raises on purpose."""


class DataFileError(HoiAdaptError, ValueError):
    """A file on disk is missing, unreadable or not in the expected format."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class ModelFileError(DataFileError):
    """A hand-model (MANO) file is missing or malformed."""


class CheckpointError(DataFileError):
    """A checkpoint cannot be used with this model."""


class ConfigError(HoiAdaptError, ValueError):
    """A configuration value or key is invalid."""


class PeerError(HoiAdaptError, RuntimeError):
    """A third-party peer estimator (run in its own venv) failed, timed out or answered malformed data."""
