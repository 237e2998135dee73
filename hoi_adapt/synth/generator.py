"""Generator of the synthetic hand-object world.

Every sample renders the same posed hand twice from one rasterisation pass: alone on the plain hand-only
background (the hand-only image) and, for splits with objects, holding an object in front of a
procedural background (the hand-object image), with visible-hand, full-hand and object masks.

Determinism and resumption: sample ``i`` of a split draws all randomness from its own generator seeded by
``(seed, split, i)``, rendering runs single-threaded per worker, and work is done in fixed chunks whose
annotation file (written atomically, after the chunk's images) marks completion. An interrupted run is
resumed by running it again: finished chunks are skipped, a partial chunk is redone with identical bytes.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hoi_adapt.data.formats import world as fmt
from hoi_adapt.hand.model import HandModel
from hoi_adapt.hand.pose_sampler import PoseSampler
from hoi_adapt.render.renderer import HandObjectRenderer
from hoi_adapt.render.shading import Lighting
from hoi_adapt.synth.backgrounds import BackgroundFolder, procedural_background
from hoi_adapt.synth.config import SplitSpec, WorldConfig, world_config_from_dict
from hoi_adapt.synth.grasp import place_object
from hoi_adapt.synth.objects import make_object, texture_colors
from hoi_adapt.synth.styles import DomainStyle, sample_appearance
from hoi_adapt.synth.views import crop_intrinsics, estimate_occlusion
from hoi_adapt.utils.errors import ConfigError, DataFileError
from hoi_adapt.utils.io import atomic_path, write_json_atomic
from hoi_adapt.version import __version__

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator owning all randomness of one sample (independent of chunking and worker count)."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), index])


@dataclass
class SceneSample:
    """Everything drawn for one sample before rendering."""

    side: str
    kind: str
    global_orient: np.ndarray  # (3,)
    hand_pose: np.ndarray  # (45,)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (3,)
    K: np.ndarray  # (3,3)
    hand_colors: np.ndarray  # (778,3)
    object_verts: np.ndarray | None
    object_faces: np.ndarray | None
    object_colors: np.ndarray | None
    object_family: str
    light: Any
    background: np.ndarray  # (S,S,3) float32
    style: str


class WorldRenderer:
    """Per-process state: hand models, pose samplers, renderers (built once per worker)."""

    def __init__(self, cfg: WorldConfig) -> None:
        self.cfg = cfg
        self.models = {side: HandModel(cfg.mano_path, side=side) for side in ("right", "left")}
        self.samplers = {side: PoseSampler(m, seed=0) for side, m in self.models.items()}
        self.faces = self.models["right"].faces.numpy()
        size = (cfg.image_size, cfg.image_size)
        self.renderer_obj = HandObjectRenderer(image_size=size, faces_per_pixel=cfg.faces_per_pixel, tile_size=cfg.tile_size)
        self.renderer_hand = HandObjectRenderer(image_size=size, faces_per_pixel=1, tile_size=cfg.tile_size)
        self.backgrounds = BackgroundFolder(cfg.background_folder) if cfg.background_folder else None
        rest = self.models["right"].v_template.numpy().astype(np.float64)
        # Low-frequency per-vertex skin variation (fixed pattern, modulated per sample).
        rng = np.random.default_rng(1234)
        freqs = rng.normal(scale=40.0, size=(6, 3))
        phases = rng.uniform(0, 2 * np.pi, 6)
        self.skin_pattern = np.sin(rest @ freqs.T + phases).mean(1)

    # ------------------------------------------------------------------ drawing one scene
    def _pose(self, split: SplitSpec, rng: np.random.Generator) -> tuple[str, str, np.ndarray, np.ndarray]:
        side = "left" if rng.uniform() < split.left_fraction else "right"
        kinds = list(split.pose_mix)
        p = np.array([split.pose_mix[k] for k in kinds], dtype=np.float64)
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        sampler = self.samplers[side]
        sampler.rng = rng  # the sampler draws from this sample's generator
        pose = sampler.sample(1, kind)[0]
        betas = np.clip(rng.normal(scale=self.cfg.beta_std, size=10), -2.5 * self.cfg.beta_std, 2.5 * self.cfg.beta_std)
        return side, kind, pose, betas

    def draw(self, split: SplitSpec, index: int) -> SceneSample:
        cfg = self.cfg
        rng = sample_rng(cfg.seed, split.name, index)
        style: DomainStyle = cfg.styles[split.style]
        side, kind, pose, betas = self._pose(split, rng)
        model = self.models[side]
        with torch.no_grad():
            out = model(torch.zeros(1, 3), torch.as_tensor(pose[None], dtype=torch.float32),
                        torch.as_tensor(betas[None], dtype=torch.float32))
        verts0 = out.vertices[0].double().numpy()
        joints0 = out.joints[0].double().numpy()
        root = out.joints16[0, 0].double().numpy()

        obj = placement = None
        if split.with_object:
            placement = place_object(joints0, kind, rng, side)
            family = style.object_families[int(rng.integers(len(style.object_families)))]
            obj = make_object(family, placement.radius, rng)
            obj_verts0 = obj.verts @ placement.rotation.T + placement.centre

        # Candidate views: rotate about the MANO root, then move the hand centre to a point in front of the camera.
        n_views = cfg.view_candidates if split.with_object else 1
        orients = self.samplers[side].sample_global_orient(n_views, rng)
        rots = np.stack([cv2.Rodrigues(o.reshape(3, 1))[0] for o in orients])
        depth = rng.uniform(*cfg.distance_range)
        target = np.array([rng.normal(scale=0.03), rng.normal(scale=0.03), depth])
        centre0 = verts0.mean(0)
        transl = target - (np.einsum("mij,j->mi", rots, centre0 - root) + root)  # (M,3)
        if split.with_object:
            hand_cam = np.einsum("mij,vj->mvi", rots, verts0 - root) + root + transl[:, None]
            obj_cam = np.einsum("mij,vj->mvi", rots, obj_verts0 - root) + root + transl[:, None]
            centre_cam = np.einsum("mij,j->mi", rots, placement.centre - root) + root + transl
            occ = estimate_occlusion(hand_cam, self.faces, obj_cam, centre_cam)
            wanted = rng.uniform(*cfg.occlusion_range)
            best = int(np.argmin(np.abs(occ - wanted)))
        else:
            best = 0
        R, t = rots[best], transl[best]
        verts_cam = (verts0 - root) @ R.T + root + t
        focal = rng.uniform(*cfg.focal_range)
        K = crop_intrinsics(verts_cam, cfg.image_size, focal, rng.uniform(*cfg.crop_margin),
                            rng.uniform(-cfg.crop_jitter, cfg.crop_jitter, 2))

        app = sample_appearance(style, rng)
        skin = app.skin_rgb[None] * (1.0 + style.skin_variation * self.skin_pattern[:, None] * rng.uniform(0.5, 1.5))

        light = Lighting(kind="directional", direction=tuple(-app.light_dir), ambient=tuple(app.ambient),
                         diffuse=tuple(app.diffuse), specular=tuple(app.specular), shininess=float(rng.uniform(8, 40)))
        object_verts = object_faces = object_colors = None
        family = ""
        if obj is not None:
            object_verts = (obj_verts0 - root) @ R.T + root + t
            object_faces = obj.faces
            pattern = style.object_patterns[int(rng.integers(len(style.object_patterns)))]
            object_colors = texture_colors(obj, np.asarray(style.object_palette, dtype=np.float64), pattern, rng)
            family = obj.family
        if self.backgrounds is not None and split.with_object:
            background = self.backgrounds.sample(cfg.image_size, rng)
        else:
            kind_bg = style.background_kinds[int(rng.integers(len(style.background_kinds)))]
            background = procedural_background(kind_bg, cfg.image_size, rng, np.asarray(style.background_palette, dtype=np.float32))
        global_orient = cv2.Rodrigues(R)[0].ravel()
        return SceneSample(side, kind, global_orient, pose, betas, t, K, np.clip(skin, 0, 1), object_verts, object_faces,
                           object_colors, family, (light, app.noise_sigma, app.blur_sigma, int(rng.integers(2**31))),
                           background, style.name)

    # ------------------------------------------------------------------ rendering a chunk
    def render(self, split: SplitSpec, indices: Iterable[int]) -> list[dict[str, Any]]:

        scenes = [self.draw(split, i) for i in indices]
        sides = sorted({s.side for s in scenes})
        results: dict[int, dict[str, Any]] = {}
        for side in sides:  # the hand model (and so its faces) differs per side
            members = [k for k, s in enumerate(scenes) if s.side == side]
            results.update(self._render_side(split, [scenes[k] for k in members], members, side))
        return [results[k] for k in range(len(scenes))]

    def _render_side(self, split: SplitSpec, scenes: list[SceneSample], members: list[int], side: str) -> dict[int, dict[str, Any]]:
        model = self.models[side]
        f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            out = model(f32([s.global_orient for s in scenes]), f32([s.hand_pose for s in scenes]),
                        f32([s.betas for s in scenes]), f32([s.transl for s in scenes]))
            joints3d = model.joints_from_vertices(out.vertices).double().numpy()
            lights = [s.light[0] for s in scenes]
            lighting = Lighting(
                kind="directional",
                direction=f32([l.direction for l in lights]), ambient=f32([l.ambient for l in lights]),
                diffuse=f32([l.diffuse for l in lights]), specular=f32([l.specular for l in lights]),
                shininess=f32([l.shininess for l in lights]),
            )
            renderer = self.renderer_obj if split.with_object else self.renderer_hand
            K = f32([s.K for s in scenes])
            rendered = renderer(
                out.vertices, model.faces, K,
                object_verts=[f32(s.object_verts) for s in scenes] if split.with_object else None,
                object_faces=[torch.as_tensor(s.object_faces) for s in scenes] if split.with_object else None,
                hand_colors=f32([s.hand_colors for s in scenes]),
                object_colors=[f32(s.object_colors) for s in scenes] if split.with_object else None,
                lighting=lighting,
            )
        results = {}
        bg_hand = np.asarray(self.cfg.hand_only_background, dtype=np.float32)
        for k, s in enumerate(scenes):
            _, noise, blur, noise_seed = s.light
            noise_rng = np.random.default_rng(noise_seed)
            hand_img = (rendered.hand_image[k].numpy() + (1 - rendered.hand_alpha[k].numpy()[..., None]) * bg_hand)
            full = rendered.hand_full_mask[k].numpy() > 0
            rec: dict[str, Any] = {}
            if split.with_object:
                hoi = rendered.image[k].numpy() + (1 - rendered.alpha[k].numpy()[..., None]) * s.background
                rec["hoi"] = _camera_effects(hoi, noise, blur, noise_rng)
                visible = rendered.hand_visible_mask[k].numpy() > 0
                obj_mask = rendered.object_mask[k].numpy() > 0
                rec["occlusion"] = float(1.0 - visible.sum() / max(full.sum(), 1))
                rec["hand"] = _to_uint8(hand_img)
            else:
                visible, obj_mask = full, np.zeros_like(full)
                rec["occlusion"] = 0.0
                rec["hand"] = _camera_effects(hand_img, noise, blur, noise_rng)
            rec["mask"] = np.stack([visible, full, obj_mask], axis=-1).astype(np.uint8) * 255
            j3 = joints3d[k]
            uv = j3 @ s.K.T
            rec.update(
                K=s.K, joints3d=j3, joints2d=uv[:, :2] / uv[:, 2:3], mano_global_orient=s.global_orient,
                mano_hand_pose=s.hand_pose, mano_betas=s.betas, mano_transl=s.transl, side=s.side, pose_kind=s.kind,
                object_family=s.object_family, style=s.style, has_object=split.with_object,
            )
            results[members[k]] = rec
        return results


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _camera_effects(img: np.ndarray, noise: float, blur: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor blur and noise of a style's camera, applied to the image it takes (not to the ideal twin)."""
    img = img.astype(np.float32)
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if noise > 0:
        img = img + rng.normal(scale=noise, size=img.shape).astype(np.float32)
    return _to_uint8(img)


# ---------------------------------------------------------------------------------------------- writing
def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), PNG_PARAMS)
    if not ok:
        raise DataFileError(path, "PNG encoding failed")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buf.tobytes())


def _chunk_ranges(split: SplitSpec, chunk_size: int) -> list[tuple[int, int]]:
    return [(c, min(c + chunk_size, split.count)) for c in range(0, split.count, chunk_size)]


_WORKER: WorldRenderer | None = None


def _worker_init(cfg_dict: dict[str, Any]) -> None:
    global _WORKER
    torch.set_num_threads(1)  # identical arithmetic in every worker, whatever their number

    _WORKER = WorldRenderer(world_config_from_dict(cfg_dict))


def _do_chunk(task: tuple[str, str, int, int]) -> tuple[str, int]:
    root, split_name, start, stop = task
    assert _WORKER is not None
    split = _WORKER.cfg.split(split_name)
    recs = _WORKER.render(split, range(start, stop))
    root_p = Path(root)
    for i, rec in zip(range(start, stop), recs, strict=True):
        _write_png(fmt.image_path(root_p, split_name, "hand", i), rec["hand"])
        if split.with_object:
            _write_png(fmt.image_path(root_p, split_name, "hoi", i), rec["hoi"])
        _write_png(fmt.image_path(root_p, split_name, "mask", i), rec["mask"])
    arrays = {"index": np.arange(start, stop, dtype=np.int64)}
    for key in fmt.ANNOTATION_KEYS:
        if key == "index":
            continue
        values = [rec[key] for rec in recs]
        if key in ("side", "pose_kind", "object_family", "style"):
            arrays[key] = np.array(values, dtype="<U16")
        elif key == "has_object":
            arrays[key] = np.array(values, dtype=bool)
        else:
            arrays[key] = np.stack(values).astype(np.float32)
    with atomic_path(fmt.chunk_path(root_p, split_name, start // _WORKER.cfg.chunk_size)) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return split_name, stop - start


def _merge_split(root: Path, split: SplitSpec, chunk_size: int) -> None:
    parts = []
    for c, _ in enumerate(_chunk_ranges(split, chunk_size)):
        with np.load(fmt.chunk_path(root, split.name, c), allow_pickle=False) as data:
            parts.append({k: data[k] for k in data.files})
    merged = {k: np.concatenate([p[k] for p in parts]) for k in fmt.ANNOTATION_KEYS} if parts else {}
    with atomic_path(root / split.name / fmt.ANNOTATIONS_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **merged)


def _world_record(cfg: WorldConfig) -> dict[str, Any]:
    return {"format_version": fmt.FORMAT_VERSION, "generator": f"hoi_adapt {__version__}", "fingerprint": cfg.fingerprint(),
            "hand_model": "built-in stand-in (not MANO)" if cfg.mano_path is None else str(cfg.mano_path), "config": cfg.to_dict()}


def _check_world_folder(root: Path, cfg: WorldConfig) -> None:
    record = root / fmt.WORLD_FILE
    if record.exists():
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            raise DataFileError(record, "unreadable world record; remove the folder or choose another output folder") from None
        if old.get("fingerprint") != cfg.fingerprint():
            raise DataFileError(root, "holds a synthetic world generated with a different configuration",
                                "choose another output folder (nothing was overwritten)")
    elif root.exists() and any(root.iterdir()):
        raise DataFileError(root, "is not empty and holds no synthetic world; refusing to write into it")


def _remove_stale_temporaries(split_dir: Path) -> None:
    """Delete temporaries a killed run left behind (atomic writes clean up after themselves otherwise)."""
    for sub in (split_dir, *(split_dir / kind for kind in ("hand", "hoi", "mask", "chunks"))):
        for tmp in sub.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


def generate_world(cfg: WorldConfig, root: str | Path, workers: int | None = None, progress: bool = True,
                   splits: list[str] | None = None) -> Path:
    """Generate (or resume) the world in ``root``; returns the folder."""
    cfg.validate()
    root = Path(root)
    _check_world_folder(root, cfg)
    root.mkdir(parents=True, exist_ok=True)
    if not (root / fmt.WORLD_FILE).exists():  # a re-run leaves a finished world untouched
        write_json_atomic(root / fmt.WORLD_FILE, _world_record(cfg))
    wanted = [s for s in cfg.splits if splits is None or s.name in splits]
    tasks = []
    for split in wanted:
        if (root / split.name / fmt.ANNOTATIONS_FILE).exists():
            continue
        for kind in ("hand", "hoi", "mask", "chunks"):
            (root / split.name / kind).mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(root / split.name)
        for c, (start, stop) in enumerate(_chunk_ranges(split, cfg.chunk_size)):
            if not fmt.chunk_path(root, split.name, c).exists():
                tasks.append((str(root), split.name, start, stop))
    total = sum(stop - start for _, _, start, stop in tasks)
    if tasks:
        from tqdm.auto import tqdm

        workers = max(1, min(workers or (os.cpu_count() or 1), len(tasks)))
        bar = tqdm(total=total, desc=f"synthetic world -> {root}", unit="sample", disable=not progress)
        if workers == 1:
            previous = torch.get_num_threads()
            _worker_init(cfg.to_dict())
            try:
                for task in tasks:
                    bar.update(_do_chunk(task)[1])
            finally:
                torch.set_num_threads(previous)
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_worker_init, initargs=(cfg.to_dict(),)) as pool:
                for _, n in pool.imap_unordered(_do_chunk, tasks):
                    bar.update(n)
        bar.close()
    for split in wanted:
        if not (root / split.name / fmt.ANNOTATIONS_FILE).exists():
            _merge_split(root, split, cfg.chunk_size)
    return root


def load_world_config(path: str | Path) -> WorldConfig:
    """Read a synth YAML (``configs/synth/*.yaml``); unknown keys are errors naming the key."""
    import yaml


    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, "synthetic-world config not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DataFileError(path, f"invalid YAML: {exc}") from None
    data = data.get("world", data)
    try:
        return world_config_from_dict(data)
    except Exception as exc:  # jsonargparse reports the offending key
        raise ConfigError(f"{path}: {exc}") from None


def world_is_complete(cfg: WorldConfig, root: str | Path, splits: list[str] | None = None) -> bool:
    """Whether every split (or every named one) has its merged annotations (does not check the config)."""
    root = Path(root)
    return all((root / s.name / fmt.ANNOTATIONS_FILE).exists() for s in cfg.splits if splits is None or s.name in splits)


def ensure_world(config: str | Path | WorldConfig, root: str | Path, workers: int | None = None, progress: bool = True) -> Path:
    """Generate the world unless it is already complete (re-runs reuse what is built)."""
    cfg = config if isinstance(config, WorldConfig) else load_world_config(config)
    if world_is_complete(cfg, root):
        _check_world_folder(Path(root), cfg)
        return Path(root)
    return generate_world(cfg, root, workers=workers, progress=progress)
