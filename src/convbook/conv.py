"""The convolution layer's forward pass and its three gradients, by several methods.

``method`` picks how the work is done; every method computes the same function:

``"reference"``
    Plain loops over the definition (:mod:`convbook.reference`). Slow, obviously right.
``"tutorial"``
    The seed's route: the column matrix built window by window (:func:`~convbook.columns.im2col_loop`), then one
    matrix product per group, ``Y' = X' . K'``.
``"strided"`` (default)
    The column matrix read from a strided view, laid out ``(C*KH*KW, OH*OW)`` per sample so that
    ``(F, C*KH*KW) @ (C*KH*KW, OH*OW)`` lands in NCHW with no transpose back.
``"winograd"``
    Winograd's minimal filtering F(m x m, 3 x 3) (:mod:`convbook.winograd`); 3x3 kernels, stride 1, dilation 1,
    groups 1 only.

The input gradient exists by two routes (``route=``): ``"col2im"`` scatters ``dcols = K'^T . dY'`` back with
overlaps added, ``"rot180"`` is the full convolution of the (stride-dilated, padded) output gradient with the kernel
turned 180 degrees. They are the same linear map; the tests and the ∇X chapter show it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import reference
from .columns import _col2im_6d, _pad, _window_view, im2col_loop
from .kernels import dilate, rot180, rot180_tutorial, swap_in_out
from .shapes import (
    ConvParams,
    _check_float,
    _check_ndim,
    _output_shape,
    check_channels,
    check_conv_inputs,
    check_dout,
    check_shape_arg,
    conv_params,
)

__all__ = [
    "METHODS",
    "conv2d_forward",
    "conv2d_backward",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv2d_grad_bias",
    "rot180",
    "rot180_tutorial",
    "dilate",
]

METHODS = ("reference", "tutorial", "strided", "winograd")
ROUTES = ("col2im", "rot180")
WINOGRAD_TILES = (2, 4, 6)


def _check_method(method, m):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "winograd":
        if m is not None:
            raise ValueError(f"m (the Winograd output tile) applies to method='winograd' only, got m={m!r}")
        return None
    m = 4 if m is None else m
    if m not in WINOGRAD_TILES:
        raise ValueError(f"m (the Winograd output tile size) must be one of {WINOGRAD_TILES}, got {m!r}")
    return m


def _check_winograd(w_shape, p: ConvParams, what="w"):
    kh, kw = w_shape[2:]
    problems = []
    if (kh, kw) != (3, 3):
        problems.append(f"{what} has a ({kh}, {kw}) kernel")
    if p.stride != (1, 1):
        problems.append(f"stride is {p.stride}")
    if p.dilation != (1, 1):
        problems.append(f"dilation is {p.dilation}")
    if p.groups != 1:
        problems.append(f"groups is {p.groups}")
    if problems:
        raise ValueError(
            "method='winograd' supports 3x3 kernels with stride 1, dilation 1 and groups 1 (any padding); "
            + ", ".join(problems)
            + "; use method='strided'"
        )


# --------------------------------------------------------------------------------------------------------------
# the fast paths' batch loop: chunks of samples, buffers reused, threads over the batch

#: Worker threads for the batch loops of ``"strided"`` and ``"winograd"`` (``None``: the usable cores; ``1``:
#: no threads). While the workers run, the BLAS is held to one thread each (threadpoolctl, when installed), so
#: that the copies, which NumPy runs on one core, are spread over the cores as well as the products.
THREADS = None
#: Columns per matrix product: samples are grouped so that one product has at least this many columns
#: (small images, e.g. 8x8 outputs, make one-sample products too thin for the BLAS to run at speed; larger
#: groups would hold more of the column matrix at once).
GEMM_COLUMNS = 512
#: Bytes of transformed input tiles per Winograd chunk (see :func:`_winograd_batched`).
WINOGRAD_CHUNK_BYTES = 1 << 19
#: Use "wide rows" (:class:`_Wide`) where the rule :func:`_use_wide` says so; False: the plain window view everywhere.
WIDE_ROWS = True
#: Below this many multiply-adds a call runs on one Python thread (the BLAS keeps its own threads). Measured on the
#: benchmark's 2-core machine (float32, bench with warm-up): threads over the batch paid on every layer, a to e
#: (0.06e9 to 1.2e9 multiply-adds; e.g. forward e 8.5 -> 4.7 ms, training c 8.8 -> 6.7 ms). An earlier
#: measurement that found them 2 ms slower on b, c and e had a pool that sometimes ran both halves on one thread.
THREAD_MIN_WORK = 3e7

_POOL = None
_POOL_LOCK = threading.Lock()
_CONTROLLER = None


def _n_threads():
    if THREADS is None:
        try:
            t = len(os.sched_getaffinity(0))  # the cores this process may run on
        except AttributeError:  # not on every platform
            t = os.cpu_count() or 1
    else:
        t = THREADS
    return max(1, int(t))


def _blas_controller():
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # threads then only pay where BLAS is not already using every core
            _CONTROLLER = False
        else:
            _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def _pool(n):
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < n:
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="convbook")
        return _POOL


def _chunks(n, per):
    return [(lo, min(lo + per, n)) for lo in range(0, n, per)]


def _threaded(n, per_gemm, macs):
    """The threadpoolctl controller when :func:`_run_batch` deals the ranges out to threads, else False."""
    threads = min(_n_threads(), len(range(0, n, per_gemm)))
    return _blas_controller() if threads > 1 and macs >= THREAD_MIN_WORK else False


def _run_batch(work, n, per_gemm, macs):
    """Call ``work(lo, hi, state)`` on consecutive sample ranges of size ``per_gemm`` covering ``range(n)``.

    With several cores, a large enough problem (``macs`` multiply-adds) and threadpoolctl installed, the ranges are
    dealt out to worker threads (each keeps its own ``state`` dict for reusable buffers) while the BLAS runs on one
    thread. Returns the list of the workers' states (one per thread used).
    """
    ranges = _chunks(n, per_gemm)
    threads = min(_n_threads(), len(ranges))
    ctl = _threaded(n, per_gemm, macs)
    if not ctl:
        state = {}
        for lo, hi in ranges:
            work(lo, hi, state)
        return [state]
    # the ranges dealt out round-robin, one block per thread
    blocks = [ranges[i::threads] for i in range(threads)]
    states = [{} for _ in blocks]

    def run_block(k):
        for lo, hi in blocks[k]:
            work(lo, hi, states[k])

    with ctl.limit(limits=1, user_api="blas"):
        # the calling thread runs block 0 itself: with a pool's map, one worker could take every block while the
        # other one was still waking up (measured: the whole batch on one thread in 3 of 5 calls)
        futures = [_pool(threads - 1).submit(run_block, k) for k in range(1, threads)]
        run_block(0)
        for fut in futures:
            fut.result()
    return states


def _buffer(state, name, shape, dtype):
    """A scratch array kept in ``state`` and reused while its shape and dtype fit."""
    buf = state.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = state[name] = np.empty(shape, dtype=dtype)
    return buf


class _Wide:
    """Wide rows: the padded input split into stride phases, rows flattened, so that windows are contiguous runs.

    Row ``i*S + p*D`` of the padded input lies in phase ``(p*D) % S``, row ``i + (p*D) // S`` (and likewise for
    columns). Inside one phase the stride is 1, and window offset ``(p, q)`` of *every* output row ``i`` reads the
    same contiguous run of the flattened phase: taking whole phase rows (``Wq`` numbers per output row, the last
    ``Wq - OW`` of them junk) makes the run for all output rows *one* block of ``L = OH*Wq`` numbers starting at
    ``((p*D)//S)*Wq + (q*D)//S``. The copy into the column buffer becomes KH*KW long block copies instead of
    ``OH`` short, strided ones per (c, p, q), at the price of ``Wq/OW`` more columns in the product. The junk
    columns are cropped from the output (forward), or meet zeros in ``dout`` (gradients). One spare zero row at the
    bottom keeps the last block inside the buffer. At stride 1 there is one phase: the padded input itself.
    """

    def __init__(self, x_shape, khw, p, oh, ow):
        n, c, h, w = x_shape
        self.kh, self.kw = khw
        (self.sh, self.sw), (dh, dw) = p.stride, p.dilation
        pt, pb, pl, pr = p.padding
        self.pt, self.pl, self.h, self.w = pt, pl, h, w
        self.hp, self.wp = h + pt + pb, w + pl + pr
        self.hq = -(-self.hp // self.sh) + 1  # phase rows, plus the spare one
        self.wq = -(-self.wp // self.sw)
        self.oh, self.ow = oh, ow
        self.lw = oh * self.wq
        # per kernel offset: its phase and the start of its run in the flattened phase
        self.runs = [
            ((pi * dh) % self.sh, (qj * dw) % self.sw, ((pi * dh) // self.sh) * self.wq + (qj * dw) // self.sw)
            for pi in range(self.kh)
            for qj in range(self.kw)
        ]

    def phases(self, x, dtype, out=None):
        """(SH, SW, N, C, Hq*Wq): the padded input, split into stride phases, rows flattened (one copy of x).

        ``out``, if given, is such an array whose padding is already zero (only the input's pixels are written).
        """
        n, c = x.shape[:2]
        if out is None:
            xf = np.zeros((self.sh, self.sw, n, c, self.hq, self.wq), dtype=dtype)
        else:
            xf = out.reshape(self.sh, self.sw, n, c, self.hq, self.wq)
        for a in range(self.sh):
            for b in range(self.sw):
                # padded rows a, a+S, ... that hold input rows: input row r sits at padded row r + pt
                r0 = (a - self.pt) % self.sh  # first input row in this phase
                c0 = (b - self.pl) % self.sw
                rows = x[:, :, r0 :: self.sh, c0 :: self.sw]
                i0, j0 = (r0 + self.pt) // self.sh, (c0 + self.pl) // self.sw
                xf[a, b, :, :, i0 : i0 + rows.shape[2], j0 : j0 + rows.shape[3]] = rows
        return xf.reshape(self.sh, self.sw, n, c, self.hq * self.wq)

    def group_phases(self, x, lo, hi, st, dtype):
        """The phases of samples lo..hi in the worker's own buffer (so the copy runs on the worker's core)."""
        c = x.shape[1]
        xf = _buffer(st, "xf", (self.sh, self.sw, hi - lo, c, self.hq * self.wq), dtype)
        if st.get("xf_zeroed") is not xf:  # padding and spare row: zeroed once, never written
            xf.fill(0)
            st["xf_zeroed"] = xf
        return self.phases(x[lo:hi], dtype, out=xf)

    def gather(self, xf, lo, hi, cols):
        """Fill ``cols`` (C, KH*KW, B, L) with the runs of samples lo..hi: KH*KW block copies."""
        for k, (a, b, off) in enumerate(self.runs):
            np.copyto(cols[:, k], xf[a, b, lo:hi, :, off : off + self.lw].transpose(1, 0, 2))

    def wide_dout(self, dout, lo, hi, st, dtype):
        """dout[lo:hi] as (F, B, OH, Wq), zeros in the junk columns."""
        b = hi - lo
        f = dout.shape[1]
        dyw = _buffer(st, "dyw", (f, b, self.oh, self.wq), dtype)
        if st.get("dyw_zeroed") is not dyw:
            dyw[..., self.ow :] = 0
            st["dyw_zeroed"] = dyw
        dyw[..., : self.ow] = dout[lo:hi].transpose(1, 0, 2, 3)
        return dyw

    def scatter_add(self, d5, dxf):
        """Add the runs ``d5`` (C, KH*KW, B, L) into the zeroed phases ``dxf`` (SH, SW, C, B, Hq*Wq)."""
        for k, (a, b, off) in enumerate(self.runs):
            dxf[a, b, :, :, off : off + self.lw] += d5[:, k]

    def unphase(self, dxf, dx_block):
        """Crop the phases back into ``dx_block`` (B, C, H, W): each input pixel from its phase."""
        c, bsz = dxf.shape[2:4]
        dq = dxf.reshape(self.sh, self.sw, c, bsz, self.hq, self.wq)
        for a in range(self.sh):
            for b in range(self.sw):
                r0 = (a - self.pt) % self.sh
                c0 = (b - self.pl) % self.sw
                target = dx_block[:, :, r0 :: self.sh, c0 :: self.sw]
                i0, j0 = (r0 + self.pt) // self.sh, (c0 + self.pl) // self.sw
                if target.size:
                    target[...] = dq[a, b, :, :, i0 : i0 + target.shape[2], j0 : j0 + target.shape[3]].transpose(
                        1, 0, 2, 3
                    )


def _use_wide(p, w_in, ow, f, always=False):
    """Whether a product runs on wide rows (:class:`_Wide`): a rule measured on the benchmark's machine.

    Wide rows make the copy into the column buffer cheap but add ``(Wq - OW)/OW`` more columns to the product,
    whose cost grows with ``F`` (the copy's does not). At stride 1, for the forward pass and the weight gradient,
    wide rows paid where ``F * (Wq - OW) / OW < 8`` and the junk is at most 1/8 of the columns (3-channel,
    16-filter and 64-filter 3x3 layers), and lost up to about 10% on a 128-filter layer and a 5x5 unpadded one. At stride > 1 the plain copy reads every S-th number,
    and wide rows paid on every measured layer; for the col2im input gradient (``always=True``) they also make the
    KH*KW slice-adds contiguous and paid everywhere but on one layer (within 5%).
    """
    if not WIDE_ROWS:
        return False
    if always or p.stride != (1, 1):
        return True
    pt, pb, pl, pr = p.padding
    wp = w_in + pl + pr
    return f * (wp - ow) < 8 * ow and 8 * (wp - ow) <= ow


def _forward_columns(k):
    """Columns per forward product for ``k`` rows (``Cg*KH*KW``): a product with few rows is memory-bound and its
    per-call cost weighs more, so short ones get proportionally more columns (measured on layer b, k = 27:
    1.82 -> 1.58 ms with 8192 columns instead of 512; from k = 256 on, GEMM_COLUMNS as it is)."""
    return GEMM_COLUMNS * max(1, 256 // max(k, 1))


def _per_gemm(ohw, n, columns=None):
    """Samples per product: enough for ``columns`` (default GEMM_COLUMNS) columns, at least one range per thread."""
    per = max(1, -(-(columns or GEMM_COLUMNS) // max(ohw, 1)))
    return max(1, min(per, -(-n // _n_threads())))


def _grouped(w, groups):
    """(F, Cg, KH, KW) -> (G, Fg, Cg*KH*KW): the block-diagonal weight matrix, one block per group."""
    f = w.shape[0]
    return w.reshape(groups, f // groups, -1)


# --------------------------------------------------------------------------------------------------------------
# forward


def conv2d_forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1, method="strided", m=None):
    """2-D convolution (cross-correlation) of an NCHW batch, with PyTorch's semantics.

    Parameters
    ----------
    x : (N, C, H, W) ndarray
        float16, float32 or float64.
    w : (F, C // groups, KH, KW) ndarray
    b : (F,) ndarray, optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        ``"same"`` needs stride 1; for an even kernel the extra row/column is at the bottom/right, as in PyTorch.
    groups : int
        Input and output channels split into ``groups`` blocks; filter block ``g`` sees input block ``g`` only.
    method : {"strided", "tutorial", "reference", "winograd"}
    m : int, optional
        Winograd output tile size (2, 4 or 6; default 4). Only with ``method="winograd"``.

    Returns
    -------
    out : (N, F, OH, OW) ndarray
        In the dtype NumPy promotes ``x``, ``w`` (and ``b``) to. A new array; the inputs are not modified.

    Notes
    -----
    Derived in the chapters "Convolution by hand" and "The forward pass as one matrix product".

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
    m = _check_method(method, m)
    x, w, b, p, shape = check_conv_inputs(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    if method == "reference":
        return reference.conv2d_forward_reference(x, w, b, stride=p.stride, padding=padding, dilation=p.dilation,
                                                  groups=p.groups)
    dtype = np.result_type(x, w) if b is None else np.result_type(x, w, b)
    # the fast paths add the bias per sample group, while the group's output is in cache and on both cores (on
    # layer b, whose output is 10.7x its input, one pass over the whole output afterwards cost about 1 ms)
    bias = None if b is None else b.astype(dtype, copy=False).reshape(-1, 1, 1)
    if method == "tutorial":
        out = _forward_im2col(x, w, p, shape, dtype)
        if bias is not None:
            out += bias
    elif method == "strided":
        out = _forward_strided(x, w, p, shape, dtype, bias)
    else:
        _check_winograd(w.shape, p)
        pt, pb, pl, pr = p.padding
        out = _winograd_batched(x, w, m, dtype, (shape.oh, shape.ow), (pt, pl), bias)
    return out


def _forward_wide(x, w, p, shape, dtype, bias=None):
    """Forward on wide rows (:class:`_Wide`): KH*KW long block copies per sample group, junk columns cropped."""
    n, c = x.shape[:2]
    f, cg, kh, kw = w.shape
    g = p.groups
    oh, ow = shape.oh, shape.ow
    wide = _Wide(x.shape, (kh, kw), p, oh, ow)
    wmat = _grouped(w.astype(dtype, copy=False), g)  # (G, Fg, Cg*KH*KW)
    out = np.empty((n, f, oh, ow), dtype=dtype)
    lw = wide.lw

    def work(lo, hi, st):
        b = hi - lo
        xf = wide.group_phases(x, lo, hi, st, dtype)  # (SH, SW, B, C, Hq*Wq)
        cols = _buffer(st, "cols", (c, kh * kw, b, lw), dtype)
        wide.gather(xf, 0, b, cols)  # (C, KH*KW, B, OH*Wq)
        y = _buffer(st, "y", (g, f // g, b * lw), dtype)
        np.matmul(wmat, cols.reshape(g, cg * kh * kw, b * lw), out=y)  # (G, Fg, B*OH*Wq)
        out[lo:hi] = y.reshape(f, b, oh, wide.wq)[..., :ow].transpose(1, 0, 2, 3)  # crop the junk columns
        if bias is not None:
            out[lo:hi] += bias

    _run_batch(work, n, _per_gemm(lw, n, _forward_columns(cg * kh * kw)), n * f * oh * ow * cg * kh * kw)
    return out


def _place(size, origin, limit):
    """Rows ``src[s0:s1]`` land at ``dst[d0:d1]`` when ``src`` row 0 sits at ``dst`` row ``origin``, cropped to ``limit``."""
    d0, d1 = max(origin, 0), min(origin + size, limit)
    return (d0 - origin, d1 - origin), (d0, max(d0, d1))


def _winograd_batched(src, w, m, dtype, out_hw, origin, bias=None):
    """Winograd over chunks of the batch (scratch memory bounded by the chunk), threads over the chunks.

    The padded input is ``src`` (N, C, Hs, Ws) with its pixel (0, 0) at ``origin`` (row, col) of a zero
    canvas (negative: cropped), bottom/right zeros up to a whole number of tiles of the ``out_hw`` output.
    Each chunk of samples is padded into its own reused buffer (borders zeroed once), so the padding costs
    no extra pass over the whole batch. The weights are transformed once; each chunk holds about
    ``WINOGRAD_CHUNK_BYTES`` of transformed tiles, so that its transformed tiles stay in cache; the chunks are dealt out to
    threads like the strided path's sample groups (the BLAS on one thread each: the tile gather and the
    output scatter are copies, which NumPy runs on one core).
    """
    from .winograd import _weight_transform, _winograd_tiles

    n, c, hs, ws = src.shape
    f = w.shape[0]
    oh, ow = out_hw
    hneed, wneed = -(-oh // m) * m + 2, -(-ow // m) * m + 2
    (r0, r1), (i0, i1) = _place(hs, origin[0], min(hneed, oh + 2))
    (c0, c1), (j0, j1) = _place(ws, origin[1], min(wneed, ow + 2))
    out = np.empty((n, f, oh, ow), dtype=dtype)

    def work(lo, hi, st):
        xp = _buffer(st, "xp", (hi - lo, c, hneed, wneed), dtype)
        if st.get("xp_zeroed") is not xp:  # only the interior is written below: zero the borders once
            xp.fill(0)
            st["xp_zeroed"] = xp
        xp[:, :, i0:i1, j0:j1] = src[lo:hi, :, r0:r1, c0:c1]
        _winograd_tiles(xp, u, m, out=out[lo:hi], state=st)
        if bias is not None:
            out[lo:hi] += bias

    tiles = -(-oh // m) * -(-ow // m)
    per = max(1, round(WINOGRAD_CHUNK_BYTES / ((m + 2) ** 2 * c * tiles * np.dtype(dtype).itemsize)))
    per = min(per, -(-n // _n_threads()))
    macs = n * f * c * oh * ow * 9
    ctl = _threaded(n, per, macs)
    # With threads, the weight transform's product runs on one BLAS thread too: a BLAS thread that has just
    # worked keeps spinning for a while, taking the core that the second worker needs (measured on layer d:
    # 9.4 ms with the transform on two BLAS threads, 5.7 ms without any)
    with ctl.limit(limits=1, user_api="blas") if ctl else contextlib.nullcontext():
        u = _weight_transform(w, m, dtype)
        _run_batch(work, n, per, macs)
    return out


def _forward_im2col(x, w, p, shape, dtype):
    """The seed's forward: X' = im2col(X), K' = K.reshape, Y' = X' . K', then reshape; once per group."""
    n = x.shape[0]
    f, cg, kh, kw = w.shape
    g, fg = p.groups, f // p.groups
    xpad = _pad(x, p.padding)
    out = np.empty((n, f, shape.oh, shape.ow), dtype=dtype)
    for gi in range(g):
        cols = im2col_loop(xpad[:, gi * cg : (gi + 1) * cg], (kh, kw), stride=p.stride, dilation=p.dilation)
        kmat = w[gi * fg : (gi + 1) * fg].reshape(fg, -1).T  # (Cg*KH*KW, Fg)
        y = cols.astype(dtype, copy=False) @ kmat.astype(dtype, copy=False)  # (N*OH*OW, Fg)
        out[:, gi * fg : (gi + 1) * fg] = y.reshape(n, shape.oh, shape.ow, fg).transpose(0, 3, 1, 2)
    return out


def _forward_strided(x, w, p, shape, dtype, bias=None):
    """One product per group of samples, ``(F, C*KH*KW) @ (C*KH*KW, B*OH*OW)``: for B = 1 it lands in NCHW as is.

    The columns of B samples are copied from the strided window view into a reused buffer (the copy the product
    forces: a GEMM needs its operand with unit stride); peak extra memory is one such buffer per thread.
    """
    n, c = x.shape[:2]
    f, cg, kh, kw = w.shape
    g = p.groups
    oh, ow = shape.oh, shape.ow
    ohw = oh * ow
    if _use_wide(p, x.shape[3], ow, f):
        return _forward_wide(x, w, p, shape, dtype, bias)
    view = _window_view(x, (kh, kw), p)  # (N, C, OH, OW, KH, KW), read-only
    wmat = _grouped(w.astype(dtype, copy=False), g)  # (G, Fg, Cg*KH*KW)
    out = np.empty((n, f, oh, ow), dtype=dtype)
    per = _per_gemm(ohw, n, _forward_columns(cg * kh * kw))

    def work(lo, hi, st):
        b = hi - lo
        cols = _buffer(st, "cols", (c, kh, kw, b, oh, ow), dtype)
        np.copyto(cols, view[lo:hi].transpose(1, 4, 5, 0, 2, 3))  # (C, KH, KW, B, OH, OW)
        cols2 = cols.reshape(g, cg * kh * kw, b * ohw)
        if b == 1:
            np.matmul(wmat, cols2, out=out[lo].reshape(g, f // g, ohw))  # (G, Fg, OH*OW): NCHW directly
        else:
            y = _buffer(st, "y", (g, f // g, b * ohw), dtype)
            np.matmul(wmat, cols2, out=y)  # (G, Fg, B*OH*OW)
            out[lo:hi].reshape(b, f, ohw)[...] = y.reshape(f, b, ohw).transpose(1, 0, 2)
        if bias is not None:
            out[lo:hi] += bias

    _run_batch(work, n, per, n * f * ohw * cg * kh * kw)
    return out


# --------------------------------------------------------------------------------------------------------------
# gradients


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
    dout = _check_float("dout", dout)
    _check_ndim("dout", dout, 4, "(N, F, OH, OW)")
    return dout.sum(axis=(0, 2, 3))


def _grad_setup(dout, w_or_x_name, arr, other_shape, which, stride, padding, dilation, groups):
    arr = _check_float(w_or_x_name, arr)
    _check_ndim(w_or_x_name, arr, 4, "(F, C // groups, KH, KW)" if which == "w" else "(N, C, H, W)")
    other_shape = check_shape_arg("x_shape" if which == "w" else "w_shape", other_shape)
    w_shape = arr.shape if which == "w" else other_shape
    x_shape = other_shape if which == "w" else arr.shape
    p = conv_params(w_shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups)
    check_channels(x_shape, w_shape, p.groups)
    dout = check_dout(dout, x_shape, w_shape, p)
    return dout, arr, x_shape, w_shape, p


def conv2d_grad_input(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1, method="strided",
                      route="col2im", m=None):
    """Input gradient ``dx`` of the convolution, given ``dout`` and the weights.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    w : (F, C // groups, KH, KW) ndarray
    x_shape : (N, C, H, W) tuple
    stride, padding, dilation, groups : as for :func:`conv2d_forward`
    method : {"strided", "tutorial", "reference", "winograd"}
        ``"winograd"`` always takes the ``"rot180"`` route (a 3x3, stride-1 convolution again).
    route : {"col2im", "rot180"}
        ``"col2im"``: ``dcols = dout' . K'^T``, then scatter-add the columns back (overlaps add).
        ``"rot180"``: ``conv(pad(dilate(dout, stride)), rot180(w))`` with input and output channels swapped.

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
    m = _check_method(method, m)
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    dout, w, x_shape, w_shape, p = _grad_setup(dout, "w", w, x_shape, "w", stride, padding, dilation, groups)
    if method == "reference":
        x = np.zeros(x_shape, dtype=np.result_type(dout, w))
        return reference.conv2d_backward_reference(dout, x, w, stride=p.stride, padding=padding,
                                                   dilation=p.dilation, groups=p.groups)[0]
    if method == "winograd":
        _check_winograd(w_shape, p)
        return _grad_input_rot180(dout, w, x_shape, p, method, m)
    if route == "rot180":
        return _grad_input_rot180(dout, w, x_shape, p, method, None)
    return _grad_input_col2im(dout, w, x_shape, p, method)


def _grad_input_col2im(dout, w, x_shape, p, method):
    n, c = x_shape[:2]
    f, cg, kh, kw = w.shape
    g = p.groups
    oh, ow = dout.shape[2:]
    dtype = np.result_type(dout, w)
    wmat_t = _grouped(w.astype(dtype, copy=False), g).transpose(0, 2, 1)  # (G, Cg*KH*KW, Fg)
    if method == "tutorial":
        # the seed's matrix form: dX' = dY' . K'^T, rows (n, i, j), then col2im
        dcols = np.empty((n * oh * ow, c * kh * kw), dtype=dtype)
        dy = dout.transpose(0, 2, 3, 1).reshape(n * oh * ow, f)  # (N*OH*OW, F)
        for gi in range(g):
            fs = slice(gi * (f // g), (gi + 1) * (f // g))
            dcols[:, gi * cg * kh * kw : (gi + 1) * cg * kh * kw] = dy[:, fs].astype(dtype) @ wmat_t[gi].T
        d6 = dcols.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)  # (N, C, KH, KW, OH, OW)
        return _col2im_6d(d6, x_shape, p, dtype)
    return _grad_input_col2im_strided(dout, wmat_t, x_shape, (kh, kw), p, dtype)


def _grad_input_col2im_wide(dout, wmat_t, x_shape, khw, p, dtype):
    """col2im on wide rows: each of the KH*KW slice-adds is one long contiguous add per (channel, sample).

    ``dout`` is widened with zeros, so the junk columns of ``dcols`` are zeros and adding them anywhere is harmless.
    """
    n, c, h, wd = x_shape
    g, ckk, fg = wmat_t.shape
    kh, kw = khw
    oh, ow = dout.shape[2:]
    wide = _Wide(x_shape, khw, p, oh, ow)
    lw = wide.lw
    dx = np.empty(x_shape, dtype=dtype)

    def work(lo, hi, st):
        b = hi - lo
        dyw = wide.wide_dout(dout, lo, hi, st, dtype).reshape(g, fg, b * lw)
        dcols = _buffer(st, "dcols", (g, ckk, b * lw), dtype)
        np.matmul(wmat_t, dyw, out=dcols)  # (G, Cg*KH*KW, B*OH*Wq)
        dxf = _buffer(st, "dxf", (wide.sh, wide.sw, c, b, wide.hq * wide.wq), dtype)
        dxf.fill(0)
        wide.scatter_add(dcols.reshape(c, kh * kw, b, lw), dxf)
        wide.unphase(dxf, dx[lo:hi])

    # (Cg*KH*KW, Fg) @ (Fg, B*L) has a short inner dimension: wider products ran faster (120 -> 175 GFLOP/s
    # for 400 x 32 @ 32 x L, L = 672 -> 2688), so twice the columns here
    _run_batch(work, n, _per_gemm(lw, n, 2 * GEMM_COLUMNS), n * g * fg * oh * ow * ckk)
    return dx


def _grad_input_col2im_strided(dout, wmat_t, x_shape, khw, p, dtype):
    """Per group of B samples: ``dcols = K'^T . dY'`` into a reused buffer, then the KH*KW slice-adds into dx."""
    n, c, h, wd = x_shape
    g, ckk, fg = wmat_t.shape
    f = g * fg
    kh, kw = khw
    oh, ow = dout.shape[2:]
    ohw = oh * ow
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    hp, wp = h + pt + pb, wd + pl + pr
    wmat_t = np.ascontiguousarray(wmat_t)
    dout = dout.astype(dtype, copy=False)
    if _use_wide(p, x_shape[3], dout.shape[3], f, always=True):
        return _grad_input_col2im_wide(dout, wmat_t, x_shape, khw, p, dtype)
    padded = any(p.padding)
    dx = np.empty(x_shape, dtype=dtype) if padded else np.zeros(x_shape, dtype=dtype)

    def work(lo, hi, st):
        b = hi - lo
        if b == 1:
            dy = dout[lo].reshape(g, fg, ohw)
        else:
            dy = _buffer(st, "dy", (f, b, ohw), dtype)
            np.copyto(dy, dout[lo:hi].reshape(b, f, ohw).transpose(1, 0, 2))  # (F, B, OH*OW)
            dy = dy.reshape(g, fg, b * ohw)
        dcols = _buffer(st, "dcols", (g, ckk, b * ohw), dtype)
        np.matmul(wmat_t, dy, out=dcols)  # (G, Cg*KH*KW, B*OH*OW)
        d6 = dcols.reshape(c, kh, kw, b, oh, ow)  # (C, KH, KW, B, OH, OW)
        if padded:
            dxp = _buffer(st, "dxp", (c, b, hp, wp), dtype)
            dxp.fill(0)
        else:
            dxp = dx[lo:hi].transpose(1, 0, 2, 3)  # (C, B, H, W) view of the result
        for pi in range(kh):
            for qj in range(kw):
                r0, c0 = dh * pi, dw * qj
                dxp[:, :, r0 : r0 + sh * (oh - 1) + 1 : sh, c0 : c0 + sw * (ow - 1) + 1 : sw] += d6[:, pi, qj]
        if padded:
            dx[lo:hi] = dxp[:, :, pt : pt + h, pl : pl + wd].transpose(1, 0, 2, 3)

    _run_batch(work, n, _per_gemm(ohw, n), n * f * ohw * ckk)
    return dx


def _grad_input_rot180(dout, w, x_shape, p, method, m):
    """dx = conv(pad(dilate(dout)), rot180(w)^T), computed only over the rows/columns of x that are kept.

    In padded-input coordinates, ``dout[i, j]`` sits at ``(S*i, S*j)`` of the dilated map; padding that map by
    ``D*(K-1)`` on each side and correlating with the rotated kernel (dilation D) gives ``dxp``. Cropping the
    padding ``P`` off afterwards is the same as cropping the correlation's input before, which is what is built.
    """
    n, c, h, wd = x_shape
    f, cg, kh, kw = w.shape
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    oh, ow = dout.shape[2:]
    dtype = np.result_type(dout, w)
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    # The correlation's input, cropped to what x's rows pt..pt+H-1 need: rows (pt - eh) .. (pt + H - 1) of the
    # dilated dout, in coordinates where dout[i] sits at S*i.
    wt = rot180(swap_in_out(w, p.groups)).astype(dtype, copy=False)  # (C, Fg, KH, KW), turned
    if method == "winograd":  # stride 1: the correlation's input is dout itself, its row 0 at row eh - pt
        return _winograd_batched(dout, wt, m, dtype, (h, wd), (eh - pt, ew - pl))
    big = np.zeros((n, f, h + eh, wd + ew), dtype=dtype)
    rows = eh - pt + sh * np.arange(oh)
    cols = ew - pl + sw * np.arange(ow)
    ri = np.flatnonzero((rows >= 0) & (rows < h + eh))
    ci = np.flatnonzero((cols >= 0) & (cols < wd + ew))
    if ri.size and ci.size:
        big[:, :, rows[ri[0]] : rows[ri[-1]] + 1 : sh, cols[ci[0]] : cols[ci[-1]] + 1 : sw] = \
            dout[:, :, ri[0] : ri[-1] + 1, ci[0] : ci[-1] + 1]
    inner = "strided" if method in ("strided", "tutorial") else method
    return conv2d_forward(big, wt, stride=1, padding=0, dilation=(dh, dw), groups=p.groups, method=inner)


def conv2d_grad_weight(dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1, method="strided"):
    """Weight gradient ``dw = X'^T . dY'``, reshaped to the kernel's shape.

    Parameters
    ----------
    dout : (N, F, OH, OW) ndarray
    x : (N, C, H, W) ndarray
    w_shape : (F, C // groups, KH, KW) tuple
    stride, padding, dilation, groups : as for :func:`conv2d_forward`
    method : {"strided", "tutorial", "reference", "winograd"}
        ``"winograd"`` uses the strided path (the weight gradient is not a small-kernel convolution).

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
    _check_method(method, None)
    dout, x, x_shape, w_shape, p = _grad_setup(dout, "x", x, w_shape, "x", stride, padding, dilation, groups)
    f, cg, kh, kw = w_shape
    g = p.groups
    n, c = x.shape[:2]
    oh, ow = dout.shape[2:]
    dtype = np.result_type(dout, x)
    if method == "reference":
        w = np.zeros(w_shape, dtype=dtype)
        return reference.conv2d_backward_reference(dout, x, w, stride=p.stride, padding=padding,
                                                   dilation=p.dilation, groups=p.groups)[1]
    if method == "tutorial":
        dy = dout.transpose(0, 2, 3, 1).reshape(n * oh * ow, f)  # (N*OH*OW, F)
        dw = np.empty((f, cg * kh * kw), dtype=dtype)
        fg = f // g
        for gi in range(g):
            xg = x[:, gi * cg : (gi + 1) * cg]
            xpad = _pad(xg, p.padding)
            cols = im2col_loop(xpad, (kh, kw), stride=p.stride, dilation=p.dilation)  # (N*OH*OW, Cg*KH*KW)
            dw[gi * fg : (gi + 1) * fg] = dy[:, gi * fg : (gi + 1) * fg].T.astype(dtype) @ cols  # (Fg, Cg*KH*KW)
        return dw.reshape(w_shape)
    return _grad_weight_strided(dout, x, w_shape, p, dtype)


def _grad_weight_wide(dout, x, w_shape, p, dtype):
    """Weight gradient on wide rows: ``dout`` widened with zeros meets the junk columns."""
    f, cg, kh, kw = w_shape
    g = p.groups
    n, c = x.shape[:2]
    oh, ow = dout.shape[2:]
    wide = _Wide(x.shape, (kh, kw), p, oh, ow)
    lw = wide.lw

    def work(lo, hi, st):
        b = hi - lo
        xf = wide.group_phases(x, lo, hi, st, dtype)
        cols = _buffer(st, "cols", (c, kh * kw, b, lw), dtype)
        wide.gather(xf, 0, b, cols)
        dyw = wide.wide_dout(dout, lo, hi, st, dtype).reshape(g, f // g, b * lw)
        # dW'^T = X' . dY'^T: the long column matrix as the left operand ran ~1.5x faster in OpenBLAS than
        # dY' . X'^T (measured for 400 x 32 results), and the transpose back is tiny
        part = np.matmul(cols.reshape(g, cg * kh * kw, b * lw), dyw.transpose(0, 2, 1))  # (G, Cg*KH*KW, Fg)
        if "dw" in st:
            st["dw"] += part
        else:
            st["dw"] = part

    states = _run_batch(work, n, _per_gemm(lw, n), n * f * oh * ow * cg * kh * kw)
    dwt = states[0]["dw"]
    for st in states[1:]:
        dwt += st["dw"]
    return np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape(w_shape)  # (G, Fg, Cg*KH*KW) -> (F, Cg, KH, KW)


def _grad_weight_strided(dout, x, w_shape, p, dtype):
    """``dW' = sum over sample groups of dY'_B . X'_B^T``: the forward's column buffer, one partial sum per thread."""
    f, cg, kh, kw = w_shape
    g = p.groups
    n, c = x.shape[:2]
    oh, ow = dout.shape[2:]
    ohw = oh * ow
    dout = dout.astype(dtype, copy=False)
    if _use_wide(p, x.shape[3], ow, f):
        return _grad_weight_wide(dout, x, w_shape, p, dtype)
    view = _window_view(x, (kh, kw), p)  # (N, C, OH, OW, KH, KW)

    def work(lo, hi, st):
        b = hi - lo
        cols = _buffer(st, "cols", (c, kh, kw, b, oh, ow), dtype)
        np.copyto(cols, view[lo:hi].transpose(1, 4, 5, 0, 2, 3))  # (C, KH, KW, B, OH, OW)
        if b == 1:
            dy = dout[lo].reshape(g, f // g, ohw)  # (G, Fg, OH*OW), a view
        else:
            dy = _buffer(st, "dy", (f, b, ohw), dtype)
            np.copyto(dy, dout[lo:hi].reshape(b, f, ohw).transpose(1, 0, 2))  # (F, B, OH*OW)
            dy = dy.reshape(g, f // g, b * ohw)
        part = np.matmul(cols.reshape(g, cg * kh * kw, b * ohw), dy.transpose(0, 2, 1))  # (G, Cg*KH*KW, Fg)
        if "dw" in st:
            st["dw"] += part
        else:
            st["dw"] = part

    states = _run_batch(work, n, _per_gemm(ohw, n), n * f * ohw * cg * kh * kw)
    dwt = states[0]["dw"]
    for st in states[1:]:
        dwt += st["dw"]
    return np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape(w_shape)  # (G, Fg, Cg*KH*KW) -> (F, Cg, KH, KW)


def _fast_route(x_shape, w_shape, p):
    """The input-gradient route ``conv2d_backward(method="strided")`` takes: a rule measured on this machine.

    Both routes do the same multiplications at stride 1; they differ in the memory they move. col2im writes
    ``C*KH*KW`` column rows per output pixel and adds them back (KH*KW slice-adds over the input); rot180 copies
    ``F*KH*KW`` window rows of ``dout`` (the gradient's im2col) and writes ``C`` outputs per pixel. So rot180 wins
    when ``F <= C``, and col2im when ``F > C`` (measured on shapes a-e of the benchmark plus 1x1-to-wide and
    wide-to-narrow layers, see the chapter "How fast is it?"). At stride S > 1, rot180 also multiplies the
    ``S*S - 1`` inserted zeros out of every ``S*S``: col2im, unless ``F * SH * SW <= C``.
    """
    f = w_shape[0]
    c = x_shape[1]
    sh, sw = p.stride
    return "rot180" if f * sh * sw <= c else "col2im"


def conv2d_backward(dout, x, w, *, stride=1, padding=0, dilation=1, groups=1, method="strided", m=None):
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
        Always returned: the bias gradient does not depend on whether the forward pass used a bias.

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> dx, dw, db = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> db
    array([4.])
    """
    m = _check_method(method, m)
    x, w, _, p, _ = check_conv_inputs(x, w, None, stride=stride, padding=padding, dilation=dilation, groups=groups)
    dout = check_dout(dout, x.shape, w.shape, p)
    if method == "reference":
        return reference.conv2d_backward_reference(dout, x, w, stride=p.stride, padding=padding,
                                                   dilation=p.dilation, groups=p.groups)
    kw_ = dict(stride=p.stride, padding=padding, dilation=p.dilation, groups=p.groups)
    route = _fast_route(x.shape, w.shape, p) if method == "strided" else "col2im"
    dx = conv2d_grad_input(dout, w, x.shape, method=method, m=m, route=route, **kw_)
    dw = conv2d_grad_weight(dout, x, w.shape, method="strided" if method == "winograd" else method, **kw_)
    db = conv2d_grad_bias(dout).astype(np.result_type(dout, x, w), copy=False)
    return dx, dw, db
