"""Bad input: a ValueError or TypeError that names the argument and the shapes;
output-size arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

import convbook as cb

X = np.zeros((2, 4, 8, 8))
W = np.zeros((6, 4, 3, 3))


def fwd(**kw):
    args = dict(x=X, w=W, b=None)
    args.update(kw)
    return cb.conv2d_forward(args.pop("x"), args.pop("w"), args.pop("b"), **args)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (
            dict(x=np.zeros((4, 8, 8))),
            ValueError,
            r"x of 4 dimensions \(N, C, H, W\), got 3 dimensions of shape \(4, 8, 8\)",
        ),
        (
            dict(w=np.zeros((6, 4, 3))),
            ValueError,
            r"w of 4 dimensions .* shape \(6, 4, 3\)",
        ),
        (
            dict(w=np.zeros((6, 3, 3, 3))),
            ValueError,
            r"x of shape \(N, 3, H, W\) to match w's 3 input channels.*\(2, 4, 8, 8\)",
        ),
        (
            dict(b=np.zeros(5)),
            ValueError,
            r"b of shape \(6,\) to match w's 6 filters, got \(5,\)",
        ),
        (dict(b=np.zeros((6, 1))), ValueError, r"b of shape \(6,\).*got \(6, 1\)"),
        (
            dict(w=np.zeros((6, 4, 9, 3))),
            ValueError,
            r"kernel size \(9, 3\).*larger than the padded input \(8, 8\)",
        ),
        (
            dict(w=np.zeros((6, 4, 3, 3)), dilation=4),
            ValueError,
            r"spans \(9, 9\), larger than the padded input",
        ),
        (dict(stride=0), ValueError, r"stride must be positive, got 0"),
        (dict(stride=(1, -2)), ValueError, r"stride must be positive"),
        (
            dict(stride=1.5),
            TypeError,
            r"stride must be an int or a pair of ints, got float 1.5",
        ),
        (
            dict(stride=(1, 2, 3)),
            ValueError,
            r"stride must be an int or a pair \(h, w\), got 3 values",
        ),
        (dict(dilation=0), ValueError, r"dilation must be positive"),
        (dict(dilation=2.0), TypeError, r"dilation must be an int"),
        (dict(padding=-1), ValueError, r"padding must be non-negative, got -1"),
        (
            dict(padding="full"),
            ValueError,
            r"padding string must be 'valid' or 'same', got 'full'",
        ),
        (
            dict(padding="same", stride=2),
            ValueError,
            r"padding='same' is not supported for strided convolutions",
        ),
        (
            dict(groups=3, w=np.zeros((6, 1, 3, 3))),
            ValueError,
            r"groups=3 must divide both x's 4 input channels and w's 6",
        ),
        (
            dict(groups=4, w=np.zeros((6, 1, 3, 3))),
            ValueError,
            r"groups=4 must divide both .* w's 6 output channels",
        ),
        (
            dict(groups=2),
            ValueError,
            r"x of shape \(N, 8, H, W\) to match w's 4 input channels x groups=2",
        ),
        (dict(groups=0), ValueError, r"groups must be positive"),
        (dict(groups=1.0), TypeError, r"groups must be an int"),
        (
            dict(x=X.astype(np.int64)),
            TypeError,
            r"x must be a float16/32/64 array, got dtype int64; convert",
        ),
        (
            dict(w=W.astype(np.complex128)),
            TypeError,
            r"w must be a float16/32/64 array, got dtype complex128",
        ),
        (dict(b=np.array(["a"] * 6)), TypeError, r"b must be a float16/32/64 array"),
        (
            dict(x=X.astype(object)),
            TypeError,
            r"x must be a float16/32/64 array, got dtype object",
        ),
        (
            dict(method="fft"),
            ValueError,
            r"method must be one of .*'strided'.*got 'fft'",
        ),
        (
            dict(m=4),
            ValueError,
            r"m \(the Winograd output tile\) applies to method='winograd' only",
        ),
        (
            dict(method="winograd", m=3),
            ValueError,
            r"must be one of \(2, 4, 6\), got 3",
        ),
        (
            dict(method="winograd", stride=2),
            ValueError,
            r"winograd.*stride is \(2, 2\)",
        ),
        (
            dict(method="winograd", w=np.zeros((6, 4, 7, 7))),
            ValueError,
            r"winograd.*\(7, 7\) kernel",
        ),
        (
            dict(method="winograd", groups=2, w=np.zeros((6, 2, 3, 3))),
            ValueError,
            r"winograd.*groups is 2",
        ),
        (
            dict(method="winograd", dilation=2),
            ValueError,
            r"winograd.*dilation is \(2, 2\)",
        ),
    ],
)
def test_forward_rejects_bad_input(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fwd(**kwargs)


def test_gradients_reject_bad_input():
    dout = np.zeros((2, 6, 6, 6))
    with pytest.raises(
        ValueError,
        match=r"dout of shape \(2, 6, 6, 6\), the forward output for x \(2, 4, 8, 8\)"
        r".*got \(2, 6, 5, 6\)",
    ):
        cb.conv2d_backward(np.zeros((2, 6, 5, 6)), X, W)
    with pytest.raises(
        ValueError, match=r"dout of shape \(2, 6, 4, 4\).*got \(2, 6, 6, 6\)"
    ):
        cb.conv2d_grad_input(dout, W, X.shape, stride=2, padding=1)
    with pytest.raises(ValueError, match=r"dout of 4 dimensions"):
        cb.conv2d_grad_weight(np.zeros((6, 6, 6)), X, W.shape)
    with pytest.raises(
        ValueError, match=r"route must be one of \('col2im', 'rot180'\), got 'fft'"
    ):
        cb.conv2d_grad_input(dout, W, X.shape, route="fft")
    with pytest.raises(
        ValueError, match=r"x_shape must be N >= 0 and 3 positive ints, got \(2, 4, 8\)"
    ):
        cb.conv2d_grad_input(dout, W, (2, 4, 8))
    with pytest.raises(
        ValueError,
        match=r"x of shape \(N, 4, H, W\) to match w's 4 input channels"
        r".*\(2, 5, 8, 8\)",
    ):
        cb.conv2d_grad_input(dout, W, (2, 5, 8, 8))
    with pytest.raises(ValueError, match=r"w_shape must be 4 positive ints"):
        cb.conv2d_grad_weight(dout, X, (6, 4, 3))
    with pytest.raises(
        TypeError, match=r"dout must be a float16/32/64 array, got dtype int64"
    ):
        cb.conv2d_grad_bias(np.zeros((2, 6, 6, 6), dtype=np.int64))
    with pytest.raises(ValueError, match=r"dout of 4 dimensions"):
        cb.conv2d_grad_bias(np.zeros((6, 6)))


def test_im2col_and_col2im_reject_bad_input():
    with pytest.raises(
        ValueError,
        match=r"cols of shape \(72, 36\) \(N\*OH\*OW, C\*KH\*KW\) "
        r"for x_shape \(2, 4, 8, 8\).*got \(72, 35\)",
    ):
        cb.col2im(np.zeros((72, 35)), X.shape, 3)
    with pytest.raises(ValueError, match=r"x of 4 dimensions"):
        cb.im2col(np.zeros((8, 8)), 3)
    with pytest.raises(ValueError, match=r"kernel_size must be positive"):
        cb.im2col(X, 0)
    with pytest.raises(TypeError, match=r"x must be a float16/32/64 array"):
        cb.window_view(np.zeros((1, 1, 4, 4), dtype=int), 2)
    with pytest.raises(ValueError, match=r"dout of 4 dimensions"):
        cb.dilate(np.zeros((3, 3)), 2)


def test_no_function_writes_to_its_inputs_on_error_paths_either():
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(ValueError):
        cb.conv2d_forward(x, np.ones((1, 3, 2, 2)))
    np.testing.assert_array_equal(x, 1.0)


@pytest.mark.parametrize(
    "args, kwargs, want",
    [
        (((5, 5), 3), {}, (3, 3, 0, 0)),
        (
            ((3, 3), 2),
            {},
            (2, 2, 0, 0),
        ),  # the seed's [w, h] conv [k, k] -> [w-k+1, h-k+1]
        ((7, 3), dict(stride=2), (3, 3, 0, 0)),
        ((8, 3), dict(stride=2), (3, 3, 1, 1)),
        (((8, 9), 3), dict(stride=3), (2, 3, 2, 0)),
        ((7, 3), dict(padding=1, stride=2), (4, 4, 0, 0)),
        ((7, 3), dict(dilation=2), (3, 3, 0, 0)),
        ((6, 2), dict(padding="same"), (6, 6, 0, 0)),
        (((6, 7), (3, 4)), dict(padding="same", dilation=2), (6, 7, 0, 0)),
        (
            ((10, 10), (2, 3)),
            dict(padding=(1, 0), stride=(3, 2), dilation=(2, 1)),
            (4, 4, 0, 1),
        ),
    ],
)
def test_output_shape_formula(args, kwargs, want):
    assert tuple(cb.conv_output_shape(*args, **kwargs)) == want


def test_output_shape_matches_the_forward_pass():
    rng = np.random.default_rng(0)
    for h, w, k, s, p, d in [
        (9, 7, 3, 2, 1, 1),
        (10, 11, 2, 3, 0, 2),
        (5, 5, 5, 1, 2, 1),
    ]:
        out = cb.conv_output_shape((h, w), k, stride=s, padding=p, dilation=d)
        y = cb.conv2d_forward(
            rng.standard_normal((1, 1, h, w)),
            np.ones((1, 1, k, k)),
            stride=s,
            padding=p,
            dilation=d,
        )
        assert y.shape[2:] == (out.oh, out.ow)
