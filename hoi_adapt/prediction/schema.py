"""What ``hoi-adapt predict`` writes: the schema names and the folder index (see the package docstring)."""
from __future__ import annotations

SCHEMA = "hoi_adapt.predict"
SCHEMA_VERSION = 1
INDEX_FILE = "predictions.json"
IDENTITY_FIELDS = ("checkpoint.sha256", "adapt", "input_size")
EXTRA_KEYS = ("vertices", "faces", "crop_image", "crop_K", "crop_joints2d", "hand_only_image", "files")
