"""Kernel operations of the input gradient: turn, swap channels, dilate.

These are the pieces of the input gradient's full-convolution route (the chapter on the
input gradient): ``dx = conv(pad(dilate(dout, S)), rot180(swap_in_out(w, G)))``.
"""

from __future__ import annotations

import numpy as np

from .shapes import conv_params

__all__ = ["rot180", "rot180_tutorial", "swap_in_out", "dilate"]


def rot180(w):
    """Turn every kernel of ``w`` by 180 degrees: flip both spatial axes.

    Parameters
    ----------
    w : (..., KH, KW) ndarray

    Returns
    -------
    (..., KH, KW) ndarray, a new array

    Examples
    --------
    >>> rot180(np.arange(4).reshape(2, 2))
    array([[3, 2],
           [1, 0]])
    """
    return np.array(np.asarray(w)[..., ::-1, ::-1], order="C")  # a copy, always


def rot180_tutorial(weights, way=1):
    """The tutorial's two ways to turn a ``(k, k, C_in, C_out)`` kernel (channels swap).

    ``way=1``: ``np.flipud(np.fliplr(weights)).swapaxes(2, 3)``. ``way=2``: flatten the
    two spatial axes, reverse them, swap the channels. Reversing the ``k*k`` flattened
    positions is the same as flipping both axes, so the two ways agree; both give ``(k,
    k, C_out, C_in)``.

    Examples
    --------
    >>> wt = np.arange(2 * 2 * 1 * 3).reshape(2, 2, 1, 3)
    >>> np.array_equal(rot180_tutorial(wt, 1), rot180_tutorial(wt, 2))
    True
    """
    weights = np.asarray(weights)
    if weights.ndim != 4 or weights.shape[0] != weights.shape[1]:
        raise ValueError(
            f"expected weights of shape (k, k, C_in, C_out), got {weights.shape}"
        )
    k, _, c_in, c_out = weights.shape
    if way == 1:
        flip_weights = np.flipud(np.fliplr(weights))
        flip_weights = flip_weights.swapaxes(2, 3)
    elif way == 2:
        flip_weights = weights.reshape([-1, c_in, c_out])
        flip_weights = flip_weights[::-1, ...]
        flip_weights = flip_weights.swapaxes(1, 2)
        flip_weights = flip_weights.reshape(k, k, c_out, c_in)
    else:
        raise ValueError(f"way must be 1 or 2, got {way!r}")
    return np.ascontiguousarray(flip_weights)


def dilate(dout, stride):
    """Insert ``stride - 1`` zeros between neighbouring rows and columns of ``dout``.

    A strided convolution is a stride-1 convolution with the outputs in between thrown
    away; their gradient is zero, and these zeros put it back.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    stride : int or (int, int)

    Returns
    -------
    (N, F, SH*(OH-1)+1, SW*(OW-1)+1) ndarray

    Examples
    --------
    >>> dilate(np.ones((1, 1, 2, 2)), 2)[0, 0]
    array([[1., 0., 1.],
           [0., 0., 0.],
           [1., 0., 1.]])
    """
    dout = np.asarray(dout)
    if dout.ndim != 4:
        raise ValueError(
            f"expected dout of 4 dimensions (N, F, OH, OW), got shape {dout.shape}"
        )
    sh, sw = conv_params(1, stride=stride).stride
    n, f, oh, ow = dout.shape
    out = np.zeros((n, f, sh * (oh - 1) + 1, sw * (ow - 1) + 1), dtype=dout.dtype)
    out[:, :, ::sh, ::sw] = dout
    return out


def swap_in_out(w, groups=1):
    """Swap each group's channels: ``(F, C // G, KH, KW) -> (C, F // G, KH, KW)``.

    For ``groups == 1`` this is ``w.transpose(1, 0, 2, 3)``. With groups, filter block
    ``g`` (rows ``g*F/G ... (g+1)*F/G - 1``) is transposed on its own, and the blocks
    are stacked again in group order, so that block ``g`` of the result still belongs to
    group ``g``.

    Parameters
    ----------
    w : (F, C // groups, KH, KW) ndarray
    groups : int

    Returns
    -------
    (C, F // groups, KH, KW) ndarray, a new array

    Examples
    --------
    >>> w = np.arange(4).reshape(4, 1, 1, 1)  # F = 4 filters, 1 input channel per group
    >>> swap_in_out(w, groups=2)[:, :, 0, 0]  # C = 2 channels, 2 filters each
    array([[0, 1],
           [2, 3]])
    """
    w = np.asarray(w)
    f, cg, kh, kw = w.shape
    blocks = w.reshape(groups, f // groups, cg, kh, kw)  # (G, F // G, C // G, KH, KW)
    swapped = blocks.transpose(0, 2, 1, 3, 4)  # (G, C // G, F // G, KH, KW)
    swapped = np.array(swapped, order="C")  # a copy, also where no axis moves
    return swapped.reshape(groups * cg, f // groups, kh, kw)
