"""convbook.gpu: the array-module-generic im2col + GEMM, checked on NumPy here and on
CuPy where a GPU exists."""

import numpy as np
import pytest

from convbook import gpu
from convbook.conv import conv2d_forward

CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(padding="same", dilation=2),
    dict(stride=(2, 1), padding=(0, 1), groups=2),
]


@pytest.mark.parametrize("case", CASES)
def test_numpy_module_matches_reference(case):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 9, 7))
    w = rng.standard_normal((6, 4 // case.get("groups", 1), 3, 2))
    b = rng.standard_normal(6)
    got = gpu.conv2d_forward_xp(x, w, b, **case)
    np.testing.assert_allclose(
        got, conv2d_forward(x, w, b, **case, method="reference"), rtol=1e-12, atol=1e-12
    )
    assert got.flags.c_contiguous


def test_bad_inputs():
    with pytest.raises(ValueError, match="w"):
        gpu.conv2d_forward_xp(np.zeros((1, 2, 5, 5)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(TypeError, match="float"):
        gpu.conv2d_forward_xp(np.zeros((1, 1, 5, 5), int), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="b of shape"):
        gpu.conv2d_forward_xp(
            np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(3)
        )


def test_array_module_is_numpy_for_numpy():
    assert gpu.array_module(np.zeros(1), None) is np
    assert isinstance(gpu.available(), bool)


@pytest.mark.skipif(not gpu.available(), reason="needs CuPy and a CUDA device")
def test_cupy_matches_numpy():  # pragma: no cover - runs on a GPU machine only
    import cupy

    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 8, 16, 16)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    got = gpu.conv2d_forward_xp(cupy.asarray(x), cupy.asarray(w), padding=1)
    assert gpu.array_module(got) is cupy
    want = conv2d_forward(
        x.astype(np.float64), w.astype(np.float64), padding=1, method="reference"
    )
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-4, atol=1e-4)
