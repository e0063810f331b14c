"""A ``Conv2D`` layer object: parameters, their gradients, and a forward pass that
remembers what backward needs.

The layer is a thin shell over the public functions of :mod:`convbook.conv`; all the
arithmetic and the validation of shapes live there. It follows ``torch.nn.Conv2d``: the
same constructor arguments in the same order, the same weight layout
``(F, C // groups, KH, KW)``, the same default initialisation, the same ``repr``, and,
like PyTorch, it refuses an input whose dtype is not its own.
"""

from __future__ import annotations

import numpy as np

from .conv import (
    METHOD_NAMES,
    conv2d_backward,
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_weight,
)
from .shapes import as_pair, check_conv_inputs, conv_params

__all__ = ["Conv2D"]


def _positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)


class Conv2D:
    """A 2-D convolution layer with PyTorch's semantics, its parameters and gradients.

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
        Must divide both ``in_channels`` and ``out_channels``; ``groups == in_channels``
        is a depthwise layer.
    bias : bool
        Whether the layer adds a learned bias ``b`` of shape ``(F,)``.
    method : {"auto", "reference", "tutorial", "strided", "wide", "winograd"}
        How :func:`~convbook.conv.conv2d_forward` and the gradients do the work.
        Keyword-only, as are the arguments below.
    rng : None, int or numpy.random.Generator
        Seed or generator for the initial weights. ``None`` draws fresh entropy, as
        PyTorch does unseeded.
    dtype : numpy float dtype
        Dtype of ``w``, ``b``, their gradients, and of the inputs the layer accepts.
    input_grad : bool
        Whether :meth:`backward` computes ``dx``. A network's first layer sees the data,
        whose gradient nobody needs: with ``input_grad=False`` its backward computes
        only ``dw`` and ``db`` and returns ``None`` (PyTorch skips the same work when
        the input does not require a gradient).

    Attributes
    ----------
    w : (F, C // groups, KH, KW) ndarray
        The weights, drawn from ``U(-bound, bound)`` with ``bound = 1 / sqrt(fan_in)``
        and ``fan_in = C // groups * KH * KW``: PyTorch's default
        (``kaiming_uniform_`` with ``a = sqrt(5)``). May be replaced by another array
        of the same shape and dtype; any other is refused, so that ``kernel_size`` and
        the ``repr`` stay true.
    b : (F,) ndarray or None
        The bias, drawn from the same ``U(-bound, bound)``; ``None`` when
        ``bias=False``. May be replaced by an ``(F,)`` array of the layer's dtype, or
        by ``None``.
    dw, db : ndarray or None
        Gradients of the loss with respect to ``w`` and ``b``. ``None`` until the first
        :meth:`backward`. **Set, not accumulated**: each :meth:`backward` overwrites
        them (PyTorch adds into ``.grad`` instead, so two backward passes there sum;
        here the second one replaces the first).
    dtype : numpy.dtype
        The layer's dtype.

    Notes
    -----
    **Dtypes.** The layer computes in its own dtype and nothing wider: an input ``x``
    (or a ``dout``) of another float dtype raises a ``TypeError`` naming both dtypes,
    as PyTorch does, instead of a silent computation in float64 at 1.5 times the cost.
    Cast the data once, before training: ``x.astype(np.float32)``.

    :meth:`forward` keeps a private copy of its input ``x``: the weight gradient needs
    it (``dw = X'^T . dY'``), and a copy means that changing your array between the
    forward and the backward pass cannot change the gradient. :meth:`backward` uses the
    current ``w``, so take the optimiser step after it. Derived and gradient-checked in
    the chapter "The layer, assembled".

    Examples
    --------
    PyTorch's positional order: ``stride``, ``padding``, ``dilation``, ``groups``,
    ``bias``.

    >>> layer = Conv2D(3, 8, 3, 1, 1, rng=0)
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

    A float32 layer refuses float64 data:

    >>> Conv2D(3, 8, 3, dtype=np.float32, rng=0)(x)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: x is float64 but the layer is float32: convert x once (x.astype(...
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        method="auto",
        rng=None,
        dtype=np.float64,
        input_grad=True,
    ):
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = as_pair(kernel_size, "kernel_size", minimum=1)
        # conv_params validates stride, padding, dilation and groups with the core's
        # messages
        params = conv_params(
            self.kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
        if self.in_channels % params.groups or self.out_channels % params.groups:
            raise ValueError(
                f"groups={params.groups} must divide both "
                f"in_channels={self.in_channels} and out_channels={self.out_channels}"
            )
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        if method not in METHOD_NAMES:
            raise ValueError(f"method must be one of {METHOD_NAMES}, got {method!r}")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype must be a float dtype, got {dtype}")
        self.stride, self.dilation = params.stride, params.dilation
        self.groups = params.groups
        # kept as given (a pair, or "same"/"valid"), as torch.nn.Conv2d keeps it
        self.padding = (
            padding
            if isinstance(padding, str)
            else as_pair(padding, "padding", minimum=0)
        )
        self.method = method
        self.dtype = dtype
        self.input_grad = bool(input_grad)

        rng = np.random.default_rng(rng)
        kh, kw = self.kernel_size
        fan_in = self.in_channels // self.groups * kh * kw
        bound = 1.0 / np.sqrt(fan_in)
        self._w = rng.uniform(-bound, bound, size=self.weight_shape).astype(dtype)
        self._b = None
        if bias:
            self._b = rng.uniform(-bound, bound, size=self.out_channels).astype(dtype)
        self.dw = None
        self.db = None
        self._x = None  # the input of the last forward pass, kept for backward

    @property
    def weight_shape(self):
        """``(F, C // groups, KH, KW)``: the only shape ``w`` can have."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def w(self):
        """The weights ``(F, C // groups, KH, KW)``; see the class docstring."""
        return self._w

    @w.setter
    def w(self, value):
        self._w = self._checked("w", value, self.weight_shape)

    @property
    def b(self):
        """The bias ``(F,)``, or ``None``; see the class docstring."""
        return self._b

    @b.setter
    def b(self, value):
        self._b = (
            None if value is None else self._checked("b", value, (self.out_channels,))
        )

    def _checked(self, name, value, shape):
        if not isinstance(value, np.ndarray):
            raise TypeError(
                f"{name} must be a numpy array of shape {shape}, "
                f"got {type(value).__name__}"
            )
        if value.shape != shape:
            raise ValueError(
                f"{name} must have shape {shape} for {self!r}, got {value.shape}: "
                "build a new Conv2D for another shape"
            )
        if value.dtype != self.dtype:
            raise TypeError(
                f"{name} must be {self.dtype} like the layer, got {value.dtype}"
            )
        return value

    def _check_dtype(self, name, a):
        """Refuse a float array of another dtype than the layer's (PyTorch does too).

        Non-float arrays go on to the core's own check, which names what is wrong.
        """
        a = np.asarray(a)
        if a.dtype.kind == "f" and a.dtype != self.dtype:
            raise TypeError(
                f"{name} is {a.dtype} but the layer is {self.dtype}: convert {name} "
                f"once ({name}.astype(np.{self.dtype})), or build the layer with "
                f"dtype=np.{a.dtype}"
            )
        return a

    def _conv_kwargs(self):
        return dict(
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            groups=self.groups,
        )

    def forward(self, x):
        """Compute the layer's output and remember ``x`` for :meth:`backward`.

        Parameters
        ----------
        x : (N, C, H, W) ndarray
            ``C`` must equal ``in_channels``, the dtype the layer's. Not modified.

        Returns
        -------
        out : (N, F, OH, OW) ndarray
        """
        x = self._check_dtype("x", x)
        # conv2d_forward validates x against w
        out = conv2d_forward(
            x, self.w, self.b, method=self.method, **self._conv_kwargs()
        )
        # our own copy: later changes to the caller's x cannot reach backward
        self._x = np.array(x, copy=True)
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
        dx : (N, C, H, W) ndarray, or None
            ``None`` when the layer was built with ``input_grad=False``: then only
            ``dw`` and ``db`` are computed.

        Raises
        ------
        RuntimeError
            If :meth:`forward` has not been called yet.
        """
        if self._x is None:
            raise RuntimeError(
                "Conv2D.backward() called before forward(): "
                "there is no input to differentiate at"
            )
        dout = self._check_dtype("dout", dout)
        kwargs = self._conv_kwargs()
        if self.input_grad:
            dx, dw, db = conv2d_backward(
                dout, self._x, self.w, method=self.method, **kwargs
            )
        else:
            # no dx: the weight gradient and the bias gradient only
            dx = None
            dw = conv2d_grad_weight(
                dout, self._x, self.w.shape, method=self.method, **kwargs
            )
            db = conv2d_grad_bias(dout)
        self.dw = dw
        self.db = db if self.b is not None else None
        return dx

    def named_parameters(self):
        """``("w", w)`` and, with a bias, ``("b", b)``: the arrays themselves."""
        yield "w", self.w
        if self.b is not None:
            yield "b", self.b

    def parameters(self):
        """The parameter arrays, in the order of :meth:`grads`.

        They are the layer's own arrays, so ``p -= lr * g`` updates the layer.
        """
        return [p for _, p in self.named_parameters()]

    def grads(self):
        """The gradients ``[dw, db]`` (``[dw]`` without a bias), as :meth:`parameters`.

        Raises
        ------
        RuntimeError
            If there is no gradient yet: neither :meth:`backward` nor
            :meth:`zero_grad` has been called.
        """
        if self.dw is None:
            raise RuntimeError("no gradients yet: call forward() and backward() first")
        return [self.dw] if self.b is None else [self.dw, self.db]

    def zero_grad(self):
        """Set ``dw`` and ``db`` to zeros (so a step taken now changes nothing)."""
        self.dw = np.zeros_like(self.w)
        self.db = np.zeros_like(self.b) if self.b is not None else None

    def output_shape(self, input_shape):
        """The ``(N, F, OH, OW)`` output for an ``(N, C, H, W)`` input shape.

        Validated as :meth:`forward` would.

        Examples
        --------
        >>> Conv2D(3, 8, 3, stride=2, rng=0).output_shape((1, 3, 8, 8))
        (1, 8, 3, 3)
        """
        shape = tuple(input_shape)
        if len(shape) != 4:
            raise ValueError(
                f"expected input_shape of 4 ints (N, C, H, W), got {shape}"
            )
        # no memory: only the shape is checked
        x = np.broadcast_to(np.zeros((), self.dtype), shape)
        *_, out = check_conv_inputs(x, self.w, **self._conv_kwargs())
        return (shape[0], self.out_channels, out.oh, out.ow)

    def __repr__(self):
        s = (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}"
        )
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
        if self.method != "auto":
            s += f", method={self.method!r}"
        return s + ")"
