"""ReLU, Flatten, softmax cross-entropy, SGD and Sequential: forward, backward, a
gradient check, and PyTorch (where installed) agreeing step for step."""

import numpy as np
import pytest

import convbook as cb
from convbook.gradcheck import numeric_vjp, rel_error
from convbook.layers import Conv2D
from convbook.nn import (
    SGD,
    Flatten,
    ReLU,
    Sequential,
    log_softmax,
    softmax_cross_entropy,
    to_torch,
)


def away_from_zero(shape, seed=0):
    """Values at least 0.1 from zero: a finite difference never crosses the kink."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    return x + 0.1 * np.sign(x)


def small_net(rng=0, dtype=np.float64, first_input_grad=True):
    rng = np.random.default_rng(rng)
    return Sequential(
        Conv2D(2, 3, 3, 1, 1, rng=rng, dtype=dtype, input_grad=first_input_grad),
        ReLU(),
        Conv2D(3, 4, 3, 2, 1, rng=rng, dtype=dtype),
        ReLU(),
        Conv2D(4, 5, 4, rng=rng, dtype=dtype),  # covers the 4x4 map: (N, 5, 1, 1)
        Flatten(),
    )


# ----------------------------------------------------------------------------- ReLU


def test_relu_forward_backward():
    relu = ReLU()
    x = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.0]])
    x_before = x.copy()
    np.testing.assert_array_equal(relu(x), [[0, 0, 0, 1e-300, 3.0]])
    dout = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
    # no gradient at exactly 0, as in PyTorch
    np.testing.assert_array_equal(relu.backward(dout), [[0, 0, 0, 4.0, 5.0]])
    np.testing.assert_array_equal(x, x_before)
    assert relu.parameters() == [] and relu.grads() == [] and repr(relu) == "ReLU()"


def test_relu_gradient_check():
    relu = ReLU()
    x = away_from_zero((2, 3, 4, 4))
    dout = np.random.default_rng(1).standard_normal(x.shape)
    relu(x)
    assert rel_error(relu.backward(dout), numeric_vjp(relu.forward, x, dout)) < 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_keeps_dtype(dtype):
    relu = ReLU()
    x = away_from_zero((3, 4)).astype(dtype)
    assert relu(x).dtype == dtype and relu.backward(x).dtype == dtype


def test_relu_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    x[0, 0, 0, :2] = 0.0  # the kink itself
    dout = np.random.default_rng(1).standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out_t = torch.nn.ReLU()(xt)
    out_t.backward(torch.from_numpy(dout))
    relu = ReLU()
    np.testing.assert_array_equal(relu(x), out_t.detach().numpy())
    np.testing.assert_array_equal(relu.backward(dout), xt.grad.numpy())


# -------------------------------------------------------------------------- Flatten


def test_flatten_forward_backward_and_gradient():
    flat = Flatten()
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    out = flat(x)
    assert out.shape == (2, 12) and np.array_equal(out[1], np.arange(12.0, 24.0))
    dout = np.random.default_rng(0).standard_normal(out.shape)
    dx = flat.backward(dout)
    assert dx.shape == x.shape
    x = np.random.default_rng(1).standard_normal(x.shape)  # O(1) values for h = 1e-6
    flat(x)
    assert rel_error(flat.backward(dout), numeric_vjp(flat.forward, x, dout)) < 1e-9
    assert repr(flat) == "Flatten()" and flat.parameters() == [] and flat.grads() == []


# ------------------------------------------------------------ softmax cross-entropy


def test_log_softmax_is_stable():
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]])
    with np.errstate(
        over="raise", invalid="raise", divide="raise"
    ):  # no overflow, no invalid value
        logp = log_softmax(z)
    np.testing.assert_allclose(logp[0], [0.0, -1000.0, -2000.0])
    np.testing.assert_allclose(logp[1], np.log(1 / 3) * np.ones(3))
    np.testing.assert_allclose(
        np.exp(log_softmax(np.random.default_rng(0).standard_normal((4, 7)))).sum(1), 1
    )


def test_cross_entropy_value_by_hand():
    # one sample, three classes, logits log(1), log(2), log(5): p = 1/8, 2/8, 5/8
    logits = np.log(np.array([[1.0, 2.0, 5.0]]))
    loss, dlogits = softmax_cross_entropy(logits, np.array([2]))
    assert abs(loss - np.log(8 / 5)) < 1e-15
    np.testing.assert_allclose(dlogits, [[1 / 8, 2 / 8, 5 / 8 - 1]], atol=1e-15)
    # huge logits: no overflow, the right class certain, loss 0
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = softmax_cross_entropy(np.array([[1e4, -1e4]]), np.array([0]))
    assert loss == 0.0 and np.array_equal(dlogits, [[0.0, 0.0]])


def test_cross_entropy_gradient_check():
    rng = np.random.default_rng(0)
    logits = 3 * rng.standard_normal((6, 10))
    labels = rng.integers(0, 10, 6)
    logits_before = logits.copy()
    _, dlogits = softmax_cross_entropy(logits, labels)
    numeric = numeric_vjp(
        lambda z: np.array(softmax_cross_entropy(z, labels)[0]), logits, 1.0
    )
    assert rel_error(dlogits, numeric) < 1e-8
    np.testing.assert_array_equal(logits, logits_before)
    # each row of the gradient sums to zero: softmax sums to 1, the one-hot too
    np.testing.assert_allclose(dlogits.sum(axis=1), 0, atol=1e-16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_keeps_dtype(dtype):
    logits = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    loss, dlogits = softmax_cross_entropy(logits, np.array([0, 1, 3]))
    assert isinstance(loss, float) and dlogits.dtype == dtype


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    logits = 5 * rng.standard_normal((32, 10))
    labels = rng.integers(0, 10, 32)
    zt = torch.tensor(logits, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(zt, torch.from_numpy(labels))
    loss_t.backward()
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert abs(loss - loss_t.item()) < 1e-14
    np.testing.assert_allclose(dlogits, zt.grad.numpy(), rtol=0, atol=1e-16)
    np.testing.assert_allclose(
        log_softmax(logits),
        torch.log_softmax(zt, 1).detach().numpy(),
        rtol=0,
        atol=1e-14,
    )


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"logits must be .* \(N, K\).*\(4,\)"):
        softmax_cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ValueError, match=r"N >= 1.*\(0, 10\)"):
        softmax_cross_entropy(np.zeros((0, 10)), np.array([], dtype=int))
    with pytest.raises(ValueError, match=r"labels must be 2 ints.*\(2, 3\).*\(3,\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must be 2 ints.*float64"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"range\(3\), got 0 to 3"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


# ------------------------------------------------------------------------------ SGD


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, weight_decay=1e-3),
    dict(lr=0.05, momentum=0.5, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
]


def test_sgd_plain_and_momentum_by_hand():
    p = np.array([1.0, -2.0])
    SGD([p], lr=0.5).step([np.array([1.0, 1.0])])
    np.testing.assert_array_equal(p, [0.5, -2.5])
    # momentum: the first step's velocity is the gradient itself, not (1 - momentum) g
    p = np.array([0.0])
    opt = SGD([p], lr=1.0, momentum=0.9)
    for _ in range(3):
        opt.step([np.array([1.0])])
    np.testing.assert_allclose(p, [-(1 + 1.9 + 2.71)])
    np.testing.assert_allclose(opt.velocity[0], [2.71])


@pytest.mark.parametrize("kwargs", SGD_SETTINGS, ids=lambda k: "-".join(k))
def test_sgd_matches_torch_step_for_step(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    params = [rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)]
    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    opt, opt_t = SGD(params, **kwargs), torch.optim.SGD(theirs, **kwargs)
    for _ in range(6):
        grads = [rng.standard_normal(p.shape) for p in params]
        grads_before = [g.copy() for g in grads]
        for t, g in zip(theirs, grads, strict=True):
            t.grad = torch.tensor(g)
        opt.step(grads)
        opt_t.step()
        for g, g0 in zip(grads, grads_before, strict=True):
            np.testing.assert_array_equal(g, g0)  # the gradients are not modified
        for p, t in zip(params, theirs, strict=True):
            np.testing.assert_allclose(p, t.detach().numpy(), rtol=0, atol=1e-15)


def test_sgd_updates_the_layer_in_place():
    layer = Conv2D(1, 2, 3, rng=0)
    w = layer.w
    opt = SGD(layer.parameters(), lr=0.1)
    layer(np.ones((1, 1, 3, 3)))
    layer.backward(np.ones((1, 2, 1, 1)))
    w0 = w.copy()
    opt.step(layer.grads())
    assert layer.w is w
    np.testing.assert_allclose(w, w0 - 0.1 * layer.dw)


def test_sgd_errors():
    p = np.zeros(3)
    with pytest.raises(ValueError, match="lr, momentum and weight_decay must be >= 0"):
        SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="expected 1 gradients, got 2"):
        SGD([p], lr=0.1).step([p, p])
    with pytest.raises(
        ValueError, match=r"gradient 0 has shape \(2,\), its parameter \(3,\)"
    ):
        SGD([p], lr=0.1).step([np.zeros(2)])


# ----------------------------------------------------------------------- Sequential


def test_sequential_is_the_composition():
    net = small_net()
    x = away_from_zero((2, 2, 7, 7))
    y = x
    for layer in net.layers:
        y = layer(y)
    np.testing.assert_array_equal(net(x), y)
    assert net(x).shape == (2, 5) and len(net) == 6 and net[1].__class__ is ReLU
    dx = net.backward(np.ones((2, 5)))
    assert dx.shape == x.shape
    # grads() lines up with parameters(): what an optimiser walks side by side
    assert [g.shape for g in net.grads()] == [p.shape for p in net.parameters()]
    assert [p.shape for p in net.parameters()][:2] == [(3, 2, 3, 3), (3,)]
    assert (
        repr(net).splitlines()[1]
        == "  (0): Conv2D(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"
    )


def test_sequential_gradient_check():
    """dx and every gradient of a whole small network, by finite differences."""
    net = small_net()
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 7))
    out = net(x)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx = net.backward(dout)
    assert rel_error(dx, numeric_vjp(net.forward, x, dout)) < 1e-7
    for p, g in zip(net.parameters(), [g.copy() for g in net.grads()], strict=True):
        saved = p.copy()

        def out_with(value, p=p, saved=saved):
            p[...] = value
            try:
                return net.forward(x)
            finally:
                p[...] = saved

        assert rel_error(g, numeric_vjp(out_with, saved, dout)) < 1e-7


def test_sequential_first_layer_without_input_grad():
    net = small_net(first_input_grad=False)
    full = small_net()
    x = np.random.default_rng(1).standard_normal((2, 2, 7, 7))
    dout = np.ones((2, 5))
    net(x), full(x)
    assert net.backward(dout) is None
    full.backward(dout)
    for g, g_full in zip(net.grads(), full.grads(), strict=True):
        np.testing.assert_allclose(g, g_full, rtol=1e-13, atol=1e-15)


def test_sequential_refuses_a_missing_gradient_in_the_middle():
    net = Sequential(ReLU(), Conv2D(1, 1, 1, input_grad=False, rng=0))
    net(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"layer 1 \(Conv2D.*input_grad=False"):
        net.backward(np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_sequential_and_to_torch_agree(dtype, tol):
    torch = pytest.importorskip("torch")
    net = small_net(dtype=dtype)
    twin = to_torch(net)
    assert "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in repr(
        twin
    )
    x = np.random.default_rng(1).standard_normal((3, 2, 7, 7)).astype(dtype)
    labels = np.array([0, 4, 2])
    xt = torch.tensor(x, requires_grad=True)
    loss_t = torch.nn.functional.cross_entropy(twin(xt), torch.from_numpy(labels))
    loss_t.backward()
    loss, dlogits = softmax_cross_entropy(net(x), labels)
    dx = net.backward(dlogits)
    assert abs(loss - loss_t.item()) < tol
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=tol)
    for g, t in zip(net.grads(), twin.parameters(), strict=True):
        assert g.dtype == dtype and t.dtype == getattr(torch, np.dtype(dtype).name)
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=0, atol=tol)


def test_to_torch_unknown_layer():
    pytest.importorskip("torch")
    with pytest.raises(
        TypeError, match="to_torch knows Sequential, Conv2D, ReLU and Flatten"
    ):
        to_torch(object())


def test_exported_from_the_package():
    for name in (
        "ReLU",
        "Flatten",
        "Sequential",
        "SGD",
        "softmax_cross_entropy",
        "log_softmax",
    ):
        assert getattr(cb, name) is getattr(cb.nn, name)
