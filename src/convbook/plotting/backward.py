"""Figures of the backward pass: ∇K entry by entry, which outputs reach an input pixel,
and ∇X as a full convolution with the turned kernel (the col2im route is drawn in
:mod:`convbook.plotting.columns`).

Each figure comes as up to four functions: ``<figure>_data(...)`` computes its numbers
with convbook (once), ``draw_<figure>(data, ...)`` draws them, ``plot_<figure>(...)`` is
the two in one call, and ``animate_<figure>(...)`` (where it moves) draws one ``data``
frame after frame.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from .. import (
    ConvParams,
    OutputShape,
    conv2d_forward,
    conv2d_grad_input,
    conv2d_grad_weight,
    conv_output_shape,
    conv_params,
    full_conv_operands,
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
    lines_needed,
    padded_image,
    paren,
    tint,
    wrap_terms,
)
from .player import animate, sample_frames

__all__ = [
    "GradWeightData",
    "grad_weight_data",
    "draw_grad_weight",
    "plot_grad_weight",
    "animate_grad_weight",
    "GradInputMapData",
    "grad_input_map_data",
    "draw_grad_input_map",
    "plot_grad_input_map",
    "animate_grad_input_map",
    "FullConvData",
    "full_conv_data",
    "draw_full_conv",
    "plot_full_conv",
    "animate_full_conv",
]


# --------------------------------------------------------------------------------------
# 1. Gradient of the kernel
# --------------------------------------------------------------------------------------


class GradWeightData(NamedTuple):
    """The numbers :func:`plot_grad_weight` draws."""

    x: np.ndarray  #: (H, W) input
    dout: np.ndarray  #: (OH, OW), ∇Y
    params: ConvParams
    dw: np.ndarray  #: (KH, KW), ``cb.conv2d_grad_weight``
    windows: np.ndarray  #: (OH, OW, KH, KW), ``cb.window_view(x)``


def grad_weight_data(
    x=None, dout=None, *, kernel_size=2, stride=1, padding=0, dilation=1
):
    """∇K and the windows it sums over (arguments as in :func:`plot_grad_weight`).

    Examples
    --------
    >>> d = grad_weight_data(np.arange(9.0).reshape(3, 3), np.ones((2, 2)))
    >>> d.dw  # each entry sums the four X cells it multiplies
    array([[ 8., 12.],
           [20., 24.]])
    """
    x = as_image(x, "x", example((4, 4), 0, 0, 5))
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    s = conv_output_shape(x.shape, (kh, kw), **hyper)
    dout = as_image(dout, "dout", example((s.oh, s.ow), 2, -1, 3))
    if dout.shape != (s.oh, s.ow):
        raise ValueError(
            f"dout must have the output's shape ({s.oh}, {s.ow}) for x {x.shape} and "
            f"kernel ({kh}, {kw}), got {dout.shape}"
        )
    p = conv_params((kh, kw), **hyper)
    dw = conv2d_grad_weight(dout[None, None], x[None, None], (1, 1, kh, kw), **hyper)
    windows = window_view(x[None, None], (kh, kw), **hyper)[0, 0]
    return GradWeightData(x, dout, p, dw[0, 0], windows)


def draw_grad_weight(data, *, entry=(0, 0), ax=None):
    """:func:`plot_grad_weight` of a :func:`grad_weight_data`."""
    x, dout, p, dw, windows = data
    kh, kw = dw.shape
    a, b = as_cell(entry, dw.shape, "entry")
    xs = windows[:, :, a, b]  # (OH, OW): X under kernel entry (a, b) in every window
    oh, ow = dout.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw_) = p.stride, p.dilation
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    top = 1.3
    x1 = wp + 1.6
    x2 = x1 + ow + 1.4
    x3 = x2 + ow + 2.0
    terms = [
        f"{paren(dout[i, j])}·{paren(xs[i, j])}" for i in range(oh) for j in range(ow)
    ]
    lines = wrap_terms(
        terms,
        max(ow, 3),
        f"∇K[{a},{b}] = Σ ∇Y[i,j]·X[i·S+{a}·D, j·S+{b}·D] =",
        f"  = {fmt(dw[a, b])}",
    )
    body = max(hp, oh, kh)
    d = Diagram(ax, x3 + kw + 0.3, top + body + 0.5 + lines_needed(len(lines)))
    d.title(
        f"kernel entry ({a},{b}) multiplies X at (i·S+{a * dh}, j·S+{b * dw_}) "
        "for every output (i,j)",
        weight="bold",
        scale=0.9,
    )
    vals, faces = padded_image(x, p.padding)
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
    faces, text = filled_so_far(dw, (a, b), "gradient")
    d.grid(None, x3, top, faces, shape=(kh, kw), text=text, name="dK")
    d.outline(x3 + b, top + a, 1, 1)
    d.text(x3, top - 0.35, "∇K", scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def plot_grad_weight(
    x=None,
    dout=None,
    *,
    kernel_size=2,
    stride=1,
    padding=0,
    dilation=1,
    entry=(0, 0),
    ax=None,
):
    """∇K[p, q] = Σ ∇Y[i, j]·X[i·S + p·D, j·S + q·D]: the X cells each ∇Y entry weights,
    for one kernel entry.

    Parameters
    ----------
    x : (H, W) array, default 4x4
    dout : ∇Y, (OH, OW) array, default an example of the right shape
    kernel_size, stride, padding, dilation : the forward convolution's
    entry : (p, q), the kernel entry whose gradient is drawn

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    ∇K is :func:`convbook.conv2d_grad_weight`'s; the sampled X is
    ``window_view(x)[..., p, q]`` (:func:`grad_weight_data`). Chapter "∇K".
    """
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = grad_weight_data(x, dout, kernel_size=kernel_size, **hyper)
    return draw_grad_weight(data, entry=entry, ax=ax)


def animate_grad_weight(
    x=None, dout=None, *, kernel_size=2, stride=1, padding=0, dilation=1, dpi=72
):
    """:func:`plot_grad_weight` for every kernel entry in turn."""
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = grad_weight_data(x, dout, kernel_size=kernel_size, **hyper)
    kh, kw = data.dw.shape
    entries = [divmod(k, kw) for k in sample_frames(kh * kw)]
    key = dict(x=x, dout=dout, kernel_size=kernel_size, **hyper)
    draw = partial(draw_grad_weight, data)
    return animate(
        "grad_weight", draw, "entry", entries, key=key, dpi=dpi, interval=1000
    )


# --------------------------------------------------------------------------------------
# 2. Gradient of the input: which outputs reach a pixel
# --------------------------------------------------------------------------------------


class GradInputMapData(NamedTuple):
    """The numbers :func:`plot_grad_input_map` draws."""

    input_size: tuple  #: (H, W)
    kernel_size: tuple  #: (KH, KW)
    params: ConvParams
    out_shape: OutputShape
    #: (H, W): how many (output, weight) pairs reach each pixel: ∇X for ∇Y = 1, K = 1
    counts: np.ndarray
    labels: np.ndarray  #: (H, W): pixel k is labelled k + 1 (padding reads as 0)
    views: np.ndarray  #: (OH, OW, KH, KW): ``cb.window_view`` of the labels


def grad_input_map_data(
    input_size=6, kernel_size=3, *, stride=2, padding=0, dilation=1
):
    """Reach counts and labelled windows (arguments as in :func:`plot_grad_input_map`).

    Examples
    --------
    >>> grad_input_map_data(4, 2, stride=3).counts  # holes between the windows
    array([[1., 1., 0., 0.],
           [1., 1., 0., 0.],
           [0., 0., 0., 0.],
           [0., 0., 0., 0.]])
    """
    h, wd = as_pair(input_size, "input_size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    s = conv_output_shape((h, wd), (kh, kw), **hyper)
    p = conv_params((kh, kw), **hyper)
    ones_dout, ones_w = np.ones((1, 1, s.oh, s.ow)), np.ones((1, 1, kh, kw))
    counts = conv2d_grad_input(ones_dout, ones_w, (1, 1, h, wd), **hyper)[0, 0]
    labels = np.arange(1.0, h * wd + 1).reshape(1, 1, h, wd)
    views = window_view(labels, (kh, kw), **hyper)[0, 0]
    return GradInputMapData((h, wd), (kh, kw), p, s, counts, labels[0, 0], views)


def draw_grad_input_map(data, *, pixel=(2, 2), ax=None):
    """:func:`plot_grad_input_map` of a :func:`grad_input_map_data`."""
    (h, wd), (kh, kw), p, s, counts, labels, views = data
    r, c = as_cell(pixel, (h, wd), "pixel")
    pairs = np.argwhere(views == labels[r, c])  # rows (i, j, p, q)
    pt, pb, pl, pr = p.padding
    hp, wp = h + pt + pb, wd + pl + pr
    top = 1.3
    x1 = wp + 1.6
    x2 = x1 + s.ow + 1.6
    terms = [f"∇Y[{i},{j}]·K[{a},{b}]" for i, j, a, b in pairs]
    if terms:
        head = f"∇X[{r},{c}] = Σ over the {len(terms)} windows that read it:"
        lines = wrap_terms(terms, 3, head, "")[:-1]
    else:
        lines = [f"no window reads X[{r},{c}]: ∇X[{r},{c}] = 0 whatever ∇Y is"]
    lines.append(
        "numbers in X: how many (output, weight) pairs reach each pixel; "
        "hatched: zero gradient"
    )
    body = max(hp, s.oh, kh)
    d = Diagram(ax, max(x2 + kw + 0.3, 20), top + body + 0.5 + lines_needed(len(lines)))
    plural = "s" if len(pairs) != 1 else ""
    d.title(
        f"X[{r},{c}] is read by {len(pairs)} (output, weight) pair{plural}",
        weight="bold",
    )
    faces = blank_faces((hp, wp), tint("padding", 0.35))
    vals = np.full((hp, wp), np.nan)
    hatched = []
    for a in range(h):
        for b in range(wd):
            shade = 0.2 + 0.6 * counts[a, b] / max(counts.max(), 1)
            faces[pt + a][pl + b] = tint("gradient", shade)
            vals[pt + a, pl + b] = counts[a, b]
            if counts[a, b] == 0:
                faces[pt + a][pl + b] = tint("unused", 0.3)
                hatched.append((pt + a, pl + b))
    d.grid(vals, 0, top, faces, name="counts")
    d.hatch(hatched, 0, top, PALETTE["unused"])
    d.outline(pl + c, top + pt + r, 1, 1, lw=3.0)
    d.text(0, top - 0.35, "X (∇X reach counts)", scale=0.85)
    faces = blank_faces((s.oh, s.ow), (1.0, 1.0, 1.0))
    text = [["" for _ in range(s.ow)] for _ in range(s.oh)]
    used_k = set()
    for i, j, a, b in pairs:
        faces[i][j] = tint("gradient")
        text[i][j] = f"K{a}{b}"
        used_k.add((a, b))
    d.grid(None, x1, top, faces, shape=(s.oh, s.ow), text=text, name="dY")
    d.text(x1, top - 0.35, "∇Y (via weight)", scale=0.85)
    faces = [
        [tint("kernel", 0.7 if (a, b) in used_k else 0.15) for b in range(kw)]
        for a in range(kh)
    ]
    names = [[f"{a}{b}" for b in range(kw)] for a in range(kh)]
    d.grid(None, x2, top, faces, shape=(kh, kw), text=names, name="K")
    for a, b in used_k:
        d.outline(x2 + b, top + a, 1, 1, lw=1.8)
    d.text(x2, top - 0.35, "K", scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def plot_grad_input_map(
    input_size=6,
    kernel_size=3,
    *,
    stride=2,
    padding=0,
    dilation=1,
    pixel=(2, 2),
    ax=None,
):
    """Which outputs and kernel weights one input pixel touches, and how many reach
    every pixel.

    Cells of X show how many (output, weight) pairs reach them (∇X for ∇Y = 1, K = 1);
    hatched pixels get zero gradient: the border past the last window, and the holes a
    stride larger than the kernel leaves.

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
    Counts from :func:`convbook.conv2d_grad_input`; the (output, weight) pairs are found
    by looking the pixel up in :func:`convbook.window_view` of a labelled image
    (:func:`grad_input_map_data`). Chapter "∇X".
    """
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = grad_input_map_data(input_size, kernel_size, **hyper)
    return draw_grad_input_map(data, pixel=pixel, ax=ax)


def animate_grad_input_map(
    input_size=5, kernel_size=3, *, stride=2, padding=0, dilation=1, dpi=72
):
    """:func:`plot_grad_input_map` for every pixel of X in turn (sub-sampled past
    36)."""
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = grad_input_map_data(input_size, kernel_size, **hyper)
    h, wd = data.input_size
    pixels = [divmod(k, wd) for k in sample_frames(h * wd)]
    key = dict(input_size=input_size, kernel_size=kernel_size, **hyper)
    draw = partial(draw_grad_input_map, data)
    return animate(
        "grad_input_map", draw, "pixel", pixels, key=key, dpi=dpi, interval=800
    )


# --------------------------------------------------------------------------------------
# 3. Gradient of the input as a full convolution
# --------------------------------------------------------------------------------------


def grad_input_case(
    dout, w, *, stride, padding, dilation, input_size, default_dout, default_w
):
    """∇Y and K of a picture of ∇X (``None``: the defaults), the hyper-parameters, the
    output shape, the input size (default: the smallest that gives ∇Y's shape) and
    ``cb.conv2d_grad_input``'s ∇X: ``(dout, w, params, out_shape, (H, W), dx)``."""
    dout = as_image(dout, "dout", default_dout)
    w = as_image(w, "w", default_w)
    kh, kw = w.shape
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    p = conv_params((kh, kw), **hyper)
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    oh, ow = dout.shape
    if input_size is None:  # the smallest input that gives dout's shape
        input_size = (
            (oh - 1) * sh + dh * (kh - 1) + 1 - pt - pb,
            (ow - 1) * sw + dw * (kw - 1) + 1 - pl - pr,
        )
    h, wd = as_pair(input_size, "input_size", minimum=1)
    if min(h, wd) < 1:
        raise ValueError(
            f"padding {padding} is too large for dout {dout.shape}: the input would be "
            f"{h}x{wd}"
        )
    s = conv_output_shape((h, wd), (kh, kw), **hyper)
    if (s.oh, s.ow) != dout.shape:
        raise ValueError(
            f"dout has shape {dout.shape} but an input of {(h, wd)} gives outputs "
            f"({s.oh}, {s.ow})"
        )
    dx = conv2d_grad_input(dout[None, None], w[None, None], (1, 1, h, wd), **hyper)
    return dout, w, p, s, (h, wd), dx[0, 0]


def _full_conv_route(dout, w, x_shape, params):
    """∇X by the full-convolution route: the core's teaching function, step by step.

    ``big`` and ``w_turned`` are :func:`convbook.methods.strided.full_conv_operands`
    (∇Y dilated by the stride, bordered by D(K-1), the rows no window read added, only
    the rows x's pixels need kept; the kernel turned, channels swapped per group); their
    correlation (dilation D) is ∇X itself.
    """
    big, w_turned = full_conv_operands(dout, w, x_shape, params)
    dx = conv2d_forward(big, w_turned, dilation=params.dilation, groups=params.groups)
    return big, w_turned, dx


class FullConvData(NamedTuple):
    """The numbers :func:`plot_full_conv` draws."""

    dout: np.ndarray  #: (OH, OW), ∇Y
    w: np.ndarray  #: (KH, KW) kernel
    params: ConvParams
    out_shape: OutputShape
    input_size: tuple  #: (H, W)
    dx: np.ndarray  #: (H, W), ``cb.conv2d_grad_input``
    big: np.ndarray  #: ∇Y dilated by the stride, bordered by D(K-1) less the padding
    w_turned: np.ndarray  #: (KH, KW), the kernel turned 180°
    full: np.ndarray  #: (H, W), the full convolution of ``big`` with the turned kernel


def full_conv_data(
    dout=None, w=None, *, stride=2, padding=0, dilation=1, input_size=None
):
    """The full-convolution route's steps (arguments as in :func:`plot_full_conv`).

    Examples
    --------
    >>> d = full_conv_data(np.ones((2, 2)), example_kernel(2), stride=1)
    >>> np.allclose(d.full, d.dx)  # the route gives cb.conv2d_grad_input's answer
    True
    """
    dout, w, p, s, (h, wd), dx = grad_input_case(
        dout,
        w,
        stride=stride,
        padding=padding,
        dilation=dilation,
        input_size=input_size,
        default_dout=example((2, 2), 3, 1, 4),
        default_w=example_kernel(3),
    )
    route = _full_conv_route(dout[None, None], w[None, None], (1, 1, h, wd), p)
    big, w_turned, full = (a[0, 0] for a in route)
    return FullConvData(dout, w, p, s, (h, wd), dx, big, w_turned, full)


def draw_full_conv(data, *, position=(0, 0), ax=None):
    """:func:`plot_full_conv` of a :func:`full_conv_data`."""
    dout, w, p, s, (h, wd), dx, big, wr, full = data
    i, j = as_cell(position, full.shape, "position")
    kh, kw = w.shape
    pt, pb, pl, pr = p.padding
    (sh, sw), (dh, dw) = p.stride, p.dilation
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    hb, wb = big.shape
    hp, wp = full.shape
    ok = np.allclose(full, dx)
    r0, c0 = eh - pt, ew - pl  # where ∇Y[0, 0] sits in big (its padding rows cut off)
    faces = blank_faces((hb, wb), tint("padding", 0.35))
    for a in range(hb):
        for b in range(wb):
            inside = r0 <= a <= r0 + sh * (s.oh - 1) and c0 <= b <= c0 + sw * (s.ow - 1)
            if inside:
                on = (a - r0) % sh == 0 and (b - c0) % sw == 0
                faces[a][b] = tint("gradient") if on else tint("zeros", 0.6)
    top = 1.3
    xk = wb + 1.5
    xf = xk + kw + 1.6
    win = big[i : i + eh + 1 : dh, j : j + ew + 1 : dw]
    terms = [
        f"{paren(win[a, b])}·{paren(wr[a, b])}"
        for a in range(kh)
        for b in range(kw)
        if win[a, b] != 0
    ]
    head = f"∇X[{i},{j}] = "
    if terms:
        head += "Σ window ⊙ rot180(K), non-zero terms:"
        lines = wrap_terms(terms, 4, head, f"  = {fmt(full[i, j])}")
    else:
        lines = [head + "only zeros under the window = 0"]
    lines.append(f"== cb.conv2d_grad_input(...): {'✓' if ok else '✗'}")
    body = max(hb, 2 * kh + 1.5, hp)
    d = Diagram(ax, xf + wp + 0.3, top + body + 0.5 + lines_needed(len(lines)))
    d.title(
        f"∇Y dilated by stride {p.stride} (yellow zeros), "
        f"bordered by D(K−1) = ({eh},{ew})"
        + (f", padding rows {p.padding[0]} cut" if any(p.padding) else "")
        + ", ⋆ rot180(K)"
    )
    d.grid(big, 0, top, faces, name="big")
    for a in range(kh):
        for b in range(kw):
            d.outline(j + b * dw, top + i + a * dh, 1, 1)
    d.text(0, top - 0.35, "pad(dilate(∇Y))", scale=0.85)
    d.grid(wr, xk, top, tint("kernel"), name="rotK")
    d.text(xk, top - 0.35, "rot180(K)", scale=0.85)
    d.grid(w, xk, top + kh + 1.3, tint("kernel", 0.2), name="K")
    d.text(xk, top + kh + 0.95, "K", scale=0.85)
    faces, text = filled_so_far(full, (i, j), "gradient")
    d.grid(None, xf, top, faces, shape=(hp, wp), text=text, name="dXp")
    d.outline(xf + j, top + i, 1, 1)
    d.text(xf, top - 0.35, "∇X", scale=0.85)
    d.lines(0, top + body + 0.4, lines)
    return d.done()


def plot_full_conv(
    dout=None,
    w=None,
    *,
    stride=2,
    padding=0,
    dilation=1,
    input_size=None,
    position=(0, 0),
    ax=None,
):
    """∇X = conv(pad(dilate(∇Y)), rot180(K)): zeros inserted by the stride, D(K−1) of
    padding, the turned kernel.

    Parameters
    ----------
    dout : ∇Y, (OH, OW) array, default 2x2;  w : (KH, KW) kernel, default 3x3
    stride, padding, dilation : the forward convolution's
    input_size : (H, W), default the smallest input giving ``dout``'s shape
    position : (i, j) in ∇X (the window drawn)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Built from :func:`convbook.dilate`, :func:`convbook.rot180` and
    :func:`convbook.conv2d_forward` (:func:`full_conv_data`); the cropped result is
    checked against :func:`convbook.conv2d_grad_input` and the check is written on the
    picture.
    """
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = full_conv_data(dout, w, input_size=input_size, **hyper)
    return draw_full_conv(data, position=position, ax=ax)


def animate_full_conv(
    dout=None, w=None, *, stride=2, padding=0, dilation=1, input_size=None, dpi=72
):
    """:func:`plot_full_conv` with the turned kernel sliding over every position."""
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    data = full_conv_data(dout, w, input_size=input_size, **hyper)
    hp, wp = data.full.shape
    positions = [divmod(k, wp) for k in sample_frames(hp * wp)]
    key = dict(dout=dout, w=w, input_size=input_size, **hyper)
    draw = partial(draw_full_conv, data)
    return animate("full_conv", draw, "position", positions, key=key, dpi=dpi)
