"""The convolution layer's public API: the forward pass and its three gradients.

Each function validates its arguments (:mod:`convbook.shapes`), brings the arrays to one
dtype, and hands the call to a method through one table, :data:`METHODS`. Every method
computes the same function; ``method`` picks how:

``"auto"`` (default)
    The fastest method for the layer and pass, by measured rules
    (:func:`convbook.engine.choose`).
``"reference"``
    Plain loops over the definition (:mod:`convbook.methods.reference`). Slow, obviously
    right.
``"tutorial"``
    The source tutorial's route (:mod:`convbook.methods.tutorial`): the column matrix
    built window by window, then one matrix product, ``Y' = X' . K'``.
``"strided"``
    The column matrix copied out of a strided view of the windows, one product per group
    of samples (:mod:`convbook.methods.strided`: the whole layer on one page).
``"wide"``
    The same with "wide rows", a column matrix that is cheaper to copy
    (:mod:`convbook.methods.wide`).
``"winograd"``
    Winograd's minimal filtering F(m x m, r x r) (:mod:`convbook.methods.winograd`); 3x3
    and 5x5 kernels, stride 1, dilation 1, groups 1 only.

The input gradient exists by two routes (``route=``): ``"col2im"`` adds ``dX' = K'^T .
dY'`` back onto the pixels the windows read; ``"rot180"`` is the full convolution of the
(stride-dilated, padded) output gradient with the kernels turned 180 degrees. They are
the same linear map; the tests and the chapter on the input gradient show it.
"""

from __future__ import annotations

import numpy as np

from . import engine
from .kernels import dilate, rot180, rot180_tutorial, swap_in_out
from .methods import reference, strided, tutorial, wide, winograd
from .shapes import (
    check_channels,
    check_conv_inputs,
    check_dout,
    check_float,
    check_ndim,
    check_shape_arg,
    conv_params,
)

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "ROUTES",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv2d_grad_bias",
    "rot180",
    "rot180_tutorial",
    "swap_in_out",
    "dilate",
]

#: Method name -> what runs it. "reference" and "tutorial" run as written; "strided" and
#: "wide" run over groups of samples, threads over the groups (:class:`engine.Batched`);
#: "winograd" drives its own chunks of tiles.
METHODS = {
    "reference": reference,
    "tutorial": tutorial,
    "strided": engine.Batched(strided),
    "wide": engine.Batched(wide),
    "winograd": winograd,
}
ROUTES = ("col2im", "rot180")
#: What ``method=`` accepts: "auto" (the default) and the table's methods.
METHOD_NAMES = ("auto", *METHODS)


def _dispatch(method, pass_, x_shape, w_shape, p, *, m=None, route=None):
    """The implementation of one pass, and the keyword arguments it takes."""
    if method not in METHOD_NAMES:
        raise ValueError(f"method must be one of {METHOD_NAMES}, got {method!r}")
    if route is not None and route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    if m is not None:
        if method != "winograd":
            raise ValueError(
                "m (the Winograd output tile) applies to method='winograd' only, "
                f"got m={m!r}"
            )
        if m not in winograd.TILES:
            raise ValueError(
                f"m (the Winograd output tile size) must be one of {winograd.TILES}, "
                f"got {m!r}"
            )
    if method == "auto":
        method, route = engine.choose(pass_, x_shape, w_shape, p, route=route)
    kwargs = {}
    if method == "winograd":
        kwargs["m"] = m or 4
        winograd.check(w_shape, p, kwargs["m"])
    if pass_ == "grad_input" and route is not None:
        if method == "reference":
            raise ValueError(
                "route applies to the methods with two input-gradient routes, "
                "not to method='reference'"
            )
        kwargs["route"] = route
    return METHODS[method], kwargs


def conv2d_forward(
    x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="auto", m=None
):
    """2-D convolution (cross-correlation) of an NCHW batch, with PyTorch's semantics.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
        float16, float32 or float64.
    w : (F, C // groups, KH, KW) ndarray
    b : (F,) ndarray, optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        ``"same"`` needs stride 1; when its total padding ``D*(K-1)`` is odd, the extra
        row/column is at the bottom/right, as in PyTorch.
    groups : int
        Input and output channels split into ``groups`` blocks; filter block ``g`` sees
        input block ``g`` only.
    method : {"auto", "reference", "tutorial", "strided", "wide", "winograd"}
    m : int, optional
        Winograd output tile size (2, 4 or 6 for 3x3 kernels, 2 or 4 for 5x5; default
        4). Only with ``method="winograd"``.

    Returns
    -------
    out : (N, F, OH, OW) ndarray
        In the dtype NumPy promotes ``x``, ``w`` (and ``b``) to. A new array; the inputs
        are not modified.

    Notes
    -----
    Derived in the chapters "Convolution by hand" and "The forward pass as one matrix
    product".

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> conv2d_forward(x, w)
    array([[[[19., 25.],
             [37., 43.]]]])
    >>> conv2d_forward(x, w, np.array([1.0]), padding="same")[0, 0]
    array([[20., 26., 11.],
           [38., 44., 17.],
           [ 8.,  9.,  1.]])
    """
    x, w, b, p, _ = check_conv_inputs(
        x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    b = None if b is None else b.astype(dtype, copy=False)
    impl, kwargs = _dispatch(method, "forward", x.shape, w.shape, p, m=m)
    return impl.forward(x, w, b, p, **kwargs)


def conv2d_grad_bias(dout):
    """Bias gradient: ``db[f] = sum over n, i, j of dout[n, f, i, j]``.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray

    Returns
    -------
    db : (F,) ndarray

    Examples
    --------
    >>> conv2d_grad_bias(np.ones((2, 3, 4, 5)))
    array([40., 40., 40.])
    """
    dout = check_float("dout", dout)
    check_ndim("dout", dout, 4, "(N, F, OH, OW)")
    return dout.sum(axis=(0, 2, 3))


def _grad_params(dout, x_shape, w_shape, stride, padding, dilation, groups):
    p = conv_params(
        w_shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    check_channels(x_shape, w_shape, p.groups)
    return check_dout(dout, x_shape, w_shape, p), p


def conv2d_grad_input(
    dout,
    w,
    x_shape,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    method="auto",
    route=None,
    m=None,
):
    """Input gradient ``dx`` of the convolution, given ``dout`` and the weights.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    w : (F, C // groups, KH, KW) ndarray
    x_shape : (N, C, H, W) tuple
    stride, padding, dilation, groups, method, m : as for :func:`conv2d_forward`
    route : {None, "col2im", "rot180"}
        ``"col2im"``: ``dX' = K'^T . dY'``, then add the columns back (overlaps add;
        ``"winograd"``: its tiles, :func:`convbook.winograd.tiles_grad_input`).
        ``"rot180"``: ``conv(pad(dilate(dout, stride)), rot180(w))`` with input and
        output channels swapped per group. ``None``: the method's choice (``"auto"``:
        measured rules, :func:`convbook.engine.input_gradient_route` and, where
        Winograd computes the layer, :func:`~convbook.engine.winograd_input_route`;
        ``"tutorial"``: rot180; ``"winograd"``: the route of
        :func:`~convbook.engine.winograd_input_route`; ``"strided"``, ``"wide"``:
        col2im).

    Returns
    -------
    dx : (N, C, H, W) ndarray
        Pixels that no window reached (the floor's remainder) get zero.

    Notes
    -----
    Derived in the chapter on the input gradient.

    Examples
    --------
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> dout = np.ones((1, 1, 2, 2))
    >>> conv2d_grad_input(dout, w, (1, 1, 3, 3))[0, 0]
    array([[0., 1., 1.],
           [2., 6., 4.],
           [2., 5., 3.]])
    >>> np.allclose(conv2d_grad_input(dout, w, (1, 1, 3, 3), route="rot180"),
    ...             conv2d_grad_input(dout, w, (1, 1, 3, 3), route="col2im"))
    True
    """
    w = check_float("w", w)
    check_ndim("w", w, 4, "(F, C // groups, KH, KW)")
    x_shape = check_shape_arg("x_shape", x_shape, batch=True)
    dout, p = _grad_params(dout, x_shape, w.shape, stride, padding, dilation, groups)
    dtype = np.result_type(dout, w)
    dout, w = dout.astype(dtype, copy=False), w.astype(dtype, copy=False)
    impl, kwargs = _dispatch(
        method, "grad_input", x_shape, w.shape, p, m=m, route=route
    )
    return impl.grad_input(dout, w, x_shape, p, **kwargs)


def conv2d_grad_weight(
    dout,
    x,
    w_shape,
    *,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    method="auto",
    m=None,
):
    """Weight gradient ``dw = dY' . X'^T``, reshaped to the kernel's shape.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    x : (N, C, H, W) ndarray
    w_shape : (F, C // groups, KH, KW) tuple
    stride, padding, dilation, groups, m : as for :func:`conv2d_forward`
    method : {"auto", "reference", "tutorial", "strided", "wide", "winograd"}
        ``"winograd"``: Winograd's F(r x r, m x m), ``dout``'s m x m tiles as the
        filters (:func:`convbook.winograd.tiles_grad_weight`).

    Returns
    -------
    dw : (F, C // groups, KH, KW) ndarray

    Notes
    -----
    Derived in the chapter on the weight and bias gradients.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> conv2d_grad_weight(np.ones((1, 1, 2, 2)), x, (1, 1, 2, 2))[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    x = check_float("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    w_shape = check_shape_arg("w_shape", w_shape)
    dout, p = _grad_params(dout, x.shape, w_shape, stride, padding, dilation, groups)
    dtype = np.result_type(dout, x)
    dout, x = dout.astype(dtype, copy=False), x.astype(dtype, copy=False)
    impl, kwargs = _dispatch(method, "grad_weight", x.shape, w_shape, p, m=m)
    return impl.grad_weight(dout, x, w_shape, p, **kwargs)


def conv2d_backward(
    dout, x, w, *, stride=1, padding=0, dilation=1, groups=1, method="auto", m=None
):
    """All three gradients of :func:`conv2d_forward`.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    x : (N, C, H, W) ndarray
    w : (F, C // groups, KH, KW) ndarray
    stride, padding, dilation, groups, method, m : as for :func:`conv2d_forward`

    Returns
    -------
    dx : (N, C, H, W) ndarray
    dw : (F, C // groups, KH, KW) ndarray
    db : (F,) ndarray
        Always returned: the bias gradient does not depend on whether the forward pass
        used a bias.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> db
    array([4.])
    """
    x, w, _, p, _ = check_conv_inputs(
        x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    dout = check_dout(dout, x.shape, w.shape, p)
    dtype = np.result_type(dout, x, w)
    dout = dout.astype(dtype, copy=False)
    x, w = x.astype(dtype, copy=False), w.astype(dtype, copy=False)
    impl, kwargs = _dispatch(method, "grad_input", x.shape, w.shape, p, m=m)
    dx = impl.grad_input(dout, w, x.shape, p, **kwargs)
    impl, kwargs = _dispatch(method, "grad_weight", x.shape, w.shape, p, m=m)
    dw = impl.grad_weight(dout, x, w.shape, p, **kwargs)
    return dx, dw, dout.sum(axis=(0, 2, 3))
