"""Stage-0 training under Lightning DDP (2 CPU processes, gloo) equals 1 process with twice the batch.

``hoi-adapt fit`` runs unchanged with ``--trainer.devices 2 --trainer.strategy ddp``; the data module shards
every global batch across the ranks (:mod:`hoi_adapt.data.sampling`), DDP averages the gradients, so with
per-process batch ``b`` the updates must equal a 1-process run with batch ``2b``.

Two things are batch-coupled and are made comparable for this test only (this file is also the DDP
entry script, so every rank gets the same patches):

* BatchNorm: torch's ``SyncBatchNorm`` (``sync_batchnorm: true`` in ``configs/trainer/ddp.yaml``) runs only
  on GPUs, so ``F.batch_norm`` is replaced by the same maths with the batch moments all-reduced across the
  processes (autograd-aware, as SyncBatchNorm does). In the 1-process run the all-reduce is a no-op.
* Dropout draws per-process random masks; it is switched off.

The optimiser is plain SGD so that the comparison measures gradients, not Adam's normalisation of
near-zero gradients.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

REPO = Path(__file__).resolve().parents[1]
_batch_norm = F.batch_norm


def global_batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """``F.batch_norm`` whose training-mode moments are those of the union of all processes' batches."""
    if not training:
        return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    import torch.distributed as dist

    dims = [0, *range(2, input.dim())]
    channels = input.shape[1]
    shape = [1, channels] + [1] * (input.dim() - 2)
    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    def total(x: torch.Tensor) -> torch.Tensor:  # sum over all processes; its backward all-reduces gradients
        if not distributed:
            return x
        import torch.distributed.nn.functional as dist_fn

        return dist_fn.all_reduce(x)

    count = total(torch.full((1,), float(input.numel() // channels), dtype=input.dtype))
    n = count[0]
    mean = total(input.sum(dims)) / n
    centred = input - mean.view(shape)
    var = total((centred * centred).sum(dims)) / n  # two passes: E[x^2]-E[x]^2 cancels catastrophically
    if running_mean is not None and running_var is not None:
        with torch.no_grad():
            running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / (n - 1))
    out = centred * torch.rsqrt(var.view(shape) + eps)
    if weight is not None:
        out = out * weight.view(shape)
    if bias is not None:
        out = out + bias.view(shape)
    return out


def no_dropout(input, p=0.5, training=True, inplace=False):
    return input


def ddp_config(out: Path, world: Path, batch: int, steps: int = 3, loss_weights: dict | None = None) -> Path:
    from test_reliability_resume import stage0_config

    path = stage0_config(out, world, max_steps=steps, every=steps, batch=batch, limits=(16, 12))
    cfg = yaml.safe_load(path.read_text())
    cfg["model"]["init_args"]["optimizer"] = {"class_path": "torch.optim.SGD", "init_args": {"lr": 2.0e-4}}
    cfg["model"]["init_args"]["one_cycle"] = False  # plain SGD at a constant rate: the comparison is of DDP, not of a schedule
    cfg["model"]["init_args"]["loss_weights"] = {**cfg["model"]["init_args"].get("loss_weights", {}), **(loss_weights or {})}
    cfg["trainer"].update(val_check_interval=steps)
    # Augmented images, as before the demo config dropped augmentation. On the tiny world's noise-free images the
    # first steps are ~60x more sensitive to rounding: in ONE process, summing BatchNorm's batch moments in two
    # halves (what two ranks do) moved the stem weights by 3.5e-4 after 3 steps without augmentation and by 6e-6
    # with it; the comparison's tolerance is 2e-5, so without augmentation it could not tell DDP from rounding.
    cfg["data"]["augment"] = {}
    path.write_text(yaml.safe_dump(cfg))
    return path


# Known open problem: with the solved camera, the camera-frame joint term's gradients differ between 2 DDP
# processes and 1 process (about 10% on the stem weights after 3 steps), though every operation in it is
# per sample; the same term with camera="regress", and every other term with the solved camera, match.
# Not rounding: the same rounding-level perturbation in one process (above) moves them by only 1.4e-5 with it.
# What is known since (experiments/README.md, "Camera placement"): at initialisation every sample here has its depth set by
# the solve's floor; the gradients agree at step 0 (7e-6 relative) and drift apart by orders of magnitude per step.
CAMERA_FRAME_DDP = pytest.mark.xfail(strict=True, reason="camera-frame term under the solved camera: DDP mismatch not yet explained")


@pytest.mark.slow
@pytest.mark.parametrize("loss_weights", [pytest.param({"camera_joints": 0.0}, id="without-camera-frame-term"),
                                          pytest.param(None, id="default", marks=CAMERA_FRAME_DDP)])
def test_two_process_gloo_training_equals_one_process_with_twice_the_batch(tiny_world, tmp_path, monkeypatch, loss_weights):
    from hoi_adapt.lit.cli import main as cli_main

    two = tmp_path / "two"
    cmd = [sys.executable, str(Path(__file__).resolve()), "fit", "-c", str(ddp_config(two, tiny_world, batch=2, loss_weights=loss_weights)),
           "--trainer.devices=2", "--trainer.strategy=ddp"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}  # this checkout
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "gloo" in proc.stdout + proc.stderr

    monkeypatch.setattr(F, "batch_norm", global_batch_norm)
    monkeypatch.setattr(F, "dropout", no_dropout)
    one = tmp_path / "one"
    assert cli_main(["fit", "-c", str(ddp_config(one, tiny_world, batch=4, loss_weights=loss_weights))]) == 0

    info = json.loads(next(two.rglob("run_info.json")).read_text())
    assert info["world_size"] == 2 and info["effective_batch_size"] == 8
    a = torch.load(one / "resume" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(two / "resume" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 3
    pos_a = a["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    pos_b = b["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert pos_a == pos_b and [p["global_batch"] for p in pos_b] == [4, 4]  # same global batches, same position
    assert any(r.get("val/mpjpe") for r in _rows(two))  # validation ran (and gathered) under DDP too
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-4, atol=2e-5, msg=lambda m, key=key: f"{key}: {m}")
    # the comparison is not vacuous: the zero-initialised output layer moved far beyond the tolerance
    assert a["state_dict"]["estimator.regressor.out.weight"].abs().max() > 1e-3


def _rows(run: Path) -> list[dict[str, str]]:
    import csv

    return [r for p in run.rglob("metrics.csv") for r in csv.DictReader(p.open())]


if __name__ == "__main__":  # the DDP entry script: every rank runs this with the same arguments
    F.batch_norm = global_batch_norm
    F.dropout = no_dropout
    from hoi_adapt.lit.cli import main

    sys.exit(main(sys.argv[1:]))
