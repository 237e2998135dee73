"""Rebuild networks from checkpoints without unpickling code.

A network class decorated with :func:`record_init` remembers its constructor arguments (plain values
only). Checkpoints store ``{"class_path": ..., "init_args": ...}`` next to the weights, so a checkpoint
loads with ``torch.load(weights_only=True)`` and the network is re-created from an allow-list of
hoi_adapt classes — never from an arbitrary import path taken from the file.
"""
from __future__ import annotations

import functools
import importlib
import inspect
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from hoi_adapt.utils.errors import CheckpointError

T = TypeVar("T", bound=type)

ALLOWED_PREFIX = "hoi_adapt.models."
_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def record_init(cls: T) -> T:
    """Class decorator: store the bound constructor arguments as ``self.init_config``."""
    original = cls.__init__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if type(self) is cls:  # only the most derived class records
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            init_args = {k: v for k, v in bound.arguments.items() if k != "self"}
            init_args = {k: list(v) if isinstance(v, tuple) else v for k, v in init_args.items()}
            if not all(_plain(v) for v in init_args.values()):
                bad = [k for k, v in init_args.items() if not _plain(v)]
                raise TypeError(f"{cls.__name__}: constructor arguments {bad} are not plain values and cannot be recorded")
            object.__setattr__(self, "init_config", {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args})

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls


def network_config(module: nn.Module) -> dict[str, Any]:
    config = getattr(module, "init_config", None)
    if config is None:
        raise TypeError(f"{type(module).__name__} does not record its constructor arguments (decorate it with @record_init)")
    return config


def build_network(config: Any, source: str = "checkpoint", **overrides: Any) -> nn.Module:
    """Instantiate a network from a recorded config; only hoi_adapt.models classes are allowed."""
    if not (isinstance(config, dict) and isinstance(config.get("class_path"), str) and isinstance(config.get("init_args", {}), dict)):
        raise CheckpointError(source, "network config is missing or malformed (expected class_path and init_args)")
    class_path = config["class_path"]
    if not class_path.startswith(ALLOWED_PREFIX):
        raise CheckpointError(source, f"refusing to build {class_path!r}: only {ALLOWED_PREFIX}* networks are allowed")
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise CheckpointError(source, f"unknown network class {class_path!r} (checkpoint from another version?)") from None
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(source, f"{class_path!r} is not a network")
    init_args = dict(config.get("init_args", {}))
    for arg, only_value in getattr(cls, "RETIRED_ARGS", {}).items():  # recorded by older versions
        if arg in init_args and init_args.pop(arg) != only_value:
            raise CheckpointError(source, f"{class_path} was built with {arg}={config['init_args'][arg]!r}; this version only "
                                          f"supports {only_value!r}")
    return cls(**{**init_args, **overrides})


def adapt_networks_from_config(config: str | Path, image_size: int, guided: bool = True) -> dict[str, Any]:
    """Seeded, untrained estimator / generator / guidance of the demo adaptation config, for speed measurements.

    The guidance is rendered at half the input size, the ratio the demo config uses (32 px for 64-px inputs);
    the networks' speed does not depend on the weight values (the renderer's depends on the mesh it is given).
    ``guided=False``: the "G without mesh guidance" row, G on the image alone and no guidance.
    """
    import torch
    import yaml

    args = yaml.safe_load(Path(config).read_text())["model"]["init_args"]
    torch.manual_seed(0)
    nets = {"estimator": build_network(args["estimator"], str(config)),
            "generator": build_network(args["generator"], str(config), **({} if guided else {"in_channels": 3}))}
    if guided:
        nets["guidance"] = build_network(args["guidance"], str(config), guidance_size=image_size // 2)
    return {name: net.eval() for name, net in nets.items()}
