"""The loop reference: the convolution and its gradients straight from the definition.

Slow and obviously right; every faster method is tested against these functions. Each
one takes validated arrays and a :class:`~convbook.shapes.ConvParams` (the public
functions in :mod:`convbook.conv` validate and then call them with
``method="reference"``).
"""

from __future__ import annotations

import numpy as np

from ..columns import pad_input

__all__ = ["forward", "grad_input", "grad_weight"]


def forward(x, w, b, params):
    """The convolution (a cross-correlation, as in PyTorch) by loops.

    .. math:: y_{n,f,i,j} = b_f + \\sum_{c,p,q} w_{f,c,p,q}\\,
              x^{\\text{pad}}_{n,\\, g C_g + c,\\, S i + D p,\\, S j + D q}

    where ``g`` is filter ``f``'s group and ``C_g`` its number of input channels.

    Examples
    --------
    >>> from convbook import conv_params
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> forward(x, w, None, conv_params(2))[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    n_batch = x.shape[0]
    f_total, cg, kh, kw = w.shape
    fg = f_total // params.groups
    (sh, sw), (dh, dw) = params.stride, params.dilation
    oh, ow, _, _ = params.output_shape(x.shape[2:], (kh, kw))
    xp = pad_input(x, params.padding)
    out = np.zeros((n_batch, f_total, oh, ow), dtype=x.dtype)
    for n in range(n_batch):
        for f in range(f_total):
            g = f // fg  # the group this filter belongs to
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                pixel = xp[
                                    n, g * cg + c, sh * i + dh * p, sw * j + dw * q
                                ]
                                total += w[f, c, p, q] * pixel
                    out[n, f, i, j] = total
    if b is not None:
        out += b.reshape(-1, 1, 1)
    return out


def grad_input(dout, w, x_shape, params):
    """The input gradient: every product ``w * xpad`` in the forward sum, run backwards.

    ``dout[n, f, i, j] * w[f, c, p, q]`` lands on the padded-input pixel that the
    product read; the padding's gradient is cut off at the end, and pixels that no
    window reached keep their zero.

    Examples
    --------
    >>> from convbook import conv_params
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> grad_input(np.ones((1, 1, 2, 2)), w, (1, 1, 3, 3), conv_params(2))[0, 0]
    array([[0., 1., 1.],
           [2., 6., 4.],
           [2., 5., 3.]])
    """
    n_batch, _, h, wd = x_shape
    f_total, cg, kh, kw = w.shape
    fg = f_total // params.groups
    (sh, sw), (dh, dw) = params.stride, params.dilation
    pt, pb, pl, pr = params.padding
    _, _, oh, ow = dout.shape
    dxp = np.zeros((n_batch, x_shape[1], h + pt + pb, wd + pl + pr), dtype=dout.dtype)
    for n in range(n_batch):
        for f in range(f_total):
            g = f // fg
            for i in range(oh):
                for j in range(ow):
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                r, s = sh * i + dh * p, sw * j + dw * q
                                dxp[n, g * cg + c, r, s] += (
                                    dout[n, f, i, j] * w[f, c, p, q]
                                )
    return np.ascontiguousarray(dxp[:, :, pt : pt + h, pl : pl + wd])


def grad_weight(dout, x, w_shape, params):
    """The weight gradient: ``dout[n, f, i, j]`` times the pixel each weight multiplied.

    Examples
    --------
    >>> from convbook import conv_params
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> grad_weight(np.ones((1, 1, 2, 2)), x, (1, 1, 2, 2), conv_params(2))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    n_batch = x.shape[0]
    f_total, cg, kh, kw = w_shape
    fg = f_total // params.groups
    (sh, sw), (dh, dw) = params.stride, params.dilation
    _, _, oh, ow = dout.shape
    xp = pad_input(x, params.padding)
    dw_ = np.zeros(w_shape, dtype=dout.dtype)
    for n in range(n_batch):
        for f in range(f_total):
            g = f // fg
            for i in range(oh):
                for j in range(ow):
                    for c in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                pixel = xp[
                                    n, g * cg + c, sh * i + dh * p, sw * j + dw * q
                                ]
                                dw_[f, c, p, q] += dout[n, f, i, j] * pixel
    return dw_
