"""The source tutorial's route: the column matrix built by a loop, then one product.

The Chinese tutorial this book follows computes the layer in four steps:

1. ``X' = im2col(X)``, one window per row (here :func:`~convbook.columns.im2col_loop`,
   its loop for NCHW with stride, padding and dilation);
2. ``K' = K.reshape(...)``, one filter per column;
3. ``Y' = X' . K'``;
4. reshape ``Y'`` from a matrix back to the output's shape.

Its gradients: ``dK' = X'^T . dY'``, and ``dX = conv(pad(dY), rot180(K))``, the full
convolution done by the same im2col and product. Once per group when ``groups > 1``.
Slow (the loop visits every window in Python) and kept as the version readers start
from.
"""

from __future__ import annotations

import numpy as np

from ..columns import add_windows, im2col_loop, pad_input
from . import strided

__all__ = ["forward", "grad_weight", "grad_input"]


def _columns(x, kernel_hw, params, g):
    """``X'`` of group ``g``'s input channels: ``(N*OH*OW, Cg*KH*KW)``."""
    c = x.shape[1] // params.groups
    xg = pad_input(x[:, g * c : (g + 1) * c], params.padding)
    return im2col_loop(xg, kernel_hw, stride=params.stride, dilation=params.dilation)


def forward(x, w, b, params):
    """``Y' = X' . K'``, then reshaped to ``(N, F, OH, OW)``; once per group.

    Examples
    --------
    >>> from convbook import conv_params
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> forward(x, w, None, conv_params(2))[0, 0]
    array([[19., 25.],
           [37., 43.]])
    """
    n, f = x.shape[0], w.shape[0]
    fg = f // params.groups
    oh, ow, _, _ = params.output_shape(x.shape[2:], w.shape[2:])
    out = np.empty((n, f, oh, ow), dtype=x.dtype)
    for g in range(params.groups):
        cols = _columns(x, w.shape[2:], params, g)  # X': (N*OH*OW, Cg*KH*KW)
        kmat = w[g * fg : (g + 1) * fg].reshape(fg, -1).T  # K': (Cg*KH*KW, Fg)
        y = cols @ kmat  # Y': (N*OH*OW, Fg)
        out[:, g * fg : (g + 1) * fg] = y.reshape(n, oh, ow, fg).transpose(0, 3, 1, 2)
    if b is not None:
        out += b.reshape(f, 1, 1)
    return out


def grad_weight(dout, x, w_shape, params):
    """``dK' = X'^T . dY'``, reshaped to the kernel's shape; once per group."""
    n, f = dout.shape[:2]
    fg = f // params.groups
    dy = dout.transpose(0, 2, 3, 1).reshape(-1, f)  # dY': (N*OH*OW, F)
    dw = np.empty(w_shape, dtype=dout.dtype)
    for g in range(params.groups):
        cols = _columns(x, w_shape[2:], params, g)  # X': (N*OH*OW, Cg*KH*KW)
        dk = cols.T @ dy[:, g * fg : (g + 1) * fg]  # dK': (Cg*KH*KW, Fg)
        dw[g * fg : (g + 1) * fg] = dk.T.reshape(fg, *w_shape[1:])
    return dw


def grad_input(dout, w, x_shape, params, *, route="rot180"):
    """The input gradient the tutorial's way, or by col2im.

    ``route="rot180"`` (the tutorial's): the full convolution of the padded ``dout``
    with the turned kernel (:func:`convbook.methods.strided.full_conv_operands`), done
    by this module's :func:`forward`. ``route="col2im"``: ``dX' = dY' . K'^T``, each row
    added back onto its window's pixels.
    """
    if route == "rot180":
        big, wt = strided.full_conv_operands(dout, w, x_shape, params)
        full = type(params)(dilation=params.dilation, groups=params.groups)
        return forward(big, wt.astype(big.dtype, copy=False), None, full)
    if route != "col2im":
        raise ValueError(f"route must be 'col2im' or 'rot180', got {route!r}")
    n, c = x_shape[:2]
    f, cg, kh, kw = w.shape
    fg = f // params.groups
    oh, ow = dout.shape[2:]
    dy = dout.transpose(0, 2, 3, 1).reshape(-1, f)  # dY': (N*OH*OW, F)
    dcols = np.empty((n * oh * ow, c * kh * kw), dtype=dout.dtype)
    for g in range(params.groups):
        kmat = w[g * fg : (g + 1) * fg].reshape(fg, -1)  # K'^T: (Fg, Cg*KH*KW)
        block = slice(g * cg * kh * kw, (g + 1) * cg * kh * kw)
        dcols[:, block] = dy[:, g * fg : (g + 1) * fg] @ kmat  # dX': rows (n, i, j)
    dcols = dcols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    return add_windows(dcols, x_shape, params)  # (N, C, KH, KW, OH, OW) -> (N, C, H, W)
