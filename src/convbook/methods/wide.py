"""Wide rows: the strided method with a column matrix that is cheaper to copy.

Split the padded input into its ``SH x SW`` stride phases (phase ``(a, b)`` holds padded
rows ``a, a+S, ...`` and columns ``b, b+S, ...``) and flatten each phase's rows. Inside
a phase the stride is 1, so kernel offset ``(p, q)`` of *every* output pixel ``(i, j)``
reads phase ``((p*D) % S, (q*D) % S)`` at flat position ``(i + di)*Wq + (j + dj)``, with
``di = (p*D) // S`` and ``dj = (q*D) // S``. Let ``j`` run over the whole phase row, ``0
.. Wq-1``, instead of ``0 .. OW-1``, and the positions of all output pixels form one
contiguous run of ``L = OH*Wq`` numbers starting at ``di*Wq + dj``.

So one row of the column matrix is one block copy, where
:mod:`~convbook.methods.strided` copies ``OH`` short runs, each reading every S-th
number. The price: ``Wq - OW`` junk columns per output row, which the forward pass
crops, and which meet zeros in ``dout`` in the two gradients. One spare zero row at the
bottom of each phase keeps the last run inside. At stride 1 there is one phase: the
padded input itself.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import strided

__all__ = [
    "PRODUCTS_INTO_OUT",
    "Geometry",
    "geometry",
    "phases",
    "unphase",
    "column_matrix",
    "wide_output_matrix",
    "forward",
    "grad_weight",
    "grad_input",
    "columns_per_sample",
]


#: The forward pass holds its products to crop them: a group holds its columns and its
#: outputs (the engine sizes groups by both, :class:`convbook.engine.Options`).
PRODUCTS_INTO_OUT = False


class Geometry(NamedTuple):
    """Where the runs lie: phase size, run length, and each kernel offset's start."""

    hq: int
    wq: int
    oh: int
    ow: int
    run: int
    starts: (
        tuple  # per kernel offset (p, q), row-major: (phase row a, phase col b, start)
    )

    def phases_read(self):
        """The stride phases ``(a, b)`` some kernel offset reads, in order."""
        return sorted({(a, b) for a, b, _ in self.starts})


def geometry(x_shape, kernel_hw, params) -> Geometry:
    """The phases' size and, per kernel offset, its phase and the start of its run."""
    h, w = x_shape[2:]
    kh, kw = kernel_hw
    (sh, sw), (dh, dw) = params.stride, params.dilation
    pt, pb, pl, pr = params.padding
    hq = -(-(h + pt + pb) // sh) + 1  # the phase's rows, plus the spare one
    wq = -(-(w + pl + pr) // sw)
    oh, ow, _, _ = params.output_shape((h, w), kernel_hw)
    starts = tuple(
        ((p * dh) % sh, (q * dw) % sw, ((p * dh) // sh) * wq + (q * dw) // sw)
        for p in range(kh)
        for q in range(kw)
    )
    return Geometry(hq, wq, oh, ow, oh * wq, starts)


def _phase_slices(params, a, b, shape):
    """Input pixels of phase (a, b) and where they sit inside it."""
    (sh, sw), (pt, _, pl, _) = params.stride, params.padding
    r0, c0 = (a - pt) % sh, (b - pl) % sw  # the first input row/col in this phase
    i0, j0 = (r0 + pt) // sh, (c0 + pl) // sw
    rows, cols = len(range(r0, shape[0], sh)), len(range(c0, shape[1], sw))
    source = (slice(r0, None, sh), slice(c0, None, sw))
    return source, (slice(i0, i0 + rows), slice(j0, j0 + cols))


def phases(x, g: Geometry, params):
    """The padded input in stride phases, ``(SH, SW, N, C, Hq*Wq)``: one copy.

    Only the phases some kernel offset reads are filled; the others stay zero (a 1x1
    kernel at stride 2 reads one phase of four).
    """
    sh, sw = params.stride
    n, c = x.shape[:2]
    xf = np.zeros((sh, sw, n, c, g.hq, g.wq), dtype=x.dtype)
    for a, b in g.phases_read():
        (rs, cs), (ri, ci) = _phase_slices(params, a, b, x.shape[2:])
        xf[a, b, :, :, ri, ci] = x[:, :, rs, cs]
    return xf.reshape(sh, sw, n, c, g.hq * g.wq)


def unphase(dxf, g: Geometry, params, x_shape, out=None):
    """Back from phases: ``(SH, SW, C, N, Hq*Wq) -> (N, C, H, W)`` (gradients)."""
    sh, sw = params.stride
    c, n = dxf.shape[2:4]
    dq = dxf.reshape(sh, sw, c, n, g.hq, g.wq)
    dx = np.empty(x_shape, dtype=dxf.dtype) if out is None else out
    read = g.phases_read()
    for a in range(sh):
        for b in range(sw):
            (rs, cs), (ri, ci) = _phase_slices(params, a, b, x_shape[2:])
            if (a, b) in read:
                dx[:, :, rs, cs] = dq[a, b, :, :, ri, ci].transpose(1, 0, 2, 3)
            else:  # pixels no kernel offset reads: no gradient
                dx[:, :, rs, cs] = 0
    return dx


def column_matrix(x, kernel_hw, params, *, ones=False):
    """``X'^T`` on wide rows: ``(G, Cg*KH*KW, N*L)``, a block copy per kernel offset.

    ``ones=True`` adds a row of ones under each group's rows (for the bias): ``(G,
    Cg*KH*KW + 1, N*L)``. Returns ``(cols, g)``: the matrix and its :class:`Geometry`.
    """
    g = geometry(x.shape, kernel_hw, params)
    xf = phases(x, g, params)  # (SH, SW, N, C, Hq*Wq)
    (n, c), groups, taps = x.shape[:2], params.groups, len(g.starts)
    rows = c // groups * taps  # (c, p, q) within a group
    cols = np.empty((groups, rows + int(ones), n, g.run), dtype=x.dtype)
    for k, (a, b, start) in enumerate(g.starts):
        runs = xf[a, b, :, :, start : start + g.run].transpose(1, 0, 2)  # (C, N, L)
        cols[:, k:rows:taps] = runs.reshape(groups, c // groups, n, g.run)
    if ones:
        cols[:, rows] = 1
    return cols.reshape(groups, -1, n * g.run), g  # (G, rows, N*OH*Wq)


def wide_output_matrix(dout, g: Geometry, groups):
    """``dY'^T`` on wide rows, zeros in the junk columns: ``(G, F/G, N*OH*Wq)``."""
    n, f = dout.shape[:2]
    dy = np.zeros((f, n, g.oh, g.wq), dtype=dout.dtype)
    dy[..., : g.ow] = dout.transpose(1, 0, 2, 3)  # (F, N, OH, OW)
    return dy.reshape(groups, f // groups, n * g.run)


def forward(x, w, b, params, *, out=None):
    """``Y'^T = K'^T . X'^T`` on wide rows; the junk columns are cropped.

    The bias rides in the product, as a row of ones under the columns and a column of
    ``K'^T``, so that the crop into place is a plain copy: adding ``b`` on the way, over
    rows of ``OW`` numbers, took 2.5 times as long as the copy alone (benchmark layer
    b, 2-core Zen 3).
    """
    n, f = x.shape[0], w.shape[0]
    cols, g = column_matrix(x, w.shape[2:], params, ones=b is not None)
    kmat = strided.kernel_matrix(w, params.groups, b)  # (G, F/G, Cg*KH*KW [+ 1])
    y = kmat @ cols  # (G, F/G, N*L)
    y = y.reshape(f, n, g.oh, g.wq)[..., : g.ow]  # (F, N, OH, OW): junk cropped
    if out is None:
        out = np.empty((n, f, g.oh, g.ow), dtype=y.dtype)
    out[...] = y.transpose(1, 0, 2, 3)
    return out


def grad_weight(dout, x, w_shape, params):
    """``dK' = X'^T . dY'`` on wide rows: the junk columns meet zeros in ``dY'``."""
    cols, g = column_matrix(x, w_shape[2:], params)  # (G, Cg*KH*KW, N*L)
    dy = wide_output_matrix(dout, g, params.groups)  # (G, F/G, N*L)
    dw = cols @ dy.transpose(0, 2, 1)  # (G, Cg*KH*KW, F/G)
    return dw.transpose(0, 2, 1).reshape(w_shape)


def grad_input(dout, w, x_shape, params, *, route="col2im", out=None):
    """col2im on wide rows: each kernel offset's run added back as one block.

    ``route="rot180"`` hands over to :func:`convbook.methods.strided.grad_input_rot180`,
    correlating with :func:`forward`.
    """
    if route == "rot180":
        return strided.grad_input_rot180(dout, w, x_shape, params, forward, out=out)
    if route != "col2im":
        raise ValueError(f"route must be 'col2im' or 'rot180', got {route!r}")
    n, c = x_shape[:2]
    sh, sw = params.stride
    g = geometry(x_shape, w.shape[2:], params)
    kmat = strided.kernel_matrix(w, params.groups)  # (G, F/G, Cg*KH*KW)
    dy = wide_output_matrix(dout, g, params.groups)  # (G, F/G, N*L)
    dcols = kmat.transpose(0, 2, 1) @ dy  # (G, Cg*KH*KW, N*L)
    dcols = dcols.reshape(c, len(g.starts), n, g.run)  # (C, KH*KW, N, L)
    dxf = np.zeros((sh, sw, c, n, g.hq * g.wq), dtype=dcols.dtype)
    for k, (a, b, start) in enumerate(g.starts):
        dxf[a, b, :, :, start : start + g.run] += dcols[:, k]
    return unphase(dxf, g, params, x_shape, out=out)


def columns_per_sample(x_shape, w_shape, params):
    """Columns of ``X'`` per sample on wide rows, ``OH*Wq``."""
    return geometry(x_shape, w_shape[2:], params).run
