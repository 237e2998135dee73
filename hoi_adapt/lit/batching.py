"""Helpers for the dict-of-streams batches the data module yields."""
from __future__ import annotations

from typing import Any

import torch


def concat_batches(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate schema batches along the batch dimension (tensors cat, lists extend)."""
    if len(batches) == 1:
        return batches[0]
    out: dict[str, Any] = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.cat(values)
        elif isinstance(values[0], (list, tuple)):
            out[key] = [v for vs in values for v in vs]
        else:
            out[key] = values
    return out


def stream_batches(batch: Any) -> dict[str, dict[str, Any]]:
    """Normalise a training batch to ``{stream: batch}`` (a plain batch becomes ``{"default": batch}``).

    Streams that ran out in a ``max_size`` combination arrive as None and are dropped.
    """
    if isinstance(batch, dict) and "image" not in batch:
        return {k: v for k, v in batch.items() if v is not None}
    return {"default": batch}
