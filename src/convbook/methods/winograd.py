"""The Winograd method: a whole layer by F(m x m, r x r) tiles, in chunks of samples.

3x3 and 5x5 kernels, stride 1, dilation 1, groups 1, any padding. The tile algorithm is
:func:`convbook.winograd.tiles_conv2d`; this module drives it over a batch:

* forward: the weights are transformed once, by the threads together (a range of
  filters each); the batch is cut into chunks of samples whose transformed tiles fit in
  cache (``winograd_chunk_bytes``), each chunk padded on its own, and the chunks are
  dealt out to threads by the engine;
* input gradient, two routes: rot180, an r x r stride-1 convolution again, of ``dout``
  padded chunk by chunk (:func:`full_conv_padding`) with the turned kernels; or col2im
  on tiles, the forward pass's tile algorithm run backwards
  (:func:`convbook.winograd.tiles_grad_input`);
* weight gradient: Winograd again, F(r x r, m x m) with ``dout``'s tiles as the filters
  (:func:`convbook.winograd.tiles_grad_weight`), summed over chunks of samples.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from .. import engine
from ..kernels import rot180, swap_in_out
from ..shapes import ConvParams
from ..winograd import (
    LAYER_TILES,
    tiles_conv2d,
    tiles_grad_input,
    tiles_grad_weight,
    weight_transform,
)
from . import strided

__all__ = [
    "TILES",
    "check",
    "forward",
    "full_conv_padding",
    "grad_input",
    "grad_weight",
]

#: Every output tile size of some kernel: F(2,3), F(4,3), F(6,3); F(2,5), F(4,5).
TILES = tuple(sorted(set().union(*LAYER_TILES.values())))


def check(w_shape, params, m=4):
    """A ValueError unless the layer is one Winograd F(m, r) computes."""
    problems = []
    kernel = tuple(w_shape[2:])
    r = kernel[0] if kernel[0] == kernel[1] else None
    if r not in LAYER_TILES:
        problems.append(f"w has a {kernel} kernel")
    elif m not in LAYER_TILES[r]:
        problems.append(f"m={m} with a {kernel} kernel (m in {LAYER_TILES[r]} for it)")
    if params.stride != (1, 1):
        problems.append(f"stride is {params.stride}")
    if params.dilation != (1, 1):
        problems.append(f"dilation is {params.dilation}")
    if params.groups != 1:
        problems.append(f"groups is {params.groups}")
    if problems:
        raise ValueError(
            "method='winograd' supports 3x3 and 5x5 kernels with stride 1, dilation 1 "
            "and groups 1 (any padding); "
            + ", ".join(problems)
            + "; use method='strided'"
        )


def _padder(x, params, hneed, wneed):
    """``pad(lo, hi)``: samples lo..hi padded to ``hneed x wneed``, on a reused canvas.

    Rows and columns no output reads are left out. Each thread keeps one zero canvas
    for the call and copies only its chunk's samples into the middle: the border stays
    zero, so the canvas is not cleared again (layer a, one sample a chunk: 29 us
    against 40 for a new canvas on one thread of the 2-core Zen 3).
    """
    n, c, h, w = x.shape
    pt, _, pl, _ = params.padding
    rows = min(h, hneed - pt)  # input rows that land inside the canvas
    cols = min(w, wneed - pl)
    local = threading.local()  # this call's canvas in each thread

    def pad(lo, hi):
        canvas = getattr(local, "canvas", None)
        if canvas is None or len(canvas) < hi - lo:
            canvas = local.canvas = np.zeros((hi - lo, c, hneed, wneed), x.dtype)
        xp = canvas[: hi - lo]
        xp[:, :, pt : pt + rows, pl : pl + cols] = x[lo:hi, :, :rows, :cols]
        return xp

    return pad


def forward(x, w, b, params, *, m=4, out=None):
    """The layer's output by F(m x m, r x r), over chunks of samples."""
    n, f = x.shape[0], w.shape[0]
    r = w.shape[2]
    oh, ow, _, _ = params.output_shape(x.shape[2:], (r, r))
    if out is None:
        out = np.empty((n, f, oh, ow), dtype=x.dtype)
    th, tw = -(-oh // m), -(-ow // m)
    pad = _padder(x, params, th * m + r - 1, tw * m + r - 1)

    def work(lo, hi, u):  # samples lo..hi
        tiles_conv2d(pad(lo, hi), u, m, bias=b, out=out[lo:hi])

    _over_chunks(w, m, n, (oh, ow), work)
    return out


def _over_chunks(w, m, n, out_hw, work):
    """Transform ``w`` (the threads together), then ``work(lo, hi, u)`` over chunks.

    A chunk holds its transformed input tiles (C per tile) and their products (F): as
    many samples as fit in ``winograd_chunk_bytes``, at least one.
    """
    opts = engine.current_options()
    f, c, r = w.shape[:3]
    alpha = m + r - 1
    (oh, ow), (th, tw) = out_hw, (-(-out_hw[0] // m), -(-out_hw[1] // m))
    bytes_per_sample = alpha**2 * (c + f) * th * tw * w.dtype.itemsize
    per = max(1, round(opts.winograd_chunk_bytes / bytes_per_sample))
    macs = n * f * c * oh * ow * r * r
    per = engine.split_for_threads(n, per, macs, opts)

    u = np.empty((alpha**2, f, c), dtype=w.dtype)  # the transformed weights

    def transform(lo, hi):  # filters lo..hi
        u[:, lo:hi] = weight_transform(w[lo:hi], m)

    # The weights are transformed by the worker threads too, a range of filters each,
    # on one BLAS thread: done first on the calling thread alone, it kept the other
    # worker waiting (benchmark layer d, 2 threads: 0.90 and 0.92 of the time in two
    # sets of paired rounds; layer a 1.00), and a BLAS thread that has just worked
    # keeps spinning, taking a worker's core.
    with engine.blas_single_thread():
        filters = engine.split_for_threads(f, f, macs, opts)  # a range a thread
        engine.over_samples(f, filters, macs, transform, opts)
        engine.over_samples(n, per, macs, lambda lo, hi: work(lo, hi, u), opts)


def full_conv_padding(kernel_hw, params):
    """At stride 1, the border of the rot180 route as a padding of ``dout`` itself.

    :func:`~convbook.methods.strided.full_conv_border` pads ``dout`` by ``D*(K-1)``
    and keeps rows ``P_top .. P_top + H + D*(K-1) - 1``; at stride 1 no input row is
    unreached, so what it keeps is ``dout`` padded by ``D*(K-1) - P`` on each side
    (top, bottom, left, right). A negative entry (padding wider than ``D*(K-1)``) means
    rows cut, which a padding cannot do.

    Examples
    --------
    >>> from convbook import conv_params
    >>> full_conv_padding((3, 3), conv_params(3, padding=1))
    (1, 1, 1, 1)
    >>> full_conv_padding((5, 5), conv_params(5))  # an unpadded 5x5 layer
    (4, 4, 4, 4)
    """
    (kh, kw), (dh, dw) = kernel_hw, params.dilation
    pt, pb, pl, pr = params.padding
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    return (eh - pt, eh - pb, ew - pl, ew - pr)


def grad_input(dout, w, x_shape, params, *, m=4, route=None, out=None):
    """The input gradient by the rot180 route or by col2im on tiles.

    ``route=None``: the route of the measured rule,
    :func:`convbook.engine.winograd_input_route`.

    rot180: Winograd as the correlation (stride 1: no zeros inserted); the border is
    padded chunk by chunk, as the forward pass pads its input
    (:func:`full_conv_padding`), so the padded ``dout`` of the whole batch is never
    built; a padding wider than the kernel's reach takes the general route.

    col2im: :func:`convbook.winograd.tiles_grad_input` on chunks of samples, the padding
    cropped off its result.
    """
    w = w.astype(dout.dtype, copy=False)
    route = route or engine.winograd_input_route(x_shape, w.shape, params)
    if route == "col2im":
        return _grad_input_tiles(dout, w, x_shape, params, m, out)
    if route != "rot180":
        raise ValueError(
            "method='winograd' computes the input gradient by route='rot180' or "
            f"route='col2im', got {route!r}"
        )
    padding = full_conv_padding(w.shape[2:], params)
    if min(padding) < 0:
        correlate = functools.partial(forward, m=m)
        return strided.grad_input_rot180(dout, w, x_shape, params, correlate, out=out)
    wt = rot180(swap_in_out(w, 1))  # (C, F, r, r)
    return forward(dout, wt, None, ConvParams(padding=padding), m=m, out=out)


def _grad_input_tiles(dout, w, x_shape, params, m, out):
    n, _, h, wd = x_shape
    pt, _, pl, _ = params.padding
    if out is None:
        out = np.empty(x_shape, dtype=dout.dtype)

    def work(lo, hi, u):  # samples lo..hi: the padded input's gradient, cropped
        dxpad = tiles_grad_input(dout[lo:hi], u, m)
        out[lo:hi] = dxpad[:, :, pt : pt + h, pl : pl + wd]

    _over_chunks(w, m, n, dout.shape[2:], work)
    return out


def grad_weight(dout, x, w_shape, params, *, m=4):
    """The weight gradient by F(r x r, m x m) tiles, summed over chunks of samples."""
    opts = engine.current_options()
    n, c = x.shape[:2]
    f, oh, ow = dout.shape[1:]
    r = w_shape[2]
    th, tw = -(-oh // m), -(-ow // m)
    tile_bytes = (m + r - 1) ** 2 * (c + f) * th * tw * x.dtype.itemsize
    per = max(1, round(opts.winograd_chunk_bytes / tile_bytes))
    macs = n * f * c * oh * ow * r * r
    per = engine.split_for_threads(n, per, macs, opts)
    pad = _padder(x, params, th * m + r - 1, tw * m + r - 1)

    def work(lo, hi):
        return tiles_grad_weight(pad(lo, hi), dout[lo:hi], m, r)

    dw = engine.over_samples(n, per, macs, work, opts)
    return np.zeros(w_shape, dtype=x.dtype) if dw is None else dw
