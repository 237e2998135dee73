"""File formats hoi_adapt writes for people and other tools (meshes)."""
