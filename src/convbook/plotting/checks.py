"""Figures of the checks: how far a finite-difference gradient is from the exact one, as
the step ``h`` varies.

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

__all__ = ["StepErrorData", "step_error_data", "draw_step_error", "plot_step_error"]


class StepErrorData(NamedTuple):
    """The numbers :func:`plot_step_error` draws."""

    setting: str  #: the bug zoo's setting the gradients are taken on
    hs: np.ndarray  #: the steps, increasing
    linear: np.ndarray  #: rel_error of the finite differences of the convolution
    entrywise: np.ndarray  #: the same, entry by entry: max |a-b| / (|a|+|b|)
    nonlinear: np.ndarray  #: rel_error for tanh(convolution)
    tol: float  #: the checks' tolerance
    linear_h: float  #: the step the checks take for a linear map


def _entrywise(a, b):
    """The entry-by-entry relative error that the book does not use (1e-8 floor)."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def step_error_data(setting="one channel", hs=None):
    """Finite-difference input gradients of the convolution (linear in ``x``) and of
    ``tanh`` of it (not linear), in float64, against the exact ones, for each step.

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
    linear, entrywise, nonlinear = [], [], []
    for h in hs:
        numeric = numeric_vjp(conv, x, dout, h)
        linear.append(rel_error(numeric, exact))
        entrywise.append(_entrywise(numeric, exact))
        nonlinear.append(rel_error(numeric_vjp(tanh_conv, x, dout, h), exact_tanh))
    return StepErrorData(
        s.name,
        hs,
        np.array(linear),
        np.array(entrywise),
        np.array(nonlinear),
        bugs.TOL,
        LINEAR_H,
    )


def draw_step_error(data, *, ax=None):
    """Error against ``h`` (both axes logarithmic, ``h`` increasing to the right)."""
    owns = ax is None
    if owns:
        fig = plt.figure(figsize=(7.2, 4.2), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    floor = 1e-17  # an error of exactly 0 drawn at the bottom of the axis
    curves = [
        (data.entrywise, PALETTE["unused"], "^", "linear map, entry by entry"),
        (data.linear, PALETTE["output"], "o", "linear map, rel_error (the checks)"),
        (data.nonlinear, PALETTE["highlight"], "s", "tanh of it, rel_error"),
    ]
    for values, colour, marker, label in curves:
        shown = np.maximum(values, floor)
        ax.plot(
            data.hs,
            shown,
            color=colour,
            lw=1.5,
            label=label,
            marker=marker,
            markersize=4,
        )
        ax.scatter(
            data.hs[[0, -1]],
            shown[[0, -1]],
            color=colour,
            marker=marker,
            s=30,
            zorder=3,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.axhline(data.tol, color=PALETTE["padding"], ls="--", lw=1)
    grey = dict(color="gray", fontsize=8)
    ax.text(
        3e-7, data.tol / 1.6, f"the checks' tolerance, {data.tol:.0e}", va="top", **grey
    )
    ax.axvline(data.linear_h, color=PALETTE["kernel"], ls=":", lw=1.2)
    ax.text(
        data.linear_h * 1.3,
        1e-5,
        f"h = {data.linear_h:g}\n(LINEAR_H)",
        color=PALETTE["kernel"],
        fontsize=8,
        va="center",
    )
    # the linear map's error where the book used to step, and where it steps now
    for h in (1e-6, data.linear_h):
        k = int(np.argmin(np.abs(np.log(data.hs / h))))
        err = max(data.linear[k], floor)
        ax.annotate(
            f"{err:.0e}",
            (data.hs[k], err),
            xytext=(0, -13),
            textcoords="offset points",
            ha="center",
            color=PALETTE["output"],
            fontsize=8,
        )
    ax.text(1e-8, 1e-15, "rounding:\nfalls like 1/h", ha="center", **grey)
    ax.text(1e-3, 1e-4, "truncation:\nrises like h²", ha="right", **grey)
    ax.set_xlabel("step h (log scale)")
    ax.set_ylabel("error against the exact ∇X")
    ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=8
    )
    if owns:
        plt.close(fig)
    return fig


def plot_step_error(setting="one channel", hs=None, *, ax=None):
    """The error of a float64 finite-difference gradient against the step ``h``: for the
    convolution, which is linear (no truncation: the error falls until ``h`` is the
    size of the inputs, :data:`~convbook.gradcheck.LINEAR_H`), measured by
    :func:`~convbook.gradcheck.rel_error` and entry by entry, and for ``tanh`` of it
    (the truncation error rises like ``h**2``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    return draw_step_error(step_error_data(setting, hs), ax=ax)
