"""im2col and its adjoint col2im.

Every row of the column matrix is one window of the (padded) input, flattened. Three ways to build it:

* :func:`im2col_tutorial` is the source tutorial's loop, verbatim (NHWC, no padding, no dilation);
* :func:`im2col_loop` is the same idea for NCHW with stride, padding and dilation, one window at a time;
* :func:`im2col` builds the whole matrix from a strided view (:func:`window_view`), no Python loop over windows.

:func:`col2im` is the adjoint: it sends each column entry back to the input pixel it came from, and where windows
overlap the contributions **add**.
"""

from __future__ import annotations

import numpy as np

from .shapes import ConvParams, _check_float, _check_ndim, _output_shape, _pair, check_shape_arg, conv_params

__all__ = ["im2col_tutorial", "im2col_loop", "im2col", "window_view", "col2im"]


def im2col_tutorial(image, ksize, stride):
    """The source tutorial's im2col, exactly as it teaches it (its comment translated).

    A very plain implementation: easy to understand, slow enough to make you cry. ``image`` is 4-D
    ``[batchsize, width, height, channel]`` (NHWC); each row is one window flattened over the *whole batch* and the
    channels, so it is the textbook picture only for batch 1. No padding and no dilation.

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
            col = image[:, i:i + ksize, j:j + ksize, :].reshape([-1])
            image_col.append(col)
    image_col = np.array(image_col)

    return image_col


def _pad(x, padding):
    pt, pb, pl, pr = padding
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def _prepare(x, kernel_size, stride, padding, dilation):
    x = _check_float("x", x)
    _check_ndim("x", x, 4, "(N, C, H, W)")
    kh, kw = _pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    out = _output_shape(x.shape[2:], (kh, kw), p)
    return x, (kh, kw), p, out


def _window_view(x, khw, p: ConvParams):
    """Read-only (N, C, OH, OW, KH, KW) view of the padded input; no validation."""
    kh, kw = khw
    (sh, sw), (dh, dw) = p.stride, p.dilation
    xp = _pad(x, p.padding)
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    v = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))  # (N, C, Hp-span_h+1, Wp-span_w+1, span_h, span_w)
    return v[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, OH, OW, KH, KW), read-only


def window_view(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """Every window of the padded input as a read-only strided view, shape (N, C, OH, OW, KH, KW).

    No data is copied (except the padding, if any): ``view[n, c, i, j]`` is the ``KH x KW`` window of channel ``c``
    that output ``(i, j)`` reads. The view is read-only because its windows overlap: writing one pixel would change
    every window that shares it.

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
    return _window_view(x, khw, p)


def im2col(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """The column matrix: one row per window, built from a strided view with no Python loop.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    kernel_size : int or (KH, KW)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"

    Returns
    -------
    cols : (N*OH*OW, C*KH*KW) ndarray
        Row ``(n*OH + i)*OW + j`` is window ``(i, j)`` of sample ``n``, flattened in (c, p, q) order, so that
        ``cols @ w.reshape(F, -1).T`` is the convolution. A new array (the view's overlapping windows copied out).

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
    v = _window_view(x, (kh, kw), p)  # (N, C, OH, OW, KH, KW)
    return v.transpose(0, 2, 3, 1, 4, 5).reshape(n * out.oh * out.ow, c * kh * kw)  # (N*OH*OW, C*KH*KW), a copy


def im2col_loop(x, kernel_size, *, stride=1, padding=0, dilation=1):
    """The seed's loop, for NCHW with stride, padding and dilation: one window, one row at a time.

    Same result as :func:`im2col`; kept as the slow version readers start from.

    Examples
    --------
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> np.array_equal(im2col_loop(x, 2, padding=1, stride=2), im2col(x, 2, padding=1, stride=2))
    True
    """
    x, (kh, kw), p, out = _prepare(x, kernel_size, stride, padding, dilation)
    (sh, sw), (dh, dw) = p.stride, p.dilation
    xp = _pad(x, p.padding)
    rows = []
    for n in range(x.shape[0]):
        for i in range(out.oh):
            for j in range(out.ow):
                window = xp[n, :, sh * i : sh * i + dh * (kh - 1) + 1 : dh, sw * j : sw * j + dw * (kw - 1) + 1 : dw]
                rows.append(window.reshape(-1))  # (C*KH*KW,)
    return np.array(rows).reshape(x.shape[0] * out.oh * out.ow, x.shape[1] * kh * kw)


def _col2im_6d(dcols, x_shape, p: ConvParams, out_dtype=None):
    """Scatter-add (N, C, KH, KW, OH, OW) column gradients back to an (N, C, H, W) image.

    One strided slice-add per kernel offset ``(p, q)``: the KH*KW slices overlap wherever windows overlap, which is
    why the update must be ``+=``. (``np.add.at`` does the same element by element and is 10-50x slower.)
    """
    n, c, h, w = x_shape
    _, _, kh, kw, oh, ow = dcols.shape
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    dxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=out_dtype or dcols.dtype)
    for pi in range(kh):
        for qj in range(kw):
            r0, c0 = dh * pi, dw * qj
            dxp[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw] += dcols[:, :, pi, qj]
    if not any(p.padding):
        return dxp
    return dxp[:, :, pt : pt + h, pl : pl + w].copy()


def col2im(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1):
    """The adjoint of :func:`im2col`: every column entry is added back to the input pixel it was copied from.

    Pixels that several windows share receive the sum of their entries; pixels in the padding are dropped; pixels
    no window reached get zero. ``<im2col(x), cols> == <x, col2im(cols)>`` for every ``x`` and ``cols``.

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
    kh, kw = _pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    out = _output_shape(x_shape[2:], (kh, kw), p)
    cols = _check_float("cols", cols)
    n, c = x_shape[:2]
    want = (n * out.oh * out.ow, c * kh * kw)
    if cols.shape != want:
        raise ValueError(
            f"expected cols of shape {want} (N*OH*OW, C*KH*KW) for x_shape {x_shape} and kernel ({kh}, {kw}), "
            f"got {cols.shape}"
        )
    dcols = cols.reshape(n, out.oh, out.ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, KH, KW, OH, OW)
    return _col2im_6d(dcols, x_shape, p)
