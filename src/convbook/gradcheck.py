"""Numerical checks: a finite-difference vector-Jacobian product, a relative error, and a one-line comparison."""

from __future__ import annotations

import numpy as np

__all__ = ["numeric_vjp", "rel_error", "compare"]


def numeric_vjp(f, x, dout, h=1e-6):
    """Gradient of ``sum(f(x) * dout)`` with respect to ``x`` by central differences.

    For every entry ``x[k]``, ``(f(x + h e_k) - f(x - h e_k)) / (2h)`` dotted with ``dout``. ``x`` is not modified
    (a float64 copy is perturbed). Use float64: in float32 the rounding error of ``f`` divided by ``2h`` swamps the
    derivative, and the check cries wolf.

    Parameters
    ----------
    f : callable, ndarray -> ndarray
    x : ndarray
    dout : ndarray, shaped like ``f(x)``
    h : float

    Returns
    -------
    ndarray shaped like ``x``

    Examples
    --------
    >>> x = np.array([1.0, 2.0, 3.0])
    >>> numeric_vjp(lambda v: v ** 2, x, np.ones(3)).round(6)
    array([2., 4., 6.])
    """
    xc = np.array(x, dtype=np.float64)  # a copy: the caller's x is never touched
    dout = np.asarray(dout, dtype=np.float64)
    grad = np.zeros_like(xc)
    flat, gflat = xc.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + h
        plus = np.sum(np.asarray(f(xc), dtype=np.float64) * dout)
        flat[k] = old - h
        minus = np.sum(np.asarray(f(xc), dtype=np.float64) * dout)
        flat[k] = old
        gflat[k] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b):
    """Relative error in the max norm: ``max|a - b| / max(1e-8, max|a| + max|b|)``.

    Measured against the size of the whole array rather than entry by entry, so that entries which should be zero
    (and come out of a finite difference as 1e-11 noise) do not read as 100% wrong. About 1e-10 or below means the
    two agree to float64 rounding; a wrong gradient gives 1e-2 or more.

    Examples
    --------
    >>> rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> round(rel_error(np.array([1.0, 0.0]), np.array([1.0, 1e-11])), 12)
    5e-12
    >>> round(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])), 3)
    0.048
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs arrays of one shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(1e-8, float(np.max(np.abs(a))) + float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b))) / scale


def compare(name, got, want, *, rtol=None, atol=None):
    """Print whether ``got`` equals ``want`` exactly, closely, and by how much at most; return the close verdict.

    Tolerances default to the coarser dtype's: 1e-7/1e-9 for float64, 1e-4/1e-5 for float32, 1e-2/1e-3 below.

    Examples
    --------
    >>> compare("dw", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-12]))
    dw              | exact: False | close: True  | max diff: 1.0e-12
    True
    """
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        print(f"{name:<15} | shape mismatch: got {got.shape}, want {want.shape}")
        return False
    eps = max(np.finfo(d).eps if d.kind == "f" else 0.0 for d in (got.dtype, want.dtype))
    if rtol is None:
        rtol = 1e-7 if eps <= 1e-15 else (1e-4 if eps <= 1e-6 else 1e-2)
    if atol is None:
        atol = 1e-9 if eps <= 1e-15 else (1e-5 if eps <= 1e-6 else 1e-3)
    exact = bool(np.array_equal(got, want))
    close = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if got.size else 0.0
    print(f"{name:<15} | exact: {exact!s:<5} | close: {close!s:<5} | max diff: {diff:.1e}")
    return close
