"""A ``Conv2D`` layer object: parameters, their gradients, and a forward pass that remembers what backward needs.

The layer is a thin shell over the pure functions of :mod:`convbook.conv`; all the arithmetic and all the input
validation live there. It follows ``torch.nn.Conv2d``: same constructor arguments, same weight layout
``(F, C // groups, KH, KW)``, same default initialisation, same ``repr``.
"""

from __future__ import annotations

import numpy as np

from .conv import METHODS, conv2d_backward, conv2d_forward
from .shapes import as_pair, check_conv_inputs, conv_params

__all__ = ["Conv2D"]


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


class Conv2D:
    """A 2-D convolution layer with PyTorch's semantics, its parameters and their gradients.

    Parameters
    ----------
    in_channels : int
        ``C``, the input's channels.
    out_channels : int
        ``F``, the number of filters (output channels).
    kernel_size : int or (KH, KW)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
    groups : int
        Must divide both ``in_channels`` and ``out_channels``; ``groups == in_channels`` is a depthwise layer.
    bias : bool
        Whether the layer adds a learned bias ``b`` of shape ``(F,)``.
    method : {"strided", "tutorial", "reference", "winograd"}
        How :func:`~convbook.conv.conv2d_forward` and :func:`~convbook.conv.conv2d_backward` do the work.
    rng : None, int or numpy.random.Generator
        Seed or generator for the initial weights. ``None`` draws fresh entropy, as PyTorch does unseeded.
    dtype : numpy float dtype
        Dtype of ``w``, ``b`` and their gradients.

    Attributes
    ----------
    w : (F, C // groups, KH, KW) ndarray
        The weights, drawn from ``U(-bound, bound)`` with ``bound = 1 / sqrt(fan_in)`` and
        ``fan_in = C // groups * KH * KW``: PyTorch's default (``kaiming_uniform_`` with ``a = sqrt(5)``).
    b : (F,) ndarray or None
        The bias, drawn from the same ``U(-bound, bound)``; ``None`` when ``bias=False``.
    dw, db : ndarray or None
        Gradients of the loss with respect to ``w`` and ``b``. ``None`` until the first :meth:`backward`.
        **Set, not accumulated**: each :meth:`backward` overwrites them (PyTorch adds into ``.grad`` instead, so
        two backward passes there sum; here the second one replaces the first).

    Notes
    -----
    :meth:`forward` keeps a private copy of its input ``x``: the weight gradient needs it
    (``dw = X'^T . dY'``), and a copy means that changing your array between the forward and the backward pass
    cannot change the gradient. :meth:`backward` uses the current ``w``, so take the optimiser step after it.
    Derived and gradient-checked in the chapter "The layer, assembled".

    Examples
    --------
    >>> layer = Conv2D(3, 8, 3, padding=1, rng=0)
    >>> layer
    Conv2D(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> layer.w.shape, layer.b.shape
    ((8, 3, 3, 3), (8,))
    >>> x = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    >>> y = layer(x)
    >>> y.shape
    (2, 8, 5, 5)
    >>> dx = layer.backward(np.ones_like(y))
    >>> dx.shape, layer.dw.shape, layer.db
    ((2, 3, 5, 5), (8, 3, 3, 3), array([50., 50., 50., 50., 50., 50., 50., 50.]))

    One step of gradient descent:

    >>> for p, g in zip(layer.parameters(), layer.grads()):
    ...     p -= 0.1 * g
    """

    def __init__(self, in_channels, out_channels, kernel_size, *, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, method="strided", rng=None, dtype=np.float64):
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
        # conv_params validates stride, padding, dilation and groups once, with the core's messages.
        params = conv_params(self.kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups)
        if self.in_channels % params.groups or self.out_channels % params.groups:
            raise ValueError(
                f"groups={params.groups} must divide both in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a float dtype, got {dtype}")
        self.stride, self.dilation, self.groups = params.stride, params.dilation, params.groups
        # kept as given (a pair, or the string "same"/"valid"), as torch.nn.Conv2d keeps it
        self.padding = padding if isinstance(padding, str) else as_pair(padding, "padding", minimum=0)
        self.method = method

        rng = np.random.default_rng(rng)
        kh, kw = self.kernel_size
        fan_in = self.in_channels // self.groups * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        w_shape = (self.out_channels, self.in_channels // self.groups, kh, kw)
        self.w = rng.uniform(-bound, bound, size=w_shape).astype(dtype)
        self.b = rng.uniform(-bound, bound, size=self.out_channels).astype(dtype) if bias else None
        self.dw = None
        self.db = None
        self._x = None  # the input of the last forward pass, kept for backward

    def _conv_kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                    method=self.method)

    def forward(self, x):
        """Compute the layer's output and remember ``x`` for :meth:`backward`.

        Parameters
        ----------
        x : (N, C, H, W) ndarray
            ``C`` must equal ``in_channels``. Not modified.

        Returns
        -------
        out : (N, F, OH, OW) ndarray
        """
        out = conv2d_forward(x, self.w, self.b, **self._conv_kwargs())  # validates x against w
        self._x = np.array(x, copy=True)  # our own copy: later changes to the caller's x cannot reach backward
        return out

    def __call__(self, x):
        """``layer(x)`` is ``layer.forward(x)``."""
        return self.forward(x)

    def backward(self, dout):
        """Given ``dout = dL/dout``, set ``dw`` and ``db`` and return ``dx = dL/dx``.

        Parameters
        ----------
        dout : (N, F, OH, OW) ndarray
            Shaped like the output of the last :meth:`forward`. Not modified.

        Returns
        -------
        dx : (N, C, H, W) ndarray

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called yet.
        """
        if self._x is None:
            raise RuntimeError("Conv2D.backward() called before forward(): there is no input to differentiate at")
        dx, dw, db = conv2d_backward(dout, self._x, self.w, **self._conv_kwargs())
        self.dw = dw.astype(self.w.dtype, copy=False)
        self.db = db.astype(self.b.dtype, copy=False) if self.b is not None else None
        return dx

    def named_parameters(self):
        """``("w", w)`` and, with a bias, ``("b", b)``: the arrays themselves, so ``p -= lr * g`` updates them."""
        yield "w", self.w
        if self.b is not None:
            yield "b", self.b

    def parameters(self):
        """The parameter arrays, in the order of :meth:`grads`."""
        return [p for _, p in self.named_parameters()]

    def grads(self):
        """The gradients ``[dw, db]`` (``[dw]`` without a bias), in the order of :meth:`parameters`.

        Raises
        ------
        RuntimeError
            If there is no gradient yet: neither :meth:`backward` nor :meth:`zero_grad` has been called.
        """
        if self.dw is None:
            raise RuntimeError("no gradients yet: call forward() and backward() first")
        return [self.dw] if self.b is None else [self.dw, self.db]

    def zero_grad(self):
        """Set ``dw`` and ``db`` to zeros (so a step taken now changes nothing)."""
        self.dw = np.zeros_like(self.w)
        self.db = np.zeros_like(self.b) if self.b is not None else None

    def output_shape(self, input_shape):
        """The ``(N, F, OH, OW)`` output for an ``(N, C, H, W)`` input shape, validated as :meth:`forward` would.

        Examples
        --------
        >>> Conv2D(3, 8, 3, stride=2, rng=0).output_shape((1, 3, 8, 8))
        (1, 8, 3, 3)
        """
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(f"expected input_shape of 4 ints (N, C, H, W), got {shape}")
        x = np.broadcast_to(np.zeros((), self.w.dtype), shape)  # no memory: only the shape is checked
        *_, out = check_conv_inputs(x, self.w, stride=self.stride, padding=self.padding, dilation=self.dilation,
                                    groups=self.groups)
        return (shape[0], self.out_channels, out.oh, out.ow)

    def __repr__(self):
        s = (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.b is None:
            s += ", bias=False"
        if self.method != "strided":
            s += f", method={self.method!r}"
        return s + ")"
