"""The im2col + GEMM convolution written once for any NumPy-like array module: NumPy on the CPU, CuPy on a GPU.

CuPy copies NumPy's interface (``as_strided``, ``pad``, ``matmul``), so the strided im2col of the chapter "A
faster im2col" runs on a GPU unchanged: the window view costs nothing, the copy into the column matrix is one
GPU kernel, and the product goes to cuBLAS. CuPy is optional: nothing in convbook needs it, and
:func:`available` says whether a usable GPU is there.

Notes
-----
Explained in the book's chapter "On the GPU" (``book/cuda.ipynb``).
"""

from __future__ import annotations

import numpy as np

from .shapes import _output_shape, check_channels, conv_params

__all__ = ["available", "array_module", "conv2d_forward_xp"]


def available():
    """True when CuPy imports and sees at least one CUDA device.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    try:
        import cupy
    except Exception:  # ImportError, or a CuPy built for a CUDA that is not there
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        return False


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy`` (CuPy's ``get_array_module`` without needing CuPy)."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy

            return cupy
    return np


def conv2d_forward_xp(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Convolution forward by im2col + one GEMM, on whichever device ``x`` lives (NumPy or CuPy arrays).

    The whole batch goes into one column matrix ``(C*KH*KW, N*OH*OW)`` and one product (a GPU wants few large
    kernels; on the CPU :func:`convbook.conv2d_forward` with ``method="strided"`` is the faster choice, since it
    works sample group by sample group to stay in cache and bound memory).

    Parameters
    ----------
    x : (N, C, H, W) ndarray or cupy.ndarray
    w : (F, C // groups, KH, KW) array of the same module
    b : (F,) array, optional
    stride, padding, dilation, groups : as for :func:`convbook.conv2d_forward`

    Returns
    -------
    out : (N, F, OH, OW) array of the same module as ``x``

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> conv2d_forward_xp(x, w)
    array([[[[19., 25.],
             [37., 43.]]]])
    """
    xp = array_module(x, w, b)
    for name, a in (("x", x), ("w", w)):
        if getattr(a, "ndim", None) != 4:
            raise ValueError(f"expected {name} of 4 dimensions, got shape {getattr(a, 'shape', None)}")
        if np.dtype(a.dtype).kind != "f":
            raise TypeError(f"{name} must be a float16/32/64 array, got dtype {a.dtype}; convert it first")
    if array_module(x) is not array_module(w) or (b is not None and array_module(b) is not array_module(x)):
        raise TypeError("x, w and b must live on the same device (all NumPy or all CuPy arrays)")
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_channels(x.shape, w.shape, p.groups)
    if b is not None and tuple(b.shape) != (f,):
        raise ValueError(f"expected b of shape ({f},) to match w's {f} filters, got {tuple(b.shape)}")
    shape = _output_shape((h, wd), (kh, kw), p)
    oh, ow = shape.oh, shape.ow
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    g = p.groups
    dtype = xp.result_type(x, w) if b is None else xp.result_type(x, w, b)
    xpad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if any(p.padding) else x
    s0, s1, s2, s3 = xpad.strides
    # (C, KH, KW, N, OH, OW) window view: no copy, read it only
    view = xp.lib.stride_tricks.as_strided(
        xpad, shape=(c, kh, kw, n, oh, ow), strides=(s1, s2 * dh, s3 * dw, s0, s2 * sh, s3 * sw)
    )
    cols = xp.ascontiguousarray(view, dtype=dtype).reshape(g, cg * kh * kw, n * oh * ow)  # the one copy
    wmat = w.astype(dtype, copy=False).reshape(g, f // g, cg * kh * kw)  # (G, Fg, Cg*KH*KW)
    y = xp.matmul(wmat, cols)  # (G, Fg, N*OH*OW)
    out = xp.ascontiguousarray(y.reshape(f, n, oh, ow).transpose(1, 0, 2, 3))  # (N, F, OH, OW)
    if b is not None:
        out += b.astype(dtype, copy=False).reshape(1, f, 1, 1)
    return out
