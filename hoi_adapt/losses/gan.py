"""Adversarial objectives and the history pool of generated images.

:class:`GANLoss` gives every caller the same one-line loss whatever the GAN formulation:

* ``lsgan``  — least squares: ``mean((pred - label)^2)`` with label 1 (real) or 0 (fake);
* ``vanilla`` — the original minimax loss in its stable form, binary cross-entropy on logits;
* ``hinge`` — D: ``mean(relu(1 - pred))`` on real and ``mean(relu(1 + pred))`` on fake;
  G: ``-mean(pred)``. Hinge is the only mode whose generator loss is not simply "D's loss with the
  real label", hence the ``for_discriminator`` flag.

Predictions are raw D outputs (logits), any shape; a list/tuple (multi-scale D) is averaged.

:class:`ImagePool` feeds D a mix of current and past fakes so it does not overfit to G's latest
output (Shrivastava et al. 2017; the CycleGAN recipe).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hoi_adapt.utils.errors import ConfigError

GAN_MODES = ("lsgan", "vanilla", "hinge")
Prediction = Tensor | Sequence[Tensor]


class GANLoss(nn.Module):
    """Adversarial loss for D and G.

    Args:
        mode: ``lsgan`` | ``vanilla`` | ``hinge``.
        real_label: target for real samples (lsgan/vanilla); < 1 gives one-sided label smoothing.
        fake_label: target for fake samples (lsgan/vanilla).
    """

    def __init__(self, mode: str = "lsgan", real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        if mode not in GAN_MODES:
            raise ConfigError(f"GANLoss: mode={mode!r} is not one of {', '.join(GAN_MODES)}")
        self.mode = mode
        # Non-persistent buffers: follow the module across devices/dtypes but stay out of checkpoints.
        self.register_buffer("real_label", torch.tensor(float(real_label)), persistent=False)
        self.register_buffer("fake_label", torch.tensor(float(fake_label)), persistent=False)

    def _target(self, pred: Tensor, target_is_real: bool) -> Tensor:
        label = self.real_label if target_is_real else self.fake_label
        return label.to(pred.dtype).expand_as(pred)

    def _single(self, pred: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        if self.mode == "lsgan":
            return F.mse_loss(pred, self._target(pred, target_is_real))
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(pred, self._target(pred, target_is_real))
        if for_discriminator:
            return F.relu(1.0 - pred).mean() if target_is_real else F.relu(1.0 + pred).mean()
        return -pred.mean()

    def forward(self, pred: Prediction, target_is_real: bool, for_discriminator: bool = True) -> Tensor:
        """Scalar loss of predictions ``pred`` against the real (True) or fake (False) target.

        Args:
            pred: D logits, or a list of them (multi-scale D; the losses are averaged).
            target_is_real: whether ``pred`` should be judged as real.
            for_discriminator: True when training D, False when training G (matters for hinge only; G
                always asks for ``target_is_real=True``).
        """
        if not for_discriminator and not target_is_real:
            raise ValueError("GANLoss: the generator loss is defined for target_is_real=True only")
        if isinstance(pred, Tensor):
            return self._single(pred, target_is_real, for_discriminator)
        preds = list(pred)
        if not preds:
            raise ValueError("GANLoss: got an empty list of predictions")
        return torch.stack([self._single(p, target_is_real, for_discriminator) for p in preds]).mean()

    def generator_loss(self, fake_pred: Prediction) -> Tensor:
        """G's adversarial loss: make D judge the fakes real."""
        return self(fake_pred, True, for_discriminator=False)

    def discriminator_loss(self, real_pred: Prediction, fake_pred: Prediction) -> dict[str, Tensor]:
        """D's loss as named terms: ``real``, ``fake`` and ``total = (real + fake) / 2``.

        Halving keeps D's step size comparable to G's (pix2pix convention). ``fake_pred`` must come from
        detached fakes (e.g. from :class:`ImagePool`).
        """
        real = self(real_pred, True, for_discriminator=True)
        fake = self(fake_pred, False, for_discriminator=True)
        return {"real": real, "fake": fake, "total": 0.5 * (real + fake)}


class ImagePool:
    """History of past generated images, queried to build D's fake batch.

    Each queried image is first used to fill the pool (and returned as is); once the pool holds ``size``
    images, each new image is, with probability 1/2, swapped with a uniformly chosen stored one (the stored
    one is returned, the new one kept), otherwise returned directly. Randomness comes from torch's global
    RNG, so results are reproducible after ``torch.manual_seed`` — and resuming from :meth:`state_dict`
    together with the RNG state continues identically.

    Args:
        size: number of stored images; 0 disables the pool (``query`` returns its input unchanged).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ConfigError(f"ImagePool: size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        """Return a batch of the same shape mixing ``images`` with stored ones (detached).

        With ``size == 0`` the very same tensor is returned (the caller detaches it).
        """
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()).item() < 0.5:
                idx = int(torch.randint(len(self.images), ()).item())
                old = self.images[idx].to(device=image.device, dtype=image.dtype)
                self.images[idx] = image.clone()
                out.append(old)
            else:
                out.append(image)
        return torch.stack(out, dim=0)

    def state_dict(self) -> dict[str, Any]:
        """Pool contents for checkpoints (e.g. from ``LightningModule.on_save_checkpoint``)."""
        images = torch.stack(self.images) if self.images else torch.empty(0)
        return {"size": self.size, "images": images.detach().cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`; the pool size must match the configured one."""
        if not isinstance(state, dict) or "images" not in state or "size" not in state:
            raise ConfigError("ImagePool.load_state_dict: expected a dict with keys 'size' and 'images'")
        if int(state["size"]) != self.size:
            raise ConfigError(
                f"ImagePool.load_state_dict: saved pool size {state['size']} != configured size {self.size}"
            )
        images = state["images"]
        if images.numel() and images.shape[0] > self.size:
            raise ConfigError(f"ImagePool.load_state_dict: {images.shape[0]} saved images exceed size {self.size}")
        self.images = [img.clone() for img in images] if images.numel() else []
