"""Conv2D: gradient-checked end to end, compared with torch.nn.Conv2d, inputs untouched, clear errors."""

import numpy as np
import pytest

from convbook.gradcheck import numeric_vjp, rel_error
from convbook.layers import Conv2D

SETTINGS = [
    # (in, out, kernel, kwargs, input shape)
    pytest.param(2, 3, 3, {}, (2, 2, 5, 6), id="plain"),
    pytest.param(3, 4, (2, 3), dict(padding=1), (1, 3, 5, 5), id="padding-even-kernel"),
    pytest.param(2, 2, 3, dict(stride=2), (1, 2, 8, 7), id="stride-unused-rows"),
    pytest.param(2, 3, 2, dict(dilation=2, padding=(1, 0)), (2, 2, 6, 6), id="dilation"),
    pytest.param(4, 6, 3, dict(groups=2, padding="same"), (1, 4, 5, 5), id="groups-same"),
    pytest.param(3, 3, 3, dict(groups=3, stride=(2, 1), bias=False), (2, 3, 7, 6), id="depthwise-nobias"),
    pytest.param(4, 4, (3, 2), dict(groups=2, stride=2, dilation=(1, 2), padding=(2, 1), method="tutorial"),
                 (1, 4, 7, 8), id="everything-im2col"),
]


@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", SETTINGS)
def test_gradients_match_finite_differences(cin, cout, k, kwargs, x_shape):
    rng = np.random.default_rng(0)
    layer = Conv2D(cin, cout, k, rng=1, **kwargs)
    x = rng.standard_normal(x_shape)
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)

    w0 = layer.w.copy()

    def with_w(w):
        layer.w[...] = w
        try:
            return layer.forward(x)
        finally:
            layer.w[...] = w0

    assert rel_error(dx, numeric_vjp(layer.forward, x, dout)) < 1e-7
    assert rel_error(layer.dw, numeric_vjp(with_w, w0, dout)) < 1e-7
    if layer.b is None:
        assert layer.db is None and len(layer.grads()) == 1
    else:
        b0 = layer.b.copy()

        def with_b(b):
            layer.b[...] = b
            try:
                return layer.forward(x)
            finally:
                layer.b[...] = b0

        assert rel_error(layer.db, numeric_vjp(with_b, b0, dout)) < 1e-7


@pytest.mark.parametrize("cin, cout, k, kwargs, x_shape", SETTINGS)
def test_matches_torch_conv2d(cin, cout, k, kwargs, x_shape):
    torch = pytest.importorskip("torch")
    kwargs = dict(kwargs)
    kwargs.pop("method", None)
    rng = np.random.default_rng(2)
    layer = Conv2D(cin, cout, k, rng=3, **kwargs)
    ref = torch.nn.Conv2d(cin, cout, k, **kwargs).double()
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(layer.w))
        if layer.b is not None:
            ref.bias.copy_(torch.from_numpy(layer.b))
    x = rng.standard_normal(x_shape)
    xt = torch.tensor(x, requires_grad=True)
    out = layer(x)
    out_t = ref(xt)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.dw, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    if layer.b is not None:
        np.testing.assert_allclose(layer.db, ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert repr(layer).replace("Conv2D", "Conv2d") == repr(ref)


def test_default_init_matches_pytorch_bounds():
    layer = Conv2D(6, 8, (3, 2), groups=2, rng=0)
    bound = 1 / np.sqrt(3 * 3 * 2)  # fan_in = C // groups * KH * KW
    assert layer.w.shape == (8, 3, 3, 2) and layer.b.shape == (8,)
    for p in layer.parameters():
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.8 * bound  # really spread over the interval, not a narrower one
    big = Conv2D(16, 64, 3, rng=0)
    assert abs(big.w.std() - 1 / np.sqrt(3) / np.sqrt(16 * 9)) < 0.02 * big.w.std()  # std of U(-a, a) = a/sqrt(3)
    np.testing.assert_array_equal(Conv2D(2, 2, 3, rng=5).w, Conv2D(2, 2, 3, rng=5).w)
    assert Conv2D(2, 2, 3, dtype=np.float32, rng=0).w.dtype == np.float32


def test_inputs_not_modified_and_input_cached_as_copy():
    rng = np.random.default_rng(0)
    layer = Conv2D(2, 3, 3, stride=2, padding=1, rng=0)
    x = rng.standard_normal((2, 2, 6, 6))
    x_before = x.copy()
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dout_before = dout.copy()
    dx = layer.backward(dout)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dout, dout_before)
    # changing the caller's x between forward and backward does not change the gradients
    dw = layer.dw.copy()
    x += 100.0
    np.testing.assert_array_equal(layer.backward(dout), dx)
    np.testing.assert_array_equal(layer.dw, dw)


def test_gradients_are_set_not_accumulated_and_zero_grad():
    rng = np.random.default_rng(0)
    layer = Conv2D(1, 2, 2, rng=0)
    x = rng.standard_normal((1, 1, 4, 4))
    dout = rng.standard_normal(layer.output_shape(x.shape))
    layer(x)
    layer.backward(dout)
    first = [g.copy() for g in layer.grads()]
    layer.backward(dout)
    for g, g0 in zip(layer.grads(), first):
        np.testing.assert_array_equal(g, g0)  # overwritten, not doubled
    layer.zero_grad()
    assert all(not g.any() for g in layer.grads())


def test_sgd_step_through_parameters_updates_the_layer():
    rng = np.random.default_rng(0)
    layer = Conv2D(1, 1, 3, rng=0)
    x = rng.standard_normal((4, 1, 6, 6))
    target = np.zeros(layer.output_shape(x.shape))
    losses = []
    for _ in range(5):
        out = layer(x)
        losses.append(0.5 * np.sum((out - target) ** 2))
        layer.backward(out - target)
        for p, g in zip(layer.parameters(), layer.grads()):
            p -= 0.01 * g
    assert losses[-1] < 0.5 * losses[0]


def test_errors():
    layer = Conv2D(3, 4, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 4, 3, 3)))
    with pytest.raises(RuntimeError, match="no gradients"):
        layer.grads()
    with pytest.raises(ValueError, match=r"3 input channels.*\(2, 4, 8, 8\)"):
        layer(np.zeros((2, 4, 8, 8)))
    layer(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"expected dout of shape \(2, 4, 3, 3\)"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(TypeError, match="x must be a float"):
        layer(np.zeros((2, 3, 5, 5), dtype=int))
    with pytest.raises(ValueError, match="groups=2 must divide both in_channels=3"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="stride must be positive"):
        Conv2D(3, 4, 3, stride=0)
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        Conv2D(3, 4, 3, stride=2, padding="same")
    with pytest.raises(TypeError, match="in_channels must be an int"):
        Conv2D(3.0, 4, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        Conv2D(3, 4, 3, method="fft")
    with pytest.raises(TypeError, match="dtype must be a float"):
        Conv2D(3, 4, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="input_shape of 4 ints"):
        layer.output_shape((3, 5, 5))


def test_repr():
    assert repr(Conv2D(3, 8, 3, rng=0)) == "Conv2D(3, 8, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(Conv2D(4, 4, (3, 1), stride=2, padding=(1, 0), dilation=2, groups=4, bias=False, rng=0)) == (
        "Conv2D(4, 4, kernel_size=(3, 1), stride=(2, 2), padding=(1, 0), dilation=(2, 2), groups=4, bias=False)"
    )
    assert repr(Conv2D(1, 1, 3, padding="same", method="tutorial", rng=0)) == (
        "Conv2D(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same, method='tutorial')"
    )
