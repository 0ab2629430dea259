"""GPU paths give the CPU's answers (skipped cleanly where no CUDA device is visible)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

import skinfluence
from skinfluence.backend import default_dtype, resolve_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_device_policy():
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert default_dtype("cpu") == torch.float64


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_asking_for_cuda_without_one_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


@cuda
@pytest.mark.parametrize("method", ["influence", "newton"])
def test_gpu_matches_cpu(breast_cancer, method):
    Xtr, Xte, ytr, yte = breast_cancer
    model = LogisticRegression(solver="newton-cholesky", tol=1e-12).fit(Xtr, ytr)
    cpu = skinfluence.influence(model, Xtr, ytr, Xte, yte, method=method, device="cpu")
    gpu = skinfluence.influence(model, Xtr, ytr, Xte, yte, method=method, device="cuda")
    assert np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu) < 1e-3  # float32 on the GPU
