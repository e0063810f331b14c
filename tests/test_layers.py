"""Conv2D: gradient-checked end to end, compared with torch.nn.Conv2d, inputs untouched,
clear errors, and what a torch user expects (argument order, dtype, no dx)."""

import numpy as np
import pytest

from convbook.gradcheck import numeric_vjp, rel_error
from convbook.layers import Conv2D

SETTINGS = [
    # (in, out, kernel, kwargs, input shape)
    pytest.param(2, 3, 3, {}, (2, 2, 5, 6), id="plain"),
    pytest.param(3, 4, (2, 3), dict(padding=1), (1, 3, 5, 5), id="padding-even-kernel"),
    pytest.param(2, 2, 3, dict(stride=2), (1, 2, 8, 7), id="stride-unused-rows"),
    pytest.param(
        2, 3, 2, dict(dilation=2, padding=(1, 0)), (2, 2, 6, 6), id="dilation"
    ),
    pytest.param(
        4, 6, 3, dict(groups=2, padding="same"), (1, 4, 5, 5), id="groups-same"
    ),
    pytest.param(
        3,
        3,
        3,
        dict(groups=3, stride=(2, 1), bias=False),
        (2, 3, 7, 6),
        id="depthwise-nobias",
    ),
    pytest.param(
        4,
        4,
        (3, 2),
        dict(groups=2, stride=2, dilation=(1, 2), padding=(2, 1), method="tutorial"),
        (1, 4, 7, 8),
        id="everything-im2col",
    ),
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
    np.testing.assert_allclose(
        layer.dw, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12
    )
    if layer.b is not None:
        np.testing.assert_allclose(
            layer.db, ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12
        )
    assert repr(layer).replace("Conv2D", "Conv2d") == repr(ref)


def test_default_init_matches_pytorch_bounds():
    layer = Conv2D(6, 8, (3, 2), groups=2, rng=0)
    bound = 1 / np.sqrt(3 * 3 * 2)  # fan_in = C // groups * KH * KW
    assert layer.w.shape == (8, 3, 3, 2) and layer.b.shape == (8,)
    for p in layer.parameters():
        assert np.abs(p).max() <= bound
        assert (
            np.abs(p).max() > 0.8 * bound
        )  # really spread over the interval, not a narrower one
    big = Conv2D(16, 64, 3, rng=0)
    assert (
        abs(big.w.std() - 1 / np.sqrt(3) / np.sqrt(16 * 9)) < 0.02 * big.w.std()
    )  # std of U(-a, a) = a/sqrt(3)
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
    for g, g0 in zip(layer.grads(), first, strict=True):
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
        for p, g in zip(layer.parameters(), layer.grads(), strict=True):
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
    assert (
        repr(Conv2D(3, 8, 3, rng=0))
        == "Conv2D(3, 8, kernel_size=(3, 3), stride=(1, 1))"
    )
    assert repr(
        Conv2D(
            4,
            4,
            (3, 1),
            stride=2,
            padding=(1, 0),
            dilation=2,
            groups=4,
            bias=False,
            rng=0,
        )
    ) == (
        "Conv2D(4, 4, kernel_size=(3, 1), stride=(2, 2), padding=(1, 0), "
        "dilation=(2, 2), groups=4, bias=False)"
    )
    assert repr(Conv2D(1, 1, 3, padding="same", method="tutorial", rng=0)) == (
        "Conv2D(1, 1, kernel_size=(3, 3), stride=(1, 1), padding=same, "
        "method='tutorial')"
    )


# --------------------------------------------------------------------------------------
# Conv2D as a user of torch.nn.Conv2d expects it


def test_positional_arguments_in_torchs_order():
    # in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias
    assert repr(Conv2D(1, 16, 3, 1, 1, rng=0)) == repr(
        Conv2D(1, 16, 3, stride=1, padding=1, rng=0)
    )
    layer = Conv2D(4, 6, 3, 2, (1, 2), 2, 2, False, rng=0)
    assert (layer.stride, layer.padding, layer.dilation) == ((2, 2), (1, 2), (2, 2))
    assert layer.groups == 2 and layer.b is None
    # the rest is keyword-only
    with pytest.raises(TypeError):
        Conv2D(1, 16, 3, 1, 1, 1, 1, True, "tutorial")
    with pytest.raises(TypeError, match="bias must be True or False"):
        Conv2D(1, 16, 3, 1, 1, 1, 1, "tutorial")


def test_positional_arguments_match_torch():
    torch = pytest.importorskip("torch")
    args = (4, 6, 3, 2, 1, 2, 2, False)
    ours, theirs = Conv2D(*args, rng=0), torch.nn.Conv2d(*args)
    assert repr(ours).replace("Conv2D", "Conv2d") == repr(theirs)
    assert ours.w.shape == tuple(theirs.weight.shape)


@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
def test_computes_in_its_own_dtype(layer_dtype):
    rng = np.random.default_rng(0)
    layer = Conv2D(2, 3, 3, 2, 1, rng=0, dtype=layer_dtype)
    x = rng.standard_normal((2, 2, 7, 7)).astype(layer_dtype)
    out = layer(x)
    dx = layer.backward(np.ones_like(out))
    for a in (out, dx, layer.dw, layer.db):
        assert a.dtype == layer_dtype


@pytest.mark.parametrize(
    "layer_dtype, data_dtype",
    [(np.float32, np.float64), (np.float64, np.float32), (np.float32, np.float16)],
)
def test_another_float_dtype_is_refused_naming_both(layer_dtype, data_dtype):
    layer = Conv2D(2, 3, 3, rng=0, dtype=layer_dtype)
    x = np.ones((1, 2, 5, 5), dtype=data_dtype)
    want, got = np.dtype(layer_dtype).name, np.dtype(data_dtype).name
    with pytest.raises(TypeError, match=rf"x is {got} but the layer is {want}"):
        layer(x)
    out = layer(x.astype(layer_dtype))
    with pytest.raises(TypeError, match=rf"dout is {got} but the layer is {want}"):
        layer.backward(np.ones(out.shape, dtype=data_dtype))
    assert layer.dw is None  # nothing was computed


@pytest.mark.parametrize("method", ["strided", "tutorial", "reference", "winograd"])
def test_input_grad_false_skips_dx(method, monkeypatch):
    import convbook.conv
    import convbook.layers

    rng = np.random.default_rng(0)
    kwargs = dict(padding=1, rng=3, method=method)
    full, first = Conv2D(2, 4, 3, **kwargs), Conv2D(2, 4, 3, input_grad=False, **kwargs)
    x = rng.standard_normal((3, 2, 6, 5))
    dout = rng.standard_normal(full.output_shape(x.shape))
    full(x), first(x)
    full.backward(dout)

    def no_dx(*args, **kwargs):
        raise AssertionError("an input gradient was computed")

    monkeypatch.setattr(convbook.layers, "conv2d_backward", no_dx)
    monkeypatch.setattr(convbook.conv, "conv2d_grad_input", no_dx)
    assert first.backward(dout) is None
    np.testing.assert_allclose(first.dw, full.dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(first.db, full.db, rtol=1e-12, atol=1e-12)
    assert first.grads()[0] is first.dw


def test_input_grad_false_without_bias():
    layer = Conv2D(1, 2, 3, bias=False, input_grad=False, rng=0)
    out = layer(np.ones((1, 1, 4, 4)))
    assert layer.backward(np.ones_like(out)) is None
    assert layer.db is None and len(layer.grads()) == 1


@pytest.mark.parametrize("input_grad", [True, False])
def test_empty_batch_forward_and_backward(input_grad):
    layer = Conv2D(2, 3, 3, 2, 1, rng=0, input_grad=input_grad)
    x = np.zeros((0, 2, 7, 7))
    out = layer(x)
    assert out.shape == (0, 3, 4, 4)
    dx = layer.backward(np.zeros(out.shape))
    assert dx is None if not input_grad else dx.shape == x.shape
    assert layer.dw.shape == layer.w.shape and not layer.dw.any()
    assert layer.db.shape == (3,) and not layer.db.any()


def test_empty_batch_forward():
    out = Conv2D(2, 3, 3, 2, 1, rng=0)(np.zeros((0, 2, 7, 7)))
    assert out.shape == (0, 3, 4, 4) and out.dtype == np.float64


def test_replacing_weights_keeps_the_layer_true():
    layer = Conv2D(2, 3, 3, 1, 1, rng=0)
    w_new = np.ones((3, 2, 3, 3))
    layer.w = w_new
    assert layer.w is w_new  # the array itself, as parameters() hands out
    assert layer.parameters()[0] is w_new
    x = np.ones((1, 2, 4, 4))
    np.testing.assert_allclose(layer(x)[0, :, 1, 1] - layer.b, 18.0)
    text = repr(layer)
    with pytest.raises(
        ValueError, match=r"w must have shape \(3, 2, 3, 3\).*\(3, 2, 5, 5\)"
    ):
        layer.w = np.ones((3, 2, 5, 5))
    with pytest.raises(ValueError, match=r"b must have shape \(3,\).*\(4,\)"):
        layer.b = np.ones(4)
    with pytest.raises(
        TypeError, match="w must be float64 like the layer, got float32"
    ):
        layer.w = np.ones((3, 2, 3, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="w must be a numpy array"):
        layer.w = [[1.0]]
    assert layer.w is w_new and repr(layer) == text and layer.kernel_size == (3, 3)
    # removing the bias is a true change, and the repr says so
    layer.b = None
    assert repr(layer).endswith("bias=False)") and len(layer.parameters()) == 1
    layer(x)
    layer.backward(np.ones((1, 3, 4, 4)))
    assert layer.db is None and len(layer.grads()) == 1
