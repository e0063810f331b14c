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

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .columns import col2im
from .conv import (
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from .gradcheck import numeric_vjp, rel_error
from .kernels import dilate, rot180, swap_in_out
from .methods.strided import full_conv_border, kernel_matrix, output_matrix
from .shapes import as_pair, conv_params

__all__ = [
    "TOL",
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

from .ladder import (  # the ladder and its checks, for the chapter's `bugs.` names
    SETTINGS,
    TOL,
    Setting,
    Verdict,
    check_col2im,
    check_forward,
    check_grad_bias,
    check_grad_input,
    check_grad_weight,
    check_gradcheck,
)

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
