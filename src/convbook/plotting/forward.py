"""Figures of the forward pass: the colour language, the sliding window, the output
size, channels and groups.

Each figure comes as up to four functions: ``<figure>_data(...)`` computes its numbers
with convbook (once), ``draw_<figure>(data, ...)`` draws them, ``plot_<figure>(...)`` is
the two in one call, and ``animate_<figure>(...)`` (where it moves) draws one ``data``
frame after frame.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from .. import (
    ConvParams,
    OutputShape,
    col2im,
    conv2d_forward,
    conv_output_shape,
    conv_params,
    window_view,
)
from ..shapes import as_pair
from .canvas import (
    PALETTE,
    Diagram,
    as_cell,
    as_image,
    blank_faces,
    example,
    example_kernel,
    filled_so_far,
    fmt,
    legend_handles,
    lines_needed,
    padded_image,
    paren,
    tint,
)
from .player import animate, sample_frames

__all__ = [
    "plot_palette",
    "SlidingWindowData",
    "sliding_window_data",
    "draw_sliding_window",
    "plot_sliding_window",
    "animate_sliding_window",
    "OutputSizeData",
    "output_size_data",
    "draw_output_size",
    "plot_output_size",
    "animate_output_size",
    "GroupsData",
    "groups_data",
    "draw_groups",
    "plot_groups",
    "animate_groups",
]


def plot_palette(*keys, ax=None):
    """The colour language as a legend (all of :data:`PALETTE` by default, or the keys).

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


# --------------------------------------------------------------------------------------
# 1. The sliding window
# --------------------------------------------------------------------------------------


class SlidingWindowData(NamedTuple):
    """The numbers :func:`plot_sliding_window` draws."""

    x: np.ndarray  #: (H, W) input
    w: np.ndarray  #: (KH, KW) kernel
    params: ConvParams
    y: np.ndarray  #: (OH, OW), ``cb.conv2d_forward``
    windows: np.ndarray  #: (OH, OW, KH, KW), ``cb.window_view``


def sliding_window_data(x=None, w=None, *, stride=2, padding=1, dilation=1):
    """The output and every window of ``x`` (arguments as in
    :func:`plot_sliding_window`).

    Examples
    --------
    >>> sliding_window_data(stride=2, padding=1).y
    array([[ 3.,  6.,  0.],
           [ 2.,  8.,  4.],
           [-1.,  8.,  3.]])
    """
    x = as_image(x, "x", example((5, 5), 0, 0, 4))
    w = as_image(w, "w", example_kernel(3))
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    p = conv_params(w.shape, **hyper)
    y = conv2d_forward(x[None, None], w[None, None], **hyper)[0, 0]
    windows = window_view(x[None, None], w.shape, **hyper)[0, 0]
    return SlidingWindowData(x, w, p, y, windows)


def draw_sliding_window(data, *, position=(0, 0), ax=None):
    """:func:`plot_sliding_window` of a :func:`sliding_window_data`."""
    x, w, p, y, windows = data
    i, j = as_cell(position, y.shape, "position")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    oh, ow = y.shape
    xk = wp + 1.5
    xo = xk + kw + 1.5
    top = 1.3
    win = windows[i, j]
    terms_rows = [
        " + ".join(f"{paren(win[a, b])}·{paren(w[a, b])}" for b in range(kw))
        for a in range(kh)
    ]
    lines = (
        [f"Y[{i},{j}] = Σ X·K over the window ="]
        + ["   " + t for t in terms_rows]
        + [f"   = {fmt(y[i, j])}"]
    )
    body = max(hp, kh, oh)
    d = Diagram(ax, xo + ow + 0.3, top + body + 0.5 + lines_needed(len(lines)))
    d.title(
        f"stride {p.stride}, padding {p.padding[::2]}, dilation {p.dilation}  →  "
        f"Y is {oh}×{ow}",
        weight="bold",
    )
    vals, faces = padded_image(x, p.padding)
    d.grid(vals, 0, top, faces, name="X")
    r0, c0 = i * sh, j * sw
    d.outline(c0, top + r0, dw * (kw - 1) + 1, dh * (kh - 1) + 1, ls="--", lw=1.2)
    for a in range(kh):
        for b in range(kw):
            d.outline(c0 + b * dw, top + r0 + a * dh, 1, 1)
    d.text(0, top - 0.35, "X, zero-padded", scale=0.9)
    d.grid(w, xk, top, tint("kernel"), name="K")
    d.text(xk, top - 0.35, "K", scale=0.9)
    faces, text = filled_so_far(y, (i, j), "output")  # the output so far
    d.grid(None, xo, top, faces, shape=(oh, ow), text=text, name="Y")
    d.outline(xo + j, top + i, 1, 1)
    d.text(xo, top - 0.35, "Y", scale=0.9)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def plot_sliding_window(
    x=None, w=None, *, stride=2, padding=1, dilation=1, position=(0, 0), ax=None
):
    """The kernel over the padded input at output cell ``position``, with its
    multiply-add written out.

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
    The window values come from :func:`convbook.window_view`, the output from
    :func:`convbook.conv2d_forward` (:func:`sliding_window_data`); the sum written under
    the picture equals ``Y[i, j]``. Derived in the chapter "The forward pass".

    Examples
    --------
    Each number drawn carries a gid naming its cell; the output grid holds
    ``conv2d_forward``'s numbers:

    >>> fig = plot_sliding_window(position=(2, 2))
    >>> shown = {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}
    >>> [shown[f"Y[2,{j}]"] for j in range(3)]
    ['-1', '8', '3']
    >>> x, w = example((5, 5), 0, 0, 4), example_kernel(3)
    >>> conv2d_forward(x[None, None], w[None, None], stride=2, padding=1)[0, 0, 2]
    array([-1.,  8.,  3.])
    """
    data = sliding_window_data(x, w, stride=stride, padding=padding, dilation=dilation)
    return draw_sliding_window(data, position=position, ax=ax)


def animate_sliding_window(x=None, w=None, *, stride=2, padding=1, dilation=1, dpi=72):
    """:func:`plot_sliding_window` at every output position (row by row), as a player
    for static HTML."""
    data = sliding_window_data(x, w, stride=stride, padding=padding, dilation=dilation)
    oh, ow = data.y.shape
    positions = [divmod(k, ow) for k in sample_frames(oh * ow)]
    key = dict(x=x, w=w, stride=stride, padding=padding, dilation=dilation)
    draw = partial(draw_sliding_window, data)
    return animate("sliding_window", draw, "position", positions, key=key, dpi=dpi)


# --------------------------------------------------------------------------------------
# 2. Output size
# --------------------------------------------------------------------------------------


class OutputSizeData(NamedTuple):
    """The numbers :func:`plot_output_size` draws."""

    input_size: tuple  #: (H, W)
    kernel_size: tuple  #: (KH, KW)
    params: ConvParams
    out_shape: OutputShape  #: ``cb.conv_output_shape``
    counts: np.ndarray  #: (Hp, Wp): how many windows read each padded-input cell


def output_size_data(input_size=6, kernel_size=3, *, stride=2, padding=0, dilation=1):
    """Output size and the read counts of the padded input (arguments as in
    :func:`plot_output_size`).

    Examples
    --------
    >>> d = output_size_data(6, 3, stride=2)
    >>> d.out_shape
    OutputShape(oh=2, ow=2, unused_h=1, unused_w=1)
    >>> d.counts[-1].sum()  # the row past the last window
    np.float64(0.0)
    """
    h, wd = as_pair(input_size, "input_size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    s = conv_output_shape((h, wd), (kh, kw), **hyper)
    p = conv_params((kh, kw), **hyper)
    pt, pb, pl, pr = p.padding
    hp, wp = h + pt + pb, wd + pl + pr
    ones = np.ones((s.oh * s.ow, kh * kw))  # (OH*OW, KH*KW)
    counts = col2im(ones, (1, 1, hp, wp), (kh, kw), stride=stride, dilation=dilation)
    return OutputSizeData((h, wd), (kh, kw), p, s, counts[0, 0])


def draw_output_size(data, *, ax=None):
    """:func:`plot_output_size` of an :func:`output_size_data`."""
    (h, wd), (kh, kw), p, s, counts = data
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    hp, wp = h + pt + pb, wd + pl + pr
    faces = blank_faces((hp, wp), tint("input"))
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
    for ax_name, o, i_, k_, p0, p1, st, dl, u in (
        ("H", s.oh, h, kh, pt, pb, sh, dh, s.unused_h),
        ("W", s.ow, wd, kw, pl, pr, sw, dw, s.unused_w),
    ):
        num = i_ + p0 + p1 - dl * (k_ - 1) - 1
        pads = "2P" if p0 == p1 else "P₁ + P₂"
        pnum = f"2·{p0}" if p0 == p1 else f"{p0} + {p1}"
        lines.append(
            f"O{ax_name} = ⌊({ax_name} + {pads} − D(K−1) − 1)/S⌋ + 1 = "
            f"⌊({i_} + {pnum} − {dl}·{k_ - 1} − 1)/{st}⌋ + 1 = ⌊{num}/{st}⌋ + 1 = {o}"
        )
        what = "row" if ax_name == "H" else "column"
        lines.append(
            f"      remainder {num} mod {st} = {u}: {u} {what}{'s' if u != 1 else ''} "
            "past the last window, never read"
        )
    lines.append(
        "numbers: how many windows read each cell; grey: padding; hatched: never read"
    )
    lines.append("outlined: the first window (solid) and the last (dashed)")
    top = 1.3
    xo = wp + 1.8
    body = max(hp, s.oh)
    d = Diagram(
        ax, max(xo + s.ow + 0.3, 20), top + body + 0.5 + lines_needed(len(lines))
    )
    d.title(
        f"input {h}×{wd}, kernel {kh}×{kw}, stride {p.stride}, "
        f"padding {p.padding[::2]}, "
        f"dilation {p.dilation}  →  output {s.oh}×{s.ow}"
    )
    d.grid(counts, 0, top, faces, name="counts")
    d.hatch(hatched, 0, top, PALETTE["unused"])
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    d.outline(0, top, span_w, span_h, lw=2.0)
    last_x, last_y = (s.ow - 1) * sw, top + (s.oh - 1) * sh
    d.outline(last_x, last_y, span_w, span_h, lw=2.0, ls="--")
    d.text(0, top - 0.35, "padded X", scale=0.85)
    d.grid(None, xo, top, tint("output"), shape=(s.oh, s.ow), name="Y")
    d.text(xo, top - 0.35, "Y", scale=0.9)
    d.lines(0, top + body + 0.4, lines, width=d.width - 0.2)
    return d.done()


def plot_output_size(
    input_size=6, kernel_size=3, *, stride=2, padding=0, dilation=1, ax=None
):
    """The output-size formula with the numbers in, and the padded input's cells
    coloured by how often a window reads them: the rows/columns past the last window
    (the floor's remainder) are hatched in vermillion.

    Parameters
    ----------
    input_size, kernel_size : int or (h, w)
    stride, padding, dilation : as in :func:`convbook.conv_output_shape`

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Sizes from :func:`convbook.conv_output_shape`; the counts are
    :func:`convbook.col2im` of a column matrix of ones over the padded input
    (:func:`output_size_data`).
    """
    data = output_size_data(
        input_size, kernel_size, stride=stride, padding=padding, dilation=dilation
    )
    return draw_output_size(data, ax=ax)


def animate_output_size(input_size=7, kernel_size=3, *, padding=0, dilation=1, dpi=72):
    """:func:`plot_output_size` for stride 1, 2, 3, 4: watch the output shrink and the
    unused border appear."""
    key = dict(
        input_size=input_size,
        kernel_size=kernel_size,
        padding=padding,
        dilation=dilation,
    )
    draw = partial(plot_output_size, **key)  # each stride is a new picture: new data
    return animate(
        "output_size", draw, "stride", [1, 2, 3, 4], key=key, dpi=dpi, interval=1500
    )


# --------------------------------------------------------------------------------------
# 3. Channels and groups
# --------------------------------------------------------------------------------------


class GroupsData(NamedTuple):
    """The numbers :func:`plot_groups` draws."""

    in_channels: int
    out_channels: int
    groups: int
    kernel_size: int
    #: (C, F) bool: does output channel f depend on input channel c? Asked of
    #: ``cb.conv2d_forward`` itself, on one-hot inputs.
    connected: np.ndarray


def groups_data(in_channels=4, out_channels=4, *, groups=2, kernel_size=3):
    """Which input channels each output channel sees (arguments as in
    :func:`plot_groups`).

    Examples
    --------
    >>> groups_data(4, 2, groups=2).connected
    array([[ True, False],
           [ True, False],
           [False,  True],
           [False,  True]])
    """
    c, f, g = int(in_channels), int(out_channels), int(groups)
    if not (1 <= c <= 16 and 1 <= f <= 16):
        raise ValueError(
            "in_channels and out_channels must be in 1..16 for a readable picture, "
            f"got {c}, {f}"
        )
    if g < 1 or c % g or f % g:
        raise ValueError(f"groups={g} must divide in_channels={c} and out_channels={f}")
    x = np.eye(c).reshape(c, c, 1, 1)  # sample k = one-hot channel k
    w = np.ones((f, c // g, 1, 1))
    connected = conv2d_forward(x, w, groups=g)[:, :, 0, 0] != 0  # (C, F)
    return GroupsData(c, f, g, kernel_size, connected)


def draw_groups(data, *, ax=None):
    """:func:`plot_groups` of a :func:`groups_data`."""
    c, f, g, kernel_size, conn = data
    cg = c // g
    rows = max(c, f)
    step = 1.3
    top = 1.4
    xi, xw = 0.3, 4.6
    # slice spacing; the layout does not depend on groups, so an animation over groups
    # stays still
    sp = 1.5
    xo = xw + c * sp + 1.6
    height = top + rows * step + 1.4
    d = Diagram(ax, xo + 2.4, height, cell=0.42)
    kind = "depthwise" if g == c and g > 1 else ("dense" if g == 1 else f"{g} groups")
    d.title(f"groups={g} ({kind}): weight ({f}, {cg}, k, k)")

    def yc(k, n):
        return top + (rows - n) * step / 2 + k * step

    for k in range(c):
        d.grid(None, xi, yc(k, c), tint("input"), shape=(1, 2), text=[["x", f"{k}"]])
    for k in range(f):
        y0 = yc(k, f)
        for q in range(cg):
            d.grid(
                None,
                xw + q * sp,
                y0,
                tint("kernel"),
                shape=(1, 1),
                text=[[f"w{k},{q}"]],
            )
        d.grid(None, xo, y0, tint("output"), shape=(1, 2), text=[["y", f"{k}"]])
        d.ax.plot(
            [xw + (cg - 1) * sp + 1, xo],
            [y0 + 0.5, y0 + 0.5],
            color=PALETTE["output"],
            lw=1.2,
            zorder=0.5,
        )
        for q in range(cg - 1):
            d.text(xw + q * sp + 1.25, y0 + 0.5, "+", ha="center", scale=0.8)
    for ci in range(c):
        for fo in range(f):
            if conn[ci, fo]:
                q = (
                    ci - (fo // (f // g)) * cg
                )  # which slice of filter fo meets channel ci
                d.ax.plot(
                    [xi + 2, xw + q * sp],
                    [yc(ci, c) + 0.5, yc(fo, f) + 0.5],
                    color=PALETTE["highlight"],
                    lw=1.0,
                    alpha=0.8,
                    zorder=0.5,
                    gid=f"conn{ci},{fo}",
                )
    for gi in range(g if g > 1 else 0):
        y0 = min(yc(gi * cg, c), yc(gi * (f // g), f)) - 0.15
        y1 = max(yc((gi + 1) * cg - 1, c), yc((gi + 1) * (f // g) - 1, f)) + 1.15
        d.outline(
            xi - 0.2,
            y0,
            xo + 2.4 - xi,
            y1 - y0,
            color=PALETTE["padding"],
            lw=1.0,
            ls="--",
            z=1,
        )
    d.text(xi, top - 0.45, "input channels", scale=0.8)
    d.text(xw, top - 0.45, "filters: C/groups slices each", scale=0.8)
    d.text(xo, top - 0.45, "outputs", scale=0.8)
    k2 = kernel_size**2
    d.lines(
        0,
        height - 1.05,
        [
            f"each output channel sees {cg} of {c} input channels; "
            f"weights F·(C/groups)·k² = {f}·{cg}·{k2} = {f * cg * k2} "
            f"(dense: {f * c * k2})"
        ],
        scale=0.85,
    )
    return d.done()


def plot_groups(in_channels=4, out_channels=4, *, groups=2, kernel_size=3, ax=None):
    """The weight tensor as F filters of C/groups slices, and which input channels each
    output channel sees.

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
    The lines are found by running :func:`convbook.conv2d_forward` on one-hot inputs
    (:func:`groups_data`), not drawn from the rule.
    """
    data = groups_data(
        in_channels, out_channels, groups=groups, kernel_size=kernel_size
    )
    return draw_groups(data, ax=ax)


def animate_groups(in_channels=4, out_channels=4, *, dpi=72):
    """:func:`plot_groups` for every valid ``groups``, from 1 (dense) to depthwise."""
    gs = [
        g
        for g in range(1, min(in_channels, out_channels) + 1)
        if in_channels % g == 0 and out_channels % g == 0
    ]
    key = dict(in_channels=in_channels, out_channels=out_channels)
    draw = partial(plot_groups, **key)  # each groups is a new picture: new data
    return animate("groups", draw, "groups", gs, key=key, dpi=dpi, interval=1500)
