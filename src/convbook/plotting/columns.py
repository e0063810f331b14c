"""Figures of the column matrix: im2col (one sample, and a batch with channels as one
product), its rows as the flattened input shifted (stride 1, ``OW = W``), and its
adjoint col2im, the route that adds ∇X's rows back into ∇X.

Each figure comes as up to four functions: ``<figure>_data(...)`` computes its numbers
with convbook (once), ``draw_<figure>(data, ...)`` draws them, ``plot_<figure>(...)`` is
the two in one call, and ``animate_<figure>(...)`` (where it moves) draws one ``data``
frame after frame.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from .. import ConvParams, OutputShape, col2im, conv2d_forward, conv_params, im2col
from ..methods.strided import clear_wrapped, rows_shift, shift_layout, shifted_columns
from ..shapes import as_pair
from .backward import grad_input_case
from .canvas import (
    PALETTE,
    Diagram,
    as_image,
    blank_faces,
    example,
    example_kernel,
    fmt,
    lines_needed,
    padded_image,
    tint,
)
from .player import MAX_FRAMES, animate, sample_frames

__all__ = [
    "Im2colData",
    "im2col_data",
    "draw_im2col",
    "plot_im2col",
    "animate_im2col",
    "Im2colBatchData",
    "im2col_batch_data",
    "draw_im2col_batch",
    "plot_im2col_batch",
    "ShiftedRowsData",
    "shifted_rows_data",
    "draw_shifted_rows",
    "plot_shifted_rows",
    "Col2imData",
    "col2im_data",
    "draw_col2im",
    "plot_col2im",
    "animate_col2im",
]


# --------------------------------------------------------------------------------------
# 1. im2col, one sample
# --------------------------------------------------------------------------------------


class Im2colData(NamedTuple):
    """The numbers :func:`plot_im2col` draws."""

    x: np.ndarray  #: (H, W) input
    w: np.ndarray  #: (KH, KW) kernel
    params: ConvParams
    cols: np.ndarray  #: (OH*OW, KH*KW), ``cb.im2col``
    y: np.ndarray  #: (OH, OW), ``cb.conv2d_forward``
    product: np.ndarray  #: (OH*OW,), ``cols @ w.reshape(-1)``


def im2col_data(x=None, w=None, *, stride=1, padding=0, dilation=1):
    """im2col's matrix, the product and the output (arguments as in
    :func:`plot_im2col`).

    Examples
    --------
    >>> im2col_data(np.arange(9.0).reshape(3, 3), np.ones((2, 2))).product
    array([ 8., 12., 20., 24.])
    """
    x = as_image(x, "x", example((4, 4), 0, 0, 5))
    w = as_image(w, "w", example_kernel(2))
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    p = conv_params(w.shape, **hyper)
    cols = im2col(x[None, None], w.shape, **hyper)  # (OH*OW, KH*KW)
    y = conv2d_forward(x[None, None], w[None, None], **hyper)[0, 0]
    product = cols @ w.reshape(-1)  # (OH*OW,): the matrix product Y' = X'.K'
    return Im2colData(x, w, p, cols, y, product)


def draw_im2col(data, *, row=0, ax=None):
    """:func:`plot_im2col` of an :func:`im2col_data`."""
    x, w, p, cols, y, vec = data
    nrows, kk = cols.shape
    row = int(row)
    if not 0 <= row < nrows:
        raise ValueError(f"row={row} is outside im2col's {nrows} rows")
    kh, kw = w.shape
    oh, ow = y.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    xc = wp + 1.6
    xk = xc + kk + 1.3
    xv = xk + 1 + 1.3
    xo = xv + 1 + 2.0
    top = 1.3
    body = max(hp, nrows, kk)
    d = Diagram(ax, xo + ow + 0.3, top + body + 1.2)
    i, j = divmod(row, ow)
    d.title(
        f"row {row} of X' = window ({i},{j}) of X;   "
        f"Y'[{row}] = X'[{row}]·K' = {fmt(vec[row])}",
        weight="bold",
    )
    vals, faces = padded_image(x, p.padding)
    d.grid(vals, 0, top, faces, name="X")
    for a in range(kh):
        for b in range(kw):
            d.outline(j * sw + b * dw, top + i * sh + a * dh, 1, 1)
    d.text(0, top - 0.35, "X", scale=0.9)
    faces = [[tint("input", 0.25 if r != row else 0.6)] * kk for r in range(nrows)]
    d.grid(cols, xc, top, faces, name="cols")
    d.outline(xc, top + row, kk, 1)
    d.text(xc, top - 0.35, "X' = im2col(X)", scale=0.9)
    d.text(xk - 0.65, top + nrows / 2, "·", ha="center", scale=1.6)
    d.grid(w.reshape(-1, 1), xk, top, tint("kernel"), name="K")
    d.text(xk, top - 0.35, "K'", scale=0.9)
    d.text(xv - 0.65, top + nrows / 2, "=", ha="center", scale=1.3)
    faces = [[tint("output", 0.25 if r != row else 0.6)] for r in range(nrows)]
    d.grid(vec.reshape(-1, 1), xv, top, faces, name="vec")
    d.outline(xv, top + row, 1, 1)
    d.text(xv, top - 0.35, "Y'", scale=0.9)
    d.text(xv + 1.15, top + nrows / 2, "reshape\n→", scale=0.75)
    d.grid(y, xo, top, tint("output"), name="Y")
    d.outline(xo + j, top + i, 1, 1)
    d.text(xo, top - 0.35, "Y", scale=0.9)
    return d.done()


def plot_im2col(x=None, w=None, *, stride=1, padding=0, dilation=1, row=0, ax=None):
    """im2col: each window becomes one row of X'; ``X' · K'`` is the output vector,
    reshaped into Y.

    Parameters
    ----------
    x : (H, W) array, default a 4x4 example;  w : (KH, KW) array, default 2x2
    stride, padding, dilation : as in :func:`convbook.im2col`
    row : int, the window / row / output cell highlighted

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    X' is :func:`convbook.im2col`'s matrix; the output map is
    :func:`convbook.conv2d_forward`'s, and equals the product vector reshaped
    (:func:`im2col_data`). Chapter "im2col".

    Examples
    --------
    >>> fig = plot_im2col(np.arange(9.0).reshape(3, 3), np.ones((2, 2)), row=3)
    >>> gids = {t.get_gid(): t.get_text() for t in fig.axes[0].texts}
    >>> [gids[f"vec[{r},0]"] for r in range(4)]
    ['8', '12', '20', '24']
    """
    data = im2col_data(x, w, stride=stride, padding=padding, dilation=dilation)
    return draw_im2col(data, row=row, ax=ax)


def animate_im2col(x=None, w=None, *, stride=1, padding=0, dilation=1, dpi=72):
    """:func:`plot_im2col` row by row: window, row of X', entry of Y', cell of Y."""
    data = im2col_data(x, w, stride=stride, padding=padding, dilation=dilation)
    rows = sample_frames(data.cols.shape[0])
    key = dict(x=x, w=w, stride=stride, padding=padding, dilation=dilation)
    return animate("im2col", partial(draw_im2col, data), "row", rows, key=key, dpi=dpi)


# --------------------------------------------------------------------------------------
# 2. Batch and channels in one product
# --------------------------------------------------------------------------------------


class Im2colBatchData(NamedTuple):
    """The numbers :func:`plot_im2col_batch` draws."""

    x: np.ndarray  #: (N, C, H, W) input
    w: np.ndarray  #: (F, C, K, K) weight
    cols: np.ndarray  #: (N*OH*OW, C*K*K), ``cb.im2col(x, K)``
    wt: np.ndarray  #: (C*K*K, F), ``w.reshape(F, -1).T``
    y: np.ndarray  #: (N, F, OH, OW), ``cb.conv2d_forward(x, w)``
    yrows: np.ndarray  #: (N*OH*OW, F), ``y`` rearranged: rows (n, i, j)


def im2col_batch_data(
    batch=2, in_channels=2, out_channels=3, *, input_size=3, kernel_size=2
):
    """A small batch, its columns and the product (arguments as in
    :func:`plot_im2col_batch`).

    Examples
    --------
    >>> d = im2col_batch_data(2, 2, 3)
    >>> d.cols.shape, d.wt.shape, np.array_equal(d.cols @ d.wt, d.yrows)
    ((8, 8), (8, 3), True)
    """
    n, c, f = int(batch), int(in_channels), int(out_channels)
    if not (1 <= n <= 3 and 1 <= c <= 3 and 1 <= f <= 3):
        raise ValueError(
            "batch, in_channels and out_channels must be in 1..3 for a readable "
            "picture, "
            f"got {n}, {c}, {f}"
        )
    k = int(kernel_size)
    x = example((n, c, input_size, input_size), 0, 0, 4)
    w = example((f, c, k, k), 1, -1, 2)
    cols = im2col(x, k)  # (N*OH*OW, C*K*K)
    y = conv2d_forward(x, w)  # (N, F, OH, OW)
    oh, ow = y.shape[2:]
    yrows = y.transpose(0, 2, 3, 1).reshape(
        n * oh * ow, f
    )  # (N*OH*OW, F), rows (n, i, j)
    wt = w.reshape(f, -1).T  # (C*K*K, F)
    return Im2colBatchData(x, w, cols, wt, y, yrows)


def draw_im2col_batch(data, *, ax=None):
    """:func:`plot_im2col_batch` of an :func:`im2col_batch_data`."""
    x, w, cols, wt, y, yrows = data
    n, c = x.shape[:2]
    f, k = w.shape[0], w.shape[2]
    oh, ow = y.shape[2:]
    rows, kk = cols.shape
    top = 1.6
    x0 = 1.3  # room for the sample labels
    xw = x0 + kk + 1.6
    xy = xw + f + 1.6
    body = max(rows, kk)
    d = Diagram(ax, xy + f + 3.2, top + body + 1.7, cell=0.34)
    d.title(
        f"N={n} samples, C={c} channels, F={f} filters: "
        f"({rows}×{kk}) @ ({kk}×{f}) = ({rows}×{f})"
    )
    faces = [
        [tint("input", 0.25 + 0.3 * (j // (k * k) % 2)) for j in range(kk)]
        for _ in range(rows)
    ]
    d.grid(cols, x0, top, faces, name="cols")
    for ci in range(c):
        d.text(x0 + ci * k * k + 0.1, top - 0.35, f"c={ci}", scale=0.75)
    for ni in range(n):
        d.outline(
            x0, top + ni * oh * ow, kk, oh * ow, color=PALETTE["highlight"], lw=1.6
        )
        d.text(x0 - 0.15, top + (ni + 0.5) * oh * ow, f"n={ni}", ha="right", scale=0.75)
    d.text(xw - 0.8, top + rows / 2, "@", ha="center", scale=1.1)
    d.grid(wt, xw, top, tint("kernel"), name="Wt")
    for fi in range(f):
        d.text(xw + fi + 0.5, top - 0.35, f"f={fi}", ha="center", scale=0.7)
    d.text(xy - 0.8, top + rows / 2, "=", ha="center", scale=1.1)
    d.grid(yrows, xy, top, tint("output"), name="Yrows")
    for ni in range(n):
        d.outline(
            xy, top + ni * oh * ow, f, oh * ow, color=PALETTE["highlight"], lw=1.6
        )
    d.text(
        xy + f + 0.3,
        top + rows / 2,
        f"reshape\n({n}, {oh}, {ow}, {f})\n→ transpose\n({n}, {f}, {oh}, {ow})",
        scale=0.65,
    )
    d.lines(
        0,
        top + body + 0.4,
        [
            "X' = cb.im2col(x): rows (n, i, j), columns (c, p, q);  "
            "K' = w.reshape(F, -1).T",
            "Y' is cb.conv2d_forward(x, w) rearranged: the product drawn",
        ],
        scale=0.85,
    )
    return d.done()


def plot_im2col_batch(
    batch=2, in_channels=2, out_channels=3, *, input_size=3, kernel_size=2, ax=None
):
    """Batch and channels in one product:
    ``X' (N·OH·OW, C·KH·KW) @ K' (C·KH·KW, F) = Y' (N·OH·OW, F)``.

    Row blocks of X' are the samples (rows ordered n, i, j), column blocks the input
    channels (columns ordered c, p, q); each column of K' is one filter flattened; Y'
    reshaped and transposed is ``(N, F, OH, OW)``.

    Parameters
    ----------
    batch, in_channels, out_channels : int, at most 3 each (a readable picture)
    input_size, kernel_size : int

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    X' is :func:`convbook.im2col` of a small integer example; Y' is
    :func:`convbook.conv2d_forward`'s output rearranged to ``(N·OH·OW, F)``, which
    equals the product drawn (:func:`im2col_batch_data`). Chapter "The forward pass".
    """
    data = im2col_batch_data(
        batch, in_channels, out_channels, input_size=input_size, kernel_size=kernel_size
    )
    return draw_im2col_batch(data, ax=ax)


# --------------------------------------------------------------------------------------
# 2b. Shifted rows: stride 1 with as many output columns as input columns
# --------------------------------------------------------------------------------------


class ShiftedRowsData(NamedTuple):
    """The numbers :func:`plot_shifted_rows` draws."""

    x: np.ndarray  #: (H, W) input
    kernel_hw: tuple  #: (KH, KW)
    params: ConvParams
    flat: np.ndarray  #: the input flattened, with the top and bottom padding's zeros
    front: int  #: zeros before the first pixel, ``PT*W + PL``
    rows: np.ndarray  #: (KH*KW, OH*W), ``strided.shifted_columns``: the rows of X'^T
    starts: tuple  #: where row ``(p, q)`` starts in ``flat`` (``strided.shift_layout``)
    cleared: np.ndarray  #: (KH*KW, OH*W) bool, the numbers that wrapped, set to 0


def shifted_rows_data(x=None, kernel_size=3, *, padding=1, dilation=1):
    """The flattened input and the column matrix's rows cut from it (arguments as in
    :func:`plot_shifted_rows`).

    Examples
    --------
    >>> d = shifted_rows_data(np.arange(1.0, 7.0).reshape(2, 3))
    >>> d.flat
    array([0., 0., 0., 0., 1., 2., 3., 4., 5., 6., 0., 0., 0., 0.])
    >>> d.rows[3]  # tap (1, 0): the pixel to the left; none at a row's start
    array([0., 1., 2., 0., 4., 5.])
    """
    x = as_image(x, "x", np.arange(1.0, 21.0).reshape(4, 5))
    p = conv_params(kernel_size, padding=padding, dilation=dilation)
    (kh, kw), (h, w) = as_pair(kernel_size, "kernel_size", minimum=1), x.shape
    if not rows_shift((1, 1, h, w), (kh, kw), p):
        ow = p.output_shape((h, w), (kh, kw)).ow
        raise ValueError(
            f"padding={padding!r} with kernel_size={kernel_size!r} and dilation="
            f"{dilation!r} gives {ow} output columns for x's {w}: rows shift only "
            "where there are as many"
        )
    oh, front, length, starts = shift_layout((1, 1, h, w), (kh, kw), p)
    flat = np.zeros(length)
    flat[front : front + x.size] = x.ravel()
    rows = shifted_columns(x[None, None], (kh, kw), p)[0, 0]  # (KH*KW, OH*W)
    kept = np.ones((kh, kw, oh, w))
    clear_wrapped(kept, p)  # the same clearing, on ones: 0 where a number wrapped
    cleared = kept.reshape(kh * kw, -1) == 0
    return ShiftedRowsData(x, (kh, kw), p, flat, front, rows, starts, cleared)


def draw_shifted_rows(data, *, ax=None):
    """:func:`plot_shifted_rows` of a :func:`shifted_rows_data`."""
    x, (kh, kw), p, flat, front, rows, starts, cleared = data
    w, left, top = x.shape[1], 4.0, 1.4
    d = Diagram(ax, left + len(flat) + 0.3, top + 2.0 + len(rows) + 0.3)
    d.title(
        "each row of X': the flattened input shifted, wrapped numbers cleared (///)"
    )
    faces = [[tint("padding", 0.35)] * len(flat)]
    faces[0][front : front + x.size] = [tint("input")] * x.size
    d.grid(flat[None], left, top, faces, name="flat")
    flat_faces = faces[0]  # a row's cells are coloured as the numbers they copy
    for k in range(0, x.size, w):  # the input's rows
        d.outline(left + front + k, top, w, 1, color=PALETTE["input"], lw=1.6)
    d.text(0.1, top + 0.5, "x flat", scale=0.9)
    for k, (row, start) in enumerate(zip(rows, starts, strict=True)):
        faces = [flat_faces[start : start + row.size]]
        for j in np.flatnonzero(cleared[k]):
            faces[0][j] = tint("padding", 0.35)
        y = top + 2.0 + k
        d.grid(row[None], left + start, y, faces, name=f"row{k}")
        d.hatch([(0, j) for j in np.flatnonzero(cleared[k])], left + start, y, "#666")
        d.text(0.1, y + 0.5, "({}, {})".format(*divmod(k, kw)), scale=0.9)
    d.text(0.1, top + 1.5, "tap (p, q)", scale=0.9)  # heads the rows' labels
    return d.done()


def plot_shifted_rows(x=None, kernel_size=3, *, padding=1, dilation=1, ax=None):
    """The column matrix at stride 1 with ``OW = W``: row ``(p, q)`` is the flattened
    input (zeros above and below for the top and bottom padding) shifted by ``p*DH*W +
    q*DW``, drawn under the numbers it copies; the numbers that wrapped around a row's
    end, where the left and right padding was, are cleared (grey).

    Parameters
    ----------
    x : (H, W) array, default the 4x5 input 1 .. 20
    kernel_size, padding, dilation : as in :func:`convbook.conv_params`, with as many
        output columns as input columns (``"same"``)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The rows are :func:`convbook.methods.strided.shifted_columns`'s, cleared by its
    :func:`~convbook.methods.strided.clear_wrapped`. Chapter "A faster im2col".

    Examples
    --------
    >>> fig = plot_shifted_rows()
    >>> gids = {t.get_gid(): t.get_text() for t in fig.axes[0].texts}
    >>> [gids[f"row3[0,{j}]"] for j in range(6)]  # tap (1, 0)
    ['0', '1', '2', '3', '4', '0']
    """
    data = shifted_rows_data(x, kernel_size, padding=padding, dilation=dilation)
    return draw_shifted_rows(data, ax=ax)


# --------------------------------------------------------------------------------------
# 3. col2im: the gradient's rows added back
# --------------------------------------------------------------------------------------


class Col2imData(NamedTuple):
    """The numbers :func:`plot_col2im` draws."""

    dout: np.ndarray  #: (OH, OW), ∇Y
    w: np.ndarray  #: (KH, KW) kernel
    params: ConvParams
    out_shape: OutputShape
    input_size: tuple  #: (H, W)
    dx: np.ndarray  #: (H, W), ``cb.conv2d_grad_input``
    dcols: np.ndarray  #: (OH*OW, KH*KW), ∇X' = ∇Y'·K'ᵀ
    counts: np.ndarray  #: (Hp, Wp), how many windows read each padded-input cell


def col2im_data(dout=None, w=None, *, stride=1, padding=0, dilation=1, input_size=None):
    """∇X' and the window counts (arguments as in :func:`plot_col2im`).

    Examples
    --------
    >>> col2im_data().counts  # a 2x2 kernel over 4x4: the middle is read 4 times
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    dout, w, p, s, (h, wd), dx = grad_input_case(
        dout,
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        input_size=input_size,
        default_dout=example((3, 3), 4, 1, 4),
        default_w=example_kernel(2),
    )
    dcols = dout.reshape(-1, 1) @ w.reshape(1, -1)  # (OH*OW, KH*KW): ∇X' = ∇Y'·K'ᵀ
    pt, pb, pl, pr = p.padding
    padded = (1, 1, h + pt + pb, wd + pl + pr)
    ones = np.ones_like(dcols)
    counts = col2im(ones, padded, w.shape, stride=p.stride, dilation=p.dilation)[0, 0]
    return Col2imData(dout, w, p, s, (h, wd), dx, dcols, counts)


def draw_col2im(data, *, upto=None, ax=None):
    """:func:`plot_col2im` of a :func:`col2im_data`."""
    dout, w, p, s, (h, wd), dx, dcols, counts = data
    nrows, kk = dcols.shape
    upto = nrows if upto is None else int(upto)
    if not 0 <= upto <= nrows:
        raise ValueError(f"upto={upto} must be in 0..{nrows} (the rows of ∇X')")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = h + pt + pb, wd + pl + pr
    part = dcols.copy()
    part[upto:] = 0
    # col2im over the padded grid (padding 0) so the sums landing in the padding are
    # visible before they are dropped
    acc = col2im(part, (1, 1, hp, wp), (kh, kw), stride=p.stride, dilation=p.dilation)
    acc = acc[0, 0]
    top = 1.3
    xc = 0
    xg = kk + 2.0
    body = max(nrows, hp + 1.3 + hp)

    def told(row):  # the lines under the picture once rows 0..row are added
        i, j = divmod(row, s.ow)
        return [
            f"row {row} = ∇Y[{i},{j}]·K'ᵀ is added (+=) into window ({i},{j}) of ∇X",
            "a pixel read by n windows gets n contributions:",
            "'=' instead of '+=' keeps only the last",
        ]

    row = upto - 1
    i, j = divmod(max(row, 0), s.ow)  # the window row ``row`` goes to
    lines = told(row) if row >= 0 else ["nothing added yet: ∇X starts at zero", "", ""]
    # as wide as the pictures, or as the last row's line at the labels' size (0.27 cells
    # a character, Diagram.lines' rule), the same in every frame of an animation
    width = max(xg + wp + 0.3, 0.27 * len(told(nrows - 1)[0]))
    d = Diagram(ax, width, top + body + 0.5 + lines_needed(len(lines) + 1))
    d.title(
        f"col2im: ∇X' = ∇Y'·K'ᵀ ({nrows}×{kk}), one row per window, added back"
        f" ({upto}/{nrows} rows)"
    )
    faces = [[tint("gradient", 0.6 if r < upto else 0.12)] * kk for r in range(nrows)]
    d.grid(dcols, xc, top, faces, name="dcols")
    if row >= 0:
        d.outline(xc, top + row, kk, 1)
    d.text(xc, top - 0.35, "∇X' = ∇Y'·K'ᵀ", scale=0.85)
    d.text(xg - 1.0, top + hp / 2, "col2im\n→", scale=0.7)
    faces = blank_faces((hp, wp), tint("padding", 0.35))
    inside = tint("gradient") if upto == nrows else tint("gradient", 0.35)
    for a in range(h):
        for b in range(wd):
            faces[pt + a][pl + b] = inside
    d.grid(acc, xg, top, faces, name="acc")
    if row >= 0:
        for a in range(kh):
            for b in range(kw):
                d.outline(xg + j * sw + b * dw, top + i * sh + a * dh, 1, 1)
    d.text(xg, top - 0.35, "∇X (running sums)" if upto < nrows else "∇X", scale=0.85)
    d.grid(counts, xg, top + hp + 1.3, tint("input", 0.3), name="counts")
    d.text(xg, top + hp + 0.95, "windows per pixel", scale=0.85)
    if upto == nrows:
        ok = np.allclose(acc[pt : pt + h, pl : pl + wd], dx)
        lines.append(
            f"all rows added: ∇X == cb.conv2d_grad_input(...): {'✓' if ok else '✗'}"
        )
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def plot_col2im(
    dout=None,
    w=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    input_size=None,
    upto=None,
    ax=None,
):
    """The col2im route to ∇X: row r of ∇X' = ∇Y'·K'ᵀ is added (+=) back into window r;
    overlaps sum.

    Parameters
    ----------
    dout : ∇Y, (OH, OW) array, default 3x3;  w : (KH, KW), default 2x2
    stride, padding, dilation, input_size : as in :func:`plot_full_conv`
    upto : int, how many rows have been added (default all)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The partial sums are :func:`convbook.col2im` of ∇X' with the rows past ``upto``
    zeroed; with every row it equals :func:`convbook.conv2d_grad_input`
    (:func:`col2im_data`). Chapter "∇X".
    """
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = col2im_data(dout, w, input_size=input_size, **hyper)
    return draw_col2im(data, upto=upto, ax=ax)


def animate_col2im(
    dout=None, w=None, *, stride=1, padding=0, dilation=1, input_size=None, dpi=72
):
    """:func:`plot_col2im` adding the rows of ∇X' one at a time."""
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = col2im_data(dout, w, input_size=input_size, **hyper)
    steps = [k + 1 for k in sample_frames(data.dcols.shape[0])]
    key = dict(dout=dout, w=w, input_size=input_size, **hyper)
    draw = partial(draw_col2im, data)
    values = [0] + steps[: MAX_FRAMES - 1]
    return animate("col2im", draw, "upto", values, key=key, dpi=dpi, interval=800)
