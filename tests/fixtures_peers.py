"""Skip marker for tests that need the MediaPipe peer venv (``make peers``; CI does not build it)."""
from __future__ import annotations

import pytest

from hoi_adapt.peers.mediapipe import peer_python
from hoi_adapt.utils.errors import ConfigError


def _peer_missing() -> str | None:
    try:
        peer_python()
    except ConfigError as exc:
        return str(exc)
    return None


PEER_MISSING = _peer_missing()
needs_peer = pytest.mark.skipif(PEER_MISSING is not None, reason=f"MediaPipe peer venv not built: {PEER_MISSING}")
