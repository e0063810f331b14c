"""The bug zoo: layer code with the mistakes people really make, and the checks that
catch them.

Each specimen is a small function with the signature of the correct one it imitates and
exactly one mistake in it. They are built from convbook's tested pieces
(:func:`~convbook.kernels.dilate`, :func:`~convbook.kernels.rot180`,
:func:`~convbook.methods.strided.full_conv_border`,
:func:`~convbook.conv.conv2d_forward`, ...) so that the mistake is the only new code.
The specimens of the input gradient's rot180 route follow the five steps of
:func:`convbook.full_conv_operands` and get one step wrong; the correct route is the
core's (:func:`grad_input_full_conv`).

The checks (``check_*``) run a candidate on the ladder of :data:`SETTINGS` (the simplest
first, one feature more at a time, then everything at once) against float64 finite
differences and return a :class:`Verdict` that names every setting that fails. The
register :data:`BUGS` says, for every specimen, what is wrong (for the chapter's hidden
solutions and the tests; the functions themselves do not say), on which settings it
shows, and in one sentence what the grader (:func:`convbook.check.check_layer`) tells a
reader whose code fails on the same settings.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .columns import col2im, im2col
from .conv import (
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from .gradcheck import LINEAR_H, numeric_vjp, rel_error
from .kernels import dilate, rot180, swap_in_out
from .methods.strided import full_conv_border, kernel_matrix, output_matrix
from .shapes import as_pair, conv_params

__all__ = [
    "Setting",
    "SETTINGS",
    "Verdict",
    "Bug",
    "BUGS",
    "check_forward",
    "check_grad_input",
    "check_grad_weight",
    "check_grad_bias",
    "check_col2im",
    "check_gradcheck",
    "grad_input_full_conv",
    "grad_input_stride_forgotten",
    "grad_input_padding_kept",
    "grad_input_not_rotated",
    "grad_input_groups_not_swapped",
    "grad_input_dilation_twice",
    "col2im_assign",
    "grad_input_col2im_assign",
    "grad_weight_by_group",
    "grad_weight_groups_sliced",
    "forward_kernel_flipped",
    "grad_bias_batch_mean",
    "gradcheck",
    "gradcheck_float32",
    "numeric_vjp_float32",
]

TOL = 1e-6
"""The largest :func:`~convbook.gradcheck.rel_error` a check accepts."""


# --------------------------------------------------------------------------------------
# The settings every check runs: the ladder

_DEFAULTS = dict(stride=1, padding=0, dilation=1, groups=1)


class Setting(NamedTuple):
    """One convolution to test on: shapes, hyper-parameters, whether it has a bias."""

    name: str
    x_shape: tuple
    w_shape: tuple
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    groups: int = 1
    bias: bool = True

    @property
    def kwargs(self):
        """The hyper-parameters as keyword arguments for convbook's functions."""
        return dict(
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    @property
    def params(self):
        """The normalised hyper-parameters, a :class:`~convbook.shapes.ConvParams`."""
        return conv_params(self.w_shape[2:], **self.kwargs)

    @property
    def out_shape(self):
        """``(N, F, OH, OW)``."""
        oh, ow, _, _ = self.params.output_shape(self.x_shape[2:], self.w_shape[2:])
        return (self.x_shape[0], self.w_shape[0], oh, ow)

    def changed(self):
        """The hyper-parameters that differ from their defaults, by name.

        Examples
        --------
        >>> SETTINGS[4].changed()
        {'padding': 1}
        """
        return {k: v for k, v in self.kwargs.items() if v != _DEFAULTS[k]}

    def arrays(self, seed=0, *, integers=False):
        """Random ``x``, ``w`` and ``dout`` (float64) for this setting; the same ones
        for the same seed; ``integers``: small whole numbers (-3 .. 3), easier to read.
        """
        rng = np.random.default_rng(seed)

        def draw(shape):
            if integers:
                return rng.integers(-3, 4, size=shape).astype(np.float64)
            return rng.standard_normal(shape)

        return draw(self.x_shape), draw(self.w_shape), draw(self.out_shape)

    def bias_array(self, seed=0, *, integers=False):
        """The bias ``b`` (``F``,) for this setting, or ``None`` if it has none."""
        if not self.bias:
            return None
        rng = np.random.default_rng([seed, 1])
        if integers:
            return rng.integers(-3, 4, size=self.w_shape[0]).astype(np.float64)
        return rng.standard_normal(self.w_shape[0])

    def __str__(self):
        extras = [f"{k}={v!r}" for k, v in self.changed().items()]
        extras += [] if self.bias else ["no bias"]
        head = f"{self.name}: x {self.x_shape}, w {self.w_shape}"
        return head + (", " + ", ".join(extras) if extras else "")


SETTINGS = (
    Setting("one channel", (1, 1, 5, 5), (1, 1, 3, 3), bias=False),
    Setting("bias", (1, 1, 5, 5), (1, 1, 3, 3)),
    Setting("channels", (1, 3, 5, 5), (2, 3, 3, 3)),
    Setting("batch", (2, 3, 5, 6), (2, 3, 3, 3)),
    Setting("padding 1", (2, 2, 5, 6), (3, 2, 3, 3), padding=1),
    Setting("'same', even kernel", (2, 2, 5, 6), (3, 2, 2, 3), padding="same"),
    Setting("'valid'", (2, 2, 5, 6), (3, 2, 3, 2), padding="valid"),
    Setting("padding (2, 1)", (2, 2, 5, 6), (3, 2, 3, 3), padding=(2, 1)),
    Setting("stride 2", (2, 2, 8, 7), (3, 2, 3, 3), stride=2),
    Setting("stride 2, kernel 2", (2, 2, 6, 8), (3, 2, 2, 2), stride=2),
    Setting("dilation 2", (2, 2, 7, 8), (3, 2, 3, 3), dilation=2),
    Setting("groups 2", (2, 4, 5, 5), (4, 2, 3, 3), groups=2),
    Setting("depthwise", (2, 3, 5, 5), (6, 1, 3, 3), groups=3),
    Setting(
        "everything",
        (2, 4, 10, 8),
        (6, 2, 2, 3),
        stride=(2, 1),
        padding=(1, 2),
        dilation=(2, 1),
        groups=2,
    ),
)
"""The ladder: one channel and no bias, then one feature more at a time (bias,
channels, a batch; padding, ``'same'`` with its uneven split, ``'valid'``, a pair;
stride, once with windows that overlap and a row no window reaches, once with windows
side by side; dilation; groups, depthwise with two filters per channel), then all of
them at once.
From "batch" on every setting has two samples, three or more channels and a bias."""


class Verdict(NamedTuple):
    """What a check found: ``passed``, and a row ``(setting, ok, detail)`` per setting.

    Truthy when it passed. ``failing`` is the first setting that failed (``None`` if
    none did); ``errors`` the relative error on each setting (NaN where the candidate
    raised or returned the wrong shape; empty for a check of a checker).
    """

    check: str
    passed: bool
    rows: tuple
    errors: tuple = ()

    def __bool__(self):
        return self.passed

    @property
    def failing(self):
        return next((s for s, ok, _ in self.rows if not ok), None)

    @property
    def failed(self):
        """The names of the settings that failed, as a set."""
        return {getattr(s, "name", s) for s, ok, _ in self.rows if not ok}

    def __str__(self):
        bad = sum(not ok for _, ok, _ in self.rows)
        verdict = "PASSED" if self.passed else f"FAILED on {bad} of {len(self.rows)}"
        lines = [f"{self.check}: {verdict}"]
        for s, ok, detail in self.rows:
            name = s.name if isinstance(s, Setting) else s
            lines.append(f"  {'ok  ' if ok else 'FAIL'}  {name:<20} {detail}")
        return "\n".join(lines)

    __repr__ = __str__


def _run(check_name, fn, settings, tol, compute):
    """Run ``compute(setting) -> (got, want)`` on every setting; a raise or a wrong
    shape is a failure too."""
    rows, errors = [], []
    for s in settings:
        errors.append(float("nan"))
        try:
            got, want = compute(s)
        except Exception as exc:  # a crash is a finding, not the end of the check
            rows.append((s, False, f"raised {type(exc).__name__}: {exc}"))
            continue
        got = np.asarray(got)
        if got.shape != want.shape:
            rows.append((s, False, f"shape {got.shape}, expected {want.shape}"))
            continue
        errors[-1] = err = rel_error(got, want)
        rows.append((s, err < tol, f"rel. error {err:.1e}"))
    name = f"{check_name}({getattr(fn, '__name__', repr(fn))})"
    return Verdict(name, all(ok for _, ok, _ in rows), tuple(rows), tuple(errors))


def _cols(s):
    """A random column matrix shaped like im2col's for setting ``s``."""
    kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
    x, _, _ = s.arrays()
    shape = im2col(x, s.w_shape[2:], **kw).shape
    return np.random.default_rng(1).standard_normal(shape)


@functools.cache
def _finite_differences(what, s):
    """The float64 finite-difference answer a check compares with; computed once per
    setting (the inputs are seeded). Read-only.

    ``"dx"``, ``"dw"``, ``"db"``: gradients of ``sum(conv2d_forward(x, w, b) * dout)``;
    ``"cols"``: col2im's definition, the gradient of ``sum(im2col(x) * cols)`` with
    respect to ``x``. The step is :data:`~convbook.gradcheck.LINEAR_H`: every one of
    these maps is linear in the argument perturbed, so a central difference has no
    truncation error, and a large step leaves only about 1e-16 of rounding.
    """
    x, w, dout = s.arrays()
    b = s.bias_array()
    h = LINEAR_H
    if what == "dx":
        want = numeric_vjp(lambda x_: conv2d_forward(x_, w, b, **s.kwargs), x, dout, h)
    elif what == "dw":
        want = numeric_vjp(lambda w_: conv2d_forward(x, w_, b, **s.kwargs), w, dout, h)
    elif what == "db":
        b = np.zeros(s.w_shape[0]) if b is None else b
        want = numeric_vjp(lambda b_: conv2d_forward(x, w, b_, **s.kwargs), b, dout, h)
    else:
        kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
        want = numeric_vjp(lambda x_: im2col(x_, s.w_shape[2:], **kw), x, _cols(s), h)
    want.flags.writeable = False
    return want


@functools.cache
def _reference_forward(s):
    x, w, _ = s.arrays()
    y = conv2d_forward(x, w, s.bias_array(), **s.kwargs, method="reference")
    y.flags.writeable = False
    return y


# --------------------------------------------------------------------------------------
# The checks


def check_forward(fn, settings=SETTINGS, *, tol=TOL):
    """Check a forward pass against convbook's loop reference.

    Parameters
    ----------
    fn : callable ``fn(x, w, b, *, stride, padding, dilation, groups) -> y``
        Same signature as :func:`~convbook.conv.conv2d_forward`.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_forward(conv2d_forward)), bool(check_forward(forward_kernel_flipped))
    (True, False)
    """

    def compute(s):
        x, w, _ = s.arrays()
        return fn(x, w, s.bias_array(), **s.kwargs), _reference_forward(s)

    return _run("check_forward", fn, settings, tol, compute)


def check_grad_input(fn, settings=SETTINGS, *, tol=TOL):
    """Check an input-gradient function against float64 finite differences of the
    forward pass.

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
    'stride 2'
    """

    def compute(s):
        x, w, dout = s.arrays()
        return fn(dout, w, s.x_shape, **s.kwargs), _finite_differences("dx", s)

    return _run("check_grad_input", fn, settings, tol, compute)


def check_grad_weight(fn, settings=SETTINGS, *, tol=TOL):
    """Check a weight-gradient function against float64 finite differences of the
    forward pass.

    Parameters
    ----------
    fn : callable ``fn(dout, x, w_shape, *, stride, padding, dilation, groups) -> dw``
        Same signature as :func:`~convbook.conv.conv2d_grad_weight`.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_grad_weight(conv2d_grad_weight))
    True
    >>> bool(check_grad_weight(grad_weight_groups_sliced))
    False
    """

    def compute(s):
        x, w, dout = s.arrays()
        return fn(dout, x, s.w_shape, **s.kwargs), _finite_differences("dw", s)

    return _run("check_grad_weight", fn, settings, tol, compute)


def check_grad_bias(fn, settings=SETTINGS, *, tol=TOL):
    """Check a bias-gradient function against float64 finite differences of the
    forward pass.

    Parameters
    ----------
    fn : callable ``fn(dout) -> db``
        Same signature as :func:`~convbook.conv.conv2d_grad_bias`.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_grad_bias(conv2d_grad_bias))
    True
    >>> check_grad_bias(grad_bias_batch_mean).failing.name
    'batch'
    """

    def compute(s):
        _, _, dout = s.arrays()
        return fn(dout), _finite_differences("db", s)

    return _run("check_grad_bias", fn, settings, tol, compute)


def check_col2im(fn, settings=SETTINGS, *, tol=TOL):
    """Check a col2im against its definition: the gradient of
    :func:`~convbook.columns.im2col`.

    im2col copies pixels into columns, so its backward pass adds each column entry back
    onto the pixel it was copied from; finite differences of im2col (float64) give
    exactly that.

    Parameters
    ----------
    fn : callable ``fn(cols, x_shape, kernel_size, *, stride, padding, dilation) -> x``
        Same signature as :func:`~convbook.columns.col2im`. (``groups`` plays no part in
        im2col.)

    Returns
    -------
    Verdict

    Examples
    --------
    >>> bool(check_col2im(col2im)), bool(check_col2im(col2im_assign))
    (True, False)
    """

    def compute(s):
        kw = dict(stride=s.stride, padding=s.padding, dilation=s.dilation)
        got = fn(_cols(s), s.x_shape, s.w_shape[2:], **kw)
        return got, _finite_differences("cols", s)

    return _run("check_col2im", fn, settings, tol, compute)


def check_gradcheck(checker, settings=SETTINGS[:4]):
    """Check a gradient checker: it must accept a correct gradient and reject one that
    is slightly wrong.

    A checker that cries wolf (rejects a correct gradient) fails; so does one that
    accepts anything.

    Parameters
    ----------
    checker : callable ``checker(f, x, dout, grad) -> bool``
        True when it believes ``grad`` is the gradient of ``sum(f(x) * dout)`` with
        respect to ``x``.

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

        def f(x_, w=w, s=s):
            return conv2d_forward(x_, w, **s.kwargs)

        right = conv2d_grad_input(dout, w, s.x_shape, **s.kwargs)  # convbook's, tested
        wrong = right.copy()
        k = int(np.argmax(np.abs(right)))
        wrong.flat[k] *= 1.001  # one entry off by 0.1%: a real bug can be this small
        accepts = bool(checker(f, x, dout, right))
        rejects = not checker(f, x, dout, wrong)
        detail = (
            "accepts the correct gradient" if accepts else "REJECTS the correct one"
        )
        detail += ", " + (
            "rejects the wrong one" if rejects else "ACCEPTS the wrong one"
        )
        if not accepts:
            detail += " (cries wolf)"
        rows.append((s, accepts and rejects, detail))
    name = f"check_gradcheck({getattr(checker, '__name__', repr(checker))})"
    return Verdict(name, all(ok for _, ok, _ in rows), tuple(rows))


# --------------------------------------------------------------------------------------
# The input gradient as a full convolution (the rot180 route), correct and with bugs
#
# The specimens follow the five steps of :func:`convbook.full_conv_operands` and get one
# of them wrong; the steps they get right they take from convbook
# (:func:`~convbook.methods.strided.full_conv_border` is steps 2-4).


def grad_input_full_conv(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """``dx = conv(pad(dilate(dout, S)), rot180(w))``, channels swapped: the rot180
    route, correct.

    convbook's own: :func:`~convbook.conv.conv2d_grad_input` with ``route="rot180"``,
    whose five steps are :func:`convbook.full_conv_operands`.

    Examples
    --------
    >>> bool(check_grad_input(grad_input_full_conv))
    True
    """
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return conv2d_grad_input(dout, w, x_shape, **kw, method="strided", route="rot180")


def grad_input_stride_forgotten(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    big = full_conv_border(dout, w.shape[2:], x_shape, p)  # 2. - 4.
    wt = rot180(swap_in_out(w, p.groups))  # 5.
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_padding_kept(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    (kh, kw), (dh, dw) = w.shape[2:], p.dilation
    eh, ew = dh * (kh - 1), dw * (kw - 1)  # the full convolution's border
    unused = p.output_shape(x_shape[2:], (kh, kw))
    big = dilate(dout, p.stride)  # 1.
    rows, cols = (eh, eh + unused.unused_h), (ew, ew + unused.unused_w)
    big = np.pad(big, ((0, 0), (0, 0), rows, cols))  # 2. and 3.
    wt = rot180(swap_in_out(w, p.groups))  # 5.
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_not_rotated(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)  # 1. - 4.
    wt = swap_in_out(w, p.groups)  # 5.
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_groups_not_swapped(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the rot180 route (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)  # 1. - 4.
    wt = rot180(w).transpose(1, 0, 2, 3)  # 5.: (C/G, F, KH, KW)
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


def grad_input_dilation_twice(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the rot180 route, dilated kernels (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)  # 1. - 4.
    wt = dilate(rot180(swap_in_out(w, p.groups)), p.dilation)  # 5.
    return conv2d_forward(big, wt, dilation=p.dilation, groups=p.groups)


# --------------------------------------------------------------------------------------
# col2im, and the input gradient by the col2im route that uses it


def col2im_assign(cols, x_shape, kernel_size, *, stride=1, padding=0, dilation=1):
    """col2im, one strided slice per kernel offset (bug zoo specimen).

    Same signature as :func:`~convbook.columns.col2im`: ``cols`` is
    ``(N*OH*OW, C*KH*KW)``, rows ``(n, i, j)``, columns ``(c, p, q)``.
    """
    n, c, h, w = x_shape
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    oh, ow, _, _ = p.output_shape((h, w), (kh, kw))
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    dcols = cols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    dxp = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            # kernel offset (i, j) of every window: the pixels it read, one slice
            rows = slice(dh * i, dh * i + sh * (oh - 1) + 1, sh)
            columns = slice(dw * j, dw * j + sw * (ow - 1) + 1, sw)
            dxp[:, :, rows, columns] = dcols[:, :, i, j]  # (N, C, OH, OW)
    return dxp[:, :, pt : pt + h, pl : pl + w]


def grad_input_col2im_assign(
    dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The input gradient by the col2im route: ``dX' = K'^T . dY'``, then
    :func:`col2im_assign` (bug zoo specimen)."""
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    n, c = x_shape[:2]
    (kh, kw), (oh, ow) = w.shape[2:], dout.shape[2:]
    kmat = kernel_matrix(w, p.groups)  # (G, F/G, Cg*KH*KW)
    dcols = kmat.transpose(0, 2, 1) @ output_matrix(dout, p.groups)
    dcols = dcols.reshape(c, kh, kw, n, oh, ow).transpose(3, 4, 5, 0, 1, 2)
    dcols = dcols.reshape(n * oh * ow, c * kh * kw)  # rows (n, i, j), columns (c, p, q)
    kw_ = dict(stride=stride, padding=padding, dilation=dilation)
    return col2im_assign(dcols, x_shape, (kh, kw), **kw_)


# --------------------------------------------------------------------------------------
# The weight gradient, one group at a time; the bias gradient; the forward pass


def grad_weight_by_group(
    dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The weight gradient of a grouped convolution as ``groups`` ungrouped ones,
    correct.

    Filters ``g * F/groups ... (g+1) * F/groups - 1`` read input channels
    ``g * C/groups ... (g+1) * C/groups - 1`` only, so each group's ``dw`` is an
    ordinary weight gradient of those channels.

    Examples
    --------
    >>> bool(check_grad_weight(grad_weight_by_group))
    True
    """
    f, cg, kh, kw = w_shape
    fg = f // groups
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    dw = np.empty(w_shape, dtype=np.result_type(dout, x))
    for g in range(groups):
        xg = x[:, g * cg : (g + 1) * cg]  # this group's input channels
        dout_g = dout[:, g * fg : (g + 1) * fg]
        dw[g * fg : (g + 1) * fg] = conv2d_grad_weight(
            dout_g, xg, (fg, cg, kh, kw), **hyper
        )
    return dw


def grad_weight_groups_sliced(
    dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1
):
    """The weight gradient of a grouped convolution, one group at a time (bug zoo
    specimen)."""
    f, cg, kh, kw = w_shape
    fg = f // groups
    hyper = dict(stride=stride, padding=padding, dilation=dilation)
    dw = np.empty(w_shape, dtype=np.result_type(dout, x))
    for g in range(groups):
        xg = x[:, g : g + cg]
        dout_g = dout[:, g * fg : (g + 1) * fg]
        dw[g * fg : (g + 1) * fg] = conv2d_grad_weight(
            dout_g, xg, (fg, cg, kh, kw), **hyper
        )
    return dw


def grad_bias_batch_mean(dout):
    """The bias gradient, ``(F,)`` (bug zoo specimen)."""
    return dout.mean(axis=0).sum(axis=(1, 2))


def forward_kernel_flipped(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """The forward pass, as the textbooks of signal processing define convolution (bug
    zoo specimen)."""
    hyper = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    w_conv = w[:, :, ::-1, ::-1]  # y[i, j] = sum of x[i - p, j - q] * w[p, q]
    return conv2d_forward(x, w_conv, b, **hyper)


# --------------------------------------------------------------------------------------
# Gradient checkers


def gradcheck(f, x, dout, grad, *, tol=TOL):
    """True when ``grad`` matches the central-difference gradient of
    ``sum(f(x) * dout)``, taken in float64.

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> ones = np.ones(2)
    >>> gradcheck(lambda v: v**2, x, ones, 2 * x), gradcheck(lambda v: v**2, x, ones, x)
    (True, False)
    """
    return rel_error(grad, numeric_vjp(f, x, dout)) < tol


def numeric_vjp_float32(f, x, dout, h=1e-6):
    """Central differences of ``sum(f(x) * dout)``, as often written for a float32 model
    (bug zoo specimen)."""
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


def gradcheck_float32(f, x, dout, grad, *, tol=TOL):
    """:func:`gradcheck`, with the finite differences taken in float32 (bug zoo
    specimen)."""
    return rel_error(grad, numeric_vjp_float32(f, x, dout)) < tol


# --------------------------------------------------------------------------------------
# The register


def _overlap(s):
    """True when neighbouring windows share pixels (stride < the dilated kernel)."""
    p = s.params
    extent = [d * (k - 1) + 1 for d, k in zip(p.dilation, s.w_shape[2:], strict=True)]
    return any(st < e for st, e in zip(p.stride, extent, strict=True))


class Bug(NamedTuple):
    """One specimen, what is wrong in it, and how it shows.

    ``fn`` is the specimen as the chapter shows it; ``check`` the check (of this module)
    that catches it and ``correct`` a correct function that passes the same check.
    ``mistake`` and ``fix`` are the chapter's hidden solution. For the grader
    (:func:`convbook.check.check_layer`): ``output`` (``"y"``, ``"dx"``, ``"dw"`` or
    ``"db"``; ``None`` for a gradient checker, which is not layer code), ``graded`` the
    keyword argument and function to grade, ``shows_on(setting)`` whether the mistake
    shows on a setting (exactly the settings the specimen fails), ``kind`` how it fails
    there (``"value"``, ``"shape"`` or ``"error"``), ``diagnosis`` the grader's one
    sentence and ``anchor``, ``title`` the bug zoo's section that explains it.
    ``exact``: whether the mistake fixes the wrong numbers, whatever the code around it
    (then the grader names it only for code that returns the specimen's very numbers);
    with ``=`` instead of ``+=`` they depend on the order of the loops.
    """

    name: str
    fn: Callable
    check: Callable
    correct: Callable | None
    mistake: str
    fix: str
    output: str | None = None
    graded: tuple | None = None
    shows_on: Callable = bool  # every setting
    kind: str = "value"
    diagnosis: str = ""
    anchor: str = ""
    title: str = ""
    exact: bool = True


BUGS = (
    Bug(
        "stride forgotten",
        grad_input_stride_forgotten,
        check_grad_input,
        grad_input_full_conv,
        "Step 1 is missing: dout is bordered but not dilated, so the zeros the stride "
        "threw away are not put back between its rows and columns. The full "
        "convolution is then the input gradient of a stride-1 layer with the same "
        "output: a smaller dx, of the wrong shape, with every gradient on the wrong "
        "pixel.",
        "big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)",
        output="dx",
        graded=("grad_input", grad_input_stride_forgotten),
        shows_on=lambda s: s.params.stride != (1, 1),
        kind="shape",
        diagnosis="dY is not dilated by the stride before the full convolution: the "
        "S - 1 zeros between its rows and columns are missing, so dx comes out the "
        "size a stride-1 layer's input would have.",
        anchor="bug-stride-forgotten",
        title="The forgotten stride",
    ),
    Bug(
        "padding not cropped",
        grad_input_padding_kept,
        check_grad_input,
        grad_input_full_conv,
        "Step 4 is missing: the full convolution gives the gradient of the padded "
        "input, (H + P_top + P_bottom) rows; x's own pixels are rows P_top .. P_top + "
        "H - 1 of it, and the padding's rows must be cut off (or, as convbook does, "
        "never computed).",
        "big = full_conv_border(dilate(dout, p.stride), w.shape[2:], x_shape, p)",
        output="dx",
        graded=("grad_input", grad_input_padding_kept),
        shows_on=lambda s: any(s.params.padding),
        kind="shape",
        diagnosis="dx still has the padding's rows and columns: it is the gradient of "
        "the padded input; keep only rows P_top .. P_top + H - 1 (and the same "
        "columns).",
        anchor="bug-padding-not-cropped",
        title="The padding left on",
    ),
    Bug(
        "kernel not rotated",
        grad_input_not_rotated,
        check_grad_input,
        grad_input_full_conv,
        "Step 5 is half done: the channels are swapped but the kernels are not turned "
        "180 degrees. The full convolution needs w[f, c, KH-1-p, KW-1-q], because "
        "output (i, j) reached input pixel (i + p, j + q) through w[p, q].",
        "wt = rot180(swap_in_out(w, p.groups))",
        output="dx",
        graded=("grad_input", grad_input_not_rotated),
        shows_on=lambda s: True,
        diagnosis="the kernel is not turned by 180 degrees in the full convolution: "
        "seen from an input pixel, the outputs it reached lie at offsets -p, -q, so "
        "the kernel must be read backwards, w[KH-1-p, KW-1-q].",
        anchor="bug-kernel-not-turned",
        title="The kernel that was not turned",
    ),
    Bug(
        "groups' channels not swapped",
        grad_input_groups_not_swapped,
        check_grad_input,
        grad_input_full_conv,
        "Step 5 swaps the input and output channels of the whole kernel, "
        "(F, C/G) -> (C/G, F), which is the swap only when groups == 1. With G groups "
        "each group's block must be swapped on its own and the blocks stacked, giving "
        "(C, F/G, KH, KW): swap_in_out(w, groups).",
        "wt = rot180(swap_in_out(w, p.groups))",
        output="dx",
        graded=("grad_input", grad_input_groups_not_swapped),
        shows_on=lambda s: s.groups > 1,
        kind="error",
        diagnosis="the kernel's channels are swapped as one block, "
        "w.transpose(1, 0, 2, 3), which is right only for groups == 1: swap each "
        "group's (F/G, C/G) block and stack them, (C, F/G, KH, KW).",
        anchor="bug-groups-not-swapped",
        title="Groups swapped as one block",
    ),
    Bug(
        "dilation counted twice",
        grad_input_dilation_twice,
        check_grad_input,
        grad_input_full_conv,
        "The kernel is dilated by hand (zeros inserted) and then the convolution is "
        "asked for dilation D as well: the taps end up D*D apart instead of D.",
        "wt = rot180(swap_in_out(w, p.groups))  # and keep dilation=p.dilation",
        output="dx",
        graded=("grad_input", grad_input_dilation_twice),
        shows_on=lambda s: s.params.dilation != (1, 1),
        kind="shape",
        diagnosis="the dilation is applied twice, once by inserting zeros into the "
        "kernel and once more by the convolution's dilation: the taps end up D*D "
        "apart instead of D.",
        anchor="bug-dilation-twice",
        title="Dilation counted twice",
    ),
    Bug(
        "= instead of +=",
        col2im_assign,
        check_col2im,
        col2im,
        "col2im writes each kernel offset's slice with '=', so where windows overlap "
        "the slice written last overwrites the others; a pixel read by several windows "
        "must receive the sum of their gradients.",
        "dxp[:, :, rows, columns] += dcols[:, :, i, j]",
        output="dx",
        graded=("grad_input", grad_input_col2im_assign),
        shows_on=_overlap,
        diagnosis="the columns are put back with = instead of += (col2im): where "
        "windows overlap, a pixel must receive the sum of the gradients of every "
        "window that read it, not the last one.",
        anchor="bug-assign",
        title="= instead of +=",
        exact=False,
    ),
    Bug(
        "groups sliced wrong",
        grad_weight_groups_sliced,
        check_grad_weight,
        grad_weight_by_group,
        "Group g's input channels start at g * cg, not at g: x[:, g : g + cg] overlaps "
        "the neighbouring group whenever cg > 1 (depthwise, cg = 1, happens to be "
        "right).",
        "xg = x[:, g * cg : (g + 1) * cg]",
        output="dw",
        graded=("grad_weight", grad_weight_groups_sliced),
        shows_on=lambda s: s.groups > 1 and s.w_shape[1] > 1,
        diagnosis="group g reads the wrong input channels: they start at g * C/G, "
        "not at g (invisible for depthwise layers, where C/G = 1).",
        anchor="bug-groups-sliced",
        title="Groups sliced wrong",
    ),
    Bug(
        "kernel flipped in the forward pass",
        forward_kernel_flipped,
        check_forward,
        conv2d_forward,
        "This is convolution as signal processing defines it "
        "(scipy.signal.convolve2d): the kernel runs backwards over the window. A "
        "convolution layer (PyTorch's conv2d, and this book) computes the "
        "cross-correlation, y[i, j] = sum of x[i + p, j + q] * w[p, q], with the "
        "kernel as it is stored.",
        "return conv2d_forward(x, w, b, **hyper)",
        output="y",
        graded=("forward", forward_kernel_flipped),
        shows_on=lambda s: True,
        diagnosis="the forward pass turns the kernel (the convolution of signal "
        "processing); a convolution layer computes the cross-correlation, "
        "sum of x[i + p, j + q] * w[p, q].",
        anchor="bug-forward-flipped",
        title="The kernel flipped in the forward pass",
    ),
    Bug(
        "bias gradient averaged over the batch",
        grad_bias_batch_mean,
        check_grad_bias,
        conv2d_grad_bias,
        "Every sample and every position adds b[f] to its output, so the bias "
        "gradient is the sum of dout over the batch as well as over the positions. "
        "Averaging over the batch belongs to the loss (if it is a mean, dout already "
        "carries the 1/N).",
        "return dout.sum(axis=(0, 2, 3))",
        output="db",
        graded=("grad_bias", grad_bias_batch_mean),
        shows_on=lambda s: s.x_shape[0] > 1,
        diagnosis="db is averaged over the batch instead of summed: every sample adds "
        "the bias, so db[f] is the sum of dout[n, f, i, j] over n, i and j.",
        anchor="bug-bias-mean",
        title="The bias gradient averaged",
    ),
    Bug(
        "float32 check cries wolf",
        gradcheck_float32,
        check_gradcheck,
        gradcheck,
        "The gradient is right; the check is not. In float32, x + h rounds to a "
        "neighbour of x about 1e-7 * |x| away, and f's rounding error divided by 2h "
        "swamps the derivative, so a correct gradient misses the 1e-6 tolerance.",
        "take the finite differences in float64 (convbook.numeric_vjp does), whatever "
        "dtype the model runs in",
        anchor="bug-float32-check",
        title="The gradient check that cries wolf",
    ),
)
"""Every specimen, with the check that catches it, the fix (for the chapter's hidden
solutions), and what the grader says about it."""
