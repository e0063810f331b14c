"""Every method and route against the loop reference, finite differences, the golden
case, dtypes and aliasing."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_case, random_like

import convbook as cb

FAST = ["tutorial", "strided", "wide", "auto"]


def test_golden_hand_computed():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.arange(4.0).reshape(1, 1, 2, 2)
    want = np.array([[19.0, 25.0], [37.0, 43.0]])
    for method in [
        "reference",
        *FAST,
    ]:  # (Winograd: 3x3 kernels only, test_winograd.py)
        np.testing.assert_array_equal(
            cb.conv2d_forward(x, w, method=method)[0, 0], want
        )
    # by hand: dw[p, q] = sum of the window entries that w[p, q] multiplies, with dout =
    # 1
    dx, dw, db = cb.conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    np.testing.assert_array_equal(
        dw[0, 0], [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]
    )
    np.testing.assert_array_equal(db, [4.0])
    np.testing.assert_array_equal(dx[0, 0], [[0, 1, 1], [2, 6, 4], [2, 5, 3]])


@pytest.mark.parametrize("method", FAST)
def test_forward_matches_reference(case, method):
    x, w, b, kw, y, *_ = case
    np.testing.assert_allclose(
        cb.conv2d_forward(x, w, b, method=method, **kw), y, rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        cb.conv2d_forward(x, w, None, method=method, **kw),
        y - b.reshape(1, -1, 1, 1),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("route", ["col2im", "rot180"])
def test_grad_input_matches_reference(case, method, route):
    x, w, b, kw, y, dout, dx, dw, db = case
    got = cb.conv2d_grad_input(dout, w, x.shape, method=method, route=route, **kw)
    np.testing.assert_allclose(got, dx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", FAST)
def test_grad_weight_and_bias_match_reference(case, method):
    x, w, b, kw, y, dout, dx, dw, db = case
    np.testing.assert_allclose(
        cb.conv2d_grad_weight(dout, x, w.shape, method=method, **kw),
        dw,
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(cb.conv2d_grad_bias(dout), db, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", FAST)
def test_backward_bundles_the_three_gradients(case, method):
    x, w, b, kw, y, dout, dx, dw, db = case
    got = cb.conv2d_backward(dout, x, w, method=method, **kw)
    for g, want in zip(got, (dx, dw, db), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "name",
    [
        "plain-3x3",
        "stride3-remainder",
        "same-even",
        "dilation-pair-stride",
        "depthwise",
        "everything",
        "pad-larger-than-kernel",
    ],
)
def test_gradients_match_finite_differences(name):
    """The analytic gradients of the reference (and so of every method) against float64
    central differences."""
    x, w, b, kw = make_case(name, seed=3)
    y = cb.conv2d_forward(x, w, b, **kw)
    dout = random_like(y.shape, seed=4)
    dx, dw, db = cb.conv2d_backward(dout, x, w, **kw)
    num_dx = cb.numeric_vjp(lambda v: cb.conv2d_forward(v, w, b, **kw), x, dout)
    num_dw = cb.numeric_vjp(lambda v: cb.conv2d_forward(x, v, b, **kw), w, dout)
    num_db = cb.numeric_vjp(lambda v: cb.conv2d_forward(x, w, v, **kw), b, dout)
    # conv is linear in each argument, so central differences have no truncation error:
    # what is left is float64 rounding, about eps * |out| / h ~ 1e-9 absolute
    for got, num in ((dx, num_dx), (dw, num_dw), (db, num_db)):
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)
        assert cb.rel_error(got, num) < 1e-8


def test_unreached_border_gets_zero_gradient():
    x, w, b, kw = make_case("stride3-remainder")
    out = cb.conv_output_shape(x.shape[2:], w.shape[2:], **kw)
    assert out.unused_h == 2 and out.unused_w == 0
    dout = np.ones((x.shape[0], w.shape[0], out.oh, out.ow))
    for route in ("col2im", "rot180"):
        dx = cb.conv2d_grad_input(dout, w, x.shape, route=route, **kw)
        assert np.all(dx[:, :, -2:, :] == 0)
        assert np.all(np.abs(dx[:, :, :-2, :]).sum(axis=(0, 1, 3)) > 0)


@pytest.mark.parametrize(
    "name", ["plain-3x3", "stride2-pad1", "everything", "same-even"]
)
def test_convolution_adjoint_identity(name):
    """<conv(x), dy> == <x, dx(dy)>: the input gradient is the transpose of the
    (bias-free) convolution."""
    x, w, _, kw = make_case(name)
    y = cb.conv2d_forward(x, w, **kw)
    dy = random_like(y.shape, seed=5)
    for route in ("col2im", "rot180"):
        dx = cb.conv2d_grad_input(dy, w, x.shape, route=route, **kw)
        assert np.isclose(np.vdot(y, dy), np.vdot(x, dx), rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("method", ["reference", *FAST])
def test_dtype_in_is_dtype_out(dtype, method):
    x, w, b, kw = make_case("stride2-pad1", dtype=dtype)
    y = cb.conv2d_forward(x, w, b, method=method, **kw)
    assert y.dtype == dtype
    grads = cb.conv2d_backward(np.ones_like(y), x, w, method=method, **kw)
    assert [g.dtype for g in grads] == [dtype] * 3
    want = cb.conv2d_forward(
        x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), **kw
    )
    tol = {np.float16: 5e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol * 10)


def test_mixed_dtypes_promote_as_numpy_does():
    x, w, b, kw = make_case("plain-3x3")
    y = cb.conv2d_forward(
        x.astype(np.float32), w.astype(np.float64), b.astype(np.float16)
    )
    assert y.dtype == np.float64
    y = cb.conv2d_forward(x.astype(np.float16), w.astype(np.float32))
    assert y.dtype == np.float32


@pytest.mark.parametrize("method", ["reference", *FAST])
def test_inputs_are_never_modified_and_results_own_their_memory(method):
    x, w, b, kw = make_case("everything")
    dout = random_like(cb.conv2d_forward(x, w, b, **kw).shape)
    saved = [a.copy() for a in (x, w, b, dout)]
    y = cb.conv2d_forward(x, w, b, method=method, **kw)
    grads = cb.conv2d_backward(dout, x, w, method=method, **kw)
    route = None if method == "reference" else "rot180"
    dx2 = cb.conv2d_grad_input(dout, w, x.shape, method=method, route=route, **kw)
    for a, s in zip((x, w, b, dout), saved, strict=True):
        np.testing.assert_array_equal(a, s)
    for r in (y, *grads, dx2):
        # a fresh, contiguous array: never a view into an input, never an overlapping
        # (as_strided) view
        assert r.flags.writeable and r.flags.c_contiguous
        for a in (x, w, b, dout):
            assert not np.shares_memory(r, a)


@pytest.mark.parametrize(
    "w_shape, groups",
    [((4, 3, 3, 3), 1), ((4, 3, 1, 1), 1), ((1, 3, 3, 3), 1), ((6, 1, 3, 3), 6)],
)
def test_rot180_and_swap_in_out_return_new_arrays(w_shape, groups):
    """A new array as documented, also where nothing moves (a 1 x 1 kernel for rot180,
    one filter a group for swap_in_out), so that writing to it never changes ``w``."""
    w = np.arange(float(np.prod(w_shape))).reshape(w_shape)
    for out in (cb.rot180(w), cb.swap_in_out(w, groups)):
        assert not np.shares_memory(out, w) and out.flags.c_contiguous


def test_rot180_and_the_tutorials_two_rotations_agree():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((3, 3, 2, 4))  # the seed's (k, k, C_in, C_out)
    one, two = cb.rot180_tutorial(weights, 1), cb.rot180_tutorial(weights, 2)
    np.testing.assert_array_equal(one, two)
    # the same as convbook's rot180 on (F, C, KH, KW) with channels swapped: (k, k,
    # C_out, C_in) is, in convbook's layout, a kernel with C_in outputs and C_out inputs
    w = weights.transpose(3, 2, 0, 1)  # (C_out, C_in, k, k) = (F, C, KH, KW)
    np.testing.assert_array_equal(
        one.transpose(3, 2, 0, 1), cb.rot180(w.swapaxes(0, 1))
    )
    with pytest.raises(ValueError, match="way must be 1 or 2"):
        cb.rot180_tutorial(weights, 3)


def test_dilate_inserts_zeros():
    d = cb.dilate(np.arange(1.0, 7.0).reshape(1, 1, 2, 3), (3, 2))
    assert d.shape == (1, 1, 4, 5)
    np.testing.assert_array_equal(d[0, 0, ::3, ::2], [[1, 2, 3], [4, 5, 6]])
    assert np.count_nonzero(d) == 6


def test_conv2d_backward_returns_db_without_bias():
    x, w, _, kw = make_case("plain-3x3", bias=False)
    y = cb.conv2d_forward(x, w, **kw)
    _, _, db = cb.conv2d_backward(np.ones_like(y), x, w, **kw)
    np.testing.assert_allclose(db, np.full(w.shape[0], y[:, 0].size))


def test_wide_bias_row_sits_under_each_groups_columns():
    x = random_like((2, 4, 7, 6), seed=3)
    p = cb.conv_params(3, stride=2, padding=1, groups=2)
    plain, g = cb.methods.wide.column_matrix(x, (3, 3), p)
    cols, _ = cb.methods.wide.column_matrix(x, (3, 3), p, ones=True)
    assert plain.shape == (2, 2 * 9, 2 * g.run)  # groups, (c, p, q) in a group, columns
    assert cols.shape == (2, 2 * 9 + 1, 2 * g.run)
    np.testing.assert_array_equal(cols[:, :-1], plain)
    np.testing.assert_array_equal(cols[:, -1], 1)


def test_strided_sample_columns_are_each_samples_block_of_the_column_matrix():
    x = random_like((3, 4, 7, 6), seed=4)
    p = cb.conv_params(3, stride=2, padding=1, dilation=(1, 2), groups=2)
    batch = cb.methods.strided.column_matrix(x, (3, 3), p)  # (G, rows, N*L)
    cols = cb.methods.strided.sample_columns(x, (3, 3), p, ones=True)
    n, g, rows, run = cols.shape
    assert (n, g, rows) == (3, 2, 2 * 9 + 1)  # samples, groups, (c, p, q) and the 1s
    by_sample = batch.reshape(g, rows - 1, n, run).transpose(2, 0, 1, 3)
    np.testing.assert_array_equal(cols[:, :, :-1], by_sample)
    np.testing.assert_array_equal(cols[:, :, -1], 1)


@pytest.mark.parametrize(
    "x_shape, kernel_hw, kwargs",
    [
        ((2, 3, 6, 5), (3, 3), dict(padding=1)),
        ((2, 4, 7, 6), (2, 3), dict(padding=(1, 2), dilation=(1, 2), groups=2)),
        ((1, 2, 5, 6), (2, 4), dict(padding="same")),  # PL 1, PR 2
        ((1, 2, 3, 2), (3, 3), dict(padding="same", dilation=3)),  # shifts past W
        ((2, 3, 4, 5), (1, 1), dict()),  # nothing to pad
        ((1, 2, 6, 4), (3, 1), dict(padding=(2, 0))),
    ],
)
def test_shifted_columns_are_the_copied_windows(x_shape, kernel_hw, kwargs):
    """Each row of the column matrix as the flattened input shifted, with the numbers
    that wrapped around a row's end cleared: the same matrix as the window view's copy,
    in both layouts."""
    x = random_like(x_shape, seed=3)
    x0 = x.copy()
    p = cb.conv_params(kernel_hw, **kwargs)
    s = cb.methods.strided
    assert s.rows_shift(x_shape, kernel_hw, p)
    np.testing.assert_array_equal(
        s.shifted_columns(x, kernel_hw, p, ones=True),
        s.sample_columns(x, kernel_hw, p, ones=True),
    )
    np.testing.assert_array_equal(
        s.shifted_columns(x, kernel_hw, p, by_sample=False),
        s.column_matrix(x, kernel_hw, p),
    )
    np.testing.assert_array_equal(x, x0)


def test_add_shifted_is_the_adjoint_of_shifted_columns():
    """<shifted_columns(x), d> = <x, add_shifted(d)>: the input gradient's block adds
    are the transpose of the copy, wrapped numbers included."""
    x = random_like((3, 4, 7, 6), seed=5)
    p = cb.conv_params((2, 3), padding=(1, 2), dilation=(1, 2), groups=2)
    s = cb.methods.strided
    cols = s.shifted_columns(x, (2, 3), p)
    d = random_like(cols.shape, seed=6)
    back = s.add_shifted(d.copy(), x.shape, (2, 3), p)
    assert back.shape == x.shape and back.flags.c_contiguous
    np.testing.assert_allclose(np.vdot(cols, d), np.vdot(x, back), rtol=1e-12)
    out = np.full(x.shape, np.nan)
    assert s.add_shifted(d.copy(), x.shape, (2, 3), p, out=out) is out
    np.testing.assert_array_equal(out, back)


@pytest.mark.parametrize(
    "kernel_hw, kwargs, want",
    [
        ((3, 3), dict(padding=1), True),
        ((3, 3), dict(padding=(0, 1)), True),  # only the columns count
        ((3, 3), dict(padding=(1, 0)), False),
        ((3, 3), dict(padding=1, stride=(1, 2)), False),
        ((3, 3), dict(padding="same", dilation=2), True),
        ((1, 1), dict(), True),
        ((1, 1), dict(padding=1), False),
    ],
)
def test_rows_shift_rule(kernel_hw, kwargs, want):
    p = cb.conv_params(kernel_hw, **kwargs)
    assert cb.methods.strided.rows_shift((2, 3, 8, 8), kernel_hw, p) is want


def test_strided_forward_fills_an_out_that_is_not_one_block():
    x, w = random_like((2, 4, 7, 6)), random_like((6, 2, 3, 3), seed=2)
    b = random_like((6,), seed=3)
    p = cb.conv_params(3, padding=1, groups=2)
    whole = np.zeros((2, 12, 7, 6))
    out = whole[:, ::2]  # every other channel of a larger array
    got = cb.methods.strided.forward(x, w, b, p, out=out)
    assert got is out
    want = cb.conv2d_forward(x, w, b, padding=1, groups=2, method="reference")
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(whole[:, 1::2], 0)


def test_strided_kernel_matrix_is_a_view_and_takes_the_bias_as_a_column():
    w, b = random_like((6, 2, 3, 3)), random_like((6,), seed=2)
    kmat = cb.methods.strided.kernel_matrix(w, 2)
    assert kmat.shape == (2, 3, 18) and np.shares_memory(kmat, w)
    with_b = cb.methods.strided.kernel_matrix(w, 2, b)
    assert with_b.shape == (2, 3, 19)
    np.testing.assert_array_equal(with_b[:, :, :-1], kmat)
    np.testing.assert_array_equal(with_b[:, :, -1], b.reshape(2, 3))


def test_strided_columns_last_are_the_sample_columns_channels_last():
    x = random_like((3, 10, 7, 9), seed=5)
    p = cb.conv_params((3, 2), stride=(2, 3), padding=1, dilation=(1, 2), groups=2)
    by_rows = cb.methods.strided.sample_columns(x, (3, 2), p, ones=True)
    last = cb.methods.strided.columns_last(x, (3, 2), p, ones=True)
    n, g, rows, run = by_rows.shape
    assert last.shape == (n, run, g, rows)  # a row per window, taps (p, q, c)
    taps = by_rows[:, :, :-1].reshape(n, g, 5, 3, 2, run)  # (c, p, q) in a group
    want = taps.transpose(0, 5, 1, 3, 4, 2).reshape(n, run, g, rows - 1)
    np.testing.assert_array_equal(last[..., :-1], want)
    np.testing.assert_array_equal(last[..., -1], 1)
    w, b = random_like((4, 5, 3, 2), seed=6), random_like((4,), seed=7)
    kmat = cb.methods.strided.kernel_matrix(w, 2, b, channels_last=True)
    np.testing.assert_array_equal(
        kmat[..., :-1], w.transpose(0, 2, 3, 1).reshape(2, 2, -1)
    )
    np.testing.assert_array_equal(kmat[..., -1], b.reshape(2, 2))


def test_add_windows_last_is_the_adjoint_of_columns_last():
    """<columns_last(x), d> = <x, add_windows_last(d)> for every x and d: the input
    gradient's channels-last col2im is the transpose of the forward pass's copy."""
    x = random_like((3, 10, 7, 9), seed=8)
    p = cb.conv_params((3, 2), stride=(2, 3), padding=(2, 1), dilation=(1, 2), groups=2)
    cols = cb.methods.strided.columns_last(x, (3, 2), p)
    d = random_like(cols.shape, seed=9)
    x0, d0 = x.copy(), d.copy()
    back = cb.methods.strided.add_windows_last(d, x.shape, (3, 2), p)
    assert back.shape == x.shape and back.flags.c_contiguous
    np.testing.assert_allclose(np.vdot(cols, d), np.vdot(x, back), rtol=1e-12)
    out = np.full(x.shape, np.nan)
    assert cb.methods.strided.add_windows_last(d, x.shape, (3, 2), p, out=out) is out
    np.testing.assert_array_equal(out, back)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(d, d0)


@pytest.mark.parametrize(
    "x_shape, w_shape, kwargs, want",
    [
        ((64, 32, 16, 16), (64, 32, 3, 3), dict(stride=2, padding=1), True),  # layer c
        ((32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1), False),  # stride 1
        ((32, 64, 16, 16), (128, 64, 1, 1), dict(stride=2), False),  # 1 x 1
        ((8, 64, 56, 56), (64, 64, 3, 3), dict(stride=2, padding=1), True),  # OW 28
        ((32, 64, 32, 32), (64, 64, 3, 3), dict(stride=2, padding=1), False),  # 4 KB
        ((16, 32, 64, 64), (64, 32, 3, 3), dict(stride=2, padding=1), False),  # Cg=OW
        ((4, 16, 16, 16), (32, 4, 3, 3), dict(stride=2, padding=1, groups=4), False),
        ((4, 64, 16, 16), (32, 16, 3, 3), dict(stride=2, padding=1, groups=4), True),
    ],
)
def test_use_columns_last_rule(x_shape, w_shape, kwargs, want):
    p = cb.conv_params(w_shape[2:], **kwargs)
    assert cb.methods.strided.use_columns_last(x_shape, w_shape, p, 4) is want
    if x_shape[2] == 16:  # float64 planes of 16 x 16: 2 KB, the same answer
        assert cb.methods.strided.use_columns_last(x_shape, w_shape, p, 8) is want
    if x_shape[2] == 32:  # 8 KB
        assert not cb.methods.strided.use_columns_last(x_shape, w_shape, p, 8)
