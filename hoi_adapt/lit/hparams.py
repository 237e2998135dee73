"""What a LightningModule records about itself for its checkpoints (hyper-parameters, the data's input size)."""
from __future__ import annotations

import dataclasses
from typing import Any


def record_dataclass_hparams(module: Any, **values: Any) -> None:
    """Store dataclass arguments in ``module.hparams`` as plain dicts, so checkpoints stay weights-only loadable."""
    for name, value in values.items():
        module.hparams[name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def trained_input_size(module: Any) -> int | None:
    """The network input size of the data the module is trained on (recorded so inference resizes alike)."""
    trainer = getattr(module, "_trainer", None)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    size = getattr(datamodule, "image_size", None)
    return int(size) if size else None
