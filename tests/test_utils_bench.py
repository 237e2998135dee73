"""``--device`` of the benchmark scripts: one parser for the training and inference benchmarks."""
from __future__ import annotations

import pytest
import torch

from hoi_adapt.utils.bench import bench_device


def test_cpu_and_cuda_forms() -> None:
    assert bench_device("cpu") == torch.device("cpu")
    if torch.cuda.is_available():  # pragma: no cover - CI has no GPU
        assert bench_device("cuda:0") == torch.device("cuda", 0) and bench_device("gpu").type == "cuda"


@pytest.mark.parametrize("text", ["tpu", "cuda:x", "cpu:0", "cuda:", ""])
def test_bad_device_text_exits_with_one_line(text: str) -> None:
    with pytest.raises(SystemExit, match=r"--device must be cpu, cuda or cuda:N"):
        bench_device(text)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("text", ["cuda", "cuda:1", "gpu"])
def test_missing_cuda_is_named(text: str) -> None:
    with pytest.raises(SystemExit, match="CUDA is not available"):
        bench_device(text)
