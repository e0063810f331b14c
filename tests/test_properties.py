"""Random shapes and settings (hypothesis): the fast methods, both input-gradient routes
and the reference agree."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import convbook as cb


@st.composite
def conv_settings(draw):
    groups = draw(st.integers(1, 3))
    c = groups * draw(st.integers(1, 2))
    f = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    same = draw(st.booleans()) and draw(st.booleans())
    if same:
        stride, padding = (1, 1), "same"
        ph = pw = 0
    else:
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        padding = (ph, pw)
    # the input must hold at least one (dilated) window
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    kwargs = dict(stride=stride, padding=padding, dilation=(dh, dw), groups=groups)
    return (n, c, h, w), (f, c // groups, kh, kw), kwargs, seed


@settings(max_examples=60, deadline=None)
@given(conv_settings())
def test_every_method_and_route_agrees_with_the_reference(setting):
    x_shape, w_shape, kw, seed = setting
    rng = np.random.default_rng(seed)
    x, w, b = (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )
    y = cb.conv2d_forward(x, w, b, method="reference", **kw)
    dout = rng.standard_normal(y.shape)
    dx, dw, db = cb.conv2d_backward(dout, x, w, method="reference", **kw)
    for method in ("tutorial", "strided", "wide", "auto"):
        np.testing.assert_allclose(
            cb.conv2d_forward(x, w, b, method=method, **kw), y, atol=1e-12
        )
        for route in ("col2im", "rot180"):
            got = cb.conv2d_grad_input(
                dout, w, x_shape, method=method, route=route, **kw
            )
            np.testing.assert_allclose(got, dx, atol=1e-12)
        np.testing.assert_allclose(
            cb.conv2d_grad_weight(dout, x, w_shape, method=method, **kw), dw, atol=1e-12
        )
    np.testing.assert_allclose(cb.conv2d_grad_bias(dout), db, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(conv_settings())
def test_im2col_col2im_adjoint(setting):
    x_shape, w_shape, kw, seed = setting
    kw.pop("groups")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    cols = cb.im2col(x, w_shape[2:], **kw)
    c = rng.standard_normal(cols.shape)
    assert np.isclose(
        np.vdot(cols, c),
        np.vdot(x, cb.col2im(c, x_shape, w_shape[2:], **kw)),
        rtol=1e-11,
    )
