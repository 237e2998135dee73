"""Domain styles: the appearance knobs that make the "source" and "target" synthetic domains differ.

A style is plain data (YAML-configurable through the synth config). The two defaults differ in skin-tone
range, lighting (direction, colour cast, contrast), object families and textures, background kinds,
sensor noise and blur, so the domain shift between labelled source data and the target hand-object test
set is real and measurable.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SKIN_RAMP = np.array(
    [
        [0.98, 0.84, 0.74],
        [0.92, 0.74, 0.62],
        [0.80, 0.60, 0.46],
        [0.64, 0.45, 0.32],
        [0.45, 0.30, 0.20],
        [0.30, 0.19, 0.13],
    ],
    dtype=np.float64,
)
"""Skin colours from light to dark; a style samples a position along this ramp."""


@dataclass
class DomainStyle:
    """Appearance distribution of one domain."""

    name: str = "source"
    skin_range: tuple[float, float] = (0.0, 0.6)
    skin_variation: float = 0.06
    ambient: tuple[float, float] = (0.45, 0.6)
    diffuse: tuple[float, float] = (0.4, 0.55)
    specular: tuple[float, float] = (0.0, 0.08)
    light_spread_deg: float = 35.0
    light_tint: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.97, 0.97, 0.97), (1.0, 1.0, 1.0))
    object_families: list[str] = field(default_factory=lambda: ["sphere", "cylinder", "box", "bottle"])
    object_patterns: list[str] = field(default_factory=lambda: ["solid", "stripes"])
    object_palette: list[tuple[float, float, float]] = field(
        default_factory=lambda: [(0.85, 0.15, 0.1), (0.1, 0.35, 0.85), (0.95, 0.8, 0.1), (0.15, 0.65, 0.25), (0.9, 0.9, 0.9)]
    )
    background_kinds: list[str] = field(default_factory=lambda: ["gradient", "blobs"])
    background_palette: list[tuple[float, float, float]] = field(
        default_factory=lambda: [(0.75, 0.8, 0.85), (0.55, 0.6, 0.7), (0.85, 0.82, 0.75), (0.4, 0.45, 0.5)]
    )
    noise_sigma: tuple[float, float] = (0.0, 0.008)
    blur_sigma: tuple[float, float] = (0.0, 0.0)


def default_source_style() -> DomainStyle:
    return DomainStyle()


def default_target_style() -> DomainStyle:
    return DomainStyle(
        name="target",
        skin_range=(0.3, 1.0),
        skin_variation=0.1,
        ambient=(0.25, 0.4),
        diffuse=(0.55, 0.8),
        specular=(0.05, 0.25),
        light_spread_deg=70.0,
        light_tint=((1.0, 0.82, 0.62), (1.0, 0.95, 0.85)),
        object_families=["torus", "capsule", "ellipsoid", "cone", "cylinder"],
        object_patterns=["checker", "rings", "noise", "stripes"],
        object_palette=[(0.6, 0.1, 0.5), (0.1, 0.55, 0.55), (0.95, 0.5, 0.05), (0.2, 0.2, 0.25), (0.7, 0.85, 0.3)],
        background_kinds=["clutter", "stripes", "noise", "checker"],
        background_palette=[(0.3, 0.25, 0.2), (0.6, 0.45, 0.3), (0.2, 0.3, 0.25), (0.75, 0.7, 0.6), (0.45, 0.2, 0.2)],
        noise_sigma=(0.015, 0.035),
        blur_sigma=(0.3, 0.8),
    )


@dataclass
class Appearance:
    """One sample's drawn appearance (what a style's distribution produced)."""

    skin_rgb: np.ndarray  # (3,)
    light_dir: np.ndarray  # (3,) direction the light travels *from* the camera side, camera frame
    ambient: np.ndarray  # (3,)
    diffuse: np.ndarray  # (3,)
    specular: np.ndarray  # (3,)
    noise_sigma: float
    blur_sigma: float


def skin_colour(position: float) -> np.ndarray:
    """Interpolate the skin ramp at ``position`` in [0, 1]."""
    x = np.clip(position, 0, 1) * (len(SKIN_RAMP) - 1)
    i = min(int(np.floor(x)), len(SKIN_RAMP) - 2)
    t = x - i
    return SKIN_RAMP[i] * (1 - t) + SKIN_RAMP[i + 1] * t


def sample_appearance(style: DomainStyle, rng: np.random.Generator) -> Appearance:
    """Draw lighting, skin and camera-effect parameters for one sample."""
    skin = skin_colour(rng.uniform(*style.skin_range))
    tint = rng.uniform(np.asarray(style.light_tint[0]), np.asarray(style.light_tint[1]))
    # Light from the camera hemisphere: a direction within light_spread_deg of the viewing axis.
    spread = np.deg2rad(style.light_spread_deg)
    theta, phi = rng.uniform(0, spread), rng.uniform(0, 2 * np.pi)
    light_dir = np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])
    return Appearance(
        skin_rgb=skin,
        light_dir=light_dir,
        ambient=rng.uniform(*style.ambient) * tint,
        diffuse=rng.uniform(*style.diffuse) * tint,
        specular=rng.uniform(*style.specular) * tint,
        noise_sigma=float(rng.uniform(*style.noise_sigma)),
        blur_sigma=float(rng.uniform(*style.blur_sigma)),
    )
