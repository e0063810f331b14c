"""The batch engine: sample groups over threads, the BLAS limit, the tuning constants.

The fast methods (:mod:`convbook.methods.strided`, :mod:`~convbook.methods.wide`) are
pure functions of a whole batch. The engine runs them over *groups* of samples, so that
the column matrix of only a few samples exists at a time, and deals the groups out to
threads. It also picks, for ``method="auto"``, the method and the input-gradient route
for a layer (:func:`choose`).

Every knob is set through :func:`options`, a context manager, never by assigning module
globals::

    with cb.options(threads=1):  # no worker threads inside this block
        y = cb.conv2d_forward(x, w)

Thread safety: the settings live in a :class:`contextvars.ContextVar`, so one thread's
``options`` never reach another; the BLAS thread limit that the worker threads need is
taken by the first call that needs it and given back by the last one to finish
(:func:`blas_single_thread`), so overlapping calls from several threads leave the
process's BLAS as they found it; a call's grouping depends only on its shapes and
options, never on what else is running, so it returns the same numbers whatever runs
beside it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import os
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np

from .winograd import LAYER_TILES

__all__ = [
    "Options",
    "options",
    "current_options",
    "over_samples",
    "samples_per_product",
    "split_for_threads",
    "blas_single_thread",
    "last_plan",
    "Plan",
    "choose",
    "blas_avx512",
    "use_wide_rows",
    "input_gradient_route",
    "winograd_input_route",
    "Batched",
]


@dataclasses.dataclass(frozen=True)
class Options:
    """The engine's settings; see :func:`options`.

    Attributes
    ----------
    threads : int or None
        Worker threads for a batch (``None``: the cores this process may use; ``1``:
        none). While the workers run, the BLAS is held to one thread each, so that the
        copies, which NumPy runs on one core, are spread over the cores as well as the
        products.
    thread_min_work : float
        Below this many multiply-adds a call runs on the calling thread alone, the BLAS
        held to one thread too (only ``threads=1`` leaves the BLAS its own). Measured on
        the benchmark's 2-core machine (float32): threads over the batch paid on every
        benchmark layer, 0.06e9 to 1.2e9 multiply-adds (e.g. forward e 8.5 -> 4.7 ms,
        training c 8.8 -> 6.7 ms).
    gemm_columns : int
        Columns per matrix product: samples are grouped so that one product has at least
        this many columns. Small images (8x8 outputs) make one-sample products too thin
        for the BLAS to run at speed; larger groups hold more of the column matrix at
        once.
    group_numbers : int
        Numbers (column matrix and output together) a group may hold: a group takes
        more samples than ``gemm_columns`` asks for while they fit, since every group
        costs its own copies and calls. With threads, a group holds at most a quarter of
        the batch on two threads, so that no more than half the batch's column matrix
        exists at once. A forward pass that writes each product straight into the
        batch's output (the strided method's, ``PRODUCTS_INTO_OUT``) holds only its
        columns, so there they alone count. ``0``: ``gemm_columns`` alone decides. On
        the 2-core Zen 3 machine (paired rounds, 2 threads), 640,000 (2.5 MB in float32)
        took layer b's training step from 1 to 2 samples a group, 0.87-0.88 of the time,
        and layer c's from 8 to 16, 0.90-0.91 forward and 0.92-0.95 a step; twice as
        many numbers lost on b and e (1.01-1.02). Counting the columns alone took b's
        forward pass from 2 to 4 samples a group, 0.86-0.90 of the time.
    wide_rows : bool
        Whether ``method="auto"`` may pick wide rows (:mod:`convbook.methods.wide`).
    blas_avx512 : bool or None
        Whether the rules take NumPy's BLAS to run AVX-512 kernels (``None``: ask it,
        :func:`blas_avx512`). Wide rows pay for the forward pass and the weight gradient
        only there (:func:`use_wide_rows`).
    winograd_chunk_bytes : int
        Bytes of transformed tiles (input and products) per Winograd chunk: about a
        core's L2 cache and a half (1 MB on the benchmark's Zen 5 machine). A chunk is
        at least one sample: benchmark layer d's is more (1.8 MB in float32), layer a's
        (1.2 MB) rounds to one. On layer e (5x5, 16 -> 32 channels, 0.44 MB a sample)
        4 samples a chunk instead of 1 took 0.53 of the time forward and 0.65 for a
        training step (2 threads, paired rounds): fewer, longer NumPy calls, which the
        two threads overlap better; 2 samples a chunk on layer a took 1.03-1.16 times
        as long.
    """

    threads: int | None = None
    thread_min_work: float = 3e7
    gemm_columns: int = 512
    group_numbers: int = 640_000
    wide_rows: bool = True
    blas_avx512: bool | None = None
    winograd_chunk_bytes: int = 3 << 19

    def __post_init__(self):
        if self.threads is not None and (
            not isinstance(self.threads, int) or self.threads < 1
        ):
            raise ValueError(
                f"threads must be None or a positive int, got {self.threads!r}"
            )
        if not isinstance(self.gemm_columns, int) or self.gemm_columns < 1:
            raise ValueError(
                f"gemm_columns must be a positive int, got {self.gemm_columns!r}"
            )
        if self.blas_avx512 not in (None, True, False):
            raise ValueError(
                f"blas_avx512 must be None, True or False, got {self.blas_avx512!r}"
            )
        if not isinstance(self.group_numbers, int) or self.group_numbers < 0:
            raise ValueError(
                f"group_numbers must be a non-negative int, got {self.group_numbers!r}"
            )
        if (
            not isinstance(self.winograd_chunk_bytes, int)
            or self.winograd_chunk_bytes < 1
        ):
            raise ValueError(
                "winograd_chunk_bytes must be a positive int, "
                f"got {self.winograd_chunk_bytes!r}"
            )


# Options is frozen: the shared default cannot be changed in place
_OPTIONS: contextvars.ContextVar[Options] = contextvars.ContextVar(
    "convbook_options",
    default=Options(),  # noqa: B039
)


def current_options() -> Options:
    """The settings in force in this thread (and context)."""
    return _OPTIONS.get()


@contextmanager
def options(**changes):
    """Change the engine's settings inside a ``with`` block, in this thread only.

    Parameters
    ----------
    **changes
        Any field of :class:`Options`: ``threads``, ``thread_min_work``,
        ``gemm_columns``, ``group_numbers``, ``wide_rows``, ``blas_avx512``,
        ``winograd_chunk_bytes``.

    Yields
    ------
    Options
        The settings in force inside the block.

    Examples
    --------
    >>> with options(threads=1) as opts:
    ...     opts.threads
    1
    >>> current_options().threads is None
    True
    """
    fields = {f.name for f in dataclasses.fields(Options)}
    unknown = set(changes) - fields
    if unknown:
        raise TypeError(
            f"options() got unknown settings {sorted(unknown)}; known: {sorted(fields)}"
        )
    token = _OPTIONS.set(dataclasses.replace(_OPTIONS.get(), **changes))
    try:
        yield _OPTIONS.get()
    finally:
        _OPTIONS.reset(token)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def n_threads(opts: Options | None = None) -> int:
    """Worker threads a call may use under ``opts`` (default: the current options)."""
    opts = opts or current_options()
    if sys.platform in ("emscripten", "wasi"):  # Pyodide: no threads to start
        return 1
    return max(1, _usable_cores() if opts.threads is None else opts.threads)


# --------------------------------------------------------------------------------------
# The BLAS thread limit, shared by overlapping calls


class _BlasLimit:
    """One process-wide "BLAS on one thread" that overlapping calls share.

    The BLAS's thread count is process-wide: two calls that each set it and restore what
    they saw would, when they overlap, restore out of order and leave the BLAS on one
    thread for good. Here the first call in sets the limit and remembers the BLAS's
    threads; the last call out restores them.

    OpenBLAS is set through its own ``openblas_set_num_threads``: threadpoolctl (3.8)
    lets only one "controlling" Python thread change OpenBLAS and ignores the others,
    which would make a limit taken by a second user thread silently do nothing.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._users = 0
        self._saved = []
        self._setters = None

    def _find_setters(self):
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # then the workers share the BLAS's own threads
            return []
        setters = []
        for lib in ThreadpoolController().lib_controllers:
            if lib.user_api != "blas":
                continue
            setter = lib.set_num_threads
            if lib.internal_api == "openblas":
                setter = _openblas_setter(lib.filepath) or setter
            setters.append((lib, setter))
        return setters

    @contextmanager
    def hold(self):
        with self._lock:
            if self._users == 0:
                if self._setters is None:
                    self._setters = self._find_setters()
                self._saved = [(set_, lib.num_threads) for lib, set_ in self._setters]
                for set_, _ in self._saved:
                    set_(1)
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0:
                    for set_, threads in self._saved:
                        set_(threads)
                    self._saved = []


def _openblas_setter(path):
    """OpenBLAS's ``openblas_set_num_threads``, under any of its builds' names."""
    import ctypes

    try:
        dll = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            func = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
            if func is not None:
                func.argtypes, func.restype = [ctypes.c_int], None
                return func
    return None


_BLAS = _BlasLimit()


def blas_single_thread():
    """Context manager: the BLAS on one thread inside, shared by overlapping calls."""
    return _BLAS.hold()


# --------------------------------------------------------------------------------------
# Sample groups over threads

_POOL = None
_POOL_LOCK = threading.Lock()


def _pool(workers):
    global _POOL
    from concurrent.futures import ThreadPoolExecutor

    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < workers:
            _POOL = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="convbook"
            )
        return _POOL


# --------------------------------------------------------------------------------------
# OpenBLAS's packing buffers, touched once a process

_TOUCHED = 0  # how many overlapping BLAS calls' buffers have been touched
_TOUCHED_LOCK = threading.Lock()
_ZEROS = []  # the operands of those products, kept: see _touch_blas_buffers


def _touch_buffer(zeros, i=0, done=None, together=None):
    """Products that pack a whole block of each operand, in each dtype we use.

    With ``together`` (a barrier), thread ``i`` of ``len(done)`` runs them back to back
    until every thread has run 4 since they started together (``done`` counts them), so
    that each product of the last thread overlaps products of the others."""
    for dtype, cols in ((np.float32, 1024), (np.float64, 512)):
        b = zeros.view(dtype).reshape(512, cols)  # 2 MB
        out = np.empty((4, cols), dtype)
        if together is not None:
            try:
                together.wait(timeout=0.5)
                counts = done[dtype.__name__]
            except threading.BrokenBarrierError:  # a worker busy elsewhere
                together = None
        until = time.monotonic() + 0.5  # bounded, whatever the scheduling
        while True:
            np.matmul(b[:4, :512], b, out=out)
            if together is None:
                break
            counts[i] += 1
            if min(counts) >= 4 or time.monotonic() > until:
                break


def _touch_blas_buffers(threads):
    """Have the packing buffers of ``threads`` overlapping BLAS calls touched, once.

    OpenBLAS packs each block of a product into a buffer, one buffer for each call that
    runs at the same time, whose pages the system maps only when first written. Its
    AVX2 kernel seems to read ahead (prefetch) past the block it packed: when that
    block ends at a page that no product has written past, a product runs much slower,
    at every call, for as long as the page stays unwritten. Measured (2-core Zen 1,
    OpenBLAS 0.3.31's Haswell kernel, one thread): the 36 products ``(64, 64) @ (64,
    64)`` of a Winograd layer-a sample took 1.0-1.7 ms a set in a new process, and
    0.65-0.7 ms, from then on, once one larger product (``(64, 64) @ (64, 72)``: one
    more page faulted in) had run in the same buffer. Benchmark layer a's Winograd
    forward pass, in a new process beside PyTorch (5 processes each way, the median of
    9 interleaved rounds in each): 0.92-1.17 of PyTorch's time (3 of 5 above 1.13)
    without what follows, 0.86-1.02 with it. The larger products of other methods do
    not always do it: in processes that had run the benchmark's other methods on layer
    a, what follows took the same forward pass from 0.74-1.09 of PyTorch's time to
    0.75-1.01, faster by 7-13% in 5 of 6 processes and slower by 16% in one, on a
    machine whose rounds spread by 30-50%.

    So the first batch that runs ``threads`` calls at once has each of them run
    products (:func:`_touch_buffer`) that write a whole block of each operand, in
    float32 and float64: 4-7 ms on 2 threads here, once a process. Which buffer a call
    gets depends on how many run at once, not on the thread, so the ``threads - 1``
    pool workers run theirs beside the calling thread's, started together and back to
    back until each has run 4 (started together only, the products of two threads did
    not always overlap: the second buffer stayed unwritten in one CI run, under load);
    the batch's own blocks queue behind them. The operands are views of one 2 MB array
    of zeros, kept for the process: only read, it takes no memory (the system maps all
    its pages to one page of zeros), and never freed, it leaves glibc's allocator as it
    was (freeing a block that large raises the size from which glibc maps blocks
    afresh: :func:`convbook.benchenv.pin_malloc`).
    """
    global _TOUCHED
    with _TOUCHED_LOCK:
        if threads <= _TOUCHED:
            return
        _TOUCHED = threads
        if not _ZEROS:
            _ZEROS.append(np.zeros(1 << 21, np.uint8))
    zeros = _ZEROS[0]
    together = threading.Barrier(threads) if threads > 1 else None
    done = {"float32": [0] * threads, "float64": [0] * threads}
    with blas_single_thread():  # the calling threads' buffers, not the BLAS's threads'
        try:
            for i in range(1, threads):
                _pool(threads - 1).submit(_touch_buffer, zeros, i, done, together)
        except RuntimeError:  # no threads to start: the calling thread's buffer only
            together = None
        _touch_buffer(zeros, 0, done, together)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How this thread's last :func:`over_samples` call ran (for tests and chapters)."""

    samples: int
    per_group: int
    groups: int
    threads: int


_LAST = threading.local()


def last_plan() -> Plan | None:
    """The :class:`Plan` of this thread's last batch (``None`` before the first)."""
    return getattr(_LAST, "plan", None)


def over_samples(n, per, macs, work, opts: Options | None = None):
    """Call ``work(lo, hi)`` on consecutive ranges of ``per`` samples covering ``n``.

    With more than one usable thread and at least ``thread_min_work`` multiply-adds
    (``macs``), the ranges are dealt out round-robin to worker threads, the calling
    thread running the first block itself, while the BLAS runs on one thread. Whatever
    ``work`` returns that is not ``None`` is summed, in an order fixed by ``n``, ``per``
    and the options alone (each thread its own ranges in order, then the threads in
    order), so the sum never depends on timing.

    Returns
    -------
    The sum of the returned values, or ``None`` when ``work`` returns nothing.
    """
    opts = opts or current_options()
    per = max(1, per)
    ranges = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
    small = macs < opts.thread_min_work
    threads = 1 if small else max(1, min(n_threads(opts), len(ranges)))
    _LAST.plan = Plan(n, per, len(ranges), threads)

    def run_block(k):
        total = None
        for lo, hi in ranges[k::threads]:
            part = work(lo, hi)
            if part is not None:
                total = part if total is None else total + part
        return total

    _touch_blas_buffers(threads)  # once a process: OpenBLAS's buffers (see there)
    if threads == 1 and not small:  # threads=1 asked for: the BLAS keeps its threads
        return run_block(0)
    # Small products run on one BLAS thread too: the BLAS's threads cost more than they
    # give there, and on a busy machine they wait for each other (measured on the
    # digits network's stride-2 layer, N = 64, under load: 63 ms with 2 BLAS threads,
    # 0.46 ms with one).
    with blas_single_thread():
        if threads == 1:
            return run_block(0)
        # The calling thread runs block 0 itself: with a pool's map, one worker could
        # take every block while the other was still waking up (measured: the whole
        # batch on one thread in 3 of 5 calls).
        try:
            futures = [
                _pool(threads - 1).submit(run_block, k) for k in range(1, threads)
            ]
        except RuntimeError:  # no threads on this platform after all: run them here
            futures = None
        parts = [run_block(0)]
        if futures is None:
            parts += [run_block(k) for k in range(1, threads)]
        else:
            parts += [fut.result() for fut in futures]
    if all(part is None for part in parts):
        return None
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def samples_per_product(
    n, columns_per_sample, columns, macs, opts: Options | None = None, numbers=0
):
    """Samples per group: at least ``columns`` columns a product, and as many samples
    as fit in ``group_numbers`` (``numbers``: a sample's columns and outputs), but,
    when threads will run, no more than half the batch's columns at once (a quarter
    of the batch a group on two threads); then shared evenly by the threads.

    ``macs`` (the call's multiply-adds) says whether :func:`over_samples` will deal the
    groups out to threads; when it will not, the batch is not split for them.
    """
    opts = opts or current_options()
    per = max(1, -(-columns // max(columns_per_sample, 1)))
    if numbers:
        grown = opts.group_numbers // numbers
        threads = n_threads(opts)
        if threads > 1 and macs >= opts.thread_min_work:  # half the batch at most
            grown = min(grown, -(-n // (2 * threads)))
        per = max(per, grown)
    return split_for_threads(n, per, macs, opts)


def split_for_threads(n, per, macs, opts: Options | None = None):
    """About ``per`` samples a group; when threads will run, at most ``n / threads``,
    and, where each thread would get only one or two groups, evened out so that each
    gets the same number.

    The groups are dealt out round-robin: 64 samples in groups of 23 gave one thread
    of two 41 samples and the other 23 (benchmark layer c's training step, 1.13 times
    as long as 8 groups of 8). So where a thread gets fewer than two groups' worth, the
    groups a thread are rounded to the nearest whole number and the samples shared
    evenly among them (there: one group of 32 a thread).
    """
    opts = opts or current_options()
    if macs < opts.thread_min_work:
        return max(1, per)
    threads = n_threads(opts)
    per = max(1, min(per, -(-n // threads)))
    if (
        threads > 1 and 2 * per * threads > n
    ):  # few groups a thread: a short last one would idle one
        rounds = max(1, round(n / (per * threads)))  # groups a thread
        per = -(-n // (rounds * threads))
    return per


def forward_columns(rows, opts: Options | None = None):
    """Columns per forward product for ``rows`` (``Cg*KH*KW``) rows.

    A product with few rows is memory-bound and its per-call cost weighs more, so short
    ones get proportionally more columns: ``gemm_columns * (256 // rows)``, 9 x 512 for
    27 rows, ``gemm_columns`` itself from 129 rows on (measured on benchmark layer b,
    27 rows: 1.82 -> 1.58 ms with 8192 columns instead of 512).
    """
    opts = opts or current_options()
    return opts.gemm_columns * max(1, 256 // max(rows, 1))


# --------------------------------------------------------------------------------------
# Which method for method="auto"


def use_wide_rows(pass_, x_shape, w_shape, p, opts: Options | None = None) -> bool:
    """Whether wide rows (:mod:`convbook.methods.wide`) run this pass: a measured rule.

    Wide rows copy a row of the column matrix in one block but add ``(Wq - OW)/OW``
    junk columns to the product, whose cost grows with ``F``. The times are wide rows'
    over the strided method's, in paired rounds on 2 threads.

    * Forward pass and weight gradient: at stride 1, where ``F * (Wq - OW) < 8 * OW``
      and at most 1/8 of the columns are junk, and only on AVX-512 BLAS kernels
      (:func:`blas_avx512`). Benchmark layer b's forward pass: 0.66-0.75 in the four
      stored runs on AVX-512 machines, 1.01-1.43 in the four on AVX2 ones. On the
      2-core Zen 3 (AVX2): 1.01-1.20 forward and 1.07-1.38 for the weight gradient on
      five stride-1 layers, 0.99-1.17 and 1.05-1.16 on five stride-2 ones. The AVX-512
      runs predate the strided method's shifted rows.
    * Input gradient (col2im): the slice-adds become contiguous, which beat the strided
      add-back by rows (within 5% on one layer; 0.84 on layer c, Zen 3), but not where
      the strided method adds back better. Shifted rows, at stride 1 with ``OW = W``
      (:func:`~convbook.methods.strided.rows_shift`), took 0.60-0.91 of wide rows'
      time on seven layers; channels last, at a stride above 1 with ``Cg > OW``
      (:func:`~convbook.methods.strided.use_columns_last`): wide rows 0.96-1.58 on
      seven 3 x 3 layers in float32 (0.99 where planes lie 4 KB apart), 1.04-1.67 on
      six in float64; a 1 x 1 kernel, whose windows do not overlap: 1.21-1.33 at
      stride 2 (2-core Zen 1).
    * Never where a sample's row of the column matrix holds fewer than 16 numbers.
    """
    opts = opts or current_options()
    if not opts.wide_rows:
        return False
    pt, pb, pl, pr = p.padding
    wp = x_shape[3] + pl + pr
    oh, ow, _, _ = p.output_shape(x_shape[2:], w_shape[2:])
    if oh * -(-wp // p.stride[1]) < 16:
        # runs of a few numbers: the block copies and adds cost more than they
        # save (a classifier head, 4x4 -> 1x1: its input gradient 0.28 ms on plain
        # strided columns, 0.8 ms on wide rows)
        return False
    if pass_ == "grad_input":
        from .methods.strided import rows_shift

        (kh, kw), cg = w_shape[2:], x_shape[1] // p.groups
        if kh * kw == 1 or (p.stride != (1, 1) and cg > ow):
            return False  # no overlap to add; or the strided add-back channels last
        return not rows_shift(x_shape, w_shape[2:], p)
    if p.stride != (1, 1):
        return False
    if not (blas_avx512() if opts.blas_avx512 is None else opts.blas_avx512):
        return False
    f = w_shape[0]
    return f * (wp - ow) < 8 * ow and 8 * (wp - ow) <= ow


#: OpenBLAS's AVX-512 kernels, as threadpoolctl names them (lower case)
AVX512_KERNELS = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


@functools.lru_cache(maxsize=1)
def blas_avx512() -> bool:
    """Whether NumPy's BLAS runs AVX-512 kernels.

    OpenBLAS's kernel as threadpoolctl reports it (``OPENBLAS_CORETYPE``, where set,
    chooses it); for another BLAS, whether the CPU has AVX-512F, as NumPy sees it.
    Asked once per process.
    """
    from .benchenv import blas_info

    kernels = [
        str(lib["architecture"] or "").lower()
        for lib in blas_info()
        if lib["library"] == "openblas"
    ]
    if kernels:
        return any(kernel in AVX512_KERNELS for kernel in kernels)
    core = getattr(np, "_core", None) or np.core
    return bool(core._multiarray_umath.__cpu_features__.get("AVX512F", False))


def input_gradient_route(x_shape, w_shape, p) -> str:
    """The input gradient's route for ``method="auto"``: ``"rot180"`` or ``"col2im"``.

    Both do the same useful multiplications; they differ in what else they do. col2im
    writes ``C*KH*KW`` column rows per output pixel and adds them back (KH*KW
    slice-adds); rot180 copies ``F*KH*KW`` window rows of the padded ``dout`` per
    *input* pixel, and multiplies every zero that the stride inserted and every border
    pixel that no output reached. So rot180 wins when ``F * H * W <= C * OH * OW``:
    fewer filters than channels at stride 1 and "same" padding (measured on the
    benchmark layers and on 1x1-to-wide and wide-to-narrow layers, see the chapter "How
    fast is it?"); at stride S only when ``F * S * S <= C``; and for a kernel that
    covers the whole map (a classifier head: one output per sample from ``H * W``
    pixels) only when ``F * H * W <= C``.
    """
    n, c, h, w = x_shape
    f = w_shape[0]
    out = p.output_shape((h, w), w_shape[2:])
    return "rot180" if f * h * w <= c * out.oh * out.ow else "col2im"


def winograd_input_route(x_shape, w_shape, p) -> str:
    """Winograd's input-gradient route under ``method="auto"``: col2im or rot180.

    Both run Winograd's tiles. rot180 cuts the padded ``dout`` (F channels) into
    overlapping tiles, one per ``m x m`` block of the *input*, and transforms C
    channels back; col2im on tiles (:func:`convbook.winograd.tiles_grad_input`) cuts
    ``dout`` itself into tiles that do not overlap, and adds C channels' overlapping
    tiles back, which costs more per tile. Measured (2 threads, paired rounds, the Zen 3
    machine): col2im took 0.64-0.81 of rot180's time on benchmark layer e (5x5, 16 -> 32
    channels, unpadded), 0.92 on the same layer padded by 1 and by 2; 1.09 on a 3x3
    "same" layer of 32 -> 64 channels, 1.2-1.5 on 3x3 layers with as many filters as
    channels (padded or not) and 1.9 on 64 -> 32. So col2im where ``F * H * W > 2 * C *
    OH * OW`` (e: 2.7; the 5x5 layer padded by 2, at exactly 2, keeps rot180).
    """
    n, c, h, w = x_shape
    out = p.output_shape((h, w), w_shape[2:])
    return "col2im" if w_shape[0] * h * w > 2 * c * out.oh * out.ow else "rot180"


def _winograd_fits(w_shape, p) -> bool:
    return (
        w_shape[2] == w_shape[3] in LAYER_TILES
        and p.stride == (1, 1)
        and p.dilation == (1, 1)
        and p.groups == 1
    )


def choose(pass_, x_shape, w_shape, p, opts: Options | None = None, *, route=None):
    """The method (and route) ``method="auto"`` uses for one pass of one layer.

    Parameters
    ----------
    pass_ : {"forward", "grad_input", "grad_weight"}
    x_shape : (N, C, H, W)
    w_shape : (F, C // groups, KH, KW)
    p : ConvParams
    route : {None, "col2im", "rot180"}
        For ``"grad_input"``: the route asked for (``None``: where Winograd computes
        the layer, Winograd's rule, :func:`winograd_input_route`; else the column
        matrix's, :func:`input_gradient_route`); the method is then one that takes it.

    Returns
    -------
    (method, route)
        ``route`` is ``"col2im"`` or ``"rot180"`` for ``"grad_input"``, else ``None``.

    Examples
    --------
    >>> from convbook.shapes import conv_params
    >>> choose("forward", (32, 64, 32, 32), (64, 64, 3, 3), conv_params(3, padding=1))
    ('winograd', None)
    >>> choose("grad_input", (64, 64, 8, 8), (10, 64, 8, 8), conv_params(8))
    ('strided', 'col2im')
    """
    opts = opts or current_options()
    c, f = x_shape[1], w_shape[0]
    big_enough = min(c, f) >= 16  # Winograd's transforms cost more than they save below
    if pass_ == "forward":
        if _winograd_fits(w_shape, p) and big_enough:
            return "winograd", None
        wide = use_wide_rows(pass_, x_shape, w_shape, p, opts)
        return ("wide" if wide else "strided"), None
    if pass_ == "grad_input":
        if _winograd_fits(w_shape, p) and big_enough:
            # Winograd's tiles by either route beat the column matrix (layer e, 5x5
            # unpadded: rot180 on tiles 0.78 of col2im's time, 2 threads, paired
            # rounds); a col2im asked for where rot180 is Winograd's choice goes to
            # the column matrix
            tiles = winograd_input_route(x_shape, w_shape, p)
            if route in (None, tiles, "rot180"):
                return "winograd", route or tiles
        route = route or input_gradient_route(x_shape, w_shape, p)
        if route == "rot180":
            return "strided", "rot180"
        wide = use_wide_rows(pass_, x_shape, w_shape, p, opts)
        return ("wide" if wide else "strided"), "col2im"
    if pass_ == "grad_weight":
        if _winograd_fits(w_shape, p) and big_enough:
            return "winograd", None
        wide = use_wide_rows(pass_, x_shape, w_shape, p, opts)
        return ("wide" if wide else "strided"), None
    raise ValueError(
        f"pass_ must be 'forward', 'grad_input' or 'grad_weight', got {pass_!r}"
    )


# --------------------------------------------------------------------------------------
# A method run over sample groups


class Batched:
    """A method whose three functions run over groups of samples.

    ``module`` holds pure functions of a whole batch (with ``out=`` for the first two,
    and ``columns_per_sample``): the forward pass and the input gradient of a group of
    samples are those samples' rows of the batch's, and the weight gradient is a sum
    over samples, so running them group by group changes nothing but the memory held and
    the threads used.
    """

    def __init__(self, module):
        self.module = module
        self.__name__ = module.__name__
        self.__doc__ = module.__doc__

    def __repr__(self):
        return f"Batched({self.module.__name__})"

    def _per(self, pass_, n, x_shape, w_shape, p, opts):
        macs = self._macs(x_shape, w_shape, p)
        per_sample = self.module.columns_per_sample(x_shape, w_shape, p)
        if pass_ == "forward":
            rows = w_shape[1] * w_shape[2] * w_shape[3]
            columns = forward_columns(rows, opts)
        elif pass_ == "grad_input":
            # (Cg*KH*KW, Fg) @ (Fg, B*L) has a short inner dimension: wider products ran
            # faster (120 -> 175 GFLOP/s for 400 x 32 @ 32 x L, L = 672 -> 2688)
            columns = 2 * opts.gemm_columns
        else:
            columns = opts.gemm_columns
        # a sample's numbers: its columns (C*KH*KW rows) and its outputs (F rows); a
        # forward pass that writes its products into the batch's output holds only
        # its columns
        outputs = w_shape[0]
        if pass_ == "forward" and getattr(self.module, "PRODUCTS_INTO_OUT", False):
            outputs = 0
        numbers = (x_shape[1] * w_shape[2] * w_shape[3] + outputs) * per_sample
        return samples_per_product(n, per_sample, columns, macs, opts, numbers)

    @staticmethod
    def _macs(x_shape, w_shape, p):
        n = x_shape[0]
        out = p.output_shape(x_shape[2:], w_shape[2:])
        return n * w_shape[0] * out.oh * out.ow * w_shape[1] * w_shape[2] * w_shape[3]

    def forward(self, x, w, b, p, **kw):
        opts = current_options()
        n, f = x.shape[0], w.shape[0]
        shape = p.output_shape(x.shape[2:], w.shape[2:])
        out = np.empty((n, f, shape.oh, shape.ow), dtype=x.dtype)
        per = self._per("forward", n, x.shape, w.shape, p, opts)

        def work(lo, hi):
            self.module.forward(x[lo:hi], w, b, p, out=out[lo:hi], **kw)

        over_samples(n, per, self._macs(x.shape, w.shape, p), work, opts)
        return out

    def grad_input(self, dout, w, x_shape, p, **kw):
        opts = current_options()
        n = x_shape[0]
        dx = np.empty(x_shape, dtype=dout.dtype)
        per = self._per("grad_input", n, x_shape, w.shape, p, opts)

        def work(lo, hi):
            group = (hi - lo, *x_shape[1:])
            self.module.grad_input(dout[lo:hi], w, group, p, out=dx[lo:hi], **kw)

        over_samples(n, per, self._macs(x_shape, w.shape, p), work, opts)
        return dx

    def grad_weight(self, dout, x, w_shape, p, **kw):
        opts = current_options()
        n = x.shape[0]
        per = self._per("grad_weight", n, x.shape, w_shape, p, opts)

        def work(lo, hi):
            return self.module.grad_weight(dout[lo:hi], x[lo:hi], w_shape, p, **kw)

        dw = over_samples(n, per, self._macs(x.shape, w_shape, p), work, opts)
        return np.zeros(w_shape, dtype=x.dtype) if dw is None else dw
