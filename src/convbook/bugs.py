"""The bug zoo: gradient code with the mistakes people really make, and the checks that catch them.

Each bug is a small function with the signature of the correct one it imitates and exactly one mistake in it.
They are built from convbook's tested pieces (:func:`~convbook.conv.dilate`, :func:`~convbook.conv.rot180`,
:func:`~convbook.conv.conv2d_forward`, ...) so that the mistake is the only new code. The correct twins are
convbook's own functions and, for the two routes written out here, :func:`grad_input_full_conv` and
:func:`grad_weight_by_group`.

The checks (``check_*``) run a candidate on a handful of :data:`SETTINGS` (stride, padding, dilation, groups,
unused rows) against float64 finite differences and return a :class:`Verdict` that names every setting that fails.
What is wrong in each bug is written in :data:`BUGS`, for the chapter's hidden solutions (and the tests); the
functions themselves do not say.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import numpy as np

from .conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from .kernels import dilate, rot180, swap_in_out
from .gradcheck import numeric_vjp, rel_error
from .columns import im2col
from .methods.strided import full_conv_border
from .shapes import as_pair, conv_output_shape, conv_params

__all__ = [
    "Setting",
    "SETTINGS",
    "Verdict",
    "Bug",
    "BUGS",
    "check_grad_input",
    "check_grad_weight",
    "check_col2im",
    "check_gradcheck",
    "grad_input_full_conv",
    "grad_input_stride_forgotten",
    "grad_input_not_rotated",
    "grad_input_dilation_twice",
    "col2im_assign",
    "grad_weight_by_group",
    "grad_weight_groups_sliced",
    "gradcheck",
    "gradcheck_float32",
    "numeric_vjp_float32",
]


# --------------------------------------------------------------------------------------------------------------
# The settings every check runs


class Setting(NamedTuple):
    """One convolution to test on: shapes and hyper-parameters."""

    name: str
    x_shape: tuple
    w_shape: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1

    @property
    def kwargs(self):
        """The hyper-parameters as keyword arguments for convbook's functions."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def arrays(self, seed=0):
        """Random ``x``, ``w`` and ``dout`` (float64) for this setting; the same ones for the same seed."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape)
        w = rng.standard_normal(self.w_shape)
        oh, ow, _, _ = conv_output_shape(self.x_shape[2:], self.w_shape[2:], stride=self.stride,
                                         padding=self.padding, dilation=self.dilation)
        dout = rng.standard_normal((self.x_shape[0], self.w_shape[0], oh, ow))
        return x, w, dout

    def __str__(self):
        extras = [f"{k}={v}" for k, v in self.kwargs.items() if v not in (1, 0)]
        return f"{self.name}: x {self.x_shape}, w {self.w_shape}" + (", " + ", ".join(extras) if extras else "")


SETTINGS = (
    Setting("plain", (1, 1, 5, 5), (1, 1, 3, 3)),
    Setting("channels, padding", (2, 3, 5, 6), (4, 3, 3, 3), padding=1),
    Setting("stride 2, unused row", (1, 2, 8, 7), (3, 2, 3, 3), stride=2),
    Setting("dilation 2", (1, 2, 7, 7), (2, 2, 3, 3), padding=1, dilation=2),
    Setting("groups 2", (1, 4, 5, 5), (4, 2, 3, 3), groups=2),
    Setting("depthwise", (1, 3, 5, 5), (3, 1, 3, 3), padding=1, groups=3),
    Setting("everything", (2, 4, 9, 8), (6, 2, 2, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
)
"""The settings the checks use: a plain case, then one feature at a time, then all of them together."""


class Verdict(NamedTuple):
    """What a check found: ``passed``, and one row ``(setting, ok, detail)`` per setting tried.

    Truthy when it passed. ``failing`` is the first setting that failed (``None`` if none did).
    """

    check: str
    passed: bool
    rows: tuple

    def __bool__(self):
        return self.passed

    @property
    def failing(self):
        return next((s for s, ok, _ in self.rows if not ok), None)

    def __str__(self):
        bad = sum(not ok for _, ok, _ in self.rows)
        head = f"{self.check}: " + ("PASSED" if self.passed else f"FAILED on {bad} of {len(self.rows)} settings")
        lines = [f"  {'ok  ' if ok else 'FAIL'}  {s.name if isinstance(s, Setting) else s:<22} {detail}"
                 for s, ok, detail in self.rows]
        return "\n".join([head, *lines])

    __repr__ = __str__


def _run(check_name, fn, settings, tol, compute):
    """Run ``compute(setting) -> (got, want)`` on every setting; a raise or a wrong shape is a failure too."""
    rows = []
    for s in settings:
        try:
            got, want = compute(s)
        except Exception as exc:  # a crash is a finding, not the end of the check
            rows.append((s, False, f"raised {type(exc).__name__}: {exc}"))
            continue
        got = np.asarray(got)
        if got.shape != want.shape:
            rows.append((s, False, f"shape {got.shape}, expected {want.shape}"))
            continue
        err = rel_error(got, want)
        rows.append((s, err < tol, f"rel. error {err:.1e}"))
    name = f"{check_name}({getattr(fn, '__name__', repr(fn))})"
    return Verdict(name, all(ok for _, ok, _ in rows), tuple(rows))


def _cols(s):
    """A random column matrix shaped like im2col's for setting ``s``."""
    kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
    x, _, _ = s.arrays()
    return np.random.default_rng(1).standard_normal(im2col(x, s.w_shape[2:], **kw).shape)


@functools.lru_cache(maxsize=None)
def _finite_differences(what, s):
    """The float64 finite-difference answer a check compares with; computed once per setting (inputs are seeded).

    ``"dx"``, ``"dw"``: gradients of ``sum(conv2d_forward(x, w) * dout)``; ``"cols"``: col2im's definition, the
    gradient of ``sum(im2col(x) * cols)`` with respect to ``x``. Read-only.
    """
    x, w, dout = s.arrays()
    if what == "dx":
        want = numeric_vjp(lambda x_: conv2d_forward(x_, w, **s.kwargs), x, dout)
    elif what == "dw":
        want = numeric_vjp(lambda w_: conv2d_forward(x, w_, **s.kwargs), w, dout)
    else:
        kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
        want = numeric_vjp(lambda x_: im2col(x_, s.w_shape[2:], **kw), x, _cols(s))
    want.flags.writeable = False
    return want


# --------------------------------------------------------------------------------------------------------------
# The checks


def check_grad_input(fn, settings=SETTINGS, *, tol=1e-6):
    """Check an input-gradient function against float64 finite differences of the forward pass.

    Parameters
    ----------
    fn : callable ``fn(dout, w, x_shape, *, stride, padding, dilation, groups) -> dx``
        Same signature as :func:`~convbook.conv.conv2d_grad_input`.
    settings : sequence of Setting
    tol : float
        Largest :func:`~convbook.gradcheck.rel_error` accepted.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_grad_input(conv2d_grad_input))
    True
    >>> check_grad_input(grad_input_stride_forgotten).failing.name
    'stride 2, unused row'
    """

    def compute(s):
        x, w, dout = s.arrays()
        return fn(dout, w, s.x_shape, **s.kwargs), _finite_differences("dx", s)

    return _run("check_grad_input", fn, settings, tol, compute)


def check_grad_weight(fn, settings=SETTINGS, *, tol=1e-6):
    """Check a weight-gradient function against float64 finite differences of the forward pass.

    Parameters
    ----------
    fn : callable ``fn(dout, x, w_shape, *, stride, padding, dilation, groups) -> dw``
        Same signature as :func:`~convbook.conv.conv2d_grad_weight`.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_grad_weight(conv2d_grad_weight)), bool(check_grad_weight(grad_weight_groups_sliced))
    (True, False)
    """

    def compute(s):
        x, w, dout = s.arrays()
        return fn(dout, x, s.w_shape, **s.kwargs), _finite_differences("dw", s)

    return _run("check_grad_weight", fn, settings, tol, compute)


def check_col2im(fn, settings=SETTINGS, *, tol=1e-6):
    """Check a col2im against its definition: the gradient of :func:`~convbook.columns.im2col`.

    im2col copies pixels into columns, so its backward pass adds each column entry back onto the pixel it was
    copied from; finite differences of im2col (float64) give exactly that.

    Parameters
    ----------
    fn : callable ``fn(cols, x_shape, kernel_size, *, stride, padding, dilation) -> x``
        Same signature as :func:`~convbook.columns.col2im`. (``groups`` plays no part in im2col.)

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from convbook.columns import col2im
    >>> bool(check_col2im(col2im)), bool(check_col2im(col2im_assign))
    (True, False)
    """

    def compute(s):
        kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
        cols = _cols(s)
        return fn(cols, s.x_shape, s.w_shape[2:], **kw), _finite_differences("cols", s)

    return _run("check_col2im", fn, settings, tol, compute)


def check_gradcheck(checker, settings=SETTINGS[:4]):
    """Check a gradient checker: it must accept a correct gradient and reject one that is slightly wrong.

    A checker that cries wolf (rejects a correct gradient) fails; so does one that accepts anything.

    Parameters
    ----------
    checker : callable ``checker(f, x, dout, grad) -> bool``
        True when it believes ``grad`` is the gradient of ``sum(f(x) * dout)`` with respect to ``x``.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_gradcheck(gradcheck)), bool(check_gradcheck(gradcheck_float32))
    (True, False)
    """
    rows = []
    for s in settings:
        x, w, dout = s.arrays()

        def f(x_):
            return conv2d_forward(x_, w, **s.kwargs)

        right = conv2d_grad_input(dout, w, s.x_shape, **s.kwargs)  # convbook's, tested
        wrong = right.copy()
        k = int(np.argmax(np.abs(right)))
        wrong.flat[k] *= 1.001  # one entry off by 0.1%: a real bug can be this small
        accepts, rejects = bool(checker(f, x, dout, right)), not checker(f, x, dout, wrong)
        detail = ("accepts the correct gradient" if accepts else "REJECTS the correct gradient (cries wolf)")
        detail += ", " + ("rejects the wrong one" if rejects else "ACCEPTS the wrong one")
        rows.append((s, accepts and rejects, detail))
    name = f"check_gradcheck({getattr(checker, '__name__', repr(checker))})"
    return Verdict(name, all(ok for _, ok, _ in rows), tuple(rows))


# --------------------------------------------------------------------------------------------------------------
# The input gradient as a full convolution (the tutorial's route), correct and with three bugs
#
# The specimens follow the five steps of :func:`convbook.methods.strided.full_conv_operands` and get one
# of them wrong; steps 2-4 (:func:`~convbook.methods.strided.full_conv_border`) they share with it.


def grad_input_full_conv(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """``dx = conv(pad(dilate(dout, S)), rot180(w))``, channels swapped: the rot180 route, correct.

    convbook's own: :func:`~convbook.conv.conv2d_grad_input` with ``route="rot180"``, whose steps are
    :func:`convbook.methods.strided.full_conv_operands`.

    Examples
    --------
    >>> bool(check_grad_input(grad_input_full_conv))
    True
    """
    return conv2d_grad_input(dout, w, x_shape, stride=stride, padding=padding, dilation=dilation,
                             groups=groups, method="strided", route="rot180")


def grad_input_stride_forgotten(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    big = full_conv_border(dout, w.shape[2:], x_shape, p)
    wt = rot180(swap_in_out(w, p.groups))
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_not_rotated(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)
    wt = swap_in_out(w, p.groups)
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_dilation_twice(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """The input gradient by the rot180 route, for dilated kernels (bug zoo specimen)."""
    p = conv_params(w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)
    wt = dilate(rot180(swap_in_out(w, p.groups)), p.dilation)
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


# --------------------------------------------------------------------------------------------------------------
# col2im


def col2im_assign(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1):
    """col2im, one strided slice per kernel offset (bug zoo specimen).

    Same signature as :func:`~convbook.columns.col2im`: ``cols`` is ``(N*OH*OW, C*KH*KW)``, rows ``(n, i, j)``,
    columns ``(c, p, q)``.
    """
    n, c, h, w = x_shape
    p = conv_params(kernel_size, stride=stride, padding=padding, dilation=dilation)
    oh, ow, _, _ = conv_output_shape((h, w), kernel_size, stride=stride, padding=padding, dilation=dilation)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    dcols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, KH, KW, OH, OW)
    dxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # every window's (i, j) entry, back onto the pixels that kernel offset (i, j) read
            r0, c0 = dh * i, dw * j
            dxp[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw] = dcols[:, :, i, j]
    return dxp[:, :, pt : pt + h, pl : pl + w]


# --------------------------------------------------------------------------------------------------------------
# The weight gradient, one group at a time


def grad_weight_by_group(dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """The weight gradient of a grouped convolution as ``groups`` ungrouped ones, correct.

    Filters ``g * F/groups ... (g+1) * F/groups - 1`` read input channels ``g * C/groups ... (g+1) * C/groups - 1``
    only, so each group's ``dw`` is an ordinary weight gradient of those channels.

    Examples
    --------
    >>> bool(check_grad_weight(grad_weight_by_group))
    True
    """
    f, cg, kh, kw = w_shape
    fg = f // groups
    dw = np.empty(w_shape, dtype=np.result_type(dout, x))
    for g in range(groups):
        xg = x[:, g * cg : (g + 1) * cg]  # this group's input channels
        dw[g * fg : (g + 1) * fg] = conv2d_grad_weight(dout[:, g * fg : (g + 1) * fg], xg, (fg, cg, kh, kw),
                                                       stride=stride, padding=padding, dilation=dilation)
    return dw


def grad_weight_groups_sliced(dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1):
    """The weight gradient of a grouped convolution, one group at a time (bug zoo specimen)."""
    f, cg, kh, kw = w_shape
    fg = f // groups
    dw = np.empty(w_shape, dtype=np.result_type(dout, x))
    for g in range(groups):
        xg = x[:, g : g + cg]
        dw[g * fg : (g + 1) * fg] = conv2d_grad_weight(dout[:, g * fg : (g + 1) * fg], xg, (fg, cg, kh, kw),
                                                       stride=stride, padding=padding, dilation=dilation)
    return dw


# --------------------------------------------------------------------------------------------------------------
# Gradient checkers


def gradcheck(f, x, dout, grad, *, tol=1e-6):
    """True when ``grad`` matches the central-difference gradient of ``sum(f(x) * dout)``, taken in float64.

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> gradcheck(lambda v: v ** 2, x, np.ones(2), 2 * x), gradcheck(lambda v: v ** 2, x, np.ones(2), x)
    (True, False)
    """
    return rel_error(grad, numeric_vjp(f, x, dout)) < tol


def numeric_vjp_float32(f, x, dout, h=1e-6):
    """Central differences of ``sum(f(x) * dout)``, as often written for a float32 model (bug zoo specimen)."""
    xc = np.array(x, dtype=np.float32)
    dout = np.asarray(dout, dtype=np.float32)
    grad = np.zeros_like(xc)
    for k in np.ndindex(xc.shape):
        old = xc[k]
        xc[k] = old + h
        plus = np.sum(np.asarray(f(xc), dtype=np.float32) * dout)
        xc[k] = old - h
        minus = np.sum(np.asarray(f(xc), dtype=np.float32) * dout)
        xc[k] = old
        grad[k] = (plus - minus) / (2 * h)
    return grad


def gradcheck_float32(f, x, dout, grad, *, tol=1e-6):
    """:func:`gradcheck`, with the finite differences taken in float32 (bug zoo specimen)."""
    return rel_error(grad, numeric_vjp_float32(f, x, dout)) < tol


# --------------------------------------------------------------------------------------------------------------
# The register


class Bug(NamedTuple):
    """One specimen: the buggy function, the check that catches it, and what is wrong (the hidden solution)."""

    name: str
    fn: Callable
    check: Callable
    correct: Callable
    mistake: str
    fix: str


BUGS = (
    Bug("stride forgotten", grad_input_stride_forgotten, check_grad_input, grad_input_full_conv,
        "dout is padded but not dilated: the stride's zeros between its rows and columns are missing, so every "
        "gradient lands as if the forward pass had taken stride 1.",
        "big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)"),
    Bug("kernel not rotated", grad_input_not_rotated, check_grad_input, grad_input_full_conv,
        "The channels are swapped but the kernels are not turned 180 degrees: the full convolution needs "
        "w[f, c, KH-1-p, KW-1-q], because output (i, j) reached input pixel (i + p, j + q) through w[p, q].",
        "wt = rot180(swap_in_out(w, p.groups))"),
    Bug("dilation counted twice", grad_input_dilation_twice, check_grad_input, grad_input_full_conv,
        "The kernel is dilated by hand (zeros inserted) and then the convolution is asked for dilation D as well: "
        "the taps end up D*D apart instead of D.",
        "wt = rot180(swap_in_out(w, p.groups))  # and keep dilation=p.dilation in the convolution"),
    Bug("= instead of +=", col2im_assign, check_col2im, None,
        "col2im writes each kernel offset's slice with '=', so where windows overlap the last one wins; a pixel "
        "read by several windows must receive the sum of their gradients.",
        "dxp[...] += dcols[:, :, i, j]"),
    Bug("groups sliced wrong", grad_weight_groups_sliced, check_grad_weight, grad_weight_by_group,
        "Group g's input channels start at g * cg, not at g: x[:, g : g + cg] overlaps the neighbouring group "
        "whenever cg > 1 (depthwise, cg = 1, happens to be right).",
        "xg = x[:, g * cg : (g + 1) * cg]"),
    Bug("float32 check cries wolf", gradcheck_float32, check_gradcheck, gradcheck,
        "The gradient is right; the check is not. In float32, x + h rounds to a neighbour of x about 1e-7 * |x| "
        "away, and f's rounding error divided by 2h swamps the derivative, so a correct gradient misses the "
        "1e-6 tolerance.",
        "take the finite differences in float64 (convbook.numeric_vjp does), whatever dtype the model runs in"),
)
"""Every specimen, with the check that catches it and the fix (for the chapter's hidden solutions)."""
