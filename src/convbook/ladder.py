"""The ladder of settings the bug zoo and the grader run, and the checks against float64
finite differences (:mod:`convbook.bugs` keeps the specimens; both re-export these).

A check (``check_*``) runs a candidate on the ladder of :data:`SETTINGS` (the simplest
first, one feature more at a time, then everything at once) and returns a
:class:`Verdict` that names every setting that fails.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from .columns import im2col
from .conv import (
    conv2d_forward,
    conv2d_grad_input,
)
from .gradcheck import LINEAR_H, numeric_vjp, rel_error
from .shapes import conv_params

__all__ = [
    "TOL",
    "Setting",
    "SETTINGS",
    "Verdict",
    "check_forward",
    "check_grad_input",
    "check_grad_weight",
    "check_grad_bias",
    "check_col2im",
    "check_gradcheck",
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
From "batch" on every setting has two samples, at least two channels and two filters,
and a bias."""


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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_forward(cb.conv2d_forward))
    True
    >>> bool(check_forward(bugs.forward_kernel_flipped))
    False
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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_grad_input(cb.conv2d_grad_input))
    True
    >>> check_grad_input(bugs.grad_input_stride_forgotten).failing.name
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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_grad_weight(cb.conv2d_grad_weight))
    True
    >>> bool(check_grad_weight(bugs.grad_weight_groups_sliced))
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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_grad_bias(cb.conv2d_grad_bias))
    True
    >>> check_grad_bias(bugs.grad_bias_batch_mean).failing.name
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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_col2im(cb.col2im)), bool(check_col2im(bugs.col2im_assign))
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
    >>> import convbook as cb
    >>> from convbook import bugs
    >>> bool(check_gradcheck(bugs.gradcheck))
    True
    >>> bool(check_gradcheck(bugs.gradcheck_float32))
    False
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
