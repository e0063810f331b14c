"""The few pieces a network needs besides :class:`~convbook.layers.Conv2D`.

ReLU, a flattening layer, softmax cross-entropy, SGD with momentum (PyTorch's exact
update rule) and :class:`Sequential` to chain layers. Every layer has the interface of
``Conv2D``: ``forward`` (also ``layer(x)``), ``backward(dout) -> dx``, ``parameters()``
and ``grads()``. A tutorial package, not a framework: NumPy only, one screen each.
Derived and checked against PyTorch in the chapter "Train a network with your layer".
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ParameterFree",
    "ReLU",
    "Flatten",
    "Sequential",
    "SGD",
    "log_softmax",
    "softmax_cross_entropy",
    "to_torch",
]


class ParameterFree:
    """What the layers without parameters share: ``layer(x)`` is ``layer.forward(x)``,
    and ``parameters()`` and ``grads()`` are empty."""

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return []

    def grads(self):
        return []

    def __repr__(self):
        return f"{type(self).__name__}()"


class ReLU(ParameterFree):
    """``out = max(x, 0)``; ``dx = dout`` where ``x > 0``, else 0 (as PyTorch's).

    Examples
    --------
    >>> relu = ReLU()
    >>> relu(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    >>> relu.backward(np.array([5.0, 5.0, 5.0]))
    array([0., 0., 5.])
    """

    def forward(self, x):
        self._on = x > 0  # where the gradient flows; at exactly 0 it does not
        return np.where(self._on, x, 0)

    def backward(self, dout):
        return np.where(self._on, dout, 0)


class Flatten(ParameterFree):
    """``(N, ...) -> (N, everything else)``; backward reshapes ``dout`` back.

    Examples
    --------
    >>> flat = Flatten()
    >>> flat(np.zeros((2, 10, 1, 1))).shape
    (2, 10)
    >>> flat.backward(np.zeros((2, 10))).shape
    (2, 10, 1, 1)
    """

    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)  # (N, C*H*W)

    def backward(self, dout):
        return dout.reshape(self._shape)  # (N, C, H, W)


class Sequential:
    """Layers applied one after the other; backward runs them in reverse.

    ``parameters()`` and ``grads()`` list every layer's, in the same order, so that an
    optimiser can walk the two lists side by side.

    Examples
    --------
    >>> from convbook.layers import Conv2D
    >>> net = Sequential(Conv2D(1, 2, 3, rng=0), ReLU(), Flatten())
    >>> out = net(np.ones((4, 1, 5, 5)))
    >>> out.shape
    (4, 18)
    >>> net.backward(np.ones_like(out)).shape
    (4, 1, 5, 5)
    >>> [p.shape for p in net.parameters()] == [g.shape for g in net.grads()]
    True
    """

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout):
        """Back through every layer, last first; returns the first layer's ``dx``.

        That is ``None`` when the first layer was built with ``input_grad=False``.
        """
        for k in reversed(range(len(self.layers))):
            dout = self.layers[k].backward(dout)
            if dout is None and k > 0:
                raise ValueError(
                    f"layer {k} ({self.layers[k]!r}) returned no input gradient "
                    "(input_grad=False), but the layers before it need one"
                )
        return dout

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def grads(self):
        return [g for layer in self.layers for g in layer.grads()]

    def __getitem__(self, k):
        return self.layers[k]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        rows = "".join(f"\n  ({k}): {layer!r}" for k, layer in enumerate(self.layers))
        return f"Sequential({rows}\n)"


def log_softmax(z):
    """``log softmax(z)`` along the last axis, without overflow.

    ``log softmax(z)_k = z_k - log sum_j exp(z_j)``, and the log-sum-exp is computed
    as ``m + log sum_j exp(z_j - m)`` with ``m = max_j z_j``: every exponent is then at
    most 0, so nothing overflows, and the largest term is exactly 1, so the sum is at
    least 1 and its log is finite.

    Examples
    --------
    >>> log_softmax(np.array([[1000.0, 1000.0]]))
    array([[-0.69314718, -0.69314718]])
    """
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against the labels, and its gradient.

    Parameters
    ----------
    logits : (N, K) ndarray
        Scores, one row per sample. Not modified.
    labels : (N,) int ndarray
        The right class of each sample, in ``range(K)``.

    Returns
    -------
    loss : float
        ``L = mean_n (logsumexp(logits[n]) - logits[n, labels[n]])``, what
        ``torch.nn.functional.cross_entropy`` computes.
    dlogits : (N, K) ndarray
        ``dL/dlogits = (softmax(logits) - onehot(labels)) / N``.

    Examples
    --------
    >>> loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6), round(float(np.log(4)), 6)  # four classes, equally likely
    (1.386294, 1.386294)
    >>> dlogits
    array([[-0.375,  0.125,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or logits.dtype.kind != "f" or logits.shape[0] == 0:
        raise ValueError(
            "logits must be a float array of shape (N, K) with N >= 1, got "
            f"{logits.dtype} {logits.shape}"
        )
    n, k = logits.shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be {n} ints, one per row of logits {logits.shape}, "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(
            f"labels must lie in range({k}), got {labels.min()} to {labels.max()}"
        )
    rows = np.arange(n)
    logp = log_softmax(logits)  # (N, K)
    loss = -logp[rows, labels].mean()
    dlogits = np.exp(logp)  # softmax
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(loss), dlogits


class SGD:
    """Stochastic gradient descent with momentum: ``torch.optim.SGD``'s update rule.

    For each parameter ``p`` with gradient ``g``, one :meth:`step` does::

        g = g + weight_decay * p
        v = g                             on the first step
        v = momentum * v + (1 - dampening) * g   after it
        g = g + momentum * v if nesterov else v
        p -= lr * g

    ``v`` is the velocity, one buffer per parameter. With ``momentum=0`` this is plain
    gradient descent, ``p -= lr * g``.

    Parameters
    ----------
    params : list of ndarray
        The arrays to update, in place (``net.parameters()``).
    lr : float
        The learning rate.
    momentum, dampening, weight_decay : float
    nesterov : bool

    Examples
    --------
    >>> p = np.array([1.0])
    >>> opt = SGD([p], lr=0.1, momentum=0.9)
    >>> for _ in range(3):
    ...     opt.step([2 * p])  # the gradient of p ** 2
    >>> p  # v = 2, 3.4, 3.98: p = 1 - 0.2 - 0.34 - 0.398
    array([0.062])
    """

    def __init__(
        self,
        params,
        *,
        lr,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(
                "lr, momentum and weight_decay must be >= 0, got "
                f"lr={lr}, momentum={momentum}, weight_decay={weight_decay}"
            )
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self.params = list(params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov = weight_decay, nesterov
        self.velocity = [None] * len(self.params)

    def step(self, grads):
        """Update every parameter in place, given its gradient (``net.grads()``)."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"expected {len(self.params)} gradients, got {len(grads)}")
        for k, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            if g.shape != p.shape:
                raise ValueError(
                    f"gradient {k} has shape {g.shape}, its parameter {p.shape}"
                )
            if self.weight_decay:
                g = g + self.weight_decay * p
            if self.momentum:
                v = self.velocity[k]
                if v is None:
                    v = self.velocity[k] = g.copy()
                else:
                    v *= self.momentum
                    v += (1 - self.dampening) * g
                g = g + self.momentum * v if self.nesterov else v
            p -= self.lr * g


def to_torch(net):
    """The same network in PyTorch, with a copy of its current weights.

    ``Conv2D`` becomes ``torch.nn.Conv2d`` (same arguments, same dtype), ``ReLU``
    ``torch.nn.ReLU`` and ``Flatten`` ``torch.nn.Flatten``; a :class:`Sequential`
    becomes a ``torch.nn.Sequential``. Needs PyTorch.

    Examples
    --------
    >>> from convbook.layers import Conv2D
    >>> net = Sequential(Conv2D(1, 2, 3, 1, 1, rng=0), ReLU(), Flatten())
    >>> twin = to_torch(net)  # doctest: +SKIP
    >>> twin  # doctest: +SKIP
    Sequential(
      (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
      (1): ReLU()
      (2): Flatten(start_dim=1, end_dim=-1)
    )
    """
    import torch

    from .layers import Conv2D

    if isinstance(net, Sequential):
        return torch.nn.Sequential(*(to_torch(layer) for layer in net.layers))
    if isinstance(net, ReLU):
        return torch.nn.ReLU()
    if isinstance(net, Flatten):
        return torch.nn.Flatten()
    if isinstance(net, Conv2D):
        dtype = getattr(torch, net.dtype.name)
        conv = torch.nn.Conv2d(
            net.in_channels,
            net.out_channels,
            net.kernel_size,
            net.stride,
            net.padding,
            net.dilation,
            net.groups,
            net.b is not None,
            dtype=dtype,
        )
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(net.w))
            if net.b is not None:
                conv.bias.copy_(torch.from_numpy(net.b))
        return conv
    raise TypeError(f"to_torch knows Sequential, Conv2D, ReLU and Flatten, got {net!r}")
