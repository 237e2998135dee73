"""What ``hoi-adapt predict`` writes: the schema names, the folder index and the output file names (see the
package docstring)."""
from __future__ import annotations

import re
from typing import Any

SCHEMA = "hoi_adapt.predict"
SCHEMA_VERSION = 2
INDEX_FILE = "predictions.json"
IDENTITY_FIELDS = ("checkpoint.sha256", "adapt", "input_size")
HAND_EXTRA_KEYS = ("vertices", "faces", "crop_image", "crop_K", "crop_joints2d", "hand_only_image")
"""In-memory fields of a hand (arrays for the caller), not written to the JSON."""

# Per-hand outputs carry the hand's index: <stem>_hand<k>.obj, <stem>_hand<k>_hand_only.png.
_HAND_FILE = re.compile(r"^(?P<stem>.+)_hand\d+(?P<kind>\.obj|_hand_only\.png)$")


def output_names(name: str, adapt: bool, num_hands: int) -> dict[str, Any]:
    """File names of one image's outputs: ``json``, ``overlay`` and per hand ``obj`` (and ``hand_only``)."""
    hands = []
    for k in range(num_hands):
        files = {"obj": f"{name}_hand{k}.obj"}
        if adapt:
            files["hand_only"] = f"{name}_hand{k}_hand_only.png"
        hands.append(files)
    return {"json": f"{name}.json", "overlay": f"{name}_overlay.png", "hands": hands}


def flat_names(files: dict[str, Any]) -> list[str]:
    """Every file name in an :func:`output_names` mapping."""
    names = [str(files["json"]), str(files["overlay"])]
    for hand in files.get("hands", ()):
        names += [str(v) for v in hand.values()]
    return names


def written_by(fname: str, stems: set[str], adapt: bool) -> bool:
    """True if predicting an image with output stem in ``stems`` may write ``fname`` (any number of hands)."""
    if fname.endswith(".json") and fname[:-5] in stems:
        return True
    if fname.endswith("_overlay.png") and fname[:-12] in stems:
        return True
    m = _HAND_FILE.match(fname)
    return bool(m and m["stem"] in stems and (adapt or m["kind"] == ".obj"))
