"""Translation quality: G's hand-only images against the true hand-only twins of a synthetic split.

Scores the whole image and the amodal hand region separately (the hand is what matters; the background
should simply become the plain hand-only background), with L1, PSNR and SSIM.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from hoi_adapt.checkpoints.load import checkpoint_input_size, load_pipeline, read_checkpoint
from hoi_adapt.data.datasets.synthetic import SyntheticHandDataset
from hoi_adapt.eval.runner import select_indices
from hoi_adapt.losses.image_quality import l1, psnr, ssim


@torch.no_grad()
def translation_quality(ckpt: str | Path, world: str | Path, split: str = "target_test", *, limit: int | None = None,
                        batch_size: int = 32, image_size: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Mean L1 / PSNR / SSIM of ``G(x)`` vs the hand-only twin, over the whole image and the hand region."""
    from tqdm.auto import tqdm

    size = image_size or checkpoint_input_size(read_checkpoint(ckpt)) or 128
    pipeline = load_pipeline(ckpt)
    ds = SyntheticHandDataset(world, split, image="hoi", pair=True, amodal_masks=True, labels=False, out_size=size)
    ds = Subset(ds, select_indices(len(ds), limit).tolist())
    scores: dict[str, list[torch.Tensor]] = {k: [] for k in ("l1", "psnr", "ssim", "hand_l1", "hand_psnr", "hand_ssim")}
    for batch in tqdm(DataLoader(ds, batch_size=batch_size), desc=f"translation quality {Path(ckpt).name}", disable=not progress):
        fake, _, _ = pipeline.translate(batch["image"], batch["K"])
        twin, hand = batch["image_hand_only"], batch["hand_mask_full"][:, None]
        for prefix, mask in (("", None), ("hand_", hand)):
            scores[prefix + "l1"].append(l1(fake, twin, mask, reduction="none"))
            scores[prefix + "psnr"].append(psnr(fake, twin, mask, reduction="none"))
            scores[prefix + "ssim"].append(ssim(fake, twin, mask, reduction="none"))
    out: dict[str, Any] = {"num_samples": len(ds), "split": split, "image_size": size}
    for key, parts in scores.items():
        values = torch.cat(parts).double().numpy()
        values = values[np.isfinite(values)]
        out[key] = float(values.mean()) if len(values) else float("nan")
    return out
