"""Cross-checks against PyTorch, where it is installed (never required)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES, make_case, random_like

import convbook as cb

torch = pytest.importorskip("torch")

# PyTorch's own performance note for even kernels with padding="same"; not about
# correctness
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)


@pytest.mark.parametrize("method", ["reference", "tutorial", "strided", "wide", "auto"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_gradients_match_pytorch(name, method):
    x, w, b, kw = make_case(name)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, **kw)
    dout = random_like(tuple(yt.shape), seed=11)
    yt.backward(torch.tensor(dout))
    np.testing.assert_allclose(
        cb.conv2d_forward(x, w, b, method=method, **kw), yt.detach().numpy(), atol=1e-12
    )
    dx, dw, db = cb.conv2d_backward(dout, x, w, method=method, **kw)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(dw, wt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(db, bt.grad.numpy(), atol=1e-12)
    for route in ("col2im", "rot180") if method != "reference" else ():
        got = cb.conv2d_grad_input(dout, w, x.shape, method=method, route=route, **kw)
        np.testing.assert_allclose(got, xt.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize(
    "kernel, padding",
    [((2, 2), "same"), ((2, 4), "same"), ((3, 3), "same"), ((4, 1), "same")],
)
def test_same_padding_puts_the_extra_where_pytorch_does(kernel, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 5, 6))
    w = rng.standard_normal((1, 1, *kernel))
    want = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), padding=padding
    ).numpy()
    np.testing.assert_allclose(
        cb.conv2d_forward(x, w, padding=padding), want, atol=1e-12
    )


def test_float32_matches_pytorch_float32():
    x, w, b, kw = make_case("everything", dtype=np.float32)
    want = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw
    ).numpy()
    got = cb.conv2d_forward(x, w, b, **kw)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
