"""Shared test fixtures: an isolated cache folder, a tiny synthetic world, scenes drawn by it and untrained checkpoints."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # Generated models (the stand-in hand) and index caches never touch the user's ~/.cache during tests.
    if "HOI_ADAPT_CACHE" not in os.environ:
        os.environ["HOI_ADAPT_CACHE"] = tempfile.mkdtemp(prefix="hoi_adapt_test_cache_")
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def world_scenes() -> dict:
    """Six hand+object scenes drawn by the synthetic world (right hands), K for 64 px: verts (6,778,3), faces,
    K (6,3,3), object verts / faces (lists)."""
    import numpy as np

    from hoi_adapt.synth.config import SplitSpec, WorldConfig
    from hoi_adapt.synth.generator import WorldRenderer

    cfg = WorldConfig(seed=21, image_size=64, view_candidates=4, splits=[SplitSpec("p", 12, "target", True)])
    world = WorldRenderer(cfg)
    drawn = [s for s in (world.draw(cfg.splits[0], i) for i in range(12)) if s.side == "right"][:6]
    model = world.models["right"]
    f32 = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        verts = model(f32([s.global_orient for s in drawn]), f32([s.hand_pose for s in drawn]),
                      f32([s.betas for s in drawn]), f32([s.transl for s in drawn])).vertices
    return {"verts": verts, "faces": model.faces, "K": f32([s.K for s in drawn]),
            "ov": [f32(s.object_verts) for s in drawn], "of": [torch.as_tensor(s.object_faces) for s in drawn]}


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """configs/synth/tiny.yaml generated once per session (64 px, a few dozen samples per split)."""
    from hoi_adapt.synth.generator import generate_world, load_world_config

    root = tmp_path_factory.mktemp("world") / "tiny"
    return generate_world(load_world_config(REPO / "configs/synth/tiny.yaml"), root, workers=1, progress=False)


@pytest.fixture(scope="session")
def tiny_estimator_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained (seeded) estimator saved as a hoi_adapt checkpoint."""
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator

    torch.manual_seed(0)
    est = MeshEstimator(backbone_depth=18, regressor_hidden=128, evidence_width=32).eval()
    return write_network_checkpoint(tmp_path_factory.mktemp("ckpt") / "estimator.ckpt", "estimator", {"estimator": est})


@pytest.fixture(scope="session")
def responsive_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained estimator whose output depends on the pixels (the zero-initialised output layer perturbed)."""
    from hoi_adapt.checkpoints.format import write_network_checkpoint
    from hoi_adapt.models.estimator import MeshEstimator

    torch.manual_seed(1)
    est = MeshEstimator(backbone_depth=18, regressor_hidden=64, evidence_width=16).eval()
    torch.nn.init.normal_(est.regressor.out.weight, std=2e-3)
    return write_network_checkpoint(tmp_path_factory.mktemp("resp") / "est.ckpt", "estimator", {"estimator": est})
