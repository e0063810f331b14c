"""The loop reference: convolution and its gradients written straight from the definition.

Slow and obviously right; every faster method is tested against these two functions.
"""

from __future__ import annotations

import numpy as np

from .shapes import check_conv_inputs, check_dout

__all__ = ["conv2d_forward_reference", "conv2d_backward_reference"]


def _pad(x, padding):
    pt, pb, pl, pr = padding
    return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))


def conv2d_forward_reference(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as PyTorch) by loops over the definition.

    .. math:: y_{n,f,i,j} = b_f + \\sum_{c,p,q} w_{f,c,p,q}\\, x^{\\text{pad}}_{n,\\, g c,\\, S i + D p,\\, S j + D q}

    where ``g c`` is input channel ``c`` of filter ``f``'s group.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
    w : (F, C // groups, KH, KW) ndarray
    b : (F,) ndarray, optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
    groups : int

    Returns
    -------
    out : (N, F, OH, OW) ndarray

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> conv2d_forward_reference(x, w)[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    x, w, b, p, shape = check_conv_inputs(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    n_batch, _, _, _ = x.shape
    f_total, cg, kh, kw = w.shape
    fg = f_total // p.groups
    (sh, sw), (dh, dw) = p.stride, p.dilation
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    xp = _pad(x, p.padding)
    out = np.zeros((n_batch, f_total, shape.oh, shape.ow), dtype=dtype)
    for n in range(n_batch):
        for f in range(f_total):
            g = f // fg  # the group this filter belongs to
            for i in range(shape.oh):
                for j in range(shape.ow):
                    total = 0.0
                    for c in range(cg):
                        for pi in range(kh):
                            for qj in range(kw):
                                total += w[f, c, pi, qj] * xp[n, g * cg + c, sh * i + dh * pi, sw * j + dw * qj]
                    out[n, f, i, j] = total
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv2d_backward_reference(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of :func:`conv2d_forward_reference` by the same loops, run backwards.

    Every product ``w[f, c, p, q] * xpad[n, gc, S i + D p, S j + D q]`` in the forward sum sends
    ``dout[n, f, i, j]`` times the other factor to each factor's gradient; the padding is cut off at the end.

    Returns
    -------
    dx : (N, C, H, W) ndarray
    dw : (F, C // groups, KH, KW) ndarray
    db : (F,) ndarray

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> dx, dw, db = conv2d_backward_reference(np.ones((1, 1, 2, 2)), x, w)
    >>> dx[0, 0]
    array([[0., 1., 1.],
           [2., 6., 4.],
           [2., 5., 3.]])
    >>> dw[0, 0], db
    (array([[ 8., 12.],
           [20., 24.]]), array([4.]))
    """
    x, w, _, p, shape = check_conv_inputs(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dout = check_dout(dout, x.shape, w.shape, p)
    n_batch, _, h, wd = x.shape
    f_total, cg, kh, kw = w.shape
    fg = f_total // p.groups
    (sh, sw), (dh, dw_) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    xp = _pad(x, p.padding)
    dtype = np.result_type(dout, x, w)
    dxp = np.zeros(xp.shape, dtype=dtype)
    dw = np.zeros(w.shape, dtype=dtype)
    for n in range(n_batch):
        for f in range(f_total):
            g = f // fg
            for i in range(shape.oh):
                for j in range(shape.ow):
                    d = dout[n, f, i, j]
                    for c in range(cg):
                        for pi in range(kh):
                            for qj in range(kw):
                                r, s = sh * i + dh * pi, sw * j + dw_ * qj
                                dxp[n, g * cg + c, r, s] += d * w[f, c, pi, qj]
                                dw[f, c, pi, qj] += d * xp[n, g * cg + c, r, s]
    dx = dxp[:, :, pt : pt + h, pl : pl + wd]
    db = dout.sum(axis=(0, 2, 3)).astype(dtype, copy=False)
    return np.ascontiguousarray(dx), dw, db
