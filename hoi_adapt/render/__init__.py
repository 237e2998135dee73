"""Differentiable rendering of hands and objects with PyTorch3D (the method's renderer R).

* :mod:`~hoi_adapt.render.cameras`: OpenCV intrinsics -> PyTorch3D cameras (exact pixel alignment),
  ``project`` / ``backproject``.
* :mod:`~hoi_adapt.render.shading`: per-sample Phong lighting parameters.
* :mod:`~hoi_adapt.render.renderer`: :class:`HandObjectRenderer` (joined hand+object pass, soft silhouette,
  generator guidance).
* :mod:`~hoi_adapt.render.fragments`: fast CPU gradients (vectorised recomputation of PyTorch3D fragments).
* :mod:`~hoi_adapt.render.overlay`: a shaded mesh over a photo for visualisation (no OpenGL).
"""
from hoi_adapt.render.cameras import backproject, cameras_from_K, project
from hoi_adapt.render.overlay import overlay
from hoi_adapt.render.renderer import EMPTY, HAND, OBJECT, HandObjectRenderer, RenderOutput
from hoi_adapt.render.shading import OBJECT_COLOR, SKIN_COLOR, Lighting

__all__ = [
    "EMPTY", "HAND", "OBJECT", "HandObjectRenderer", "Lighting", "OBJECT_COLOR", "RenderOutput", "SKIN_COLOR",
    "backproject", "cameras_from_K", "overlay", "project",
]
