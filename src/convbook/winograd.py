"""Winograd's minimal filtering: exact F(m, r) transforms and an r x r stride-1 layer.

A 1-D correlation of ``m`` outputs with an ``r``-tap filter, ``y_i = sum_k g_k
d_{i+k}``, needs ``m * r`` multiplications done directly and only ``alpha = m + r - 1``
done Winograd's way::

    y = AT @ ((G @ g) * (BT @ d))

Nesting the 1-D algorithm gives the 2-D tile ``Y = AT @ ((G g G^T) * (BT d B)) @ A``:
``alpha**2`` multiplications instead of ``m**2 * r**2`` (2.25x fewer for F(2x2, 3x3), 4x
for F(4x4, 3x3)).

The matrices come from the Cook-Toom construction (Lavin & Gray 2016, "Fast Algorithms
for Convolutional Neural Networks"): evaluate the two polynomials at ``alpha - 1``
rational points and at infinity, multiply pointwise, interpolate (Lagrange), and
transpose the resulting linear-convolution algorithm into a correlation. Everything is
computed with :class:`fractions.Fraction`, so the matrices are exact.

Notes
-----
Derived in the book's chapter "Winograd" (``book/winograd.ipynb``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache, lru_cache

import numpy as np

__all__ = [
    "DEFAULT_POINTS",
    "LAYER_TILES",
    "BAND_TILES",
    "winograd_matrices",
    "cook_toom_matrices",
    "transform_matrices",
    "winograd_multiplications",
    "weight_transform",
    "tiles_conv2d",
    "tiles_grad_weight",
    "tiles_grad_input",
    "input_transform",
    "winograd_conv2d",
]

#: The interpolation points for each output size m (with r = 3): Lavin & Gray's
#: choices (0, +-1, +-2, +-1/2: small numbers keep the transforms well conditioned);
#: infinity is always added.
DEFAULT_POINTS = {
    2: (0, 1, -1),
    3: (0, 1, -1, 2),
    4: (0, 1, -1, 2, -2),
    5: (0, 1, -1, 2, -2, Fraction(1, 2)),
    6: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2)),
}


#: The layer algorithm's tile sizes m for each kernel size r: the even ones whose
#: ``m + r - 2`` interpolation points are among the :data:`DEFAULT_POINTS` (odd m have
#: points too; the layers do not use them).
LAYER_TILES = {3: (2, 4, 6), 5: (2, 4)}


def _poly_from_roots(roots):
    """Coefficients (lowest degree first) of prod (x - a) over ``roots``: Fractions."""
    coeffs = [Fraction(1)]
    for a in roots:
        # multiply by (x - a): new_j = old_{j-1} - a * old_j
        shifted = [Fraction(0)] + coeffs
        scaled = [-a * c for c in coeffs] + [Fraction(0)]
        coeffs = [s + t for s, t in zip(shifted, scaled, strict=True)]
    return coeffs


def _default_points(m, r):
    alpha = m + r - 1
    for pts in DEFAULT_POINTS.values():
        if len(pts) == alpha - 1:
            return pts
    raise ValueError(
        f"no default interpolation points for F({m}, {r}) (alpha = {alpha}); "
        "pass points= with "
        f"{alpha - 1} distinct rationals"
    )


@cache
def cook_toom_matrices(m, r, points):
    """The Cook-Toom construction of F(m, r) at the given finite points (plus infinity).

    Returns ``(AT, G, BT)`` as tuples of tuples of :class:`fractions.Fraction`; see
    :func:`winograd_matrices` for the public interface and the conventions.
    """
    alpha = m + r - 1
    a = [Fraction(p) for p in points]
    n_fin = alpha - 1
    # f_k = prod_{i != k} (a_k - a_i): the Lagrange denominators. Lavin's convention
    # (wincnn) puts 1 / f_k into G and f_k into BT, so BT holds the integer-ish
    # coefficients of prod_{i != k} (x - a_i); the first scale is made positive.
    f = []
    for k in range(n_fin):
        prod = Fraction(1)
        for i in range(n_fin):
            if i != k:
                prod *= a[k] - a[i]
        f.append(prod)
    if f[0] < 0:
        f[0] = -f[0]

    def vander(ncols):
        # rows: evaluation at each finite point, then "at infinity" (the leading
        # coefficient)
        rows = [[ak**j for j in range(ncols)] for ak in a]
        rows.append([Fraction(int(j == ncols - 1)) for j in range(ncols)])
        return rows

    # Linear convolution s = g * h (length alpha):  s = C [(V_r g) * (V_m h)], with
    #   column k < alpha-1 of C: coefficients of the Lagrange basis
    #     l_k(x) = prod_{i != k}(x - a_i) / f_k,
    #   last column of C: coefficients of M(x) = prod_i (x - a_i) (the leading term,
    #     from infinity).
    # Correlation is its transpose: y = V_m^T [(V_r g) * (C^T d)].
    AT = [list(col) for col in zip(*vander(m), strict=True)]  # (m, alpha)
    G = vander(r)  # (alpha, r)
    BT = []
    for k in range(n_fin):
        lk = _poly_from_roots([a[i] for i in range(n_fin) if i != k]) + [Fraction(0)]
        true_fk = Fraction(1)
        for i in range(n_fin):
            if i != k:
                true_fk *= a[k] - a[i]
        # row k of C^T is l_k / true_fk; rescale to f_k / true_fk * lk (moves 1/f_k into
        # G)
        BT.append([c * f[k] / true_fk for c in lk])
        G[k] = [g / f[k] for g in G[k]]
    big_m = _poly_from_roots(a)
    # Sign convention for the infinity term: first non-zero entry of BT's last row
    # positive (as in the published F(2,3) and F(4,3)); the sign moves to AT's last
    # column.
    sign = 1 if next(c for c in big_m if c != 0) > 0 else -1
    BT.append([sign * c for c in big_m])
    for row in AT:
        row[-1] *= sign
    return tuple(map(tuple, AT)), tuple(map(tuple, G)), tuple(map(tuple, BT))


def winograd_matrices(m, r=3, *, points=None):
    """Exact Winograd/Cook-Toom transforms for F(m, r), as lists of Fractions.

    Parameters
    ----------
    m : int
        Outputs per tile (per dimension).
    r : int
        Filter taps (3 for a 3x3 kernel).
    points : sequence of rationals, optional
        The ``m + r - 2`` finite interpolation points (infinity is always used as well).
        Default: Lavin & Gray's, ``0, 1, -1`` for F(2,3), ``0, +-1, +-2`` for F(4,3),
        ``0, +-1, +-2, +-1/2`` for F(6,3).

    Returns
    -------
    AT : (m, alpha) list of lists of Fraction
    G : (alpha, r) list of lists of Fraction
    BT : (alpha, alpha) list of lists of Fraction
        With ``alpha = m + r - 1`` and ``y = AT @ ((G @ g) * (BT @ d))`` the exact
        correlation ``y_i = sum_k g_k d_{i+k}`` of ``d`` (length ``alpha``) with ``g``
        (length ``r``).

    Examples
    --------
    >>> AT, G, BT = winograd_matrices(2)
    >>> [[int(v) for v in row] for row in BT]
    [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    >>> [str(v) for v in G[1]]
    ['1/2', '1/2', '1/2']
    """
    m, r = _check_mr(m, r)
    if points is None:
        points = _default_points(m, r)
    points = tuple(Fraction(p) for p in points)
    alpha = m + r - 1
    if len(points) != alpha - 1 or len(set(points)) != len(points):
        raise ValueError(
            f"F({m}, {r}) needs {alpha - 1} distinct finite points (plus infinity), "
            f"got points={points}"
        )
    AT, G, BT = cook_toom_matrices(m, r, points)
    return (
        [list(row) for row in AT],
        [list(row) for row in G],
        [list(row) for row in BT],
    )


def _check_mr(m, r):
    for name, v in (("m", m), ("r", r)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={v!r}")
    return int(m), int(r)


def transform_matrices(m, r=3, *, dtype=np.float64, points=None):
    """The F(m, r) transforms of :func:`winograd_matrices` as float arrays.

    Examples
    --------
    >>> AT, G, BT = transform_matrices(4)
    >>> AT.shape, G.shape, BT.shape
    ((4, 6), (6, 3), (6, 6))
    >>> d, g = np.arange(6.0), np.array([1.0, 2.0, -1.0])
    >>> np.round(AT @ ((G @ g) * (BT @ d)), 12)  # y_i = d_i + 2 d_(i+1) - d_(i+2) = 2 i
    array([0., 2., 4., 6.])
    """
    return tuple(
        np.array([[float(v) for v in row] for row in mat], dtype=dtype)
        for mat in winograd_matrices(m, r, points=points)
    )


def winograd_multiplications(m, r=3):
    """Multiplications per 2-D output tile: ``(m*m*r*r, (m+r-1)**2)``.

    Examples
    --------
    >>> d, w = winograd_multiplications(2); d / w
    2.25
    >>> d, w = winograd_multiplications(4); d / w
    4.0
    """
    return m * m * r * r, (m + r - 1) ** 2


@lru_cache(maxsize=32)
def _float_matrices(m, dtype_str, r=3):
    """AT, G kron G and BT in one dtype, computed once per (m, dtype, r)."""
    AT, G, BT = transform_matrices(m, r, dtype=np.float64)
    return AT.astype(dtype_str), np.kron(G, G).astype(dtype_str), BT.astype(dtype_str)


def weight_transform(w, m):
    """``U = G g G^T`` for every r x r kernel ``g = w[f, c]``: ``(alpha^2, F, C)``.

    One product: ``vec(G g G^T) = (G kron G) vec(g)``, so ``(alpha^2, r^2) @ (r^2,
    F*C)`` transforms every kernel at once. Returned in the weights' dtype.

    Examples
    --------
    >>> weight_transform(np.ones((2, 3, 3, 3)), 4).shape  # F(4, 3): alpha = 6
    (36, 2, 3)
    >>> weight_transform(np.ones((2, 3, 5, 5)), 4).shape  # F(4, 5): alpha = 8
    (64, 2, 3)
    """
    f, c, r = w.shape[:3]
    # float32 in float32 (the difference, about 1 ulp, is far below Winograd's own
    # float32 error); other dtypes in float64, rounded once
    work = np.float32 if w.dtype == np.float32 else np.float64
    kron = _float_matrices(m, np.dtype(work).str, r)[1]  # (alpha^2, r^2)
    u = kron @ w.reshape(f * c, r * r).T.astype(work, copy=False)  # (alpha^2, F*C)
    return u.reshape(-1, f, c).astype(w.dtype, copy=False)  # (alpha^2, F, C)


@lru_cache(maxsize=32)
def _gradient_matrices(m, dtype_str, r=3):
    """F(r, m)'s AT and G, and BT, in one dtype: for the weight gradient."""
    AT, G, BT = transform_matrices(r, m, dtype=np.float64)
    return AT.astype(dtype_str), G.astype(dtype_str), BT.astype(dtype_str)


def input_transform(xpad, m, th, tw, BT):
    """``V = BT d B`` of every input tile: ``(alpha^2, C, P)``.

    The tiles are ``alpha x alpha`` (``alpha = m + r - 1``, ``BT``'s size), one every
    ``m`` pixels, ``th`` down and ``tw`` across, ``P = N*th*tw`` of them; ``xpad`` holds
    them all. ``V`` is a transposed view: in memory the channels come last.
    """
    n, c = xpad.shape[:2]
    alpha = BT.shape[0]
    sn, sc, sh, sw = xpad.strides
    # channels last: the copy runs C numbers at a time, not a row of tiles (tw) at a
    # time. Benchmark layer a (C = 64, tw = 8): the copy 0.55 of the time; layers a, d
    # and e, forward and backward: 0.91-0.95 (paired rounds, 2-core Zen 3)
    shape, strides = (alpha, alpha, n, th, tw, c), (sh, sw, sn, sh * m, sw * m, sc)
    d = np.lib.stride_tricks.as_strided(xpad, shape, strides, writeable=False)
    d = d.reshape(alpha, alpha * n * th * tw * c)  # the one copy of the tiles
    v = BT @ d  # BT d: (alpha, alpha*P*C), P = N*th*tw tiles
    v = BT @ v.reshape(alpha, alpha, -1)  # (BT d) B, batched over the first axis
    return v.reshape(alpha * alpha, -1, c).transpose(0, 2, 1)


def _grown(xpad, hneed, wneed, dtype):
    """``xpad`` with zero rows/columns added at the bottom/right up to the tiles."""
    n, c, hp, wp = xpad.shape
    if hp >= hneed and wp >= wneed and xpad.dtype == dtype:
        return xpad
    grown = np.zeros((n, c, max(hp, hneed), max(wp, wneed)), dtype=dtype)
    grown[:, :, :hp, :wp] = xpad
    return grown


def tiles_conv2d(xpad, u, m, *, bias=None, out=None):
    """Winograd's layer algorithm: an r x r stride-1 correlation, m x m outputs a tile.

    1. cut the padded input into overlapping ``alpha x alpha`` tiles (``alpha = m + r -
       1``, one every ``m`` pixels) and transform each, ``V = BT d B``;
    2. multiply with the transformed kernels ``U`` (:func:`weight_transform`) and sum
       over the input channels: at each of the ``alpha^2`` positions that is a matrix
       product, ``(F, C) @ (C, tiles)``;
    3. transform back, ``Y = AT M A``, and put each tile's ``m x m`` outputs in place.

    Each transform is two products over all tiles at once, one per side of the tile.

    Parameters
    ----------
    xpad : (N, C, Hp, Wp) ndarray
        The padded input. Outputs past ``(Hp - r + 1, Wp - r + 1)`` are cropped; rows
        and columns are added (zeros) at the bottom and right up to whole tiles.
    u : (alpha^2, F, C) ndarray
        The transformed weights (:func:`weight_transform`, which sets ``r``), in the
        dtype to compute in.
    m : int
        Output tile size: 2, 4 or 6 for 3x3 kernels, 2 or 4 for 5x5.
    bias : (F,) ndarray, optional
        Added to every output of filter ``f``, inside the output transform.
    out : (N, F, OH, OW) ndarray, optional
        Where to write; its size sets the output's (default ``(Hp - r + 1, Wp - r +
        1)``).

    Returns
    -------
    out : (N, F, OH, OW) ndarray
    """
    n, c, hp, wp = xpad.shape
    f = u.shape[1]
    alpha = math.isqrt(u.shape[0])
    r = alpha - m + 1  # the kernel's size
    oh, ow = (hp - r + 1, wp - r + 1) if out is None else out.shape[2:]
    th, tw = -(-oh // m), -(-ow // m)  # tiles per column and row
    AT, _, BT = _float_matrices(m, u.dtype.str, r)
    # 1. the tiles, (alpha, alpha, N, th, tw, C), from a view with a stride of m pixels
    xpad = _grown(xpad, th * m + r - 1, tw * m + r - 1, u.dtype)
    v = input_transform(xpad, m, th, tw, BT)  # (alpha^2, C, P), P = N*th*tw tiles
    # 2. at each of the alpha^2 positions, (F, C) @ (C, P)
    mm = u @ v  # (alpha^2, F, P)
    if bias is not None:  # AT's column 1 (the point 1) is all ones: b at M's (1, 1)
        mm[alpha + 1] += bias[:, None]  # reaches every output of the tile
    # 3. AT M A, one side at a time again: AT from the left, then A from the right,
    # which puts each tile's output column j last, beside its tile column tj
    y = AT @ mm.reshape(alpha, -1)  # (m, alpha*F*P)
    y = y.reshape(m, alpha, -1).transpose(0, 2, 1) @ AT.T  # (m, F*P, m)
    # tile row ti's output row i is pixel row ti*m + i, and (tj, j) is already the
    # pixel column tj*m + j: one copy of the whole tile rows (splitting out's rows into
    # (ti, i) is a view), one of a last tile row cut by the edge; columns cropped
    if out is None:
        out = np.empty((n, f, oh, ow), dtype=u.dtype)
    y = y.reshape(m, f, n, th, tw * m)[..., :ow].transpose(2, 1, 3, 0, 4)
    whole = oh // m  # tile rows inside the output
    out[:, :, : whole * m].reshape(n, f, whole, m, ow)[...] = y[:, :, :whole]
    if whole < th:
        out[:, :, whole * m :] = y[:, :, whole, : oh - whole * m]
    return out


def tiles_grad_weight(xpad, dout, m=4, r=3):
    """An r x r stride-1 correlation's weight gradient by Winograd's F(r x r, m x m).

    ``dw[f, c]`` is the correlation of the padded input with ``dout``, r x r outputs.
    Cut ``dout`` into ``m x m`` tiles: each tile is the *filter* of a small correlation
    of the ``(m+r-1) x (m+r-1)`` input tile under it, with an r x r result, and
    Winograd's F(r, m) computes it (Lavin & Gray 2016, section 4.3):

    ``dw = AT [sum over tiles of (G dout_tile G^T) * (BT x_tile B)] A``

    The sum over the tiles, at each of the ``alpha^2`` positions, is one matrix product
    ``(F, tiles) @ (tiles, C)``: a long inner dimension, which BLAS runs at speed.

    Parameters
    ----------
    xpad : (N, C, Hp, Wp) ndarray
        The padded input.
    dout : (N, F, Hp - r + 1, Wp - r + 1) ndarray
        The output gradient.
    m : int
        Tile size of ``dout`` (``alpha = m + r - 1``).
    r : int
        The kernel's size.

    Returns
    -------
    dw : (F, C, r, r) ndarray

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> tiles_grad_weight(x, np.ones((1, 1, 2, 2)), m=2)[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    """
    n, c, hp, wp = xpad.shape
    f, oh, ow = dout.shape[1:]
    dtype = np.result_type(xpad.dtype, dout.dtype)
    alpha = m + r - 1
    th, tw = -(-oh // m), -(-ow // m)
    AT, G, BT = _gradient_matrices(m, dtype.str, r)
    xpad = _grown(xpad, th * m + r - 1, tw * m + r - 1, dtype)
    v = input_transform(xpad, m, th, tw, BT)  # (alpha^2, C, P)
    # dout's tiles, zeros past its edge: (m, m, F, N, th, tw), then G g G^T
    g = np.zeros((n, f, th * m, tw * m), dtype=dtype)
    g[:, :, :oh, :ow] = dout
    g = g.reshape(n, f, th, m, tw, m).transpose(
        3, 5, 1, 0, 2, 4
    )  # (m, m, F, N, th, tw)
    u = G @ g.reshape(m, -1)  # G g: (alpha, m*F*P)
    u = G @ u.reshape(alpha, m, -1)  # (G g) G^T: (alpha, alpha, F*P)
    # the sum over tiles: (F, P) @ (P, C) at each of the alpha^2 positions
    mm = u.reshape(alpha * alpha, f, -1) @ v.transpose(0, 2, 1)  # (alpha^2, F, C)
    y = AT @ mm.reshape(alpha, -1)  # (r, alpha*F*C)
    y = AT @ y.reshape(r, alpha, -1)  # (r, r, F*C)
    return y.reshape(r, r, f, c).transpose(2, 3, 0, 1)  # (F, C, r, r)


#: Tile columns per banded product in :func:`tiles_grad_input`: the band multiplies
#: ``(tb + na - 1) * m / alpha`` times the useful numbers, so wide images take it in
#: bands of this many tiles, their seams added.
BAND_TILES = 16


@lru_cache(maxsize=32)
def _overlap_band(m, dtype_str, r, tb):
    """B's second side and the overlap-add along a row of ``tb`` tiles, one matrix.

    ``(tb*alpha, (tb+na-1)*m)``: tile column ``tj``'s ``alpha`` numbers go through
    ``B`` (from the right: ``BT``) to pixel columns ``tj*m .. tj*m + alpha - 1``;
    where neighbouring tiles overlap, their entries add.
    """
    BT = _float_matrices(m, dtype_str, r)[2]
    alpha = m + r - 1
    na = -(-alpha // m)  # tiles that reach one block of m pixels
    band = np.zeros((tb * alpha, (tb + na - 1) * m), dtype=dtype_str)
    for tj in range(tb):
        band[tj * alpha : (tj + 1) * alpha, tj * m : tj * m + alpha] += BT
    band.flags.writeable = False  # shared by every call (and thread)
    return band


def tiles_grad_input(dout, u, m):
    """The input gradient by col2im on tiles: :func:`tiles_conv2d` run backwards.

    The forward pass is linear in the input, tile by tile: ``Y = AT [sum_c U * (BT d
    B)] A``. Its transpose takes ``dout`` the other way through the same matrices:

    1. cut ``dout`` into ``m x m`` tiles (no overlap: a reshape) and transform each
       with the output transform turned around, ``A dY AT``;
    2. at each of the ``alpha^2`` positions, ``(C, F) @ (F, tiles)`` with ``U^T``;
    3. transform back with the input transform turned around, ``B V BT``: an ``alpha
       x alpha`` gradient per input tile;
    4. the input tiles overlap (``alpha`` pixels, one every ``m``), so their gradients
       *add* where they overlap, as col2im's columns do: along the rows by shifted
       adds, along the columns inside the last product (:func:`_overlap_band`, in
       bands of at most :data:`BAND_TILES` tiles).

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    u : (alpha^2, F, C) ndarray
        The transformed weights (:func:`weight_transform`), in the dtype to compute in.
    m : int
        The tile size (``LAYER_TILES``).

    Returns
    -------
    (N, C, H', W') ndarray
        The gradient of the padded input that the forward pass's tiles read: at least
        ``OH + r - 1`` rows and ``OW + r - 1`` columns, zeros past them; crop the
        padding off to get ``dx``.

    Examples
    --------
    >>> dout = np.ones((1, 1, 2, 2))
    >>> tiles_grad_input(dout, weight_transform(np.ones((1, 1, 3, 3)), 2), 2)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]])
    """
    n, f, oh, ow = dout.shape
    c = u.shape[2]
    alpha = math.isqrt(u.shape[0])
    r = alpha - m + 1
    na = -(-alpha // m)  # tiles that reach one block of m pixels
    tb = min(-(-ow // m), BAND_TILES)  # tile columns a band
    nb = -(-ow // (tb * m))  # bands
    th, tw = -(-oh // m), nb * tb  # tiles down and across (whole bands)
    AT, _, BT = _float_matrices(m, u.dtype.str, r)
    # 1. dout's tiles, zeros past its edge: (m, m, F, N, th, tw); A dY AT
    g = np.zeros((n, f, th * m, tw * m), dtype=u.dtype)
    g[:, :, :oh, :ow] = dout
    g = g.reshape(n, f, th, m, tw, m).transpose(3, 5, 1, 0, 2, 4)
    t = AT.T @ g.reshape(m, -1)  # (alpha, m*F*P)
    t = AT.T @ t.reshape(alpha, m, -1)  # (alpha, alpha, F*P)
    # 2. U^T at each position: (C, F) @ (F, P)
    v = u.transpose(0, 2, 1) @ t.reshape(alpha * alpha, f, -1)  # (alpha^2, C, P)
    # 3. B V, then 4. the rows' overlap: tile ti's rows a*m .. a*m + m - 1 land in
    # block ti + a; the tile column's alpha numbers last, for the band
    d = BT.T @ v.reshape(alpha, -1)  # (alpha_k, alpha_j*C*P)
    d = d.reshape(alpha, alpha, c, n, th, tw).transpose(0, 2, 3, 4, 5, 1)
    rows = np.empty((m, c, n, th + na - 1, tw, alpha), dtype=u.dtype)
    rows[:, :, :, :th] = d[:m]
    rows[:, :, :, th:] = 0
    for a in range(1, na):
        k = min(m, alpha - a * m)
        rows[:k, :, :, a : a + th] += d[a * m : a * m + k]
    # 3. and 4. along the columns: ... V BT and the overlap-add, a product a band
    band = _overlap_band(m, u.dtype.str, r, tb)  # (tb*alpha, (tb+na-1)*m)
    cols = rows.reshape(-1, nb, tb * alpha) @ band  # (m*C*N*th', nb, (tb+na-1)*m)
    wide = cols[:, 0]  # one band: the whole row of pixels
    if nb > 1:  # each band's last (na-1)*m columns overlap the next band's first
        width = tb * m
        wide = np.zeros((cols.shape[0], nb + 1, width), dtype=u.dtype)
        wide[:, :nb] = cols[:, :, :width]
        wide[:, 1:, : (na - 1) * m] += cols[:, :, width:]
    wide = wide.reshape(m, c, n, th + na - 1, -1)[..., : (tw + na - 1) * m]
    return wide.transpose(2, 1, 3, 0, 4).reshape(n, c, (th + na - 1) * m, -1)


def winograd_conv2d(xpad, w, m=4):
    """r x r, stride-1 cross-correlation of an already padded input by F(m x m, r x r).

    :func:`weight_transform`, then :func:`tiles_conv2d`; computed in the dtype NumPy
    promotes ``xpad`` and ``w`` to.

    Parameters
    ----------
    xpad : (N, C, Hp, Wp) ndarray
        The input, padding already applied.
    w : (F, C, r, r) ndarray
        3 x 3 or 5 x 5 kernels.
    m : int
        Output tile size, one of ``LAYER_TILES[r]``: F(2,3), F(4,3), F(6,3), F(2,5) or
        F(4,5). Larger tiles save more multiplications and lose accuracy.

    Returns
    -------
    out : (N, F, Hp - r + 1, Wp - r + 1) ndarray

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3))
    >>> winograd_conv2d(x, w, m=2)[0, 0]
    array([[45., 54.],
           [81., 90.]])
    """
    xpad = np.asarray(xpad)
    w = np.asarray(w)
    r = w.shape[2] if w.ndim == 4 else None
    if (
        xpad.ndim != 4
        or w.ndim != 4
        or w.shape[2] != w.shape[3]
        or r not in LAYER_TILES
        or w.shape[1] != xpad.shape[1]
    ):
        raise ValueError(
            "winograd_conv2d expects xpad (N, C, H, W) and w (F, C, r, r) with "
            f"r in {tuple(LAYER_TILES)} and matching C, "
            f"got xpad {xpad.shape} and w {w.shape}"
        )
    if m not in LAYER_TILES[r]:
        raise ValueError(
            f"winograd_conv2d supports m in {LAYER_TILES[r]} for {r}x{r} kernels, "
            f"got m={m!r}"
        )
    if xpad.shape[2] < r or xpad.shape[3] < r:
        raise ValueError(
            f"winograd_conv2d needs a padded input of at least {r}x{r}, "
            f"got xpad {xpad.shape}"
        )
    dtype = np.result_type(xpad.dtype, w.dtype, np.float16)
    return tiles_conv2d(xpad, weight_transform(w.astype(dtype, copy=False), m), m)
