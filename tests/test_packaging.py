"""The install descriptions agree: conda users and `make` users get the same pinned stack."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_pins_the_same_packages_as_pyproject():
    project = _pyproject()["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(pip) - {"-e ."} == wanted
    assert "-e ." in pip
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    major, minor = (int(x) for x in python.split("=")[1].split("."))
    assert (3, 10) <= (major, minor) <= (3, 13)  # the pytorch3d wheel exists for cp310-cp313 only


def test_the_abi_coupled_stack_is_pinned_exactly():
    deps = set(_pyproject()["project"]["dependencies"])
    assert {"torch==2.11.0", "torchvision==0.26.0", "easypytorch3d==0.7.9.post1"} <= deps


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in readme.split("## ")[1]  # the Quickstart section
    assert "make test" in ci
