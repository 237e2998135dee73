"""Configuration of the synthetic world (YAML under ``configs/synth/``, read with jsonargparse)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hoi_adapt.synth.styles import DomainStyle, default_source_style, default_target_style
from hoi_adapt.utils.errors import ConfigError

DEFAULT_POSE_MIX: dict[str, float] = {"power": 0.3, "pinch": 0.15, "tripod": 0.15, "relaxed": 0.15, "open": 0.15, "spread": 0.1}


@dataclass
class SplitSpec:
    """One split of the world.

    Attributes:
        name: folder name; the method's streams use ``source_hand`` (labelled hand-only), ``source_pairs``
            (paired hand-object / hand-only, labelled), ``target_hoi`` (hand-object, pose hidden at training
            time), ``target_val`` / ``target_test`` (labelled hand-object) and ``source_hand_test``.
        count: number of samples.
        style: domain style name (a key of ``WorldConfig.styles``).
        with_object: render an object in the grasp (hand-object image + masks); the hand-only twin is
            always rendered.
        left_fraction: share of left hands (loaders mirror them to right hands).
        pose_mix: weights of pose-sampler kinds.
    """

    name: str = "source_hand"
    count: int = 100
    style: str = "source"
    with_object: bool = False
    left_fraction: float = 0.0
    pose_mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_POSE_MIX))


def default_splits() -> list[SplitSpec]:
    return [
        SplitSpec("source_hand", 1200, "source", False),
        SplitSpec("source_pairs", 600, "source", True),
        SplitSpec("target_hoi", 600, "target", True),
        SplitSpec("target_val", 100, "target", True),
        SplitSpec("target_test", 300, "target", True),
        SplitSpec("source_hand_test", 200, "source", False),
    ]


@dataclass
class WorldConfig:
    """Everything that determines the synthetic world's files (same config + seed = identical files).

    Attributes:
        seed: master seed; every sample draws from its own generator seeded by (seed, split, index).
        image_size: side of the square output images (pixels).
        splits: the splits to generate.
        styles: domain styles by name.
        occlusion_range: wanted fraction of hand pixels hidden by the object (uniform target; the view
            closest to the target among ``view_candidates`` is kept and the measured value recorded).
        view_candidates: candidate wrist orientations scored for occlusion per hand-object sample.
        distance_range: hand distance from the camera (metres).
        focal_range: focal length of the virtual full-frame camera (pixels at 640x480).
        crop_margin: crop side as a multiple of the hand's projected extent.
        crop_jitter: max shift of the crop centre (fraction of the crop).
        beta_std: standard deviation of the shape parameters (clipped to +-2.5 std).
        hand_only_background: RGB in [0,1] of the plain hand-only background.
        background_folder: optional folder of user images used for hand-object backgrounds.
        mano_path: hand model (None: the built-in stand-in).
        chunk_size: samples rendered per batch and per resumable unit.
        faces_per_pixel: rasterisation layers of hand-object renders (>= 3 finds a hand behind an object).
        tile_size: screen tiles (pixels) of the CPU rasteriser (``HandObjectRenderer(tile_size=...)``, about 5x
            faster at 128 px); None rasterises whole images. Part of the config because a pixel centre lying
            exactly on an edge may, very rarely, resolve differently with and without tiles.
    """

    seed: int = 0
    image_size: int = 128
    splits: list[SplitSpec] = field(default_factory=default_splits)
    styles: dict[str, DomainStyle] = field(default_factory=lambda: {"source": default_source_style(), "target": default_target_style()})
    occlusion_range: tuple[float, float] = (0.1, 0.6)
    view_candidates: int = 16
    distance_range: tuple[float, float] = (0.35, 0.7)
    focal_range: tuple[float, float] = (480.0, 720.0)
    crop_margin: tuple[float, float] = (1.15, 1.4)
    crop_jitter: float = 0.04
    beta_std: float = 0.8
    hand_only_background: tuple[float, float, float] = (0.5, 0.5, 0.5)
    background_folder: str | None = None
    mano_path: str | None = None
    chunk_size: int = 16
    faces_per_pixel: int = 4
    tile_size: int | None = 16

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if s.name == name:
                return s
        raise KeyError(f"no split {name!r}; splits: {[s.name for s in self.splits]}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def fingerprint(self) -> str:
        """Hash of everything that affects the files (the world folder records it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def validate(self) -> None:
        names = [s.name for s in self.splits]
        if len(set(names)) != len(names):
            raise ConfigError(f"split names must be unique, got {names}")
        for s in self.splits:
            if s.style not in self.styles:
                raise ConfigError(f"split {s.name!r} uses unknown style {s.style!r}; styles: {sorted(self.styles)}")
            if s.count < 0:
                raise ConfigError(f"split {s.name!r} has a negative count")
        lo, hi = self.occlusion_range
        if not 0 <= lo <= hi <= 1:
            raise ConfigError(f"occlusion_range must satisfy 0 <= lo <= hi <= 1, got {self.occlusion_range}")
        if self.image_size < 16 or self.chunk_size < 1 or self.faces_per_pixel < 1:
            raise ConfigError("image_size >= 16, chunk_size >= 1 and faces_per_pixel >= 1 are required")
        if self.tile_size is not None and self.tile_size < 1:
            raise ConfigError(f"tile_size must be null or >= 1, got {self.tile_size}")


def world_config_from_dict(data: dict[str, Any]) -> WorldConfig:
    """Build a WorldConfig from plain data (YAML), rejecting unknown keys with their name."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(WorldConfig, nested_key="world")
    ns = parser.parse_object({"world": data})
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    return instantiate(ns).world
