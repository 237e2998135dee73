"""Starting a run from another checkpoint's estimator: the oracle fine-tuned from stage 0, the adaptation's E."""
from __future__ import annotations

import pytest
import torch

from hoi_adapt.checkpoints.load import init_weights_from, read_checkpoint
from hoi_adapt.lit.estimator_module import EstimatorModule
from hoi_adapt.models.estimator import MeshEstimator
from hoi_adapt.utils.errors import CheckpointError


def _saved_estimator_state(path) -> dict[str, torch.Tensor]:
    state = read_checkpoint(path)["state_dict"]
    return {k[len("estimator."):]: v for k, v in state.items() if k.startswith("estimator.")}


def test_estimator_module_starts_from_the_checkpoint_weights(tiny_estimator_ckpt):
    torch.manual_seed(123)  # a different initialisation than the saved network's
    fresh = MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32)
    saved = _saved_estimator_state(tiny_estimator_ckpt)
    key = "regressor.out.weight" if "regressor.out.weight" in saved else next(iter(saved))
    stem = next(k for k in saved if k.endswith("weight") and saved[k].dim() == 4)
    assert not torch.equal(fresh.state_dict()[stem], saved[stem])
    module = EstimatorModule(fresh, init_ckpt=str(tiny_estimator_ckpt))
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
