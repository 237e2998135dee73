"""Load trained networks from Lightning checkpoints safely (``weights_only=True``, allow-listed classes).

Used by ``predict``, ``evaluate`` and ``export``. A checkpoint from another model, a truncated file or an
arbitrary pickle gets a :class:`CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import inspect
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hoi_adapt.checkpoints.format import CHECKPOINT_KEY, HAND_MODEL_KEY
from hoi_adapt.hand.joint_maps import canonical_order, tip_vertices
from hoi_adapt.models.config import build_network, network_config
from hoi_adapt.models.pipeline import AdaptPipeline
from hoi_adapt.utils.errors import CheckpointError
from hoi_adapt.utils.io import file_digest


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded without executing code; validated as a hoi_adapt checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):  # the weights-only unpickler met a class or function reference
            raise CheckpointError(path, "contains objects other than tensors and plain data; refused (hoi_adapt never "
                                        "unpickles code from checkpoints)") from None
        detail = str(exc).split("WeightsUnpickler error:")[-1].strip().splitlines()[0][:200]
        raise CheckpointError(path, f"not a loadable checkpoint (UnpicklingError: {detail}); only tensors and plain "
                                    "data are accepted") from None
    except Exception as exc:  # truncated or foreign files fail in many ways
        raise CheckpointError(path, f"not a loadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    meta = ckpt.get(CHECKPOINT_KEY)
    if not isinstance(meta, dict) or "networks" not in meta:
        raise CheckpointError(path, "not a hoi_adapt checkpoint (no network description); was it written by another project?")
    return ckpt


def checkpoint_sha256(path: str | Path) -> str:
    return file_digest(path, "sha256")


def _sub_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _load_into(net: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    own = net.state_dict()
    for key, value in own.items():  # hand-model arrays are never stored; take the local model's
        if HAND_MODEL_KEY in key or key.startswith("hand_model."):
            state.setdefault(key, value)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(path, f"{name} weights do not match the network: {len(missing)} missing (e.g. {missing[:2]}), "
                                    f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    bad = [k for k in own if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        raise CheckpointError(path, f"{name} tensor {bad[0]} has shape {tuple(state[bad[0]].shape)}, expected {tuple(own[bad[0]].shape)}")
    net.load_state_dict(state)


def _network_config(ckpt: dict[str, Any], path: Path, name: str) -> dict[str, Any]:
    """The recorded description of network ``name``; a checkpoint without it is refused, naming the file."""
    config = ckpt[CHECKPOINT_KEY]["networks"].get(name)
    if not config:
        raise CheckpointError(path, f"has no {name!r} network (it is a {ckpt[CHECKPOINT_KEY].get('kind', '?')!r} checkpoint)")
    return config


def build_from_checkpoint(path: str | Path, name: str, ckpt: dict[str, Any] | None = None, **overrides: Any) -> nn.Module:
    """Rebuild network ``name`` ("estimator", "generator", "guidance", ...) and load its weights."""
    path = Path(path)
    ckpt = ckpt if ckpt is not None else read_checkpoint(path)
    net = build_network(_network_config(ckpt, path, name), source=str(path), **overrides)
    _load_into(net, _sub_state(ckpt["state_dict"], f"{name}."), path, name)
    return net.eval()


def init_weights_from(net: nn.Module, path: str | Path, name: str = "estimator", ckpt: dict[str, Any] | None = None) -> None:
    """Copy network ``name``'s weights from a checkpoint into ``net`` (the configured network, e.g. a stage-0 E
    starting the adaptation or the oracle). The architecture must match; ``net`` keeps its own hand model.
    ``ckpt``: the checkpoint already read from ``path``."""
    path = Path(path)
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    _network_config(ckpt, path, name)
    _load_into(net, _sub_state(ckpt["state_dict"], f"{name}."), path, name)


def init_estimator_checked(net: nn.Module, path: str | Path, input_size: int | None = None) -> None:
    """:func:`init_weights_from` for the E that starts a training run, refusing a checkpoint made for other settings.

    Equal tensor shapes do not make the weights fit: an E trained with the other kind of hand model (stand-in
    vs MANO), another joint order, fingertip preset or skeleton definition, or at another input size loads silently and then trains
    against a different skeleton or scale. These are compared first (names and presets by what they resolve
    to; MANO paths not, since they differ between machines; ``input_size``: the run's data size, None skips
    it, as does a checkpoint that does not record its own), and any difference is one :class:`CheckpointError`
    naming the file and every mismatch.
    """
    path = Path(path)
    ckpt = read_checkpoint(path)
    saved = _network_config(ckpt, path, "estimator").get("init_args") or {}
    own = network_config(net)["init_args"]
    # retired arguments (recorded by older checkpoints) count as their only value
    defaults = {**getattr(type(net), "RETIRED_ARGS", {}), **{k: p.default for k, p in inspect.signature(type(net)).parameters.items()}}

    meaning = {"mano_path": lambda v: v is None, "joint_order": canonical_order, "tip_preset": tip_vertices,
               "skeleton": str}

    def same(key: str, a: Any, b: Any) -> bool:
        try:
            return meaning[key](a) == meaning[key](b)
        except (TypeError, ValueError):  # an unknown name: compare as written
            return a == b

    def shown(key: str, value: Any) -> str:
        if key == "mano_path":
            return "the stand-in hand model" if value is None else f"MANO ({value})"
        return f"{key} {value!r}"

    mismatches = []
    for key in meaning:
        mine, theirs = own.get(key, defaults.get(key)), saved.get(key, defaults.get(key))
        if not same(key, mine, theirs):
            mismatches.append(f"{shown(key, theirs)} in the checkpoint, {shown(key, mine)} in this run")
    trained = checkpoint_input_size(ckpt)
    if input_size and trained and int(input_size) != trained:
        mismatches.append(f"input size {trained} px in the checkpoint, {int(input_size)} px in this run (data.image_size)")
    if mismatches:
        raise CheckpointError(path, "its estimator does not fit this run: " + "; ".join(mismatches),
                              hint="start from a checkpoint trained with the same estimator settings and image size")
    init_weights_from(net, path, "estimator", ckpt)


def load_estimator(path: str | Path, mano_path: str | None = None) -> nn.Module:
    """The mesh estimator of an estimator or adaptation checkpoint (optionally with another hand-model file)."""
    overrides = {"mano_path": mano_path} if mano_path is not None else {}
    return build_from_checkpoint(path, "estimator", **overrides)


def load_pipeline(path: str | Path, mano_path: str | None = None) -> nn.Module:
    """The adapted pipeline (E, G and mesh guidance) of an adaptation checkpoint."""
    ckpt = read_checkpoint(path)
    overrides = {"mano_path": mano_path} if mano_path is not None else {}
    estimator = build_from_checkpoint(path, "estimator", ckpt, **overrides)
    generator = build_from_checkpoint(path, "generator", ckpt)
    guidance_cfg = ckpt[CHECKPOINT_KEY]["networks"].get("guidance")
    guidance = build_network(guidance_cfg, source=str(path)) if guidance_cfg else None
    return AdaptPipeline(estimator, generator, guidance).eval()


def checkpoint_kind(path: str | Path) -> str:
    return str(read_checkpoint(path)[CHECKPOINT_KEY].get("kind", "unknown"))


def checkpoint_input_size(ckpt: dict[str, Any]) -> int | None:
    """The network input size a checkpoint was trained at (hoi_adapt metadata, else data hyper-parameters)."""
    meta = ckpt.get(CHECKPOINT_KEY) or {}
    candidates = [meta.get("input_size"), meta.get("image_size")]
    for key in ("datamodule_hyper_parameters", "hyper_parameters"):
        hp = ckpt.get(key)
        if isinstance(hp, dict):
            candidates.append(hp.get("image_size"))
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return int(value)
        if hasattr(value, "item") and not isinstance(value, bool):  # numpy integer
            try:
                v = int(value.item())
            except (TypeError, ValueError):
                continue
            if v > 0:
                return v
    return None
