"""Pictures of every step of a convolution layer, forward and backward: pure matplotlib.

Three kinds of function, all drawing the numbers convbook itself computes (``conv2d_forward``, ``im2col``,
``col2im``, ``conv2d_grad_input``, ``conv2d_grad_weight``, ``window_view``, ``rot180_tutorial``, ``winograd``), never a
second implementation of the maths:

* ``plot_*(..., ax=None) -> Figure``: one static picture. The figure is closed before it is returned, so a
  notebook shows it exactly once (as the cell's value); pass ``ax`` to draw into an axes of your own.
* ``animate_*(...) -> JSAnimation``: a ``FuncAnimation(...).to_jshtml()`` player that works in static HTML with
  no kernel. Deterministic (same arguments, byte-identical HTML), at most :data:`MAX_FRAMES` frames.
* :data:`PALETTE`: the book's colour language (Okabe–Ito, colour-blind safe).

Single channel, single sample: ``x`` may be given as ``(H, W)`` or ``(1, 1, H, W)``, kernels as ``(KH, KW)`` or
``(1, 1, KH, KW)``. Every argument has a small default example whose numbers can be checked by hand.
The live explorers over these pictures are in :mod:`convbook.widgets`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle

from . import winograd as _winograd
from .conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight, dilate, rot180, rot180_tutorial
from .columns import col2im, im2col, window_view
from .shapes import conv_output_shape, conv_params

__all__ = [
    "PALETTE",
    "MAX_FRAMES",
    "JSAnimation",
    "legend_handles",
    "tint",
    "plot_palette",
    "plot_sliding_window",
    "plot_im2col",
    "plot_im2col_batch",
    "plot_output_size",
    "plot_groups",
    "plot_grad_weight",
    "plot_grad_input_map",
    "plot_full_conv",
    "plot_col2im",
    "plot_rot180",
    "plot_winograd",
    "animate_sliding_window",
    "animate_im2col",
    "animate_output_size",
    "animate_groups",
    "animate_grad_weight",
    "animate_grad_input_map",
    "animate_full_conv",
    "animate_col2im",
]

#: The book's colour language (Okabe & Ito's colour-blind-safe palette). Cells are filled with :func:`tint`
#: of these; outlines and labels use them at full strength.
PALETTE = {
    "input": "#56B4E9",  # sky blue: X
    "kernel": "#E69F00",  # orange: K (weights)
    "output": "#009E73",  # bluish green: Y
    "gradient": "#CC79A7",  # reddish purple: every gradient (dY, dX, dK)
    "padding": "#999999",  # grey: zero padding
    "zeros": "#F0E442",  # yellow: zeros inserted between dY's rows/columns by the stride
    "unused": "#D55E00",  # vermillion: rows/columns no window reaches
    "highlight": "#0072B2",  # blue: the current window / selected cell
    "text": "#000000",
}

#: Longest animation, in frames (longer sweeps are sub-sampled evenly).
MAX_FRAMES = 36

_NAMES = {
    "input": "input X",
    "kernel": "kernel K",
    "output": "output Y",
    "gradient": "gradient (∇Y, ∇X, ∇K)",
    "padding": "zero padding",
    "zeros": "zeros inserted by the stride",
    "unused": "never read by a window",
    "highlight": "current window / selection",
}

_W3 = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0], [0.0, -1.0, 1.0]])
_W2 = np.array([[1.0, 2.0], [0.0, -1.0]])


def tint(color, amount=0.4):
    """``color`` (a :data:`PALETTE` key or any matplotlib colour) mixed with white: ``amount`` 1 is the colour.

    Examples
    --------
    >>> tint("input", 1.0) == to_rgb(PALETTE["input"])
    True
    """
    rgb = np.array(to_rgb(PALETTE.get(color, color)))
    return tuple(float(v) for v in amount * rgb + (1 - amount))


def legend_handles(*keys):
    """Legend patches for :data:`PALETTE` keys (all of them by default), labelled in the book's words.

    Examples
    --------
    >>> [h.get_label() for h in legend_handles("input", "kernel")]
    ['input X', 'kernel K']
    """
    keys = keys or tuple(k for k in PALETTE if k != "text")
    return [Patch(facecolor=tint(k), edgecolor=PALETTE[k], label=_NAMES.get(k, k)) for k in keys]


def plot_palette(*keys, ax=None):
    """The colour language as a legend (all of :data:`PALETTE` by default, or the given keys).

    Returns
    -------
    matplotlib.figure.Figure
    """
    handles = legend_handles(*keys)
    owns = ax is None
    if owns:
        fig, ax = plt.subplots(figsize=(9, 0.3 + 0.3 * -(-len(handles) // 4)))
    ax.set_axis_off()
    ax.legend(handles=handles, ncols=min(4, len(handles)), loc="center", frameon=False)
    if owns:
        plt.close(ax.figure)
    return ax.figure


# ----------------------------------------------------------------------------------------------------------------
# Small helpers: inputs, numbers, and a grid-of-cells canvas
# ----------------------------------------------------------------------------------------------------------------


def _example(shape, seed, low, high):
    """Small integer example data (as floats), the same on every call."""
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(float)


def _image(a, name, default):
    """A single-channel image as a 2-D float array; accepts (H, W) or (1, 1, H, W)."""
    if a is None:
        a = default
    a = np.asarray(a, dtype=float)
    if a.ndim == 4:
        if a.shape[:2] != (1, 1):
            raise ValueError(f"{name}: pictures show one sample and one channel, expected (1, 1, H, W), got {a.shape}")
        a = a[0, 0]
    if a.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W) or (1, 1, H, W), got {a.shape}")
    return a


def _pair(v, name):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")


def _cell(pos, shape, name):
    """Validate a (row, col) position inside a grid of the given shape."""
    i, j = _pair(pos, name)
    if not (0 <= i < shape[0] and 0 <= j < shape[1]):
        raise ValueError(f"{name}={pos!r} is outside the {shape[0]}x{shape[1]} grid it indexes")
    return i, j


def _fmt(v):
    """A cell's number: integers without a decimal point, others with 3 significant digits."""
    if v is None or not np.isfinite(v):
        return ""
    r = round(float(v))
    if abs(v - r) < 1e-9:
        return str(int(r))
    return f"{v:.3g}"


def _paren(v):
    s = _fmt(v)
    return f"({s})" if s.startswith("-") else s


def _sample(n, limit=MAX_FRAMES):
    """Frame indices 0..n-1, evenly sub-sampled to at most ``limit``."""
    if n <= limit:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})


def _wrap_terms(terms, per_line, first, last):
    """Lines of a long sum: ``first`` then ``per_line`` terms a line, then ``last``."""
    lines = [first]
    for k in range(0, len(terms), per_line):
        chunk = " + ".join(terms[k : k + per_line])
        lines.append(("  " if k == 0 else "  + ") + chunk)
    lines.append(last)
    return lines


class _Diagram:
    """One axes in cell units (y down), sized so a cell is about ``cell`` inches; text scaled to the cells."""

    def __init__(self, ax, width, height, *, cell=0.42, max_size=(9.5, 5.5)):
        self.owns = ax is None
        if ax is None:
            s = min(cell, max_size[0] / width, max_size[1] / height)
            fig = plt.figure(figsize=(width * s, height * s))
            ax = fig.add_axes((0, 0, 1, 1))
        self.ax, self.fig = ax, ax.figure
        self.width, self.height = width, height
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_aspect("equal")
        ax.set_axis_off()
        pos = ax.get_position()
        fw, fh = self.fig.get_size_inches()
        self.pt = 72 * min(pos.width * fw / width, pos.height * fh / height)  # points per cell
        self.fs = float(np.clip(0.42 * self.pt, 5, 12))  # label font size

    def grid(self, values, x0, y0, face, *, text=None, edge="#444444", lw=0.6, hatch=None, color="black",
             shape=None, fontscale=1.0, name=None):
        """Cells of a 2-D grid with top-left corner (x0, y0). ``face`` is one colour or an array of colours.

        Each number is a Text with gid ``"{name}[i,j]"``, so tests can read back what a picture shows.
        """
        if values is not None:
            values = np.asarray(values, dtype=float)
            shape = values.shape
        rows, cols = shape
        if text is None and values is not None:
            text = [[_fmt(values[i, j]) for j in range(cols)] for i in range(rows)]
        faces = []
        rects = []
        for i in range(rows):
            for j in range(cols):
                x, y = x0 + j, y0 + i
                rects.append(((x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1)))
                f = face[i][j] if isinstance(face, list) else face
                faces.append(f)
        self.ax.add_collection(PolyCollection(rects, facecolors=faces, edgecolors=edge, linewidths=lw, hatch=hatch))
        if text is not None:
            longest = max((len(t) for row in text for t in row), default=1)
            size = fontscale * min(0.42 * self.pt, 1.55 * self.pt / max(longest, 2))
            if size >= 4.0:
                for i in range(rows):
                    for j in range(cols):
                        c = color[i][j] if isinstance(color, list) else color
                        if text[i][j]:
                            self.ax.text(x0 + j + 0.5, y0 + i + 0.53, text[i][j], ha="center", va="center",
                                         fontsize=size, color=c, gid=f"{name}[{i},{j}]" if name else None)

    def hatch(self, cells, x0, y0, color):
        """Hatch some cells (marks 'never read' without hiding their numbers)."""
        for i, j in cells:
            self.ax.add_patch(Rectangle((x0 + j, y0 + i), 1, 1, fill=False, hatch="///", edgecolor=color, lw=0))

    def outline(self, x, y, w, h, color=None, lw=2.4, ls="-", z=5):
        self.ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color or PALETTE["highlight"], lw=lw,
                                    ls=ls, zorder=z))

    def text(self, x, y, s, *, scale=1.0, ha="left", va="center", color="black", weight="normal"):
        self.ax.text(x, y, s, ha=ha, va=va, fontsize=self.fs * scale, color=color, weight=weight)

    def title(self, s, *, scale=1.0, weight="bold"):
        """Bold heading on the top row, shrunk to fit the width."""
        size = min(self.fs * scale, 0.97 * self.width * self.pt / (0.62 * max(len(s), 1)))
        self.ax.text(0, 0.5, s, ha="left", va="center", fontsize=size, weight=weight, gid="title")

    def lines(self, x, y, lines, *, width=None, scale=1.0, color="black", name="text"):
        """A block of text lines from (x, y) down, shrunk to fit ``width`` cells."""
        width = width or (self.width - x - 0.2)
        longest = max(len(s) for s in lines)
        size = min(self.fs * scale, 0.95 * width * self.pt / (0.6 * max(longest, 1)))
        step = 1.25 * size / self.pt
        for k, s in enumerate(lines):
            self.ax.text(x, y + k * step, s, ha="left", va="top", fontsize=size, color=color, gid=f"{name}{k}")
        return y + len(lines) * step

    def done(self):
        if self.owns:
            plt.close(self.fig)
        return self.fig


def _faces(shape, default):
    return [[default for _ in range(shape[1])] for _ in range(shape[0])]


def _filled_so_far(values, upto, key):
    """Faces and text of a grid filled in row-major order up to and including cell ``upto``; the rest blank."""
    rows, cols = values.shape
    last = upto[0] * cols + upto[1]
    faces = _faces((rows, cols), (1.0, 1.0, 1.0))
    text = [["" for _ in range(cols)] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if r * cols + c <= last:
                faces[r][c] = tint(key)
                text[r][c] = _fmt(values[r, c])
    return faces, text


def _lines_needed(n):
    """Rows of cells reserved for n lines of text."""
    return 0.55 * n + 0.2


# ----------------------------------------------------------------------------------------------------------------
# 1. Sliding window
# ----------------------------------------------------------------------------------------------------------------


def _sliding_data(x, w, stride, padding, dilation):
    x = _image(x, "x", _example((5, 5), 0, 0, 4))
    w = _image(w, "w", _W3)
    p = conv_params(w.shape, stride=stride, padding=padding, dilation=dilation)
    y = conv2d_forward(x[None, None], w[None, None], stride=stride, padding=padding, dilation=dilation)[0, 0]
    windows = window_view(x[None, None], w.shape, stride=stride, padding=padding, dilation=dilation)[0, 0]
    return x, w, p, y, windows


def plot_sliding_window(x=None, w=None, *, stride=2, padding=1, dilation=1, position=(0, 0), ax=None):
    """The kernel over the padded input at output cell ``position``, with its multiply-add written out.

    Parameters
    ----------
    x : (H, W) or (1, 1, H, W) array, default a 5x5 example
    w : (KH, KW) or (1, 1, KH, KW) array, default a 3x3 example
    stride, padding, dilation : as in :func:`convbook.conv2d_forward`
    position : (i, j), the output cell being computed
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The window values come from :func:`convbook.window_view`, the output from :func:`convbook.conv2d_forward`;
    the sum written under the picture equals ``Y[i, j]``. Derived in the chapter "The forward pass".

    Examples
    --------
    Each number drawn carries a gid naming its cell; the output grid holds ``conv2d_forward``'s numbers:

    >>> fig = plot_sliding_window(position=(2, 2))
    >>> shown = {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}
    >>> [shown[f"Y[2,{j}]"] for j in range(3)]
    ['-1', '8', '3']
    >>> x = _example((5, 5), 0, 0, 4)
    >>> conv2d_forward(x[None, None], _W3[None, None], stride=2, padding=1)[0, 0, 2]
    array([-1.,  8.,  3.])
    """
    x, w, p, y, windows = _sliding_data(x, w, stride, padding, dilation)
    i, j = _cell(position, y.shape, "position")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    oh, ow = y.shape
    xk = wp + 1.5
    xo = xk + kw + 1.5
    top = 1.3
    win = windows[i, j]
    terms_rows = [" + ".join(f"{_paren(win[a, b])}·{_paren(w[a, b])}" for b in range(kw)) for a in range(kh)]
    lines = [f"Y[{i},{j}] = Σ X·K over the window ="] + ["   " + t for t in terms_rows] + [f"   = {_fmt(y[i, j])}"]
    body = max(hp, kh, oh)
    d = _Diagram(ax, xo + ow + 0.3, top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"stride {p.stride}, padding {p.padding[::2]}, dilation {p.dilation}  →  Y is {oh}×{ow}",
           weight="bold")
    # padded input
    faces = _faces((hp, wp), tint("padding", 0.35))
    vals = np.zeros((hp, wp))
    vals[pt : pt + x.shape[0], pl : pl + x.shape[1]] = x
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            faces[pt + a][pl + b] = tint("input")
    d.grid(vals, 0, top, faces, name="X")
    r0, c0 = i * sh, j * sw
    d.outline(c0, top + r0, dw * (kw - 1) + 1, dh * (kh - 1) + 1, ls="--", lw=1.2)
    for a in range(kh):
        for b in range(kw):
            d.outline(c0 + b * dw, top + r0 + a * dh, 1, 1)
    d.text(0, top - 0.35, "X, zero-padded", scale=0.9)
    # kernel
    d.grid(w, xk, top, tint("kernel"), name="K")
    d.text(xk, top - 0.35, "K", scale=0.9)
    # output so far
    faces, text = _filled_so_far(y, (i, j), "output")
    d.grid(None, xo, top, faces, shape=(oh, ow), text=text, name="Y")
    d.outline(xo + j, top + i, 1, 1)
    d.text(xo, top - 0.35, "Y", scale=0.9)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def animate_sliding_window(x=None, w=None, *, stride=2, padding=1, dilation=1, dpi=72):
    """:func:`plot_sliding_window` at every output position (row by row), as a player for static HTML."""
    _, _, _, y, _ = _sliding_data(x, w, stride, padding, dilation)
    oh, ow = y.shape
    positions = [divmod(k, ow) for k in _sample(oh * ow)]
    kwargs = dict(x=x, w=w, stride=stride, padding=padding, dilation=dilation)
    return _animate("sliding_window", plot_sliding_window, kwargs, "position", positions, dpi, interval=700)


# ----------------------------------------------------------------------------------------------------------------
# 2. im2col
# ----------------------------------------------------------------------------------------------------------------


def _im2col_data(x, w, stride, padding, dilation):
    x = _image(x, "x", _example((4, 4), 0, 0, 5))
    w = _image(w, "w", _W2)
    p = conv_params(w.shape, stride=stride, padding=padding, dilation=dilation)
    cols = im2col(x[None, None], w.shape, stride=stride, padding=padding, dilation=dilation)  # (OH*OW, KH*KW)
    y = conv2d_forward(x[None, None], w[None, None], stride=stride, padding=padding, dilation=dilation)[0, 0]
    return x, w, p, cols, y


def plot_im2col(x=None, w=None, *, stride=1, padding=0, dilation=1, row=0, ax=None):
    """im2col: each window becomes one row of X'; ``X' · K'`` is the output vector, reshaped into Y.

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
    X' is :func:`convbook.im2col`'s matrix; the output map is :func:`convbook.conv2d_forward`'s, and equals the
    product vector reshaped. Chapter "im2col".

    Examples
    --------
    >>> fig = plot_im2col(np.arange(9.0).reshape(3, 3), np.ones((2, 2)), row=3)
    >>> [t.get_text() for t in fig.axes[0].texts if (t.get_gid() or "").startswith("vec[")]
    ['8', '12', '20', '24']
    """
    x, w, p, cols, y = _im2col_data(x, w, stride, padding, dilation)
    nrows, kk = cols.shape
    row = int(row)
    if not 0 <= row < nrows:
        raise ValueError(f"row={row} is outside im2col's {nrows} rows")
    vec = cols @ w.reshape(-1)  # (OH*OW,): the matrix product Y' = X'.K'
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
    d = _Diagram(ax, xo + ow + 0.3, top + body + 1.2)
    i, j = divmod(row, ow)
    d.title(f"row {row} of X' = window ({i},{j}) of X;   Y'[{row}] = X'[{row}]·K' = {_fmt(vec[row])}",
           weight="bold")
    faces = _faces((hp, wp), tint("padding", 0.35))
    vals = np.zeros((hp, wp))
    vals[pt : pt + x.shape[0], pl : pl + x.shape[1]] = x
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            faces[pt + a][pl + b] = tint("input")
    d.grid(vals, 0, top, faces, name="X")
    for a in range(kh):
        for b in range(kw):
            d.outline(j * sw + b * dw, top + i * sh + a * dh, 1, 1)
    d.text(0, top - 0.35, "X", scale=0.9)
    faces = [[tint("input", 0.25 if r != row else 0.6) for _ in range(kk)] for r in range(nrows)]
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


def animate_im2col(x=None, w=None, *, stride=1, padding=0, dilation=1, dpi=72):
    """:func:`plot_im2col` row by row: window, row of X', entry of Y', cell of Y."""
    _, _, _, cols, _ = _im2col_data(x, w, stride, padding, dilation)
    kwargs = dict(x=x, w=w, stride=stride, padding=padding, dilation=dilation)
    return _animate("im2col", plot_im2col, kwargs, "row", _sample(cols.shape[0]), dpi, interval=700)


def plot_im2col_batch(batch=2, in_channels=2, out_channels=3, *, input_size=3, kernel_size=2, ax=None):
    """Batch and channels in one product: ``X' (N·OH·OW, C·KH·KW) @ W'ᵀ (C·KH·KW, F) = Y' (N·OH·OW, F)``.

    Row blocks of X' are the samples (rows ordered n, i, j), column blocks the input channels (columns ordered
    c, p, q); each column of W'ᵀ is one filter flattened; Y' reshaped and transposed is ``(N, F, OH, OW)``.

    Parameters
    ----------
    batch, in_channels, out_channels : int, at most 3 each (a readable picture)
    input_size, kernel_size : int

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    X' is :func:`convbook.im2col` of a small integer example; Y' is :func:`convbook.conv2d_forward`'s output
    rearranged to ``(N·OH·OW, F)``, which equals the product drawn. Chapter "The forward pass".
    """
    n, c, f = int(batch), int(in_channels), int(out_channels)
    if not (1 <= n <= 3 and 1 <= c <= 3 and 1 <= f <= 3):
        raise ValueError(f"batch, in_channels and out_channels must be in 1..3 for a readable picture, "
                         f"got {n}, {c}, {f}")
    k = int(kernel_size)
    x = _example((n, c, input_size, input_size), 0, 0, 4)
    w = _example((f, c, k, k), 1, -1, 2)
    cols = im2col(x, k)  # (N*OH*OW, C*K*K)
    y = conv2d_forward(x, w)  # (N, F, OH, OW)
    oh, ow = y.shape[2:]
    yrows = y.transpose(0, 2, 3, 1).reshape(n * oh * ow, f)  # (N*OH*OW, F), rows (n, i, j)
    wt = w.reshape(f, -1).T  # (C*K*K, F)
    rows, kk = cols.shape
    top = 1.6
    x0 = 1.3  # room for the sample labels
    xw = x0 + kk + 1.6
    xy = xw + f + 1.6
    body = max(rows, kk)
    d = _Diagram(ax, xy + f + 3.2, top + body + 1.7, cell=0.34)
    d.title(f"N={n} samples, C={c} channels, F={f} filters: ({rows}×{kk}) @ ({kk}×{f}) = ({rows}×{f})")
    faces = [[tint("input", 0.25 + 0.3 * (j // (k * k) % 2)) for j in range(kk)] for _ in range(rows)]
    d.grid(cols, x0, top, faces, name="cols")
    for ci in range(c):
        d.text(x0 + ci * k * k + 0.1, top - 0.35, f"c={ci}", scale=0.75)
    for ni in range(n):
        d.outline(x0, top + ni * oh * ow, kk, oh * ow, color=PALETTE["highlight"], lw=1.6)
        d.text(x0 - 0.15, top + (ni + 0.5) * oh * ow, f"n={ni}", ha="right", scale=0.75)
    d.text(xw - 0.8, top + rows / 2, "@", ha="center", scale=1.1)
    d.grid(wt, xw, top, tint("kernel"), name="Wt")
    for fi in range(f):
        d.text(xw + fi + 0.5, top - 0.35, f"f={fi}", ha="center", scale=0.7)
    d.text(xy - 0.8, top + rows / 2, "=", ha="center", scale=1.1)
    d.grid(yrows, xy, top, tint("output"), name="Yrows")
    for ni in range(n):
        d.outline(xy, top + ni * oh * ow, f, oh * ow, color=PALETTE["highlight"], lw=1.6)
    d.text(xy + f + 0.3, top + rows / 2, f"reshape\n({n}, {oh}, {ow}, {f})\n→ transpose\n({n}, {f}, {oh}, {ow})",
           scale=0.65)
    d.lines(0, top + body + 0.4, ["X' = cb.im2col(x): rows (n, i, j), columns (c, p, q);  W'ᵀ = w.reshape(F, -1).T",
                                  "Y' is cb.conv2d_forward(x, w) rearranged: the product drawn"], scale=0.85)
    return d.done()


# ----------------------------------------------------------------------------------------------------------------
# 3. Output size
# ----------------------------------------------------------------------------------------------------------------


def plot_output_size(input_size=6, kernel_size=3, *, stride=2, padding=0, dilation=1, ax=None):
    """The output-size formula with the numbers in, and the padded input's cells coloured by how often a window
    reads them: the rows/columns past the last window (the floor's remainder) are hatched in vermillion.

    Parameters
    ----------
    input_size, kernel_size : int or (h, w)
    stride, padding, dilation : as in :func:`convbook.conv_output_shape`

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Sizes from :func:`convbook.conv_output_shape`; the counts are :func:`convbook.col2im` of a column matrix of
    ones over the padded input.
    """
    h, wd = _pair(input_size, "input_size")
    kh, kw = _pair(kernel_size, "kernel_size")
    s = conv_output_shape((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = h + pt + pb, wd + pl + pr
    counts = col2im(np.ones((s.oh * s.ow, kh * kw)), (1, 1, hp, wp), (kh, kw), stride=stride, dilation=dilation)[0, 0]
    faces = _faces((hp, wp), tint("input"))
    hatched = []
    for a in range(hp):
        for b in range(wp):
            if a < pt or a >= pt + h or b < pl or b >= pl + wd:
                faces[a][b] = tint("padding", 0.35)
            if a >= hp - s.unused_h or b >= wp - s.unused_w:
                faces[a][b] = tint("unused", 0.35)
                hatched.append((a, b))
            elif counts[a, b] == 0:
                faces[a][b] = (1.0, 1.0, 1.0)
                hatched.append((a, b))
    lines = []
    for ax_name, o, i_, k_, p0, p1, st, dl, u in (("H", s.oh, h, kh, pt, pb, sh, dh, s.unused_h),
                                                   ("W", s.ow, wd, kw, pl, pr, sw, dw, s.unused_w)):
        num = i_ + p0 + p1 - dl * (k_ - 1) - 1
        pads = "2P" if p0 == p1 else "P₁ + P₂"
        pnum = f"2·{p0}" if p0 == p1 else f"{p0} + {p1}"
        lines.append(f"O{ax_name} = ⌊({ax_name} + {pads} − D(K−1) − 1)/S⌋ + 1 = "
                     f"⌊({i_} + {pnum} − {dl}·{k_ - 1} − 1)/{st}⌋ + 1 = ⌊{num}/{st}⌋ + 1 = {o}")
        lines.append(f"      remainder {num} mod {st} = {u}: {u} {'row' if ax_name == 'H' else 'column'}"
                     f"{'s' if u != 1 else ''} past the last window, never read")
    lines.append("numbers: how many windows read each cell; grey: padding; hatched: never read")
    lines.append("outlined: the first window (solid) and the last (dashed)")
    top = 1.3
    xo = wp + 1.8
    body = max(hp, s.oh)
    d = _Diagram(ax, max(xo + s.ow + 0.3, 20), top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"input {h}×{wd}, kernel {kh}×{kw}, stride {p.stride}, padding {p.padding[::2]}, "
           f"dilation {p.dilation}  →  output {s.oh}×{s.ow}")
    d.grid(counts, 0, top, faces, name="counts")
    d.hatch(hatched, 0, top, PALETTE["unused"])
    d.outline(0, top, dw * (kw - 1) + 1, dh * (kh - 1) + 1, lw=2.0)
    d.outline((s.ow - 1) * sw, top + (s.oh - 1) * sh, dw * (kw - 1) + 1, dh * (kh - 1) + 1, lw=2.0, ls="--")
    d.text(0, top - 0.35, "padded X", scale=0.85)
    d.grid(None, xo, top, tint("output"), shape=(s.oh, s.ow), name="Y")
    d.text(xo, top - 0.35, "Y", scale=0.9)
    d.lines(0, top + body + 0.4, lines, width=d.width - 0.2)
    return d.done()


def animate_output_size(input_size=7, kernel_size=3, *, padding=0, dilation=1, dpi=72):
    """:func:`plot_output_size` for stride 1, 2, 3, 4: watch the output shrink and the unused border appear."""
    kwargs = dict(input_size=input_size, kernel_size=kernel_size, padding=padding, dilation=dilation)
    return _animate("output_size", plot_output_size, kwargs, "stride", [1, 2, 3, 4], dpi, interval=1500)


# ----------------------------------------------------------------------------------------------------------------
# 4. Channels and groups
# ----------------------------------------------------------------------------------------------------------------


def _connections(in_channels, out_channels, groups):
    """conn[c, f]: does output channel f depend on input channel c? Asked of conv2d_forward itself."""
    x = np.eye(in_channels).reshape(in_channels, in_channels, 1, 1)  # sample c = one-hot channel c
    w = np.ones((out_channels, in_channels // groups, 1, 1))
    return conv2d_forward(x, w, groups=groups)[:, :, 0, 0] != 0  # (C, F)


def plot_groups(in_channels=4, out_channels=4, *, groups=2, kernel_size=3, ax=None):
    """The weight tensor as F filters of C/groups slices, and which input channels each output channel sees.

    Parameters
    ----------
    in_channels, out_channels : int (at most 16)
    groups : int dividing both; ``groups == in_channels`` is depthwise
    kernel_size : int, only for the parameter count

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The lines are found by running :func:`convbook.conv2d_forward` on one-hot inputs, not drawn from the rule.
    """
    c, f, g = int(in_channels), int(out_channels), int(groups)
    if not (1 <= c <= 16 and 1 <= f <= 16):
        raise ValueError(f"in_channels and out_channels must be in 1..16 for a readable picture, got {c}, {f}")
    if g < 1 or c % g or f % g:
        raise ValueError(f"groups={g} must divide in_channels={c} and out_channels={f}")
    conn = _connections(c, f, g)
    cg = c // g
    rows = max(c, f)
    step = 1.3
    top = 1.4
    xi, xw = 0.3, 4.6
    sp = 1.5  # slice spacing; the layout does not depend on groups, so an animation over groups stays still
    xo = xw + c * sp + 1.6
    height = top + rows * step + 1.4
    d = _Diagram(ax, xo + 2.4, height, cell=0.42)
    kind = "depthwise" if g == c and g > 1 else ("dense" if g == 1 else f"{g} groups")
    d.title(f"groups={g} ({kind}): weight ({f}, {cg}, k, k)")

    def yc(k, n):
        return top + (rows - n) * step / 2 + k * step

    for k in range(c):
        d.grid(None, xi, yc(k, c), tint("input"), shape=(1, 2), text=[["x", f"{k}"]])
    for k in range(f):
        y0 = yc(k, f)
        for q in range(cg):
            d.grid(None, xw + q * sp, y0, tint("kernel"), shape=(1, 1), text=[[f"w{k},{q}"]])
        d.grid(None, xo, y0, tint("output"), shape=(1, 2), text=[["y", f"{k}"]])
        d.ax.plot([xw + (cg - 1) * sp + 1, xo], [y0 + 0.5, y0 + 0.5], color=PALETTE["output"], lw=1.2, zorder=0.5)
        for q in range(cg - 1):
            d.text(xw + q * sp + 1.25, y0 + 0.5, "+", ha="center", scale=0.8)
    for ci in range(c):
        for fo in range(f):
            if conn[ci, fo]:
                q = ci - (fo // (f // g)) * cg  # which slice of filter fo meets channel ci
                d.ax.plot([xi + 2, xw + q * sp], [yc(ci, c) + 0.5, yc(fo, f) + 0.5],
                          color=PALETTE["highlight"], lw=1.0, alpha=0.8, zorder=0.5, gid=f"conn{ci},{fo}")
    for gi in range(g if g > 1 else 0):
        y0 = min(yc(gi * cg, c), yc(gi * (f // g), f)) - 0.15
        y1 = max(yc((gi + 1) * cg - 1, c), yc((gi + 1) * (f // g) - 1, f)) + 1.15
        d.outline(xi - 0.2, y0, xo + 2.4 - xi, y1 - y0, color=PALETTE["padding"], lw=1.0, ls="--", z=1)
    d.text(xi, top - 0.45, "input channels", scale=0.8)
    d.text(xw, top - 0.45, "filters: C/groups slices each", scale=0.8)
    d.text(xo, top - 0.45, "outputs", scale=0.8)
    d.lines(0, height - 1.05, [f"each output channel sees {cg} of {c} input channels; weights F·(C/groups)·k² = "
                               f"{f}·{cg}·{kernel_size**2} = {f * cg * kernel_size**2} "
                               f"(dense: {f * c * kernel_size**2})"],
            scale=0.85)
    return d.done()


def animate_groups(in_channels=4, out_channels=4, *, dpi=72):
    """:func:`plot_groups` for every valid ``groups``, from 1 (dense) to depthwise."""
    gs = [g for g in range(1, min(in_channels, out_channels) + 1) if in_channels % g == 0 and out_channels % g == 0]
    kwargs = dict(in_channels=in_channels, out_channels=out_channels)
    return _animate("groups", plot_groups, kwargs, "groups", gs, dpi, interval=1500)


# ----------------------------------------------------------------------------------------------------------------
# 5. Gradient of the kernel
# ----------------------------------------------------------------------------------------------------------------


def _grad_weight_data(x, dout, kernel_size, stride, padding, dilation):
    x = _image(x, "x", _example((4, 4), 0, 0, 5))
    kh, kw = _pair(kernel_size, "kernel_size")
    s = conv_output_shape(x.shape, (kh, kw), stride=stride, padding=padding, dilation=dilation)
    dout = _image(dout, "dout", _example((s.oh, s.ow), 2, -1, 3))
    if dout.shape != (s.oh, s.ow):
        raise ValueError(f"dout must have the output's shape ({s.oh}, {s.ow}) for x {x.shape} and kernel "
                         f"({kh}, {kw}), got {dout.shape}")
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    dw = conv2d_grad_weight(dout[None, None], x[None, None], (1, 1, kh, kw), stride=stride, padding=padding,
                            dilation=dilation)[0, 0]
    windows = window_view(x[None, None], (kh, kw), stride=stride, padding=padding, dilation=dilation)[0, 0]
    return x, dout, p, dw, windows


def plot_grad_weight(x=None, dout=None, *, kernel_size=2, stride=1, padding=0, dilation=1, entry=(0, 0), ax=None):
    """∇K[p, q] = Σ ∇Y[i, j]·X[i·S + p·D, j·S + q·D]: the X cells each ∇Y entry weights, for one kernel entry.

    Parameters
    ----------
    x : (H, W) array, default 4x4;  dout : ∇Y, (OH, OW) array, default an example of the right shape
    kernel_size, stride, padding, dilation : the forward convolution's
    entry : (p, q), the kernel entry whose gradient is drawn

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    ∇K is :func:`convbook.conv2d_grad_weight`'s; the sampled X is ``window_view(x)[..., p, q]``. Chapter "∇K".
    """
    x, dout, p, dw, windows = _grad_weight_data(x, dout, kernel_size, stride, padding, dilation)
    kh, kw = dw.shape
    a, b = _cell(entry, dw.shape, "entry")
    xs = windows[:, :, a, b]  # (OH, OW): X under kernel entry (a, b) in every window
    oh, ow = dout.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw_) = p.stride, p.dilation
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    top = 1.3
    x1 = wp + 1.6
    x2 = x1 + ow + 1.4
    x3 = x2 + ow + 2.0
    terms = [f"{_paren(dout[i, j])}·{_paren(xs[i, j])}" for i in range(oh) for j in range(ow)]
    lines = _wrap_terms(terms, max(ow, 3), f"∇K[{a},{b}] = Σ ∇Y[i,j]·X[i·S+{a}·D, j·S+{b}·D] =",
                        f"  = {_fmt(dw[a, b])}")
    body = max(hp, oh, kh)
    d = _Diagram(ax, x3 + kw + 0.3, top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"kernel entry ({a},{b}) multiplies X at (i·S+{a * dh}, j·S+{b * dw_}) for every output (i,j)",
           weight="bold", scale=0.9)
    faces = _faces((hp, wp), tint("padding", 0.35))
    vals = np.zeros((hp, wp))
    vals[pt : pt + x.shape[0], pl : pl + x.shape[1]] = x
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            faces[pt + r][pl + c] = tint("input")
    d.grid(vals, 0, top, faces, name="X")
    for i in range(oh):
        for j in range(ow):
            d.outline(j * sw + b * dw_, top + i * sh + a * dh, 1, 1, lw=2.0)
    d.text(0, top - 0.35, "X (cells used by this entry)", scale=0.85)
    d.grid(xs, x1, top, tint("input", 0.6), name="Xs")
    d.text(x1, top - 0.35, f"X[·+{a}, ·+{b}]", scale=0.85)
    d.text(x2 - 0.7, top + oh / 2, "⊙", ha="center", scale=1.3)
    d.grid(dout, x2, top, tint("gradient"), name="dY")
    d.text(x2, top - 0.35, "∇Y", scale=0.85)
    d.text(x2 + ow + 0.25, top + oh / 2, "Σ→", scale=1.0)
    faces, text = _filled_so_far(dw, (a, b), "gradient")
    d.grid(None, x3, top, faces, shape=(kh, kw), text=text, name="dK")
    d.outline(x3 + b, top + a, 1, 1)
    d.text(x3, top - 0.35, "∇K", scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def animate_grad_weight(x=None, dout=None, *, kernel_size=2, stride=1, padding=0, dilation=1, dpi=72):
    """:func:`plot_grad_weight` for every kernel entry in turn."""
    kh, kw = _pair(kernel_size, "kernel_size")
    entries = [divmod(k, kw) for k in _sample(kh * kw)]
    kwargs = dict(x=x, dout=dout, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    return _animate("grad_weight", plot_grad_weight, kwargs, "entry", entries, dpi, interval=1000)


# ----------------------------------------------------------------------------------------------------------------
# 6. Gradient of the input: dependency map
# ----------------------------------------------------------------------------------------------------------------


def _dependency_data(input_size, kernel_size, stride, padding, dilation):
    h, wd = _pair(input_size, "input_size")
    kh, kw = _pair(kernel_size, "kernel_size")
    s = conv_output_shape((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation)
    # With dY = 1 and K = 1, dX counts the (output, weight) pairs that reach each pixel.
    counts = conv2d_grad_input(np.ones((1, 1, s.oh, s.ow)), np.ones((1, 1, kh, kw)), (1, 1, h, wd),
                               stride=stride, padding=padding, dilation=dilation)[0, 0]
    labels = np.arange(1.0, h * wd + 1).reshape(1, 1, h, wd)  # padding reads as 0, never a label
    views = window_view(labels, (kh, kw), stride=stride, padding=padding, dilation=dilation)[0, 0]
    return (h, wd), (kh, kw), s, counts, labels[0, 0], views


def plot_grad_input_map(input_size=6, kernel_size=3, *, stride=2, padding=0, dilation=1, pixel=(2, 2), ax=None):
    """Which outputs and kernel weights one input pixel touches, and how many reach every pixel.

    Cells of X show how many (output, weight) pairs reach them (∇X for ∇Y = 1, K = 1); hatched pixels get zero
    gradient: the border past the last window, and the holes a stride larger than the kernel leaves.

    Parameters
    ----------
    input_size, kernel_size : int or (h, w)
    stride, padding, dilation : the forward convolution's
    pixel : (r, c) in X (unpadded coordinates)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Counts from :func:`convbook.conv2d_grad_input`; the (output, weight) pairs are found by looking the pixel up
    in :func:`convbook.window_view` of a labelled image. Chapter "∇X".
    """
    (h, wd), (kh, kw), s, counts, labels, views = _dependency_data(input_size, kernel_size, stride, padding,
                                                                   dilation)
    r, c = _cell(pixel, (h, wd), "pixel")
    pairs = np.argwhere(views == labels[r, c])  # rows (i, j, p, q)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    pt, pb, pl, pr = p.padding
    hp, wp = h + pt + pb, wd + pl + pr
    top = 1.3
    x1 = wp + 1.6
    x2 = x1 + s.ow + 1.6
    terms = [f"∇Y[{i},{j}]·K[{a},{b}]" for i, j, a, b in pairs]
    if terms:
        lines = _wrap_terms(terms, 3, f"∇X[{r},{c}] = Σ over the {len(terms)} windows that read it:", "")[:-1]
    else:
        lines = [f"no window reads X[{r},{c}]: ∇X[{r},{c}] = 0 whatever ∇Y is"]
    lines.append("numbers in X: how many (output, weight) pairs reach each pixel; hatched: zero gradient")
    body = max(hp, s.oh, kh)
    d = _Diagram(ax, max(x2 + kw + 0.3, 20), top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"X[{r},{c}] is read by {len(pairs)} (output, weight) pair{'s' if len(pairs) != 1 else ''}",
           weight="bold")
    faces = _faces((hp, wp), tint("padding", 0.35))
    vals = np.full((hp, wp), np.nan)
    hatched = []
    for a in range(h):
        for b in range(wd):
            faces[pt + a][pl + b] = tint("gradient", 0.2 + 0.6 * counts[a, b] / max(counts.max(), 1))
            vals[pt + a, pl + b] = counts[a, b]
            if counts[a, b] == 0:
                faces[pt + a][pl + b] = tint("unused", 0.3)
                hatched.append((pt + a, pl + b))
    d.grid(vals, 0, top, faces, name="counts")
    d.hatch(hatched, 0, top, PALETTE["unused"])
    d.outline(pl + c, top + pt + r, 1, 1, lw=3.0)
    d.text(0, top - 0.35, "X (∇X reach counts)", scale=0.85)
    faces = _faces((s.oh, s.ow), (1.0, 1.0, 1.0))
    text = [["" for _ in range(s.ow)] for _ in range(s.oh)]
    used_k = set()
    for i, j, a, b in pairs:
        faces[i][j] = tint("gradient")
        text[i][j] = f"K{a}{b}"
        used_k.add((a, b))
    d.grid(None, x1, top, faces, shape=(s.oh, s.ow), text=text, name="dY")
    d.text(x1, top - 0.35, "∇Y (via weight)", scale=0.85)
    faces = [[tint("kernel", 0.7 if (a, b) in used_k else 0.15) for b in range(kw)] for a in range(kh)]
    d.grid(None, x2, top, faces, shape=(kh, kw), text=[[f"{a}{b}" for b in range(kw)] for a in range(kh)], name="K")
    for a, b in used_k:
        d.outline(x2 + b, top + a, 1, 1, lw=1.8)
    d.text(x2, top - 0.35, "K", scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def animate_grad_input_map(input_size=5, kernel_size=3, *, stride=2, padding=0, dilation=1, dpi=72):
    """:func:`plot_grad_input_map` for every pixel of X in turn (sub-sampled past 36)."""
    h, wd = _pair(input_size, "input_size")
    pixels = [divmod(k, wd) for k in _sample(h * wd)]
    kwargs = dict(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    return _animate("grad_input_map", plot_grad_input_map, kwargs, "pixel", pixels, dpi, interval=800)


# ----------------------------------------------------------------------------------------------------------------
# 7. Gradient of the input as a full convolution, and the col2im route
# ----------------------------------------------------------------------------------------------------------------


def _backward_data(dout, w, stride, padding, dilation, input_size, default_dout):
    dout = _image(dout, "dout", default_dout)
    w = _image(w, "w", _W3 if default_dout.shape == (2, 2) else _W2)
    kh, kw = w.shape
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    oh, ow = dout.shape
    if input_size is None:
        input_size = ((oh - 1) * sh + dh * (kh - 1) + 1 - pt - pb, (ow - 1) * sw + dw * (kw - 1) + 1 - pl - pr)
    h, wd = _pair(input_size, "input_size")
    if min(h, wd) < 1:
        raise ValueError(f"padding {padding} is too large for dout {dout.shape}: the input would be {h}x{wd}")
    s = conv_output_shape((h, wd), (kh, kw), stride=stride, padding=padding, dilation=dilation)
    if (s.oh, s.ow) != dout.shape:
        raise ValueError(f"dout has shape {dout.shape} but an input of {(h, wd)} gives outputs ({s.oh}, {s.ow})")
    x_shape = (1, 1, h, wd)
    dx = conv2d_grad_input(dout[None, None], w[None, None], x_shape, stride=stride, padding=padding,
                           dilation=dilation, route="rot180")[0, 0]
    return dout, w, p, s, x_shape, dx


def _full_conv_data(dout, w, stride, padding, dilation, input_size):
    dout, w, p, s, x_shape, dx = _backward_data(dout, w, stride, padding, dilation, input_size,
                                                _example((2, 2), 3, 1, 4))
    kh, kw = w.shape
    (dh, dw) = p.dilation
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    dd = dilate(dout[None, None], p.stride)  # (1, 1, S(OH-1)+1, S(OW-1)+1)
    big = np.pad(dd, ((0, 0), (0, 0), (eh, eh + s.unused_h), (ew, ew + s.unused_w)))
    wr = rot180(w[None, None])
    full = conv2d_forward(big, wr, dilation=p.dilation)[0, 0]  # dX of the padded input, (Hp, Wp)
    return dout, w, p, s, x_shape, dx, big[0, 0], wr[0, 0], full


def plot_full_conv(dout=None, w=None, *, stride=2, padding=0, dilation=1, input_size=None, position=(0, 0),
                   ax=None):
    """∇X = conv(pad(dilate(∇Y)), rot180(K)): zeros inserted by the stride, D(K−1) of padding, the turned kernel.

    Parameters
    ----------
    dout : ∇Y, (OH, OW) array, default 2x2;  w : (KH, KW) kernel, default 3x3
    stride, padding, dilation : the forward convolution's
    input_size : (H, W), default the smallest input giving ``dout``'s shape
    position : (i, j) in the padded input's gradient (the window drawn)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Built from :func:`convbook.dilate`, :func:`convbook.rot180` and :func:`convbook.conv2d_forward`; the cropped
    result is checked against :func:`convbook.conv2d_grad_input` and the check is written on the picture.
    """
    dout, w, p, s, x_shape, dx, big, wr, full = _full_conv_data(dout, w, stride, padding, dilation, input_size)
    i, j = _cell(position, full.shape, "position")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    hb, wb = big.shape
    hp, wp = full.shape
    h, wd = x_shape[2:]
    cropped = full[pt : pt + h, pl : pl + wd]
    ok = np.allclose(cropped, dx)
    faces = _faces((hb, wb), tint("padding", 0.35))
    for a in range(hb):
        for b in range(wb):
            inside = eh <= a <= eh + sh * (s.oh - 1) and ew <= b <= ew + sw * (s.ow - 1)
            if inside:
                on = (a - eh) % sh == 0 and (b - ew) % sw == 0
                faces[a][b] = tint("gradient") if on else tint("zeros", 0.6)
    top = 1.3
    xk = wb + 1.5
    xf = xk + kw + 1.6
    win = big[i : i + eh + 1 : dh, j : j + ew + 1 : dw]
    terms = [f"{_paren(win[a, b])}·{_paren(wr[a, b])}" for a in range(kh) for b in range(kw) if win[a, b] != 0]
    inside = pt <= i < pt + h and pl <= j < pl + wd
    head = f"∇X[{i - pt},{j - pl}] = " if inside else f"(padding, cropped) [{i},{j}] = "
    if terms:
        lines = _wrap_terms(terms, 4, head + "Σ window ⊙ rot180(K), non-zero terms:", f"  = {_fmt(full[i, j])}")
    else:
        lines = [head + "only zeros under the window = 0"]
    lines.append(f"cropped result == cb.conv2d_grad_input(...): {'✓' if ok else '✗'}")
    body = max(hb, 2 * kh + 1.5, hp)
    d = _Diagram(ax, xf + wp + 0.3, top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"∇Y dilated by stride {p.stride} (yellow zeros), padded by D(K−1) = ({eh},{ew}), "
           f"⋆ rot180(K)")
    d.grid(big, 0, top, faces, name="big")
    for a in range(kh):
        for b in range(kw):
            d.outline(j + b * dw, top + i + a * dh, 1, 1)
    d.text(0, top - 0.35, "pad(dilate(∇Y))", scale=0.85)
    d.grid(wr, xk, top, tint("kernel"), name="rotK")
    d.text(xk, top - 0.35, "rot180(K)", scale=0.85)
    d.grid(w, xk, top + kh + 1.3, tint("kernel", 0.2), name="K")
    d.text(xk, top + kh + 0.95, "K", scale=0.85)
    faces = _faces((hp, wp), tint("padding", 0.35))
    text = [["" for _ in range(wp)] for _ in range(hp)]
    for a in range(hp):
        for b in range(wp):
            if a * wp + b <= i * wp + j:
                if pt <= a < pt + h and pl <= b < pl + wd:
                    faces[a][b] = tint("gradient")
                text[a][b] = _fmt(full[a, b])
            elif pt <= a < pt + h and pl <= b < pl + wd:
                faces[a][b] = (1.0, 1.0, 1.0)
    d.grid(None, xf, top, faces, shape=(hp, wp), text=text, name="dXp")
    d.outline(xf + pl, top + pt, wd, h, color=PALETTE["gradient"], lw=1.5, ls="--")
    d.outline(xf + j, top + i, 1, 1)
    d.text(xf, top - 0.35, "∇X" + (" (grey: padding, cropped)" if any(p.padding) else ""), scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def animate_full_conv(dout=None, w=None, *, stride=2, padding=0, dilation=1, input_size=None, dpi=72):
    """:func:`plot_full_conv` with the turned kernel sliding over every position."""
    full = _full_conv_data(dout, w, stride, padding, dilation, input_size)[-1]
    hp, wp = full.shape
    positions = [divmod(k, wp) for k in _sample(hp * wp)]
    kwargs = dict(dout=dout, w=w, stride=stride, padding=padding, dilation=dilation, input_size=input_size)
    return _animate("full_conv", plot_full_conv, kwargs, "position", positions, dpi, interval=700)


def _col2im_data(dout, w, stride, padding, dilation, input_size):
    dout, w, p, s, x_shape, dx = _backward_data(dout, w, stride, padding, dilation, input_size,
                                                _example((3, 3), 4, 1, 4))
    dcols = dout.reshape(-1, 1) @ w.reshape(1, -1)  # (OH*OW, KH*KW): ∇X' = ∇Y'·K'ᵀ
    return dout, w, p, s, x_shape, dx, dcols


def plot_col2im(dout=None, w=None, *, stride=1, padding=0, dilation=1, input_size=None, upto=None, ax=None):
    """The col2im route to ∇X: row r of ∇X' = ∇Y'·K'ᵀ is added (+=) back into window r; overlaps sum.

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
    The partial sums are :func:`convbook.col2im` of ∇X' with the rows past ``upto`` zeroed; with every row it
    equals :func:`convbook.conv2d_grad_input`. Chapter "∇X".
    """
    dout, w, p, s, x_shape, dx, dcols = _col2im_data(dout, w, stride, padding, dilation, input_size)
    nrows, kk = dcols.shape
    upto = nrows if upto is None else int(upto)
    if not 0 <= upto <= nrows:
        raise ValueError(f"upto={upto} must be in 0..{nrows} (the rows of ∇X')")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    h, wd = x_shape[2:]
    hp, wp = h + pt + pb, wd + pl + pr
    part = dcols.copy()
    part[upto:] = 0
    # col2im over the padded grid (padding 0) so the sums landing in the padding are visible before they are dropped
    acc = col2im(part, (1, 1, hp, wp), (kh, kw), stride=p.stride, dilation=p.dilation)[0, 0]
    counts = col2im(np.ones_like(dcols), (1, 1, hp, wp), (kh, kw), stride=p.stride, dilation=p.dilation)[0, 0]
    top = 1.3
    xc = 0
    xg = kk + 2.0
    xn = xg + wp + 1.4
    body = max(nrows, hp + 1.3 + hp)
    row = upto - 1
    if row >= 0:
        i, j = divmod(row, s.ow)
        lines = [f"row {row} = ∇Y[{i},{j}]·K'ᵀ is added (+=) into window ({i},{j}) of ∇X",
                 "a pixel read by n windows gets n contributions: '=' instead of '+=' keeps only the last"]
    else:
        lines = ["nothing added yet: ∇X starts at zero", ""]
    d = _Diagram(ax, xn + wp + 0.3, top + body + 0.5 + _lines_needed(len(lines)))
    d.title(f"col2im: ∇X' = ∇Y'·K'ᵀ ({nrows}×{kk}), one row per window, added back"
           f" ({upto}/{nrows} rows)")
    faces = [[tint("gradient", 0.6 if r < upto else 0.12) for _ in range(kk)] for r in range(nrows)]
    d.grid(dcols, xc, top, faces, name="dcols")
    if row >= 0:
        d.outline(xc, top + row, kk, 1)
    d.text(xc, top - 0.35, "∇X' = ∇Y'·K'ᵀ", scale=0.85)
    d.text(xg - 1.0, top + hp / 2, "col2im\n→", scale=0.7)
    faces = _faces((hp, wp), tint("padding", 0.35))
    for a in range(h):
        for b in range(wd):
            faces[pt + a][pl + b] = tint("gradient") if upto == nrows else tint("gradient", 0.35)
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
        lines.append(f"all rows added: ∇X == cb.conv2d_grad_input(...): {'✓' if ok else '✗'}")
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def animate_col2im(dout=None, w=None, *, stride=1, padding=0, dilation=1, input_size=None, dpi=72):
    """:func:`plot_col2im` adding the rows of ∇X' one at a time."""
    dcols = _col2im_data(dout, w, stride, padding, dilation, input_size)[-1]
    steps = [k + 1 for k in _sample(dcols.shape[0])]
    kwargs = dict(dout=dout, w=w, stride=stride, padding=padding, dilation=dilation, input_size=input_size)
    return _animate("col2im", plot_col2im, kwargs, "upto", [0] + steps[: MAX_FRAMES - 1], dpi, interval=800)


# ----------------------------------------------------------------------------------------------------------------
# 8. rot180, the seed's two ways
# ----------------------------------------------------------------------------------------------------------------


def plot_rot180(w=None, *, ax=None):
    """The seed's two ways of rotating a ``(k, k, C_in, C_out)`` kernel, shown slice by slice, and that they agree
    with each other and with :func:`convbook.rot180` on the NCHW weight.

    Parameters
    ----------
    w : (k, k, C_in, C_out) array, default ``arange`` with k=3, C_in=1, C_out=2

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The rotations are :func:`convbook.rot180_tutorial` (``way=1``: flipud(fliplr) then swapaxes; ``way=2``: reshape
    to (k·k, C_in, C_out), reverse, swapaxes) and :func:`convbook.rot180`.
    """
    w = np.arange(1.0, 19.0).reshape(3, 3, 1, 2) if w is None else np.asarray(w, dtype=float)
    if w.ndim != 4 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w must have shape (k, k, C_in, C_out), got {w.shape}")
    k, _, cin, cout = w.shape
    r1, r2 = rot180_tutorial(w, 1), rot180_tutorial(w, 2)  # (k, k, C_out, C_in)
    rc = rot180(w.transpose(3, 2, 0, 1))  # NCHW (C_out, C_in, k, k), turned
    same12 = np.array_equal(r1, r2)
    same_cb = np.array_equal(r1.transpose(2, 3, 0, 1), rc)
    gap = 0.6
    pw, ph = cout * (k + gap), cin * (k + gap)
    top = 1.9
    xs = [0, pw + 1.2, 2 * (pw + 1.2)]
    d = _Diagram(ax, xs[2] + pw + 0.2, top + ph + 2.2, cell=0.4)
    d.title(f"K: (k, k, C_in, C_out) = {w.shape}; slice (ci, co) drawn at row ci, column co",
           weight="bold", scale=0.85)
    titles = ["K[:, :, ci, co]", "way 1: flipud(fliplr(K)).swapaxes(2, 3)", "way 2: reshape, [::-1], swapaxes"]
    for t, (x0, title) in enumerate(zip(xs, titles)):
        d.text(x0, top - 0.6, title, scale=0.7)
        for ci in range(cin):
            for co in range(cout):
                sl = w[:, :, ci, co] if t == 0 else (r1 if t == 1 else r2)[:, :, co, ci]
                d.grid(sl, x0 + co * (k + gap), top + ci * (k + gap), tint("kernel", 0.6 if t == 0 else 0.35),
                       name=f"R{t}_{ci}{co}")
    d.lines(0, top + ph + 0.2, [f"way 1 == way 2: {same12};  == cb.rot180 of the NCHW weight (C_out, C_in, k, k): "
                                f"{same_cb}", f"both give (k, k, C_out, C_in) = {r1.shape}: each slice turned, "
                                "C_in and C_out swapped"], scale=0.85)
    return d.done()


# ----------------------------------------------------------------------------------------------------------------
# 9. Winograd tile
# ----------------------------------------------------------------------------------------------------------------


def _winograd_data(d, g, m):
    m = int(m)
    g = _image(g, "g", _W3)
    if g.shape != (3, 3):
        raise ValueError(f"g must be a 3x3 kernel for F(m, 3), got {g.shape}")
    d = _image(d, "d", _example((m + 2, m + 2), 5, 0, 4))
    if d.shape != (m + 2, m + 2):
        raise ValueError(f"d must be an input tile of shape ({m + 2}, {m + 2}) for m={m}, got {d.shape}")
    AT, G, BT = _winograd.transform_matrices(m, 3)
    V = BT @ d @ BT.T  # (m+2, m+2) input tile transformed
    U = G @ g @ G.T  # (m+2, m+2) filter transformed
    M = U * V  # the only multiplications that depend on the data
    Y = AT @ M @ AT.T  # (m, m)
    direct = conv2d_forward(d[None, None], g[None, None])[0, 0]
    wino = _winograd.winograd_conv2d(d[None, None], g[None, None], m)[0, 0]
    return d, g, V, U, M, Y, direct, wino


def plot_winograd(d=None, g=None, *, m=2, ax=None):
    """One Winograd F(m×m, 3×3) tile: Bᵀ d B, G g Gᵀ, their element-wise product, Aᵀ M A, against direct conv.

    Parameters
    ----------
    d : (m+2, m+2) input tile, default an example;  g : (3, 3) kernel, default the book's example
    m : output tile size (2 is the smallest; 4 is what the fast path uses)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Matrices from :func:`convbook.winograd.transform_matrices`; the output tile is checked against
    :func:`convbook.conv2d_forward` and :func:`convbook.winograd.winograd_conv2d`. Chapter "Winograd".
    """
    d, g, V, U, M, Y, direct, wino = _winograd_data(d, g, m)
    a = m + 2
    n_direct, n_wino = _winograd.winograd_multiplications(m)
    top = 1.3
    x1 = a + 2.4
    x2 = x1 + a + 1.6
    x3 = x2 + a + 2.4
    x4 = x3 + m + 1.6
    height = top + 2 * a + 1.6 + 1.6
    dg = _Diagram(ax, x4 + m + 0.3, height, cell=0.38)
    ok = np.allclose(Y, direct) and np.allclose(wino, direct)
    dg.title(f"F({m}×{m}, 3×3): {n_wino} multiplications per tile instead of {n_direct} "
            f"({n_direct / n_wino:.2f}× fewer)")
    dg.grid(d, 0, top, tint("input"), name="d")
    dg.text(0, top - 0.35, "d (input tile)", scale=0.8)
    dg.text(a + 0.2, top + a / 2, "Bᵀ d B\n→", scale=0.7)
    dg.grid(V, x1, top, tint("input", 0.25), name="V")
    dg.text(x1, top - 0.35, "V", scale=0.8)
    y2 = top + a + 1.6
    dg.grid(g, 0, y2 + (a - 3) / 2, tint("kernel"), name="g")
    dg.text(0, y2 + (a - 3) / 2 - 0.35, "g (kernel)", scale=0.8)
    dg.text(a + 0.2, y2 + a / 2, "G g Gᵀ\n→", scale=0.7)
    dg.grid(U, x1, y2, tint("kernel", 0.25), name="U")
    dg.text(x1, y2 - 0.35, "U", scale=0.8)
    ym = top + (a + 1.6) / 2
    dg.text(x1 + a + 0.3, ym + a / 2, "⊙", scale=1.2)
    dg.grid(M, x2, ym, tint("output", 0.25), name="M")
    dg.text(x2, ym - 0.35, f"M = U ⊙ V ({a * a} mults)", scale=0.8)
    dg.text(x2 + a + 0.2, ym + a / 2, "Aᵀ M A\n→", scale=0.7)
    dg.grid(Y, x3, ym + (a - m) / 2, tint("output"), name="Y")
    dg.text(x3, ym + (a - m) / 2 - 0.35, "Y", scale=0.8)
    dg.grid(direct, x4, ym + (a - m) / 2, tint("output", 0.6), name="direct")
    dg.text(x4, ym + (a - m) / 2 - 0.35, "direct", scale=0.8)
    dg.text(x3, ym + (a + m) / 2 + 0.6, f"equal: {'✓' if ok else '✗'}", scale=0.8)
    return dg.done()


# ----------------------------------------------------------------------------------------------------------------
# Animations: deterministic to_jshtml players
# ----------------------------------------------------------------------------------------------------------------


class JSAnimation:
    """An animation player as self-contained HTML (frames embedded as PNG); displays itself in Jupyter.

    Examples
    --------
    >>> a = animate_groups(2, 2, dpi=30)
    >>> a.frames, a.nbytes < 600 * 1024, a.html == animate_groups(2, 2, dpi=30).html
    (2, True, True)

    Attributes
    ----------
    html : str
    frames : int
    name : str
    """

    def __init__(self, html, frames, name):
        self.html, self.frames, self.name = html, frames, name

    @property
    def nbytes(self):
        """Size of the HTML in bytes."""
        return len(self.html.encode("utf-8"))

    def _repr_html_(self):
        return self.html

    def __str__(self):
        return self.html

    def __repr__(self):
        return f"<JSAnimation {self.name}: {self.frames} frames, {self.nbytes / 1024:.0f} KB>"


def _key(name, kwargs, param, values, dpi):
    """A 32-hex id from the function name and its arguments (arrays by content)."""
    h = hashlib.sha256(name.encode())
    for k in sorted(kwargs):
        v = kwargs[k]
        if isinstance(v, np.ndarray):
            v = (v.shape, str(v.dtype), v.tobytes().hex())
        h.update(f"|{k}={v!r}".encode())
    h.update(f"|{param}={values!r}|dpi={dpi}".encode())
    return h.hexdigest()[:32]


_FRAME = re.compile(r'(frames\[\d+\] = "data:image/png;base64,)((?:[A-Za-z0-9+/=]|\\\n)*)"')


def _quantize_frame(match):
    """Re-encode one embedded PNG frame with a 64-colour palette: about 4x smaller, no visible loss on flat
    diagrams. Deterministic (fast octree, no dithering)."""
    from PIL import Image  # a matplotlib dependency

    raw = base64.b64decode(match.group(2).replace("\\\n", ""))
    with Image.open(io.BytesIO(raw)) as im:
        q = im.convert("RGB").quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    q.save(out, format="png", optimize=True)
    return match.group(1) + base64.b64encode(out.getvalue()).decode("ascii") + '"'


def _png(fig, dpi=72):
    """The figure as palette PNG bytes (what the explorers show)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    b64 = base64.b64encode(buf.getvalue()).decode("ascii")
    m = _FRAME.match(f'frames[0] = "data:image/png;base64,{b64}"')
    return base64.b64decode(_quantize_frame(m)[len(m.group(1)) : -1])


def _animate(name, plot, kwargs, param, values, dpi, interval=700):
    """FuncAnimation over ``plot(**kwargs, param=value)``, rendered with to_jshtml, ids fixed, figure closed."""
    values = list(values)[:MAX_FRAMES]
    fig = plot(**kwargs, **{param: values[0]})  # sets the figure size for every frame (closed already)
    fig.set_dpi(dpi)
    ax = fig.axes[0]

    def update(k):
        ax.clear()
        plot(**kwargs, **{param: values[k]}, ax=ax)
        return ()

    anim = FuncAnimation(fig, update, frames=len(values), interval=interval, repeat=True)
    html = anim.to_jshtml(default_mode="loop")
    plt.close(fig)
    html = _FRAME.sub(_quantize_frame, html)
    # The player links FontAwesome 4 from a CDN: offline that is a console error on every page. The book's theme
    # (and JupyterLab) ship their own FontAwesome, which draws the buttons' icons.
    html = re.sub(r'<link rel="stylesheet"[^>]*font-awesome[^>]*>\s*', "", html)
    match = re.search(r'id="_anim_img([0-9a-f]{32})"', html)
    if match:
        html = html.replace(match.group(1), _key(name, kwargs, param, values, dpi))
    return JSAnimation(html, len(values), name)
