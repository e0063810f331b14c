"""The column matrix (im2col) and its adjoint (col2im).

Every row of the column matrix is one window of the (padded) input, flattened. Three
ways to build it:

* :func:`im2col_tutorial` is the source tutorial's loop, verbatim (NHWC, no padding, no
  dilation);
* :func:`im2col_loop` is the same idea for NCHW with stride, padding and dilation, one
  window at a time;
* :func:`im2col` copies the whole matrix out of a strided view of the windows
  (:func:`window_view`), with no Python loop over windows.

:func:`col2im` is the adjoint: it sends each column entry back to the input pixel it
came from, and where windows overlap the contributions **add**.

:func:`windows` and :func:`add_windows` are the two halves for callers that have
validated their arguments already (the methods in :mod:`convbook.methods`): they take a
:class:`~convbook.shapes.ConvParams`.
"""

from __future__ import annotations

import numpy as np

from .shapes import (
    ConvParams,
    as_pair,
    check_float,
    check_ndim,
    check_shape_arg,
    conv_params,
)

__all__ = [
    "im2col_tutorial",
    "im2col_loop",
    "im2col",
    "window_view",
    "col2im",
    "pad_input",
    "windows",
    "add_windows",
]


def im2col_tutorial(image, ksize, stride):
    """The source tutorial's im2col, exactly as it teaches it (its comment translated).

    A very plain implementation: easy to understand, slow enough to make you cry.
    ``image`` is 4-D ``[batchsize, width, height, channel]`` (NHWC); each row is one
    window flattened over the *whole batch* and the channels, so it is the textbook
    picture only for batch 1. No padding and no dilation.

    Examples
    --------
    >>> image = np.arange(9.0).reshape(1, 3, 3, 1)
    >>> im2col_tutorial(image, 2, 1)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    # image is a 4d tensor([batchsize, width ,height, channel])
    image_col = []
    for i in range(0, image.shape[1] - ksize + 1, stride):
        for j in range(0, image.shape[2] - ksize + 1, stride):
            col = image[:, i : i + ksize, j : j + ksize, :].reshape([-1])
            image_col.append(col)
    image_col = np.array(image_col)

    return image_col


def pad_input(x, padding):
    """``x`` padded with zeros: ``padding`` is (top, bottom, left, right).

    Returns ``x`` itself when there is nothing to add.

    Examples
    --------
    >>> pad_input(np.ones((1, 1, 1, 2)), (1, 0, 0, 1))[0, 0]
    array([[0., 0., 0.],
           [1., 1., 0.]])
    """
    pt, pb, pl, pr = padding
    if not any(padding):
        return x
    n, c, h, w = x.shape
    xp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    xp[:, :, pt : pt + h, pl : pl + w] = x
    return xp


def windows(x, kernel_hw, p: ConvParams):
    """Every window of the padded input as a read-only view, (N, C, OH, OW, KH, KW).

    The unvalidated half of :func:`window_view`, for callers that hold a
    :class:`~convbook.shapes.ConvParams` already.
    """
    kh, kw = kernel_hw
    (sh, sw), (dh, dw) = p.stride, p.dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    xp = pad_input(x, p.padding)
    v = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, OH, OW, KH, KW), read-only


def _prepare(x, kernel_size, stride, padding, dilation):
    x = check_float("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    out = p.output_shape(x.shape[2:], (kh, kw))
    return x, (kh, kw), p, out


def window_view(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """Every window of the padded input, a read-only view: (N, C, OH, OW, KH, KW).

    No data is copied (except the padding, if any): ``view[n, c, i, j]`` is the ``KH x
    KW`` window of channel ``c`` that output ``(i, j)`` reads. The view is read-only
    because its windows overlap: writing one pixel would change every window that shares
    it.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> v = window_view(x, 2)
    >>> v.shape, v.flags.writeable
    ((1, 1, 2, 2, 2, 2), False)
    >>> v[0, 0, 1, 1]
    array([[4., 5.],
           [7., 8.]])
    """
    x, khw, p, _ = _prepare(x, kernel_size, stride, padding, dilation)
    return windows(x, khw, p)


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """The column matrix: one row per window, copied out of a strided view, no loop.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    kernel_size : int or (KH, KW)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"

    Returns
    -------
    cols : (N*OH*OW, C*KH*KW) ndarray
        Row ``(n*OH + i)*OW + j`` is window ``(i, j)`` of sample ``n``, flattened in
        (c, p, q) order, so that ``cols @ w.reshape(F, -1).T`` is the convolution. A new
        array (the view's overlapping windows copied out).

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> im2col(x, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    """
    x, (kh, kw), p, out = _prepare(x, kernel_size, stride, padding, dilation)
    n, c = x.shape[:2]
    v = windows(x, (kh, kw), p)  # (N, C, OH, OW, KH, KW)
    rows = v.transpose(0, 2, 3, 1, 4, 5)  # (N, OH, OW, C, KH, KW)
    return rows.reshape(n * out.oh * out.ow, c * kh * kw)  # a copy


def im2col_loop(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """The tutorial's loop for NCHW, stride, padding and dilation: a window per row.

    Same result as :func:`im2col`; kept as the slow version readers start from.

    Examples
    --------
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> np.array_equal(im2col_loop(x, 2, padding=1, stride=2),
    ...                im2col(x, 2, padding=1, stride=2))
    True
    """
    x, (kh, kw), p, out = _prepare(x, kernel_size, stride, padding, dilation)
    (sh, sw), (dh, dw) = p.stride, p.dilation
    xp = pad_input(x, p.padding)
    rows = []
    for n in range(x.shape[0]):
        for i in range(out.oh):
            for j in range(out.ow):
                r, c = sh * i, sw * j  # the window's top-left pixel
                window = xp[
                    n, :, r : r + dh * (kh - 1) + 1 : dh, c : c + dw * (kw - 1) + 1 : dw
                ]
                rows.append(window.reshape(-1))  # (C*KH*KW,)
    n_rows = x.shape[0] * out.oh * out.ow
    return np.array(rows, dtype=x.dtype).reshape(n_rows, x.shape[1] * kh * kw)


def add_windows(dcols, x_shape, p: ConvParams, out=None):
    """Add (N, C, KH, KW, OH, OW) window gradients back onto an (N, C, H, W) image.

    The unvalidated half of :func:`col2im`. One strided slice-add per kernel offset
    ``(p, q)``: the KH*KW slices overlap wherever windows overlap, which is why the
    update must be ``+=``. (``np.add.at`` does the same element by element and is 10-50x
    slower.) ``out``, if given, receives the result.
    """
    n, c, h, w = x_shape
    _, _, kh, kw, oh, ow = dcols.shape
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    dxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            r, s = dh * i, dw * j  # where offset (i, j) of the first window lies
            rows = slice(r, r + sh * (oh - 1) + 1, sh)
            cols = slice(s, s + sw * (ow - 1) + 1, sw)
            dxp[:, :, rows, cols] += dcols[:, :, i, j]
    dx = dxp[:, :, pt : pt + h, pl : pl + w]  # the padding's gradient is dropped
    if out is None:
        return dx if not any(p.padding) else dx.copy()
    out[...] = dx
    return out


def col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1):
    """The adjoint of :func:`im2col`: each column entry is added back to its pixel.

    Pixels that several windows share receive the sum of their entries; pixels in the
    padding are dropped; pixels no window reached get zero.
    ``<im2col(x), cols> == <x, col2im(cols)>`` for every ``x`` and ``cols``.

    Parameters
    ----------
    cols : (N*OH*OW, C*KH*KW) ndarray
    x_shape : (N, C, H, W) tuple
    kernel_size, stride, padding, dilation : as for :func:`im2col`

    Returns
    -------
    x : (N, C, H, W) ndarray

    Examples
    --------
    Summing ones counts how many windows read each pixel:

    >>> col2im(np.ones((4, 4)), (1, 1, 3, 3), 2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    x_shape = check_shape_arg("x_shape", x_shape)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    out = p.output_shape(x_shape[2:], (kh, kw))
    cols = check_float("cols", cols)
    n, c = x_shape[:2]
    want = (n * out.oh * out.ow, c * kh * kw)
    if cols.shape != want:
        raise ValueError(
            f"expected cols of shape {want} (N*OH*OW, C*KH*KW) for x_shape {x_shape} "
            f"and kernel ({kh}, {kw}), got {cols.shape}"
        )
    dcols = cols.reshape(n, out.oh, out.ow, c, kh, kw)
    dcols = dcols.transpose(0, 3, 4, 5, 1, 2)  # (N, C, KH, KW, OH, OW)
    return add_windows(dcols, x_shape, p)
