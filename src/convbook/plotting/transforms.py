"""Figures of the kernel's transforms: the tutorial's two ways of turning a kernel
180°, the grouped channel swap of the input gradient's turned kernel, and one Winograd
tile's transforms (Bᵀ d B, G g Gᵀ, their product, Aᵀ M A).

As for every figure: ``<figure>_data(...)`` computes the numbers with convbook (once),
``draw_<figure>(data)`` draws them, ``plot_<figure>(...)`` is the two in one call.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import (
    conv2d_forward,
    conv2d_grad_input,
    conv_params,
    full_conv_operands,
    rot180,
    rot180_tutorial,
    swap_in_out,
    winograd,
)
from .canvas import PALETTE, Diagram, as_image, example, example_kernel, tint

__all__ = [
    "Rot180Data",
    "rot180_data",
    "draw_rot180",
    "plot_rot180",
    "SwapInOutData",
    "swap_in_out_data",
    "draw_swap_in_out",
    "plot_swap_in_out",
    "WinogradData",
    "winograd_data",
    "draw_winograd",
    "plot_winograd",
]


# --------------------------------------------------------------------------------------
# 1. rot180, the tutorial's two ways
# --------------------------------------------------------------------------------------


class Rot180Data(NamedTuple):
    """The numbers :func:`plot_rot180` draws."""

    w: np.ndarray  #: (k, k, C_in, C_out), the tutorial's layout
    way1: np.ndarray  #: (k, k, C_out, C_in), ``cb.rot180_tutorial(w, 1)``
    way2: np.ndarray  #: (k, k, C_out, C_in), ``cb.rot180_tutorial(w, 2)``
    nchw: np.ndarray  #: (C_out, C_in, k, k), ``cb.rot180`` of the NCHW weight


def rot180_data(w=None):
    """The tutorial's two rotations and :func:`convbook.rot180` of one kernel.

    Examples
    --------
    >>> d = rot180_data()
    >>> np.array_equal(d.way1, d.way2)
    True
    >>> np.array_equal(d.way1.transpose(2, 3, 0, 1), d.nchw)
    True
    """
    w = (
        np.arange(1.0, 19.0).reshape(3, 3, 1, 2)
        if w is None
        else np.asarray(w, dtype=float)
    )
    if w.ndim != 4 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w must have shape (k, k, C_in, C_out), got {w.shape}")
    nchw = rot180(w.transpose(3, 2, 0, 1))  # (C_out, C_in, k, k), turned
    return Rot180Data(w, rot180_tutorial(w, 1), rot180_tutorial(w, 2), nchw)


def draw_rot180(data, *, ax=None):
    """:func:`plot_rot180` of a :func:`rot180_data`."""
    w, r1, r2, rc = data
    k, _, cin, cout = w.shape
    same12 = np.array_equal(r1, r2)
    same_cb = np.array_equal(r1.transpose(2, 3, 0, 1), rc)
    gap = 0.6
    pw, ph = cout * (k + gap), cin * (k + gap)
    top = 1.9
    xs = [0, pw + 1.2, 2 * (pw + 1.2)]
    d = Diagram(ax, xs[2] + pw + 0.2, top + ph + 2.2, cell=0.4)
    d.title(
        f"K: (k, k, C_in, C_out) = {w.shape}; "
        "slice (ci, co) drawn at row ci, column co",
        weight="bold",
        scale=0.85,
    )
    titles = [
        "K[:, :, ci, co]",
        "way 1: flipud(fliplr(K)).swapaxes(2, 3)",
        "way 2: reshape, [::-1], swapaxes",
    ]
    for t, (x0, title) in enumerate(zip(xs, titles, strict=True)):
        d.text(x0, top - 0.6, title, scale=0.7)
        for ci in range(cin):
            for co in range(cout):
                sl = w[:, :, ci, co] if t == 0 else (r1 if t == 1 else r2)[:, :, co, ci]
                d.grid(
                    sl,
                    x0 + co * (k + gap),
                    top + ci * (k + gap),
                    tint("kernel", 0.6 if t == 0 else 0.35),
                    name=f"R{t}_{ci}{co}",
                )
    d.lines(
        0,
        top + ph + 0.2,
        [
            f"way 1 == way 2: {same12};  == cb.rot180 of the NCHW weight "
            f"(C_out, C_in, k, k): {same_cb}",
            f"both give (k, k, C_out, C_in) = {r1.shape}: each slice turned, "
            "C_in and C_out swapped",
        ],
        scale=0.85,
    )
    return d.done()


def plot_rot180(w=None, *, ax=None):
    """The tutorial's two ways of rotating a ``(k, k, C_in, C_out)`` kernel, shown slice
    by slice, and that they agree with each other and with :func:`convbook.rot180` on
    the NCHW weight.

    Parameters
    ----------
    w : (k, k, C_in, C_out) array, default ``arange`` with k=3, C_in=1, C_out=2

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The rotations are :func:`convbook.rot180_tutorial` (``way=1``: flipud(fliplr) then
    swapaxes; ``way=2``: reshape to (k·k, C_in, C_out), reverse, swapaxes) and
    :func:`convbook.rot180` (:func:`rot180_data`).
    """
    return draw_rot180(rot180_data(w), ax=ax)


# --------------------------------------------------------------------------------------
# 2. The turned kernel of a grouped layer: channels swapped group by group
# --------------------------------------------------------------------------------------


class SwapInOutData(NamedTuple):
    """The numbers :func:`plot_swap_in_out` draws."""

    w: np.ndarray  #: (F, C // G, KH, KW), the layer's weight
    groups: int
    #: (C, F // G, KH, KW), ``cb.rot180(cb.swap_in_out(w, groups))``
    turned: np.ndarray
    #: (C, F // G): which slice of ``w`` each kernel of ``turned`` came from, as the
    #: flat index ``f * (C // G) + c'`` (found by swapping an array of indices)
    source: np.ndarray
    #: the shape ``cb.rot180(w).transpose(1, 0, 2, 3)`` (the groups == 1 formula) gives
    plain_shape: tuple
    #: correlating the input gradient's big ∇Y with ``turned`` (stride 1, the layer's
    #: groups) gives ``cb.conv2d_grad_input(..., route="col2im")``, on an example ∇Y
    same_as_col2im: bool


def swap_in_out_data(w=None, *, groups=2):
    """The turned, swapped kernel of a grouped layer (arguments as in
    :func:`plot_swap_in_out`).

    Examples
    --------
    >>> d = swap_in_out_data()
    >>> d.w.shape, d.turned.shape, d.plain_shape
    ((6, 2, 2, 2), (4, 3, 2, 2), (2, 6, 2, 2))
    >>> d.source  # kernel (c, f') of the result: filter f, slice c' of w
    array([[ 0,  2,  4],
           [ 1,  3,  5],
           [ 6,  8, 10],
           [ 7,  9, 11]])
    """
    w = (
        np.arange(1.0, 49.0).reshape(6, 2, 2, 2)
        if w is None
        else np.array(w, dtype=float)
    )
    if w.ndim != 4:
        raise ValueError(f"w must have shape (F, C // groups, KH, KW), got {w.shape}")
    f, cg, kh, kw = w.shape
    g = int(groups)
    if g < 1 or f % g:
        raise ValueError(
            f"groups={groups!r} must divide the {f} filters of w {w.shape}"
        )
    if f > 12 or cg * g > 12 or max(kh, kw) > 3:
        raise ValueError(
            "a readable picture needs at most 12 filters and channels and kernels of "
            f"at most 3x3, got w {w.shape} with groups={g}"
        )
    turned = rot180(swap_in_out(w, g))  # (C, F // G, KH, KW)
    ids = np.arange(f * cg).reshape(f, cg, 1, 1)
    source = swap_in_out(ids, g)[:, :, 0, 0]  # (C, F // G)
    plain_shape = rot180(w).transpose(1, 0, 2, 3).shape
    # the route with this kernel, on a small example: the col2im route's answer
    c = cg * g
    x_shape = (1, c, kh + 1, kw + 1)
    dout = example((1, f, 2, 2), 5, -2, 3)
    p = conv_params((kh, kw), groups=g)
    big, wt = full_conv_operands(dout, w, x_shape, p)
    dx = conv2d_forward(big, wt, groups=g)
    want = conv2d_grad_input(dout, w, x_shape, groups=g, route="col2im")
    same = bool(np.allclose(dx, want) and np.array_equal(wt, turned))
    return SwapInOutData(w, g, turned, source, plain_shape, same)


def draw_swap_in_out(data, *, ax=None):
    """:func:`plot_swap_in_out` of a :func:`swap_in_out_data`."""
    w, g, turned, source, plain_shape, same = data
    f, cg, kh, kw = w.shape
    c, fg = turned.shape[:2]
    gap, block_gap = 0.7, 1.1  # between kernels, and between the groups' blocks
    step_w, step_h = kw + gap, kh + gap + 0.3  # room for a label above each kernel
    top = 2.6

    def x_of(k, per_group):  # left edge of kernel column k, a gap between blocks
        return 0.5 + k * step_w + (k // per_group) * block_gap

    width_w = x_of(f - 1, f // g) + kw
    x_t = width_w + 4.0
    # at least as wide as the right-hand heading
    width = max(x_t + x_of(c - 1, cg) + kw + 0.4, x_t + 13)
    body = max(cg, fg) * step_h + 0.5
    d = Diagram(ax, width, top + body + 2.6, cell=0.36)
    d.title(
        f"groups={g}: w {w.shape} (F, C/G, KH, KW) → rot180(swap_in_out(w, {g})) "
        f"{turned.shape} (C, F/G, KH, KW)",
        scale=0.95,
    )
    amounts = (0.6, 0.3)  # the groups' blocks in alternating shades
    for k in range(f):
        for q in range(cg):
            x, y = x_of(k, f // g), top + q * step_h
            face = tint("kernel", amounts[(k // (f // g)) % 2])
            d.grid(w[k, q], x, y, face, name=f"W{k}_{q}")
            d.text(x + kw / 2, y - 0.35, f"w[{k},{q}]", scale=0.8, ha="center")
    for r in range(c):
        for q in range(fg):
            x, y = x_t + x_of(r, cg), top + q * step_h
            k, s = divmod(int(source[r, q]), cg)
            face = tint("kernel", amounts[(r // cg) % 2])
            d.grid(turned[r, q], x, y, face, name=f"T{r}_{q}")
            d.text(x + kw / 2, y - 0.35, f"w[{k},{s}]", scale=0.8, ha="center")
    for gi in range(g):
        for x0, per, rows in ((0, f // g, cg), (x_t, cg, fg)):
            left = x0 + x_of(gi * per, per) - 0.3
            right = x0 + x_of((gi + 1) * per - 1, per) + kw + 0.3
            d.outline(
                left,
                top - 0.75,
                right - left,
                rows * step_h + 0.35,
                color=PALETTE["padding"],
                lw=1.0,
                ls="--",
                z=1,
            )
            bottom = top - 0.4 + rows * step_h
            d.text(left, bottom + 0.35, f"group {gi}", scale=0.8)
    d.text(0.2, 1.3, "w: filter f across, slice c' down", scale=0.85)
    d.text(x_t + 0.2, 1.3, "turned: channel c across, slice f' down", scale=0.85)
    d.text(
        width_w + 0.5, top + body / 2, "turn 180°,\nswap in\neach group\n→", scale=0.85
    )
    d.lines(
        0,
        top + body + 0.2,
        [
            "each turned kernel is rot180 of the kernel of w named above it;",
            f"block g of w, transposed, is block g of the result: "
            f"turned[g·{cg} + c', f'] = rot180(w[g·{fg} + f', c'])",
            f"the groups == 1 formula rot180(w).transpose(1, 0, 2, 3) gives "
            f"{plain_shape}: not a (C, F/G, KH, KW) kernel"
            if g > 1
            else "groups == 1: the swap is rot180(w).transpose(1, 0, 2, 3)",
            "correlating the route's ∇Y with it gives cb.conv2d_grad_input's ∇X: "
            f"{'✓' if same else '✗'}",
        ],
        scale=0.85,
    )
    return d.done()


def plot_swap_in_out(w=None, *, groups=2, ax=None):
    """The input gradient's turned kernel for a grouped layer: each group's block of
    ``w`` transposed on its own, every kernel turned 180°.

    Parameters
    ----------
    w : (F, C // groups, KH, KW) array, default ``arange`` with F=6, C=4, 2x2 kernels
        At most 12 filters and channels, kernels at most 3x3.
    groups : int dividing F

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The kernels drawn are :func:`convbook.rot180` of :func:`convbook.swap_in_out`; each
    one's origin is found by swapping an array of indices the same way, and the
    correlation with the result is checked against
    :func:`convbook.conv2d_grad_input` (:func:`swap_in_out_data`). Chapter "∇X".
    """
    return draw_swap_in_out(swap_in_out_data(w, groups=groups), ax=ax)


# --------------------------------------------------------------------------------------
# 3. One Winograd tile
# --------------------------------------------------------------------------------------


class WinogradData(NamedTuple):
    """The numbers :func:`plot_winograd` draws."""

    m: int  #: output tile size
    d: np.ndarray  #: (m+2, m+2) input tile
    g: np.ndarray  #: (3, 3) kernel
    V: np.ndarray  #: (m+2, m+2), Bᵀ d B: the input tile transformed
    U: np.ndarray  #: (m+2, m+2), G g Gᵀ: the kernel transformed
    M: (
        np.ndarray
    )  #: (m+2, m+2), U ⊙ V: the only multiplications that depend on the data
    Y: np.ndarray  #: (m, m), Aᵀ M A
    direct: np.ndarray  #: (m, m), ``cb.conv2d_forward(d, g)``
    tiled: np.ndarray  #: (m, m), ``cb.winograd.winograd_conv2d(d, g, m)``
    multiplications: tuple  #: (direct, winograd) per tile


def winograd_data(d=None, g=None, *, m=2):
    """One F(m×m, 3×3) tile's transforms (arguments as in :func:`plot_winograd`).

    Examples
    --------
    >>> t = winograd_data(m=2)
    >>> np.allclose(t.Y, t.direct), t.multiplications
    (True, (36, 16))
    """
    m = int(m)
    g = as_image(g, "g", example_kernel(3))
    if g.shape != (3, 3):
        raise ValueError(f"g must be a 3x3 kernel for F(m, 3), got {g.shape}")
    d = as_image(d, "d", example((m + 2, m + 2), 5, 0, 4))
    if d.shape != (m + 2, m + 2):
        raise ValueError(
            f"d must be an input tile of shape ({m + 2}, {m + 2}) for m={m}, "
            f"got {d.shape}"
        )
    AT, G, BT = winograd.transform_matrices(m, 3)
    V = BT @ d @ BT.T  # (m+2, m+2)
    U = G @ g @ G.T  # (m+2, m+2)
    M = U * V
    Y = AT @ M @ AT.T  # (m, m)
    direct = conv2d_forward(d[None, None], g[None, None])[0, 0]
    tiled = winograd.winograd_conv2d(d[None, None], g[None, None], m)[0, 0]
    counts = winograd.winograd_multiplications(m)
    return WinogradData(m, d, g, V, U, M, Y, direct, tiled, counts)


def draw_winograd(data, *, ax=None):
    """:func:`plot_winograd` of a :func:`winograd_data`."""
    m, d, g, V, U, M, Y, direct, tiled, (n_direct, n_wino) = data
    a = m + 2
    top = 1.3
    x1 = a + 2.4
    x2 = x1 + a + 1.6
    x3 = x2 + a + 2.4
    x4 = x3 + m + 1.6
    height = top + 2 * a + 1.6 + 1.6
    dg = Diagram(ax, x4 + m + 0.3, height, cell=0.38)
    ok = np.allclose(Y, direct) and np.allclose(tiled, direct)
    dg.title(
        f"F({m}×{m}, 3×3): {n_wino} multiplications per tile instead of {n_direct} "
        f"({n_direct / n_wino:.2f}× fewer)"
    )
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
    yo = ym + (a - m) / 2
    dg.grid(Y, x3, yo, tint("output"), name="Y")
    dg.text(x3, yo - 0.35, "Y", scale=0.8)
    dg.grid(direct, x4, yo, tint("output", 0.6), name="direct")
    dg.text(x4, yo - 0.35, "direct", scale=0.8)
    dg.text(x3, ym + (a + m) / 2 + 0.6, f"equal: {'✓' if ok else '✗'}", scale=0.8)
    return dg.done()


def plot_winograd(d=None, g=None, *, m=2, ax=None):
    """One Winograd F(m×m, 3×3) tile: Bᵀ d B, G g Gᵀ, their element-wise product,
    Aᵀ M A, against direct conv.

    Parameters
    ----------
    d : (m+2, m+2) input tile, default an example
    g : (3, 3) kernel, default the book's example
    m : output tile size (2 is the smallest; 4 is what the fast path uses)

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Matrices from :func:`convbook.winograd.transform_matrices`; the output tile is
    checked against :func:`convbook.conv2d_forward` and
    :func:`convbook.winograd.winograd_conv2d` (:func:`winograd_data`). Chapter
    "Winograd".
    """
    return draw_winograd(winograd_data(d, g, m=m), ax=ax)
