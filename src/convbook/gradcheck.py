"""Numerical checks: a finite-difference vector-Jacobian product, a scale-aware relative
error, and a one-line comparison."""

from __future__ import annotations

import numpy as np

__all__ = ["LINEAR_H", "numeric_vjp", "rel_error", "compare"]

#: The finite-difference step for a map linear in its argument (the convolution in x,
#: in w, in b): no truncation error at any step, so a large one, the size of a
#: standard-normal input's entries, leaves only rounding, about 1e-16 of the gradient
#: (:func:`numeric_vjp`).
LINEAR_H = 1.0


def numeric_vjp(f, x, dout, h=1e-6):
    """Gradient of ``sum(f(x) * dout)`` with respect to ``x`` by central differences.

    For every entry ``x[k]``, ``(f(x + h e_k) - f(x - h e_k)) / (2h)`` dotted with
    ``dout``. ``x`` is not modified (a float64 copy is perturbed). Use float64: in
    float32 the rounding error of ``f`` divided by ``2h`` swamps the derivative, and the
    check cries wolf.

    The step: a central difference is off by two errors, truncation (``h**2`` times the
    third derivative) and rounding (float64's ``1e-16`` times ``|f|``, divided by
    ``2h``). For a nonlinear ``f`` a small ``h`` balances them (the default, ``1e-6``).
    For a map that is linear (or affine) in ``x`` there is no truncation error at any
    ``h``: use :data:`LINEAR_H`, a step as large as the inputs' entries, and the
    rounding error falls to about ``1e-16``. The convolution is linear in ``x``, in
    ``w`` and in ``b``; the bug zoo's checks use :data:`LINEAR_H`.

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

    A linear map, with the large step: exact to float64 rounding.

    >>> a = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    >>> dout = np.array([0.3, -0.7])
    >>> g = numeric_vjp(lambda v: a @ v, x, dout, h=LINEAR_H)
    >>> bool(rel_error(g, a.T @ dout) < 1e-15)
    True
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
    """Relative error, scaled by the largest entry: ``max|a-b| / max(max|a|, max|b|)``.

    Scale-aware: the largest difference is measured against the size of the arrays as a
    whole, the largest entry of either. Two other choices fail a gradient check:

    * entry by entry, ``max |a_k - b_k| / (|a_k| + |b_k|)``, an entry near zero divides
      its own rounding noise by almost nothing, and reads as an error of the whole
      gradient (the doctest below: noise of 5e-9 on an entry of 7e-4 scores 4e-6 though
      every entry is right to 9 digits);
    * relative to the 2-norm, ``|a - b| / |a|``, one wrong entry among ``n`` is divided
      by about ``sqrt(n)`` typical entries, and a bug in a single border pixel of a
      large gradient would hide.

    The largest entry keeps the measure independent of the scale (``rel_error(c*a,
    c*b) == rel_error(a, b)``) and of the number of entries, and a single wrong entry as
    large as a typical one still reads as an error near 1. Two arrays of zeros agree
    (0.0); an array of zeros against one that is not scores 1.0; a NaN or an infinity
    where the two differ scores ``inf``.

    About 1e-15 means the two agree to float64 rounding (finite differences with
    :data:`LINEAR_H` of a linear map reach it); a wrong gradient scores 1e-2 or more.

    Examples
    --------
    >>> rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> round(rel_error(np.array([1.0, 0.0]), np.array([1.0, 1e-11])), 15)
    1e-11
    >>> round(rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])), 3)
    0.091

    One small entry (7e-4, the others about 3) with float64 noise on it:

    >>> g = np.array([2.6, -3.1, 7e-4])
    >>> noisy = g + np.array([1e-9, -1e-9, 5e-9])
    >>> entrywise = np.max(np.abs(g - noisy) / (np.abs(g) + np.abs(noisy)))
    >>> print(f"entry by entry {entrywise:.1e}, rel_error {rel_error(g, noisy):.1e}")
    entry by entry 3.6e-06, rel_error 1.6e-09
    >>> rel_error(2.0**-70 * g, 2.0**-70 * noisy) == rel_error(g, noisy)  # scale-free
    True
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"rel_error needs arrays of one shape, got {a.shape} and {b.shape}"
        )
    if a.size == 0:
        return 0.0
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return 0.0 if np.array_equal(a, b, equal_nan=True) else float("inf")
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - b))) / scale


def compare(name, got, want, *, rtol=None, atol=None):
    """Print whether ``got`` equals ``want`` exactly, closely, and by how much at most;
    return the close verdict.

    Tolerances default to the coarser dtype's: 1e-7/1e-9 for float64, 1e-4/1e-5 for
    float32, 1e-2/1e-3 below.

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
    eps = max(
        np.finfo(d).eps if d.kind == "f" else 0.0 for d in (got.dtype, want.dtype)
    )
    if rtol is None:
        rtol = 1e-7 if eps <= 1e-15 else (1e-4 if eps <= 1e-6 else 1e-2)
    if atol is None:
        atol = 1e-9 if eps <= 1e-15 else (1e-5 if eps <= 1e-6 else 1e-3)
    exact = bool(np.array_equal(got, want))
    close = bool(np.allclose(got, want, rtol=rtol, atol=atol))
    diff = (
        float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
        if got.size
        else 0.0
    )
    print(
        f"{name:<15} | exact: {exact!s:<5} | close: {close!s:<5} | max diff: {diff:.1e}"
    )
    return close
