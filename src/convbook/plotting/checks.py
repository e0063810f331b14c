"""Figures of the checks: how far a finite-difference gradient is from the exact one as
the step ``h`` varies, and arrays side by side (a right answer next to a wrong one).

As for every figure: ``<figure>_data(...)`` computes the numbers with convbook (once),
``draw_<figure>(data)`` draws them, ``plot_<figure>(...)`` is the two in one call.
"""

from __future__ import annotations

from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np

from .. import bugs, conv2d_forward, conv2d_grad_input, numeric_vjp, rel_error
from ..gradcheck import LINEAR_H
from .canvas import PALETTE

__all__ = [
    "StepErrorData",
    "step_error_data",
    "draw_step_error",
    "plot_step_error",
    "SideBySideData",
    "side_by_side_data",
    "draw_side_by_side",
    "plot_side_by_side",
]


# --------------------------------------------------------------------------------------
# 1. The error of a finite difference against the step
# --------------------------------------------------------------------------------------


class StepErrorData(NamedTuple):
    """The numbers :func:`plot_step_error` draws: errors against the exact ∇X."""

    setting: str  #: the bug zoo's setting the gradients are taken on
    hs: np.ndarray  #: the steps, increasing
    linear: np.ndarray  #: rel_error of the convolution's finite differences (float64)
    entrywise: np.ndarray  #: the same, entry by entry: max |a-b| / (|a|+|b|)
    nonlinear: np.ndarray  #: rel_error for tanh(convolution), float64
    linear32: np.ndarray  #: rel_error of the convolution's, taken in float32
    nonlinear32: np.ndarray  #: rel_error for tanh(convolution), taken in float32
    tol: float  #: the checks' tolerance
    linear_h: float  #: the step the checks take for a linear map


#: name -> (colour, marker, label) of the curves :func:`draw_step_error` can draw
CURVES = {
    "entrywise": (PALETTE["unused"], "^", "linear map, entry by entry"),
    "linear": (PALETTE["output"], "o", "linear map, rel_error (the checks)"),
    "nonlinear": (PALETTE["highlight"], "s", "tanh of it, rel_error"),
    "linear32": (PALETTE["kernel"], "v", "linear map, float32"),
    "nonlinear32": (PALETTE["gradient"], "D", "tanh of it, float32"),
}


def _entrywise(a, b):
    """The entry-by-entry relative error the book does not use (with a 1e-8 floor)."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def step_error_data(setting="one channel", hs=None):
    """Finite-difference input gradients of the convolution (linear in ``x``) and of
    ``tanh`` of it (not linear), in float64 and in float32, against the exact ones, for
    each step ``h``.

    Parameters
    ----------
    setting : str
        A setting of :data:`convbook.bugs.SETTINGS`, by name.
    hs : increasing array of steps, default ``1e-9 .. 1e2``

    Returns
    -------
    StepErrorData
    """
    s = next((s for s in bugs.SETTINGS if s.name == setting), None)
    if s is None:
        names = [s.name for s in bugs.SETTINGS]
        raise ValueError(f"setting must be one of {names}, got {setting!r}")
    hs = np.logspace(-9, 2, 23) if hs is None else np.asarray(hs, dtype=float)
    x, w, dout = s.arrays()

    def conv(v):
        return conv2d_forward(v, w, **s.kwargs)

    def tanh_conv(v):
        return np.tanh(conv(v))

    exact = conv2d_grad_input(dout, w, s.x_shape, **s.kwargs)
    # the chain rule through tanh: dout * (1 - tanh^2), then the convolution's gradient
    exact_tanh = conv2d_grad_input(
        dout * (1 - tanh_conv(x) ** 2), w, s.x_shape, **s.kwargs
    )
    rows = []
    for h in hs:
        numeric = numeric_vjp(conv, x, dout, h)
        rows.append(
            (
                rel_error(numeric, exact),
                _entrywise(numeric, exact),
                rel_error(numeric_vjp(tanh_conv, x, dout, h), exact_tanh),
                rel_error(bugs.numeric_vjp_float32(conv, x, dout, h), exact),
                rel_error(bugs.numeric_vjp_float32(tanh_conv, x, dout, h), exact_tanh),
            )
        )
    curves = np.array(rows).T
    return StepErrorData(s.name, hs, *curves, bugs.TOL, LINEAR_H)


def draw_step_error(data, *, curves=("entrywise", "linear", "nonlinear"), ax=None):
    """Errors against ``h``, both axes logarithmic, ``h`` increasing to the right.

    ``curves``: which of :data:`CURVES` to draw. A linear map's curve is labelled at
    ``h = 1e-6`` and at :data:`~convbook.gradcheck.LINEAR_H`, a nonlinear one at its
    smallest error.
    """
    owns = ax is None
    if owns:
        fig = plt.figure(figsize=(7.2, 4.2), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    floor = 1e-17  # an error of exactly 0 drawn at the bottom of the axis
    grey = dict(color="gray", fontsize=8)

    def at(h):
        return int(np.argmin(np.abs(np.log(data.hs / h))))

    for name in curves:
        colour, marker, label = CURVES[name]
        shown = np.maximum(getattr(data, name), floor)
        ax.plot(
            data.hs,
            shown,
            color=colour,
            lw=1.5,
            label=label,
            marker=marker,
            markersize=4,
        )
        linear = not name.startswith("nonlinear")
        marked = [at(1e-6), at(data.linear_h)] if linear else [int(np.argmin(shown))]
        above = name == "entrywise"  # above its points, the rel_error curve is below
        for k in marked:
            ax.scatter(
                data.hs[k], shown[k], color=colour, marker=marker, s=40, zorder=3
            )
            ax.annotate(
                f"{shown[k]:.0e}",
                (data.hs[k], shown[k]),
                xytext=(0, 7 if above else -13),
                textcoords="offset points",
                ha="center",
                color=colour,
                fontsize=8,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(data.tol, color=PALETTE["padding"], ls="--", lw=1)
    ax.text(
        3e-7, data.tol / 1.6, f"the checks' tolerance, {data.tol:.0e}", va="top", **grey
    )
    ax.axvline(data.linear_h, color=PALETTE["kernel"], ls=":", lw=1.2)
    ax.text(
        data.linear_h * 1.3,
        data.tol * 10,
        f"h = {data.linear_h:g}\n(LINEAR_H)",
        color=PALETTE["kernel"],
        fontsize=8,
        va="bottom",
    )
    # the two errors, written beside the curves that show them
    low = "linear" if "linear" in curves else curves[-1]
    k = at(1e-7)
    ax.annotate(
        "rounding:\nfalls like 1/h",
        (data.hs[k], getattr(data, low)[k]),
        xytext=(0, -40),
        textcoords="offset points",
        ha="center",
        **grey,
    )
    rising = [n for n in ("nonlinear", "nonlinear32") if n in curves]
    if rising:
        values = getattr(data, rising[0])
        k = int(np.argmin(values))
        k += int(np.argmax(values[k:] > 1e-4))  # where the rise passes 1e-4
        ax.annotate(
            "truncation:\nrises like h²",
            (data.hs[k], values[k]),
            xytext=(10, -12),
            textcoords="offset points",
            ha="left",
            va="top",
            **grey,
        )
    ax.set_xlabel("step h (log scale)")
    ax.set_ylabel("error against the exact ∇X")
    ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8
    )
    if owns:
        plt.close(fig)
    return fig


def plot_step_error(
    setting="one channel",
    hs=None,
    *,
    curves=("entrywise", "linear", "nonlinear"),
    ax=None,
):
    """The error of a finite-difference gradient against the step ``h``.

    For the convolution, which is linear (no truncation error: the error falls until
    ``h`` is the size of the inputs, :data:`~convbook.gradcheck.LINEAR_H`), measured by
    :func:`~convbook.gradcheck.rel_error` and entry by entry; for ``tanh`` of it (the
    truncation error rises like ``h**2``); and either in float32 (``curves``: names of
    :data:`CURVES`). The smallest error of each curve is marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return draw_step_error(step_error_data(setting, hs), curves=curves, ax=ax)


# --------------------------------------------------------------------------------------
# 2. Arrays side by side
# --------------------------------------------------------------------------------------


class SideBySideData(NamedTuple):
    """The numbers :func:`plot_side_by_side` draws."""

    maps: tuple  #: 2-D arrays
    titles: tuple  #: one title each


def side_by_side_data(maps=None, titles=None):
    """2-D arrays and their titles; by default the bug zoo's first picture: the input
    gradient of a stride-2 layer (7 x 7) next to the one with the stride forgotten.

    Returns
    -------
    SideBySideData
    """
    if maps is None:
        rng = np.random.default_rng(0)
        w = rng.standard_normal((1, 1, 3, 3))
        dout = rng.standard_normal((1, 1, 3, 3))
        right = conv2d_grad_input(dout, w, (1, 1, 7, 7), stride=2)
        wrong = bugs.grad_input_stride_forgotten(dout, w, (1, 1, 7, 7), stride=2)
        maps = (right[0, 0], wrong[0, 0])
        titles = ("correct ∇X", "stride forgotten") if titles is None else titles
    maps = tuple(np.asarray(m, dtype=float) for m in maps)
    if any(m.ndim != 2 for m in maps):
        raise ValueError(
            f"maps must be 2-D arrays, got shapes {[m.shape for m in maps]}"
        )
    titles = tuple(titles) if titles is not None else ("",) * len(maps)
    if len(titles) != len(maps):
        raise ValueError(f"titles: {len(titles)} for {len(maps)} maps")
    return SideBySideData(maps, titles)


def draw_side_by_side(data, *, cmap="RdBu_r", fmt="{:.1f}", symmetric=True, ax=None):
    """The arrays as heat maps in one row, top-aligned, their numbers written in, on one
    colour scale (centred on 0 when ``symmetric``)."""
    lim = max(float(np.abs(m).max()) for m in data.maps) or 1.0
    gap = 1.0
    widths = [m.shape[1] for m in data.maps]
    height = max(m.shape[0] for m in data.maps)
    owns = ax is None
    if owns:
        width = sum(widths) + gap * (len(widths) - 1)
        fig = plt.figure(
            figsize=(0.5 * width + 0.4, 0.5 * height + 0.8), layout="constrained"
        )
        ax = fig.add_subplot()
    fig = ax.figure
    x0 = 0.0
    for m, title in zip(data.maps, data.titles, strict=True):
        rows, cols = m.shape
        ax.pcolormesh(
            x0 + np.arange(cols + 1),
            np.arange(rows + 1),
            m,
            cmap=cmap,
            vmin=-lim if symmetric else 0.0,
            vmax=lim,
            edgecolors="white",
            linewidth=0.5,
        )
        for (r, c), v in np.ndenumerate(m):
            dark = abs(v) > 0.6 * lim
            ax.text(
                x0 + c + 0.5,
                r + 0.5,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if dark else "black",
            )
        ax.text(x0 + cols / 2, -0.3, title, ha="center", va="bottom", fontsize=9)
        x0 += cols + gap
    ax.set_xlim(-0.2, x0 - gap + 0.2)
    ax.set_ylim(height + 0.2, -1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    if owns:
        plt.close(fig)
    return fig


def plot_side_by_side(
    maps=None, titles=None, *, cmap="RdBu_r", fmt="{:.1f}", symmetric=True, ax=None
):
    """2-D arrays side by side as heat maps with their numbers (a right answer next to a
    wrong one, say). Default: the bug zoo's forgotten stride, 7 x 7 against 5 x 5.

    Returns
    -------
    matplotlib.figure.Figure
    """
    data = side_by_side_data(maps, titles)
    return draw_side_by_side(data, cmap=cmap, fmt=fmt, symmetric=symmetric, ax=ax)
