"""Winograd F(m x m, 3 x 3): exact transforms vs the published ones, and the convolution
vs the loop reference."""

import functools
from fractions import Fraction

import numpy as np
import pytest
from conftest import read_only, reference_all
from hypothesis import given, settings
from hypothesis import strategies as st

import convbook as cb
from convbook.conv import conv2d_backward, conv2d_forward, conv2d_grad_input
from convbook.winograd import (
    BAND_TILES,
    tiles_conv2d,
    tiles_grad_input,
    transform_matrices,
    weight_transform,
    winograd_conv2d,
    winograd_matrices,
    winograd_multiplications,
)

F = Fraction

# Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks", section 4.1
# (F(2,3)) and 4.2 (F(4,3)).
PUBLISHED = {
    2: (
        [[1, 1, 1, 0], [0, 1, -1, -1]],
        [
            [1, 0, 0],
            [F(1, 2), F(1, 2), F(1, 2)],
            [F(1, 2), F(-1, 2), F(1, 2)],
            [0, 0, 1],
        ],
        [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    ),
    4: (
        [
            [1, 1, 1, 1, 1, 0],
            [0, 1, -1, 2, -2, 0],
            [0, 1, 1, 4, 4, 0],
            [0, 1, -1, 8, -8, 1],
        ],
        [
            [F(1, 4), 0, 0],
            [F(-1, 6), F(-1, 6), F(-1, 6)],
            [F(-1, 6), F(1, 6), F(-1, 6)],
            [F(1, 24), F(1, 12), F(1, 6)],
            [F(1, 24), F(-1, 12), F(1, 6)],
            [0, 0, 1],
        ],
        [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ],
    ),
}

# F(6,3) is not printed in the paper; these are the values of Lavin's wincnn (points 0,
# +-1, +-2, +-1/2), whose convention gives the infinity row of BT as the coefficients of
# prod (x - a_i). We normalise that row to a positive first entry (the published
# F(2,3)'s convention), which flips BT's last row and AT's last column.
WINCNN_F6 = (
    [
        [1, 1, 1, 1, 1, 1, 1, 0],
        [0, 1, -1, 2, -2, F(1, 2), F(-1, 2), 0],
        [0, 1, 1, 4, 4, F(1, 4), F(1, 4), 0],
        [0, 1, -1, 8, -8, F(1, 8), F(-1, 8), 0],
        [0, 1, 1, 16, 16, F(1, 16), F(1, 16), 0],
        [0, 1, -1, 32, -32, F(1, 32), F(-1, 32), 1],
    ],
    [
        [1, 0, 0],
        [F(-2, 9), F(-2, 9), F(-2, 9)],
        [F(-2, 9), F(2, 9), F(-2, 9)],
        [F(1, 90), F(1, 45), F(2, 45)],
        [F(1, 90), F(-1, 45), F(2, 45)],
        [F(32, 45), F(16, 45), F(8, 45)],
        [F(32, 45), F(-16, 45), F(8, 45)],
        [0, 0, 1],
    ],
    [
        [1, 0, F(-21, 4), 0, F(21, 4), 0, -1, 0],
        [0, 1, 1, F(-17, 4), F(-17, 4), 1, 1, 0],
        [0, -1, 1, F(17, 4), F(-17, 4), -1, 1, 0],
        [0, F(1, 2), F(1, 4), F(-5, 2), F(-5, 4), 2, 1, 0],
        [0, F(-1, 2), F(1, 4), F(5, 2), F(-5, 4), -2, 1, 0],
        [0, 2, 4, F(-5, 2), -5, F(1, 2), 1, 0],
        [0, -2, 4, F(5, 2), -5, F(-1, 2), 1, 0],
        [0, -1, 0, F(21, 4), 0, F(-21, 4), 0, 1],
    ],
)


@pytest.mark.parametrize("m", [2, 4])
def test_matrices_equal_the_published_ones(m):
    AT, G, BT = winograd_matrices(m)
    want_AT, want_G, want_BT = PUBLISHED[m]
    assert AT == want_AT
    assert G == want_G
    assert BT == want_BT
    assert all(
        isinstance(v, Fraction) for mat in (AT, G, BT) for row in mat for v in row
    )


def test_f6_equals_wincnn_up_to_the_infinity_sign():
    AT, G, BT = winograd_matrices(6)
    want_AT, want_G, want_BT = WINCNN_F6
    assert G == want_G
    assert BT[:-1] == want_BT[:-1]
    assert BT[-1] == [-v for v in want_BT[-1]]
    assert [row[:-1] for row in AT] == [row[:-1] for row in want_AT]
    assert [row[-1] for row in AT] == [-row[-1] for row in want_AT]


def _exact_correlation(d, g, m):
    return [sum(g[k] * d[i + k] for k in range(len(g))) for i in range(m)]


def _apply(AT, G, BT, d, g):
    u = [sum(gr[k] * g[k] for k in range(len(g))) for gr in G]
    v = [sum(br[k] * d[k] for k in range(len(d))) for br in BT]
    mprod = [a * b for a, b in zip(u, v, strict=True)]
    return [sum(ar[k] * mprod[k] for k in range(len(mprod))) for ar in AT]


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 6),
    r=st.integers(2, 4),
    data=st.data(),
)
def test_defining_property_exact_correlation(m, r, data):
    """y = AT[(G g) * (BT d)] is the exact 1-D correlation, for random rationals and
    random distinct points."""
    alpha = m + r - 1
    fr = st.fractions(min_value=-5, max_value=5, max_denominator=7)
    points = data.draw(
        st.lists(fr, min_size=alpha - 1, max_size=alpha - 1, unique=True)
    )
    d = data.draw(st.lists(fr, min_size=alpha, max_size=alpha))
    g = data.draw(st.lists(fr, min_size=r, max_size=r))
    AT, G, BT = winograd_matrices(m, r, points=points)
    assert _apply(AT, G, BT, d, g) == _exact_correlation(d, g, m)


@pytest.mark.parametrize("m", [2, 3, 4, 5, 6])
def test_default_points_exact(m):
    rng = np.random.default_rng(m)
    d = [
        F(int(v), int(q))
        for v, q in zip(
            rng.integers(-9, 10, m + 2), rng.integers(1, 9, m + 2), strict=True
        )
    ]
    g = [F(int(v), 3) for v in rng.integers(-9, 10, 3)]
    assert _apply(*winograd_matrices(m), d, g) == _exact_correlation(d, g, m)


def test_float_matrices_match_exact_ones():
    for m in (2, 4, 6):
        exact = winograd_matrices(m)
        for got, want in zip(transform_matrices(m), exact, strict=True):
            assert got.dtype == np.float64
            np.testing.assert_array_equal(
                got, np.array([[float(v) for v in row] for row in want])
            )
        assert transform_matrices(m, dtype=np.float32)[0].dtype == np.float32


def test_multiplication_counts():
    assert winograd_multiplications(2) == (36, 16)
    assert winograd_multiplications(4) == (144, 36)
    assert winograd_multiplications(6) == (324, 64)


@pytest.mark.parametrize(
    "bad", [dict(m=0), dict(m=2, r=0), dict(m=2.0), dict(m=2, points=(0, 1, 1))]
)
def test_bad_matrix_arguments(bad):
    with pytest.raises(ValueError):
        winograd_matrices(**bad)


# Relative tolerances (max |diff| / max |reference|) in float64. Measured worst case
# over random layers with up to 64 channels: F(2,3) ~1e-15, F(4,3) ~1e-14, F(6,3)
# ~1.2e-14; the tests leave ~100x headroom.
RTOL64 = {2: 1e-13, 4: 1e-12, 6: 1e-12}


def _rel(got, want):
    return np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)


@pytest.mark.parametrize("r, m", [(3, 2), (3, 4), (3, 6), (5, 2), (5, 4)])
@pytest.mark.parametrize(
    "shape", [(2, 3, 9, 11), (1, 1, 5, 5), (3, 2, 6, 17), (1, 5, 8, 8), (2, 4, 13, 6)]
)
def test_winograd_conv2d_matches_reference(r, m, shape):
    """F(m, 3) and F(m, 5), whole tiles or cropped ones, down to one output."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((4, shape[1], r, r))
    got = winograd_conv2d(x, w, m)
    want = conv2d_forward(x, w, method="reference")
    assert got.shape == want.shape
    assert got.dtype == np.float64
    if m == 2:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert _rel(got, want) < RTOL64[m]


def test_winograd_conv2d_leaves_input_alone():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 7))
    w = rng.standard_normal((2, 3, 3, 3))
    x0, w0 = x.copy(), w.copy()
    winograd_conv2d(x, w, 4)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-4), (np.float16, 5e-2)])
def test_winograd_dtypes(dtype, rtol):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 8, 10, 10))
    w = rng.standard_normal((3, 8, 3, 3))
    got = winograd_conv2d(x.astype(dtype), w.astype(dtype), 4)
    assert got.dtype == dtype
    assert _rel(got.astype(np.float64), conv2d_forward(x, w, method="reference")) < rtol


PADDINGS = [0, 1, 2, (1, 0), (0, 2), (1, 3), 5, "same", "valid"]


@functools.cache
def _layer_and_reference(r, padding):
    """x, w, b and :func:`conftest.reference_all` of them for one kernel size and
    padding, computed once for every tile size m (the module: 58 s with the loops run
    for each m, 28 s so)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 9, 12))
    w = rng.standard_normal((5, 4, r, r))
    b = rng.standard_normal(5)
    return read_only(x, w, b, *reference_all(x, w, b, dict(padding=padding)))


@pytest.mark.parametrize("r, m", [(3, 2), (3, 4), (3, 6), (5, 2), (5, 4)])
@pytest.mark.parametrize("padding", PADDINGS)
def test_forward_and_gradients_vs_reference(r, m, padding):
    """F(m, r): the forward pass, the input gradient by the method's default route (an
    r x r correlation of dout padded by r - 1 - P, or the general route where P > r -
    1) and the weight gradient, F(r, m)."""
    x, w, b, want, dout, rdx, rdw, rdb = _layer_and_reference(r, padding)
    got = conv2d_forward(x, w, b, padding=padding, method="winograd", m=m)
    assert got.shape == want.shape
    assert _rel(got, want) < RTOL64[m]
    dx, dw, db = conv2d_backward(dout, x, w, padding=padding, method="winograd", m=m)
    assert dx.shape == x.shape and dw.shape == w.shape
    assert _rel(dx, rdx) < RTOL64[m]
    assert _rel(dw, rdw) < RTOL64[m]
    np.testing.assert_allclose(db, rdb, rtol=1e-12)
    if m == 2:
        for got_, want_ in ((got, want), (dx, rdx), (dw, rdw)):
            np.testing.assert_allclose(got_, want_, rtol=0, atol=1e-9)


@pytest.mark.parametrize("m", [2, 4, 6])
def test_the_bias_rides_in_the_output_transform(m):
    """tiles_conv2d adds the bias at M's (1, 1): AT's column for the point 1 is all
    ones, so every output of a tile gets it; the same as adding it afterwards."""
    AT, _, _ = transform_matrices(m)
    assert (AT[:, 1] == 1).all()
    rng = np.random.default_rng(6)
    xpad = rng.standard_normal((2, 3, 11, 9))
    u = weight_transform(rng.standard_normal((4, 3, 3, 3)), m)
    b = rng.standard_normal(4)
    got = tiles_conv2d(xpad, u, m, bias=b)
    want = tiles_conv2d(xpad, u, m) + b.reshape(4, 1, 1)
    assert _rel(got, want) < 1e-13


def test_default_tile_is_4():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 9, 9))
    w = rng.standard_normal((2, 2, 3, 3))
    a = conv2d_forward(x, w, padding=1, method="winograd")
    b = conv2d_forward(x, w, padding=1, method="winograd", m=4)
    np.testing.assert_array_equal(a, b)
    dout = rng.standard_normal(a.shape)
    dx = conv2d_grad_input(dout, w, x.shape, padding=1, method="winograd")
    assert (
        _rel(dx, conv2d_backward(dout, x, w, padding=1, method="reference")[0])
        < RTOL64[4]
    )


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(w_shape=(2, 3, 7, 7)), "3x3 and 5x5"),
        (dict(w_shape=(2, 3, 3, 5)), r"\(3, 5\) kernel"),
        (dict(stride=2), "stride"),
        (dict(dilation=2), "dilation"),
        (dict(groups=3, w_shape=(3, 1, 3, 3)), "groups"),
    ],
)
def test_unsupported_shapes_raise(kw, match):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 3, 12, 12))
    w_shape = kw.pop("w_shape", (2, 3, 3, 3))
    w = rng.standard_normal(w_shape)
    with pytest.raises(ValueError, match=match):
        conv2d_forward(x, w, method="winograd", **kw)
    with pytest.raises(ValueError, match=match):
        conv2d_backward(
            np.zeros(conv2d_forward(x, w, **kw).shape), x, w, method="winograd", **kw
        )


@pytest.mark.parametrize("m", [3, 8, 0])
def test_unsupported_tile_raises(m):
    x = np.zeros((1, 1, 6, 6))
    w = np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="m"):
        conv2d_forward(x, w, method="winograd", m=m)
    with pytest.raises(ValueError, match="m"):
        winograd_conv2d(x, w, m)


def test_f6_of_a_5x5_kernel_raises():
    """F(6, 5) would need 9 interpolation points; 5x5 kernels take m = 2 or 4."""
    x, w = np.zeros((1, 1, 9, 9)), np.zeros((1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"m=6 with a \(5, 5\) kernel"):
        conv2d_forward(x, w, method="winograd", m=6)
    with pytest.raises(ValueError, match=r"m in \(2, 4\) for 5x5"):
        winograd_conv2d(x, w, 6)


@functools.cache
def _grad_input_reference(r, padding, x_shape):
    """dout, w and the loops' input gradient, once for every m (as above)."""
    rng = np.random.default_rng(9)
    w = rng.standard_normal((4, 3, r, r))
    oh, ow, _, _ = cb.conv_params(r, padding=padding).output_shape(x_shape[2:], (r, r))
    dout = rng.standard_normal((2, 4, oh, ow))
    want = conv2d_grad_input(dout, w, x_shape, padding=padding, method="reference")
    return read_only(dout, w, want)


@pytest.mark.parametrize("r, m", [(3, 2), (3, 4), (3, 6), (5, 2), (5, 4)])
@pytest.mark.parametrize("padding", [0, 1, (2, 0), (0, 3), 5, "same"])
@pytest.mark.parametrize("width", [11, 150])
def test_col2im_on_tiles_vs_reference(r, m, padding, width):
    """Winograd's col2im route, every tile and kernel size: cropped tiles, paddings
    past the kernel's reach, uneven ones; 150 columns are more than BAND_TILES tiles
    (75 tiles of 2: 5 bands, the last one short), so the band goes in pieces."""
    x_shape = (2, 3, 9, width)
    dout, w, want = _grad_input_reference(r, padding, x_shape)
    assert (-(-dout.shape[3] // m) > BAND_TILES) == (width == 150)
    kw = dict(padding=padding, method="winograd", m=m)
    got = conv2d_grad_input(dout, w, x_shape, route="col2im", **kw)
    assert got.shape == x_shape and _rel(got, want) < RTOL64[m]
    rot = conv2d_grad_input(dout, w, x_shape, route="rot180", **kw)
    assert _rel(got, rot) < RTOL64[m]


@pytest.mark.parametrize("r, m", [(3, 2), (3, 4), (3, 6), (5, 2), (5, 4)])
def test_tiles_grad_input_is_the_transpose_of_tiles_conv2d(r, m):
    """<tiles_conv2d(xpad), dout> = <xpad, tiles_grad_input(dout)>: the same linear map
    the other way, on the whole grown canvas (zeros past the edge included)."""
    rng = np.random.default_rng(10)
    u = weight_transform(rng.standard_normal((4, 3, r, r)), m)
    dout = rng.standard_normal((2, 4, 7, 10))
    g = tiles_grad_input(dout, u, m)  # (2, 3, H', W'), H' >= 7 + r - 1
    xpad = rng.standard_normal(g.shape)
    y = tiles_conv2d(xpad, u, m, out=np.empty(dout.shape))
    assert g.shape[2] >= 7 + r - 1 and g.shape[3] >= 10 + r - 1
    assert abs(np.sum(y * dout) - np.sum(xpad * g)) < 1e-10 * np.sum(np.abs(y * dout))


def test_winograd_conv2d_bad_shapes():
    with pytest.raises(ValueError, match="xpad"):
        winograd_conv2d(np.zeros((1, 2, 6, 6)), np.zeros((1, 3, 3, 3)), 2)
    with pytest.raises(ValueError, match="xpad"):
        winograd_conv2d(np.zeros((1, 1, 2, 6)), np.zeros((1, 1, 3, 3)), 2)


@pytest.mark.parametrize("padding", [3, (4, 0), (0, 5)])
@pytest.mark.parametrize("threads", [False, True])
def test_chunks_threads_and_wide_padding_vs_reference(padding, threads):
    """Per-chunk padding (including padding past the kernel, where the input gradient
    crops dout), chunks of one sample, an odd batch split over threads: still the loop
    reference."""
    knobs = dict(winograd_chunk_bytes=1, thread_min_work=0 if threads else float("inf"))
    with cb.options(threads=2, **knobs):  # one sample per chunk
        _chunks_threads_and_wide_padding(padding, threads)


def _chunks_threads_and_wide_padding(padding, threads):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 4, 6, 9))
    w = rng.standard_normal((3, 4, 3, 3))
    b = rng.standard_normal(3)
    want = conv2d_forward(x, w, b, padding=padding, method="reference")
    got = conv2d_forward(x, w, b, padding=padding, method="winograd")
    assert got.shape == want.shape and _rel(got, want) < RTOL64[4]
    plan = cb.engine.last_plan()
    assert (plan.groups, plan.threads) == (5, 2 if threads else 1)
    dout = rng.standard_normal(want.shape)
    dx, dw, db = conv2d_backward(dout, x, w, padding=padding, method="winograd")
    rdx, rdw, rdb = conv2d_backward(dout, x, w, padding=padding, method="reference")
    assert _rel(dx, rdx) < RTOL64[4] and _rel(dw, rdw) < RTOL64[4]
    np.testing.assert_allclose(db, rdb, rtol=1e-12)
    tiles = conv2d_grad_input(
        dout, w, x.shape, padding=padding, method="winograd", route="col2im"
    )
    assert _rel(tiles, rdx) < RTOL64[4]


@pytest.mark.parametrize("padding", [(1, 1, 1, 1), (2, 0, 0, 3), (0, 0, 0, 0)])
def test_the_reused_canvas_pads_every_chunk_afresh(padding):
    """Chunks of 3, 1 and 2 samples on one canvas (the smaller ones on its first
    samples): each is the input padded with zeros, cropped to the tiles' size, as a new
    canvas would hold it; the canvas is reused, the input untouched."""
    from convbook.methods.winograd import _padder
    from convbook.shapes import ConvParams

    rng = np.random.default_rng(8)
    x = rng.standard_normal((6, 2, 5, 7))
    x0 = x.copy()
    pt, pb, pl, pr = padding
    hneed, wneed = 5 + pt + pb - 1, 7 + pl + pr + 1  # one row cut, one column added
    pad = _padder(x, ConvParams(padding=padding), hneed, wneed)
    full = np.zeros((6, 2, hneed + 1, wneed))
    full[:, :, pt : pt + 5, pl : pl + 7] = x
    canvases = []
    for lo, hi in [(0, 3), (3, 4), (4, 6)]:
        got = pad(lo, hi)
        np.testing.assert_array_equal(got, full[lo:hi, :, :hneed])
        canvases.append(got)
    assert np.shares_memory(canvases[0], canvases[1])  # one canvas, reused
    assert np.shares_memory(canvases[0], canvases[2])
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize(
    "kernel, padding, dilation",
    [
        (3, 1, 1),
        (3, 0, 1),
        (3, 2, 1),
        (3, "same", 2),
        ((3, 5), (1, 2), 1),
        (4, "same", 1),
    ],
)
def test_full_conv_padding_is_the_border_at_stride_1(kernel, padding, dilation):
    """Padding dout by full_conv_padding builds what full_conv_border builds."""
    from convbook.methods.winograd import full_conv_padding

    p = cb.conv_params(kernel, padding=padding, dilation=dilation)
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    x_shape = (2, 1, 7, 8)
    oh, ow = p.output_shape(x_shape[2:], k)[:2]
    dout = np.random.default_rng(0).standard_normal((2, 1, oh, ow))
    big = cb.full_conv_border(dout, k, x_shape, p)
    top, bottom, left, right = full_conv_padding(k, p)
    assert min(top, bottom, left, right) >= 0
    padded = np.pad(dout, ((0, 0), (0, 0), (top, bottom), (left, right)))
    np.testing.assert_array_equal(padded, big)


@pytest.mark.parametrize("threads", [1, 2])
def test_the_weight_transform_is_split_over_the_threads(threads, monkeypatch):
    """The forward pass transforms the weights a range of filters a thread, and the
    ranges cover every filter once."""
    calls = []
    real = cb.methods.winograd.weight_transform

    def recording(w, m):
        calls.append(w.shape[0])
        return real(w, m)

    monkeypatch.setattr(cb.methods.winograd, "weight_transform", recording)
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((4, 3, 6, 6)), rng.standard_normal((5, 3, 3, 3))
    with cb.options(threads=threads, thread_min_work=0):
        got = conv2d_forward(x, w, padding=1, method="winograd")
    assert sorted(calls) == ([2, 3] if threads == 2 else [5])  # in any order
    want = conv2d_forward(x, w, padding=1, method="reference")
    assert _rel(got, want) < RTOL64[4]
