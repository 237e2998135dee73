"""Starting a run from another checkpoint's estimator: the oracle fine-tuned from stage 0, the adaptation's E."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from hoi_adapt.checkpoints.format import write_network_checkpoint
from hoi_adapt.checkpoints.load import init_estimator_checked, init_weights_from, read_checkpoint
from hoi_adapt.data.streams import StreamSpec
from hoi_adapt.lit.datamodule import HOIDataModule
from hoi_adapt.lit.estimator_module import EstimatorModule
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.utils.errors import CheckpointError


def _saved_estimator_state(path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path)["state_dict"]
    return {k[len("estimator."):]: v for k, v in state.items() if k.startswith("estimator.")}


def fit_start(module: pl.LightningModule, world: Path, root: Path, image_size: int = 32) -> None:
    """Start ``module``'s fit and stop before any training step (``on_fit_start`` runs, nothing trains)."""
    dm = HOIDataModule(world=str(world), image_size=image_size, batch_size=2, num_workers=0, augment=None,
                       train={"hand_only": StreamSpec(split="source_hand", limit=2)},
                       val={"v": StreamSpec(split="source_hand_test", limit=2)})
    trainer = pl.Trainer(max_steps=0, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=root)
    trainer.fit(module, dm)


def small_estimator_file(path: Path, recorded: dict[str, Any] | None = None, input_size: int | None = None,
                         **estimator_args: Any) -> Path:
    """A seeded small E built with ``estimator_args``, saved like a stage-0 run trained at ``input_size``;
    ``recorded`` rewrites the constructor arguments the file says it was built with."""
    torch.manual_seed(7)
    net = MeshEstimator(regressor_hidden=32, evidence_width=8, **estimator_args)
    extra = {"input_size": input_size} if input_size else {}
    write_network_checkpoint(path, "estimator", {"estimator": net}, **extra)
    if recorded:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt["hoi_adapt"]["networks"]["estimator"]["init_args"].update(recorded)
        torch.save(ckpt, path)
    return path


def test_estimator_module_starts_from_the_checkpoint_weights(tiny_estimator_ckpt, tiny_world, tmp_path):
    torch.manual_seed(123)  # a different initialisation than the saved network's
    fresh = MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32)
    saved = _saved_estimator_state(tiny_estimator_ckpt)
    key = "regressor.out.weight" if "regressor.out.weight" in saved else next(iter(saved))
    stem = next(k for k in saved if k.endswith("weight") and saved[k].dim() == 4)
    assert not torch.equal(fresh.state_dict()[stem], saved[stem])
    module = EstimatorModule(fresh, init_ckpt=str(tiny_estimator_ckpt))
    fit_start(module, tiny_world, tmp_path)  # the weights are copied when the run starts, not when it is configured
    own = module.estimator.state_dict()
    for k, v in saved.items():
        torch.testing.assert_close(own[k], v, rtol=0, atol=0, msg=lambda m, k=k: f"{k}: {m}")
    assert key in own


def test_a_different_architecture_is_refused_with_the_file_named(tiny_estimator_ckpt):
    other = MeshEstimator(backbone_depth=18, regressor_hidden=64, evidence_width=32)
    with pytest.raises(CheckpointError) as err:
        init_weights_from(other, tiny_estimator_ckpt)
    assert str(tiny_estimator_ckpt) in str(err.value) and "shape" in str(err.value)


def test_a_checkpoint_without_the_network_is_refused(tiny_estimator_ckpt):
    with pytest.raises(CheckpointError, match="no 'generator' network"):
        init_weights_from(MeshEstimator(), tiny_estimator_ckpt, name="generator")


@pytest.mark.parametrize("made_with,recorded,input_size,mismatch", [
    ({"tip_preset": "freihand"}, None, None, "tip_preset 'freihand' in the checkpoint, tip_preset 'smplx' in this run"),
    # joint_order is retired (always OpenPose): an older checkpoint recording another order is refused
    ({}, {"joint_order": "mano"}, None, "joint_order 'mano' in the checkpoint, joint_order 'openpose' in this run"),
    ({}, {"mano_path": "/elsewhere/mano"}, None, "MANO (/elsewhere/mano) in the checkpoint, the stand-in hand model in this run"),
    ({}, None, 64, "input size 64 px in the checkpoint, 32 px in this run"),
])
def test_a_checkpoint_made_for_other_settings_is_refused_before_loading(tmp_path, made_with, recorded, input_size, mismatch):
    path = small_estimator_file(tmp_path / "stage0.ckpt", recorded, input_size, **made_with)
    torch.manual_seed(0)
    net = MeshEstimator(regressor_hidden=32, evidence_width=8)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        init_estimator_checked(net, path, input_size=32)
    assert str(path) in str(err.value) and mismatch in str(err.value)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())  # refused before any weight moved


def test_settings_that_resolve_alike_are_accepted(tmp_path):
    """Aliases are compared by what they mean: the ho3d fingertips are minimal_hand's, freihand's joints openpose's
    (an older checkpoint recording the retired joint_order)."""
    path = small_estimator_file(tmp_path / "stage0.ckpt", {"joint_order": "freihand"}, input_size=32, tip_preset="ho3d")
    net = MeshEstimator(regressor_hidden=32, evidence_width=8, tip_preset="minimal_hand")
    init_estimator_checked(net, path, input_size=32)
    saved = _saved_estimator_state(path)
    assert all(torch.equal(net.state_dict()[k], v) for k, v in saved.items())


def test_estimator_module_refuses_an_init_checkpoint_trained_at_another_input_size(tiny_world, tmp_path):
    path = small_estimator_file(tmp_path / "stage0.ckpt", input_size=64)
    module = EstimatorModule(MeshEstimator(regressor_hidden=32, evidence_width=8), silhouette_size=8, init_ckpt=str(path))
    with pytest.raises(CheckpointError, match="input size 64 px in the checkpoint, 32 px in this run") as err:
        fit_start(module, tiny_world, tmp_path, image_size=32)
    assert str(path) in str(err.value)


def test_checkpoints_recording_the_retired_joint_order_still_build():
    """E always returns OpenPose-ordered joints now; older checkpoints recorded ``joint_order`` and must load,
    while one recording another order is refused (it was trained against a differently ordered skeleton)."""
    from hoi_adapt.models.config import build_network, network_config
    from hoi_adapt.models.estimator import MeshEstimator
    from hoi_adapt.utils.errors import CheckpointError

    config = network_config(MeshEstimator(regressor_hidden=32, evidence_width=8))
    assert "joint_order" not in config["init_args"]
    old = {**config, "init_args": {**config["init_args"], "joint_order": "openpose"}}
    assert isinstance(build_network(old, "old.ckpt"), MeshEstimator)
    other = {**config, "init_args": {**config["init_args"], "joint_order": "mano"}}
    with pytest.raises(CheckpointError, match="old.ckpt.*joint_order='mano'.*only supports 'openpose'"):
        build_network(other, "old.ckpt")
