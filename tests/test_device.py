"""One device resolver for training, text encoding and baselines."""

from __future__ import annotations

import pytest
import torch

from kgrec.device import resolve_device
from kgrec.errors import KgrecError


def test_auto_cpu_and_bad_names() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(KgrecError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(KgrecError, match="no CUDA device"):
        resolve_device("cuda")
