"""The two skeleton definitions of a posed MANO hand, chosen explicitly and recorded wherever joints are stored."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from hoi_adapt.checkpoints.predictor import Predictor
from hoi_adapt.data.registry import REGISTRY
from hoi_adapt.hand.model import SKELETONS, HandModel
from hoi_adapt.models.config import network_config
from hoi_adapt.models.estimator import MeshEstimator, skeleton_of
from hoi_adapt.render.cameras import project
from hoi_adapt.utils.errors import ConfigError


def _posed(hand: HandModel, n: int = 4):
    g = torch.Generator().manual_seed(3)
    go, hp = 0.5 * torch.randn(n, 3, generator=g), 0.4 * torch.randn(n, 45, generator=g)
    betas, transl = torch.randn(n, 10, generator=g), torch.tensor([[0.02, -0.01, 0.5]]).expand(n, 3)
    return hand(go, hp, betas, transl)


def test_the_two_definitions_differ_by_skinning_only():
    hand = HandModel(dtype=torch.float64)
    out = _posed(hand)
    mesh, kin = hand.skeleton(out, "mesh"), hand.skeleton(out, "kinematic")
    assert torch.equal(kin, out.joints) and torch.allclose(mesh, hand.joints_from_vertices(out.vertices))
    gap = (mesh - kin).norm(dim=-1)
    # fingertips are the same vertices in both definitions
    assert torch.allclose(gap[:, [4, 8, 12, 16, 20]], torch.zeros(4, 5, dtype=torch.float64), atol=1e-12)
    assert 5e-4 < float(gap.max()) < 2e-2  # millimetres apart, not centimetres
    # at rest (zero pose) the regressor reproduces the kinematic joints exactly: the gap is the skinning
    rest = hand(torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 45, dtype=torch.float64))
    assert torch.allclose(hand.skeleton(rest, "mesh"), hand.skeleton(rest, "kinematic"), atol=1e-9)
    with pytest.raises(ConfigError, match="unknown skeleton definition 'tips'"):
        hand.skeleton(out, "tips")


@pytest.mark.parametrize("definition", list(SKELETONS))
def test_estimator_returns_and_records_its_definition(definition):
    torch.manual_seed(0)
    est = MeshEstimator(regressor_hidden=32, evidence_width=8, skeleton=definition).eval()
    assert network_config(est)["init_args"]["skeleton"] == definition  # recorded in every checkpoint
    image, K = torch.rand(2, 3, 64, 64), torch.tensor([[120.0, 0, 31.5], [0, 120.0, 31.5], [0, 0, 1]]).expand(2, 3, 3)
    with torch.no_grad():
        out = est(image, K)
        reposed = est.hand_model(out.global_orient, out.hand_pose, out.betas, out.transl)
    torch.testing.assert_close(out.joints3d, est.hand_model.skeleton(reposed, definition), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.joints2d, project(out.joints3d, K), atol=1e-3, rtol=0)
    other = "kinematic" if definition == "mesh" else "mesh"
    with torch.no_grad():
        converted = skeleton_of(est, out, other)
    torch.testing.assert_close(converted, est.hand_model.skeleton(reposed, other), atol=1e-5, rtol=0)
    assert float((converted - out.joints3d).norm(dim=-1).max()) > 1e-4
    # the predictor returns joints (and their projections) in the definition it is asked for
    pred = Predictor(est, adapt=False, skeleton=other)
    fields = pred(image, K)
    torch.testing.assert_close(fields["joints3d"], converted, atol=1e-6, rtol=0)
    torch.testing.assert_close(fields["joints2d"], project(converted, K), atol=1e-4, rtol=0)
    assert Predictor(est, adapt=False).skeleton == definition
    with pytest.raises(ConfigError, match="unknown skeleton definition"):
        Predictor(est, adapt=False, skeleton="openpose")


def test_unknown_definition_is_refused():
    with pytest.raises(ConfigError, match="skeleton must be one of"):
        MeshEstimator(regressor_hidden=32, evidence_width=8, skeleton="regressed")


def test_datasets_declare_the_definition_of_their_labels():
    assert REGISTRY["synthetic"].skeleton == "mesh"  # the world stores J_regressor on its posed meshes
    assert {n for n, e in REGISTRY.items() if e.skeleton == "kinematic"} == {"freihand", "ho3d", "obman"}
    assert all(REGISTRY[n].skeleton is None for n in ("dexter_object", "egodexter", "stb", "rhd"))  # markers / annotation


def test_a_stage0_checkpoint_of_the_other_definition_is_refused(tmp_path):
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.checkpoints.load import init_estimator_checked
    from hoi_adapt.utils.errors import CheckpointError

    path = write_network_checkpoint(tmp_path / "s0.ckpt", "estimator",
                                    {"estimator": MeshEstimator(regressor_hidden=32, evidence_width=8, skeleton="kinematic")})
    with pytest.raises(CheckpointError, match="skeleton 'kinematic' in the checkpoint, skeleton 'mesh' in this run"):
        init_estimator_checked(MeshEstimator(regressor_hidden=32, evidence_width=8), path)


def test_synthetic_labels_are_the_mesh_skeleton_of_their_mano_parameters(tiny_world):
    """The world's joints3d are J_regressor on its posed meshes: re-posing the stored MANO parameters in the mesh
    definition reproduces them; the kinematic definition does not."""
    from hoi_adapt.data.formats import world as fmt

    ann = fmt.load_annotations(tiny_world, "source_hand")
    right = ann["side"] == "right"
    hand = HandModel(dtype=torch.float64)
    with torch.no_grad():
        out = hand(*(torch.as_tensor(np.asarray(ann[k][right]), dtype=torch.float64)
                     for k in ("mano_global_orient", "mano_hand_pose", "mano_betas", "mano_transl")))
    gt = ann["joints3d"][right]
    assert np.abs(hand.skeleton(out, "mesh").numpy() - gt).max() < 1e-5
    assert np.abs(hand.skeleton(out, "kinematic").numpy() - gt).max() > 5e-4
