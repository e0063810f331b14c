"""The strided method: the whole layer, forward and backward, on one page.

The column matrix is copied out of a strided view of the input's windows
(:func:`~convbook.columns.windows`), one row per tap ``(c, p, q)`` and one column per
window (at stride 1 with as many output columns as input columns, each row is one block
copy of the input shifted, :func:`shifted_columns`), so that matrix products are the
whole convolution:

* forward: ``Y_n = K'^T . X_n'^T`` for each sample ``n``, ``(F, OH*OW)``: ``y[n]`` in
  NCHW as it comes out of the product;
* weight gradient: ``dK' = X'^T . dY'``, one product over the windows of all samples;
* input gradient, two routes: col2im, ``dX_n'^T = K' . dY_n`` for each sample, added
  back onto the pixels the windows read (channels last where the columns are); or
  rot180, the full convolution of ``dout`` (zeros inserted for the stride) with the
  kernels turned 180 degrees and their channels swapped.

Every setting of PyTorch's ``conv2d`` works: stride, padding (incl. ``"same"``, uneven),
dilation, groups. The functions take validated arrays of one dtype and a
:class:`~convbook.shapes.ConvParams`; :mod:`convbook.conv` validates, and its engine
runs them over groups of a few samples at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..columns import add_windows, pad_input, windows
from ..kernels import dilate, rot180, swap_in_out
from ..shapes import ConvParams

__all__ = [
    "PRODUCTS_INTO_OUT",
    "forward",
    "grad_weight",
    "grad_input",
    "grad_input_col2im",
    "grad_input_rot180",
    "full_conv_operands",
    "full_conv_border",
    "column_matrix",
    "sample_columns",
    "shifted_columns",
    "rows_shift",
    "ShiftLayout",
    "shift_layout",
    "clear_wrapped",
    "add_shifted",
    "columns_last",
    "add_windows_last",
    "use_columns_last",
    "kernel_matrix",
    "output_matrix",
    "columns_per_sample",
]


#: The forward pass writes each product into ``out``: a group of samples holds only
#: its columns (the engine sizes groups by that, :class:`convbook.engine.Options`).
PRODUCTS_INTO_OUT = True


def kernel_matrix(w, groups, b=None, *, channels_last=False):
    """``K'^T``: each group's filters as rows, ``(G, F/G, Cg*KH*KW)``, a view of w.

    With a bias ``b``, one more column holds it, ``(G, F/G, Cg*KH*KW + 1)`` (a copy), to
    meet a row of ones under the columns: the bias then rides in the product.
    ``channels_last=True``: the columns in the order ``(p, q, c)`` of
    :func:`columns_last` (a copy).
    """
    if channels_last:
        w = w.transpose(0, 2, 3, 1)  # (F, KH, KW, Cg)
    kmat = w.reshape(groups, w.shape[0] // groups, -1)
    if b is None:
        return kmat
    return np.concatenate([kmat, b.reshape(groups, -1, 1)], axis=2)


def column_matrix(x, kernel_hw, params):
    """``X'^T``: a column per window, rows ``(c, p, q)``; ``(G, Cg*KH*KW, N*OH*OW)``."""
    n = x.shape[0]
    view = windows(x, kernel_hw, params)  # (N, C, OH, OW, KH, KW), no copy
    oh, ow = view.shape[2:4]
    cols = view.transpose(1, 4, 5, 0, 2, 3)  # (C, KH, KW, N, OH, OW)
    return cols.reshape(params.groups, -1, n * oh * ow)  # the one copy


def sample_columns(x, kernel_hw, params, *, ones=False):
    """``X_n'^T`` of each sample ``n``: ``(N, G, Cg*KH*KW, OH*OW)``, one copy.

    ``ones=True`` adds a row of ones under each group's rows (the bias's):
    ``(N, G, Cg*KH*KW + 1, OH*OW)``.
    """
    n, c, g = x.shape[0], x.shape[1], params.groups
    view = windows(x, kernel_hw, params)  # (N, C, OH, OW, KH, KW), no copy
    (oh, ow), (kh, kw) = view.shape[2:4], view.shape[4:]
    rows = c // g * kh * kw  # (c, p, q) within a group
    cols = np.empty((n, g, rows + int(ones), oh * ow), dtype=x.dtype)
    taps = cols[:, :, :rows].reshape(n, g, c // g, kh, kw, oh, ow)  # a view
    by_group = view.reshape(n, g, c // g, oh, ow, kh, kw)
    taps[...] = by_group.transpose(0, 1, 2, 5, 6, 3, 4)  # the one copy
    if ones:
        cols[:, :, rows] = 1
    return cols


def rows_shift(x_shape, kernel_hw, params):
    """Whether :func:`shifted_columns` applies: stride 1 and as many output columns as
    input columns (``PL + PR = DW*(KW-1)``, as with ``padding="same"``)."""
    pl, pr = params.padding[2:]
    ow_is_w = pl + pr == params.dilation[1] * (kernel_hw[1] - 1)
    return params.stride == (1, 1) and ow_is_w


class ShiftLayout(NamedTuple):
    """Where shifted rows lie in a channel plane flattened with its zeros."""

    oh: int  #: output rows; a row of the column matrix is ``OH*W`` numbers
    front: int  #: zeros before the first pixel, ``PT*W + PL``
    length: int  #: the flat plane: ``front``, ``H*W`` pixels, ``PB*W + PR`` zeros
    starts: tuple  #: where row ``(p, q)`` starts in it, ``p*DH*W + q*DW``, row-major


def shift_layout(x_shape, kernel_hw, params) -> ShiftLayout:
    """The flat plane and the start of each tap's row, for :func:`shifted_columns`,
    :func:`add_shifted` and the figure of them."""
    h, w = x_shape[2:]
    (kh, kw), (dh, dw) = kernel_hw, params.dilation
    pt, pb, pl, pr = params.padding
    starts = tuple(p * dh * w + q * dw for p in range(kh) for q in range(kw))
    front = pt * w + pl
    return ShiftLayout(
        h + pt + pb - dh * (kh - 1), front, front + (h + pb) * w + pr, starts
    )


def shifted_columns(x, kernel_hw, params, *, ones=False, by_sample=True):
    """The column matrix at stride 1 with ``OW = W``: each row one block copy.

    Output pixel ``(i, j)`` lies at ``i*W + j`` in its flattened plane, and its tap
    ``(c, p, q)`` at ``i*W + j + (p*DH - PT)*W + q*DW - PL`` in channel ``c``
    flattened: row ``(c, p, q)`` is that channel shifted, read from a flat copy with
    zeros before and after (the top and bottom padding; :func:`shift_layout`). Where
    ``j + q*DW - PL`` falls off the row the shift wraps around to the row above or
    below; those numbers, the left and right padding, are set to zero.
    ``by_sample=True`` returns :func:`sample_columns`'s layout (``ones`` adds the
    bias's row), ``False`` :func:`column_matrix`'s.
    """
    n, c, h, w = x.shape
    g, (kh, kw), (dh, dw) = params.groups, kernel_hw, params.dilation
    oh, front, length, _ = shift_layout(x.shape, kernel_hw, params)
    cg = c // g
    if any(params.padding):
        flat = np.zeros((n, g, cg, length), dtype=x.dtype)
        flat[..., front : front + h * w] = x.reshape(n, g, cg, h * w)
    else:  # nothing to pad (a 1 x 1 kernel, say): the input itself
        flat = np.ascontiguousarray(x).reshape(n, g, cg, h * w)
    shape, s = (n, g, cg, kh, kw, oh, w), flat.strides
    strides = s[:3] + (dh * w * s[3], dw * s[3], w * s[3], s[3])  # row (p, q) at start
    view = np.lib.stride_tricks.as_strided(flat, shape, strides, writeable=False)
    rows = cg * kh * kw
    if by_sample:  # (N, G, rows [+ 1], OH*OW)
        cols = np.empty((n, g, rows + int(ones), oh * w), dtype=x.dtype)
        taps = cols[:, :, :rows].reshape(shape)  # a view
        if ones:
            cols[:, :, rows] = 1
    else:  # (G, rows, N*OH*OW)
        cols = np.empty((g, rows, n * oh * w), dtype=x.dtype)
        taps = cols.reshape(g, cg, kh, kw, n, oh, w).transpose(4, 0, 1, 2, 3, 5, 6)
    taps[...] = view  # the one copy
    clear_wrapped(taps, params)
    return cols


def clear_wrapped(taps, params):
    """Set to zero the numbers that a shifted row wrapped around a row's end.

    ``taps`` is ``(..., KW, OH, W)``: kernel column ``q`` reads input column ``j + q*DW
    - PL``, which lies off the row for ``PL - q*DW`` output columns on the left or
    ``q*DW - PL`` on the right.
    """
    w, dw, pl = taps.shape[-1], params.dilation[1], params.padding[2]
    for q in range(taps.shape[-3]):
        shift = q * dw - pl
        taps[..., q, :, : max(-shift, 0)] = 0
        taps[..., q, :, w - min(max(shift, 0), w) :] = 0


def add_shifted(dcols, x_shape, kernel_hw, params, *, out=None):
    """The adjoint of :func:`shifted_columns`: each row added back, shifted.

    ``dcols`` is laid out as :func:`sample_columns`'s columns, ``(N, G, Cg*KH*KW,
    OH*OW)``, and is overwritten: its wrapped numbers (the padding's) are set to zero
    first, so that the adds, one block add per tap ``(p, q)`` across row ends (``+=``:
    the windows overlap), bring none of them into the row above or below.
    """
    n, c, h, w = x_shape
    oh, front, length, starts = shift_layout(x_shape, kernel_hw, params)
    taps = dcols.reshape(n, c, len(starts), oh, w)  # taps (p, q) row-major
    clear_wrapped(taps.reshape(n, c, *kernel_hw, oh, w), params)
    flat = np.zeros((n, c, length), dtype=dcols.dtype)
    for k, start in enumerate(starts):
        flat[:, :, start : start + oh * w] += taps[:, :, k].reshape(n, c, -1)
    dx = flat[:, :, front : front + h * w].reshape(x_shape)
    if out is None:
        return np.ascontiguousarray(dx)
    out[...] = dx
    return out


def columns_last(x, kernel_hw, params, *, ones=False):
    """``X_n'`` of each sample, channels last: ``(N, OH*OW, G, KH*KW*Cg)``.

    A row per window and the taps in the order ``(p, q, c)``. The input is padded into
    a channels-last canvas, ``(N, Hp, Wp, C)``, and its windows copied from there: a
    tap's channels lie side by side, and without groups and dilation a window row's
    ``KW*C`` numbers too, so the copy runs ``KW*C`` numbers at a time, where
    :func:`sample_columns` runs along a row of windows, ``OW`` numbers ``S`` apart.
    ``ones=True`` adds the bias's column.
    """
    n, c, h, w = x.shape
    g, (kh, kw) = params.groups, kernel_hw
    oh, ow, _, _ = params.output_shape((h, w), kernel_hw)
    (sh, sw), (dh, dw) = params.stride, params.dilation
    pt, pb, pl, pr = params.padding
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + w] = x.transpose(0, 2, 3, 1)  # the canvas
    s = xp.strides
    shape = (n, oh, ow, kh, kw, g, c // g)
    strides = (s[0], sh * s[1], sw * s[2], dh * s[1], dw * s[2], c // g * s[3], s[3])
    view = np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)
    rows = c // g * kh * kw
    cols = np.empty((n, oh * ow, g, rows + int(ones)), dtype=x.dtype)
    taps = cols[..., :rows].reshape(n, oh, ow, g, kh, kw, c // g)  # a view
    taps[...] = view.transpose(0, 1, 2, 5, 3, 4, 6)  # the one copy
    if ones:
        cols[..., rows] = 1
    return cols


def add_windows_last(dcols, x_shape, kernel_hw, params, *, out=None):
    """The adjoint of :func:`columns_last`: window gradients added back onto the pixels.

    ``dcols`` is laid out as :func:`columns_last`'s columns, ``(N, OH*OW, G,
    KH*KW*Cg)``. They are added into a channels-last canvas, ``(N, Hp, Wp, C)``, one
    strided slice-add per kernel offset ``(p, q)`` as in
    :func:`~convbook.columns.add_windows` (``+=``: the windows overlap), each running
    ``Cg`` numbers at a time instead of ``OW`` numbers ``S`` apart; the canvas, less its
    padding, is then copied into NCHW (into ``out`` if given).
    """
    n, c, h, w = x_shape
    g, (kh, kw) = params.groups, kernel_hw
    oh, ow, _, _ = params.output_shape((h, w), kernel_hw)
    (sh, sw), (dh, dw) = params.stride, params.dilation
    pt, pb, pl, pr = params.padding
    taps = dcols.reshape(n, oh, ow, g, kh, kw, c // g)
    dxp = np.zeros((n, h + pt + pb, w + pl + pr, g, c // g), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            r, s = dh * p, dw * q  # where offset (p, q) of the first window lies
            rows = slice(r, r + sh * (oh - 1) + 1, sh)
            cols = slice(s, s + sw * (ow - 1) + 1, sw)
            dxp[:, rows, cols] += taps[:, :, :, :, p, q]
    dx = dxp[:, pt : pt + h, pl : pl + w].reshape(n, h, w, c).transpose(0, 3, 1, 2)
    if out is None:
        return np.ascontiguousarray(dx)
    out[...] = dx
    return out


def use_columns_last(x_shape, w_shape, params, itemsize):
    """Whether :func:`forward`, :func:`grad_weight` and :func:`grad_input_col2im` lay
    the columns out channels last.

    A measured rule: at a stride above 1, with a kernel wider than 1 x 1, more channels
    a group than output columns (``Cg > OW``), and channel planes (``H*W*itemsize``
    bytes) that are not a multiple of 4 KB apart: the canvas's copy reads one number
    from each plane in turn, which took 4.5 ns a number with 32 x 32 float32 planes
    against 0.6-0.8 ns with 16 x 16 and 56 x 56 ones (4K aliasing, by our reading).
    Paired rounds on the 2-core Zen 3, channels last / by rows, forward and weight
    gradient: benchmark layer c (32 -> 64, 16 x 16, stride 2) 0.81 and 0.80 (its
    training step by ``auto`` 0.87); 64 channels on 8 x 8 0.71 and 0.61; 16 -> 32 on
    16 x 16 0.84 and 0.76; 128 -> 256 on 14 x 14 0.90 and 0.94; 64 -> 128 on 24 x 24
    0.93 and 0.95; 64 channels on 56 x 56 0.94 and 0.94. Outside it: 64 -> 128 on 32 x
    32 (4 KB planes) 1.19 and 1.27; 32 -> 64 on 64 x 64 (``Cg = OW``) 1.41 and 1.29; a
    1 x 1 stride-2 layer 1.75; at stride 1, layers a and b 1.12 and 1.36 forward.
    The col2im input gradient, whose slice-adds run along the same inner loop, follows
    the same rule (paired rounds, 2 threads, a busy host, channels last / by rows): 0.58
    on 8 x 8 maps (16 -> 32, the digits network's stride-2 layer; 64 -> 64), 0.83 on 16
    -> 32 on 16 x 16, 0.90 on layer c, 0.83-0.98 on 14 x 14 to 28 x 28 maps, 1.01 on 64
    channels on 56 x 56. Outside it (a first version of the same code): 32 -> 64 on 64
    x 64 1.18, 1 x 1 stride 2 1.13, 3 -> 32 on 64 x 64 2.5; but 64 -> 128 on 32 x 32,
    which the 4 KB clause keeps out, took 0.87 (fastest rounds 0.97): the clause was
    measured on the forward pass's copy and may bind the add-back less.
    """
    (kh, kw), cg = w_shape[2:], x_shape[1] // params.groups
    ow = params.output_shape(x_shape[2:], (kh, kw))[1]
    plane = x_shape[2] * x_shape[3] * itemsize
    return params.stride != (1, 1) and kh * kw > 1 and cg > ow and plane % 4096 != 0


def output_matrix(dout, groups):
    """``dY'^T``: each group's output gradients as rows, ``(G, F/G, N*OH*OW)``."""
    n, f, oh, ow = dout.shape
    rows = dout.transpose(1, 0, 2, 3)  # (F, N, OH, OW)
    return rows.reshape(groups, f // groups, n * oh * ow)


def forward(x, w, b, params, *, out=None):
    """``Y_n = K'^T . X_n'^T`` for each sample ``n`` and group: ``y[n]`` in NCHW.

    The bias rides in the product: one more column of ``K'^T`` (:func:`kernel_matrix`)
    meets a row of ones under the columns (:func:`sample_columns`; at stride 1 with
    ``OW = W``, :func:`shifted_columns`; channels last, :func:`columns_last`, where
    :func:`use_columns_last` says so).

    Examples
    --------
    >>> from convbook import conv_params
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> forward(x, w, None, conv_params(2))[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    n, f, g = x.shape[0], w.shape[0], params.groups
    oh, ow, _, _ = params.output_shape(x.shape[2:], w.shape[2:])
    last = use_columns_last(x.shape, w.shape, params, x.itemsize)
    if last:  # (N, OH*OW, G, rows) as (N, G, rows, OH*OW): a transposed view
        cols = columns_last(x, w.shape[2:], params, ones=b is not None)
        cols = cols.transpose(0, 2, 3, 1)
    elif rows_shift(x.shape, w.shape[2:], params):
        cols = shifted_columns(x, w.shape[2:], params, ones=b is not None)
    else:
        cols = sample_columns(x, w.shape[2:], params, ones=b is not None)
    kmat = kernel_matrix(w, g, b, channels_last=last)  # (G, F/G, rows [+ 1])
    if out is None:
        out = np.empty((n, f, oh, ow), dtype=cols.dtype)
    y = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    # (G, F/G, rows) @ (N, G, rows, OH*OW): one product per sample and group
    np.matmul(kmat, cols, out=y.reshape(n, g, f // g, oh * ow))
    if y is not out:  # an out that is not one block the product can write into
        out[...] = y
    return out


def grad_weight(dout, x, w_shape, params):
    """``dK' = X'^T . dY'`` per group, reshaped to the kernel's shape.

    Computed as ``X'^T . dY'``, then transposed: with the long column matrix on the
    left the product ran about 1.5x faster in OpenBLAS (measured for 400 x 32 results).
    With the columns channels last (:func:`use_columns_last`), ``dY'^T . X'`` reads them
    as they lie; at stride 1 with ``OW = W`` they are copied as shifted rows
    (:func:`shifted_columns`).
    """
    dy = output_matrix(dout, params.groups)  # (G, F/G, N*OH*OW)
    if use_columns_last(x.shape, w_shape, params, x.itemsize):
        f, cg, kh, kw = w_shape
        cols = columns_last(x, (kh, kw), params)  # (N, OH*OW, G, KH*KW*Cg)
        cols = cols.reshape(-1, params.groups, kh * kw * cg).transpose(1, 0, 2)
        dw = dy @ cols  # (G, F/G, KH*KW*Cg): dK'^T, taps (p, q, c)
        return np.ascontiguousarray(dw.reshape(f, kh, kw, cg).transpose(0, 3, 1, 2))
    if rows_shift(x.shape, w_shape[2:], params):
        cols = shifted_columns(x, w_shape[2:], params, by_sample=False)
    else:
        cols = column_matrix(x, w_shape[2:], params)  # (G, Cg*KH*KW, N*OH*OW)
    dw = cols @ dy.transpose(0, 2, 1)  # (G, Cg*KH*KW, F/G)
    return dw.transpose(0, 2, 1).reshape(w_shape)  # (F, Cg, KH, KW)


def grad_input(dout, w, x_shape, params, *, route="col2im", out=None):
    """The input gradient by either route (``"col2im"`` or ``"rot180"``)."""
    if route == "col2im":
        return grad_input_col2im(dout, w, x_shape, params, out=out)
    if route == "rot180":
        return grad_input_rot180(dout, w, x_shape, params, out=out)
    raise ValueError(f"route must be 'col2im' or 'rot180', got {route!r}")


def grad_input_col2im(dout, w, x_shape, params, *, out=None):
    """``dX_n'^T = K' . dY_n`` per sample, each column added back onto its pixels.

    Channels last where :func:`use_columns_last` says so: ``dX_n' = dY_n^T . K'^T``,
    a row per window with the taps ``(p, q, c)``, added back by
    :func:`add_windows_last`; at stride 1 with ``OW = W``, as shifted rows
    (:func:`add_shifted`).
    """
    n, c = x_shape[:2]
    f, oh, ow = dout.shape[1:]
    g = params.groups
    dy = dout.reshape(n, g, f // g, oh * ow)  # each sample's dY_n: a view of dout
    if use_columns_last(x_shape, w.shape, params, dout.itemsize):
        kmat = kernel_matrix(w, g, channels_last=True)  # (G, F/G, KH*KW*Cg)
        dcols = dy.transpose(0, 1, 3, 2) @ kmat  # (N, G, OH*OW, KH*KW*Cg)
        dcols = dcols.transpose(0, 2, 1, 3)  # as columns_last lays them out
        return add_windows_last(dcols, x_shape, w.shape[2:], params, out=out)
    kmat = kernel_matrix(w, g)  # (G, F/G, Cg*KH*KW)
    dcols = kmat.transpose(0, 2, 1) @ dy  # (N, G, Cg*KH*KW, OH*OW)
    if rows_shift(x_shape, w.shape[2:], params):
        return add_shifted(dcols, x_shape, w.shape[2:], params, out=out)
    dcols = dcols.reshape(n, c, *w.shape[2:], oh, ow)  # (N, C, KH, KW, OH, OW)
    return add_windows(dcols, x_shape, params, out=out)


def full_conv_operands(dout, w, x_shape, params):
    """The input gradient as a full convolution: its input ``big`` and kernel ``wt``.

    Correlating ``big`` with ``wt`` (stride 1, dilation D, the same groups) gives
    ``dx``:

    1. insert ``S - 1`` zeros between the rows and columns of ``dout`` (the stride);
    2. - 4. :func:`full_conv_border`: the border that makes the convolution "full", the
       rows no window reached, and only the rows x's pixels need;
    5. turn every kernel by 180 degrees and swap its input and output channels, group by
       group: ``wt`` is ``(C, F/G, KH, KW)``.

    Examples
    --------
    >>> from convbook import conv_params
    >>> big, wt = full_conv_operands(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)),
    ...                              (1, 1, 3, 3), conv_params(2))
    >>> big[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    """
    big = dilate(dout, params.stride)  # 1.
    big = full_conv_border(big, w.shape[2:], x_shape, params)  # 2. - 4.
    wt = rot180(swap_in_out(w, params.groups))  # 5.
    return big, wt


def full_conv_border(big, kernel_hw, x_shape, params):
    """Steps 2-4 of :func:`full_conv_operands`, on the stride-dilated ``dout``.

    2. pad by ``D*(K-1)`` on every side: a "full" convolution, where the kernel may hang
       over the border by all but one tap;
    3. add zero rows (columns) at the bottom (right) for the input pixels that no window
       reached: their gradient is zero;
    4. keep only the rows x's own pixels need, ``P_top .. P_top + H + D*(K-1) - 1``: the
       padding's gradient is never used, so its outputs are not computed.
    """
    _, _, h, wd = x_shape
    kh, kw = kernel_hw
    (dh, dw), (pt, _, pl, _) = params.dilation, params.padding
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    unused = params.output_shape((h, wd), (kh, kw))
    border = (eh, eh + unused.unused_h, ew, ew + unused.unused_w)
    big = pad_input(big, border)  # 2. and 3.: (top, bottom, left, right)
    return big[:, :, pt : pt + h + eh, pl : pl + wd + ew]  # 4.


def grad_input_rot180(dout, w, x_shape, params, correlate=None, *, out=None):
    """``dx = conv(pad(dilate(dout)), rot180(w))``, correlated by ``correlate``.

    ``correlate`` is a method's ``forward`` that takes ``out=`` (default: this module's;
    the wide-rows and Winograd methods pass theirs), called with stride 1, dilation D
    and the layer's groups.
    """
    big, wt = full_conv_operands(dout, w, x_shape, params)
    full = ConvParams(dilation=params.dilation, groups=params.groups)
    correlate = correlate or forward
    return correlate(big, wt.astype(big.dtype, copy=False), None, full, out=out)


def columns_per_sample(x_shape, w_shape, params):
    """Columns of ``X'^T`` a sample, ``OH*OW``: the engine sizes sample groups by it."""
    oh, ow, _, _ = params.output_shape(x_shape[2:], w_shape[2:])
    return oh * ow
