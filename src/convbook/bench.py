"""Benchmark convbook's convolution methods against PyTorch, measured in the same run.

Run ``python -m convbook.bench`` (``--help`` for options). For each layer shape and
method it times the forward pass and a training step (forward plus all three gradients),
reports medians of repeated runs, the ratio to PyTorch (``torch.nn.functional.conv2d``
forward, forward + backward through autograd, with ``torch.set_num_threads`` matched to
NumPy's BLAS threads, or everyone held to ``--threads N``) or, without torch, to the
fastest convbook method; the achieved GFLOP/s and its fraction of the machine's float32
matrix-multiply peak (measured in the same run with a square GEMM of about the same
number of operations); and the BLAS library, kernel and threads as :mod:`threadpoolctl`
sees them.

Methods are timed round-robin (a turn of each method per round: the median of up to
``CALLS`` calls back to back), so slow drifts of a shared machine hit every method
alike; before each method's turn the benchmark pauses briefly and makes untimed calls,
because the threads of one library (OpenBLAS, PyTorch's OpenMP) keep spinning for a
moment after a call and would slow the next library's first call; the untimed calls go
on for at least ``WARM_S`` seconds, since an idle core can take tens of milliseconds to
come back to full speed (seen on a 2-core virtual machine). OpenBLAS reads
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` at start-up; when they force a slower kernel
the benchmark says so. Unset them for the run only::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m convbook.bench

The command line also pins glibc's allocator for its process
(:func:`convbook.benchenv.pin_malloc`), so that neither PyTorch nor any method pays
page faults that depend on what ran before it; ``--malloc default`` leaves it alone.

Notes
-----
The results and what to make of them are in the book's chapter "How fast is it?"
(``book/benchmarks.ipynb``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from typing import NamedTuple

import numpy as np

from .benchenv import (  # the machine: its BLAS, threads and load
    OPENBLAS_VARS,
    blas_info,
    cpu_model,
    env_warnings,
    loadavg,
    pin_malloc,
    threads_held,
)
from .benchreport import (  # the result read: checks, tables and pictures
    FAST_METHODS,
    HTML_COLUMNS,
    METHOD_COLORS,
    METHOD_ORDER,
    best_ratio,
    compare,
    format_table,
    html_table,
    machine_change,
    plot_result,
    read_run,
)
from .winograd import LAYER_TILES

__all__ = [
    "best_time",
    "Shape",
    "SHAPES",
    "QUICK_SHAPES",
    "blas_info",
    "peak_memory",
    "run",
    "read_run",
    "best_ratio",
    "machine_change",
    "format_table",
    "html_table",
    "main",
    "compare",
    "plot_result",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "FAST_METHODS",
    "HTML_COLUMNS",
]


class Shape(NamedTuple):
    """A conv layer: (N, C -> F, H = W, k, stride, padding)."""

    n: int
    c: int
    f: int
    hw: int
    k: int
    stride: int
    padding: int

    def __str__(self):
        n, c, f, hw, k = self.n, self.c, self.f, self.hw, self.k
        return f"({n}, {c}->{f}, {hw}, {k}, {self.stride}, {self.padding})"

    @property
    def out_hw(self):
        return (self.hw + 2 * self.padding - self.k) // self.stride + 1

    @property
    def forward_flops(self):
        """Multiply-adds counted as 2 operations: ``2 N F OH OW C k k``."""
        return 2 * self.n * self.f * self.out_hw**2 * self.c * self.k * self.k

    @property
    def train_flops(self):
        """Forward, input gradient and weight gradient: each the same product count
        (bias gradient ignored)."""
        return 3 * self.forward_flops


SHAPES = {
    "a": Shape(32, 64, 64, 32, 3, 1, 1),
    "b": Shape(16, 3, 32, 64, 3, 1, 1),
    "c": Shape(64, 32, 64, 16, 3, 2, 1),
    "d": Shape(8, 128, 128, 28, 3, 1, 1),
    "e": Shape(32, 16, 32, 28, 5, 1, 0),
}


#: Tiny layers for ``--quick`` (seconds, with the loop reference): structure, not speed.
QUICK_SHAPES = {
    "q1": Shape(2, 3, 4, 8, 3, 1, 1),
    "q2": Shape(2, 4, 4, 9, 3, 2, 0),
}

CONVBOOK_METHODS = ("reference", "tutorial", "strided", "wide", "winograd", "auto")
#: Pause before each method's turn in a round (seconds), see :func:`run`: OpenBLAS
#: threads spin for up to about 0.1 s after a call before they sleep.
SETTLE_S = 0.25


#: Untimed calls before each method's timed ones, for at least this long (seconds): on
#: the benchmark's 2-core virtual machine a core left idle for the pause came back
#: slowly, and threaded code ran at one core's speed for the first 50-60 ms of calls
#: (measured on layer a: 16 ms per Winograd forward, then 9-10 ms).
WARM_S = 0.1


#: Back-to-back timed calls in a round, for a method whose second call (forward pass
#: and training step together, after a first one for the one-time costs) took under
#: ``CALLS_UNDER_S`` seconds; the round keeps their median. One call a round left the
#: per-round ratios of a layer spread over 3x on the benchmark's shared 2-core machine
#: (layer d, forward: 0.39 to 1.27).
CALLS = 5
CALLS_UNDER_S = 0.25


def _median_time(fn, calls):
    """The median of ``calls`` timed calls of ``fn``, back to back (seconds)."""
    return float(np.median([_timeit(fn) for _ in range(calls)]))


def _warm(fn, seconds):
    """Call ``fn`` at least once, and again until ``seconds`` have passed."""
    t0 = time.perf_counter()
    fn()
    while time.perf_counter() - t0 < seconds:
        fn()


def _methods_for(shape, quick):
    methods = ["tutorial", "strided", "wide"]
    if shape.k in LAYER_TILES and shape.stride == 1:
        methods.append("winograd")
    methods.append("auto")  # what a call without method= gets
    if quick:
        methods.insert(0, "reference")
    return methods


def best_time(fn, repeat=3):
    """The fastest of ``repeat`` runs of ``fn()``, in seconds (the chapters' timings).

    Examples
    --------
    >>> best_time(lambda: sum(range(10)), repeat=2) >= 0
    True
    """
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _timeit(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _gemm_peak(flops, repeat, rng):
    """Float32 GEMM GFLOP/s for a square product of about ``flops`` operations (n
    between 128 and 1536)."""
    n = int(round((flops / 2) ** (1 / 3) / 64)) * 64
    n = min(max(n, 128), 1536)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)
    # the best of several runs: a peak, not a typical time
    times = [_timeit(lambda: np.matmul(a, b, out=out)) for _ in range(max(repeat, 5))]
    return n, 2 * n**3 / min(times) / 1e9


def peak_memory(fn):
    """Peak bytes allocated (and not yet freed) while ``fn()`` runs, as
    :mod:`tracemalloc` sees them.

    NumPy reports its array buffers to tracemalloc, so this counts every temporary
    array, the result included. Memory allocated before the call (the inputs) does not
    count.

    Examples
    --------
    >>> peak_memory(lambda: np.ones(1000)) >= 8000
    True
    """
    import tracemalloc

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _convbook_fns(shape, method, x, w, b, dout, threads=None):
    from .conv import conv2d_backward, conv2d_forward
    from .engine import options

    kw = dict(stride=shape.stride, padding=shape.padding, method=method)

    def fwd():
        with options(threads=threads):
            return conv2d_forward(x, w, b, **kw)

    def train():
        with options(threads=threads):
            conv2d_forward(x, w, b, **kw)
            return conv2d_backward(dout, x, w, **kw)

    return fwd, train


def _torch_fns(shape, x, w, b, dout, threads):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    F = torch.nn.functional
    tx, tw, tb, tdout = (torch.from_numpy(a) for a in (x, w, b, dout))
    kw = dict(stride=shape.stride, padding=shape.padding)

    def fwd():
        with torch.no_grad():
            return F.conv2d(tx, tw, tb, **kw)

    gx = tx.clone().requires_grad_(True)
    gw = tw.clone().requires_grad_(True)
    gb = tb.clone().requires_grad_(True)

    def train():
        gx.grad = gw.grad = gb.grad = None
        out = F.conv2d(gx, gw, gb, **kw)
        out.backward(tdout)
        return gx.grad, gw.grad, gb.grad

    return fwd, train, torch.__version__


def run_digits(*, repeat=5, methods=("auto",), settle=SETTLE_S, log=None, threads=None):
    """Time one training epoch of the digits network, convbook's against PyTorch's.

    The network of the chapter "Train a network with your layer"
    (:func:`convbook.digits.network`), float32, the BLAS's threads and as many for
    PyTorch (or ``threads`` for both and for convbook's engine); interleaved rounds
    (PyTorch first), the ratio in each round.

    Returns
    -------
    dict or None
        ``{"steps", "torch_s", <method>: {"epoch_s", "ratio", "ratio_min",
        "ratio_max"}}``; ``None`` without PyTorch or scikit-learn.
    """
    try:
        import torch

        from . import digits
    except ImportError:
        return None
    log = log or (lambda *a: None)
    with threads_held(threads) as n_threads:
        torch.set_num_threads(n_threads)
        return _run_digits(digits, repeat, methods, settle, log, threads)


def _run_digits(digits, repeat, methods, settle, log, threads):
    from .engine import options

    def held(fn):
        def epoch():
            with options(threads=threads):
                return fn()

        return epoch

    epochs = {"torch": None}
    for m in methods:
        ours, theirs = digits.epoch_fns(np.float32, method=m)
        epochs[m], epochs["torch"] = held(ours), epochs["torch"] or theirs
    steps = len(epochs["torch"]())  # also the warm-up
    for m in methods:
        epochs[m]()
    times = {k: [] for k in epochs}
    for _ in range(repeat):
        for k, fn in epochs.items():
            time.sleep(settle)
            times[k].append(_timeit(fn))
    out = {"steps": steps, "torch_s": float(np.median(times["torch"]))}
    for m in methods:
        ratios = [a / b for a, b in zip(times[m], times["torch"], strict=True)]
        out[m] = {
            "epoch_s": float(np.median(times[m])),
            "ratio": float(np.median(ratios)),
            "ratio_min": float(np.min(ratios)),
            "ratio_max": float(np.max(ratios)),
        }
    log("  digits epoch: done")
    return out


def run(
    shapes=("a", "b", "c", "d", "e"),
    *,
    repeat=5,
    quick=False,
    seed=0,
    memory=True,
    log=None,
    digits=None,
    threads=None,
):
    """Run the benchmark; return a JSON-ready dict (see the module docstring).

    Parameters
    ----------
    shapes : iterable of str
        Keys of :data:`SHAPES` (or of :data:`QUICK_SHAPES` with ``quick=True``).
    repeat : int
        Timed runs per method (after one warm-up); medians are reported. Methods slower
        than 2 s per run get at most 3.
    quick : bool
        Tiny shapes, and the loop reference is included.
    memory : bool
        Also measure each convbook method's peak allocated memory (forward, and training
        step) with :func:`peak_memory`, reported as a multiple of the input's size (one
        extra untimed run each).
    log : callable, optional
        Called with progress lines (e.g. ``print``).
    threads : int, optional
        Threads for everyone: NumPy's BLAS, PyTorch, and convbook's engine
        (``cb.options(threads=...)``); default: the BLAS's threads, as many for PyTorch,
        and the engine's own choice.
    """
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    with threads_held(threads) as n_threads:
        return _run(
            shapes, repeat, quick, seed, memory, log, digits, threads, n_threads
        )


def _selected(shapes, quick):
    """``{key: Shape}`` for the keys asked for; a ValueError names any unknown one."""
    table = QUICK_SHAPES if quick else SHAPES
    unknown = [s for s in shapes if s not in table]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; choose from {sorted(table)}")
    return {key: table[key] for key in shapes}


def _run(shapes, repeat, quick, seed, memory, log, digits, engine_threads, threads):
    table = _selected(shapes, quick)
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    log = log or (lambda *a: None)
    rng = np.random.default_rng(seed)
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "processor": platform.processor(),
            "cpu": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "blas": blas_info(),
            "env": {k: os.environ.get(k) for k in OPENBLAS_VARS},
            # other work on the machine distorts timings; the ratios (same run,
            # round-robin) suffer least
            "loadavg_start": loadavg(),
        },
        "warnings": env_warnings(),
        "dtype": "float32",
        "repeat": repeat,
        "calls_per_round": CALLS,
        "threads": threads,
        # set for everyone by threads= (None: the engine chose its own)
        "engine_threads": engine_threads,
        "torch": None,
        "baseline": None,
        "shapes": {},
    }
    for name in shapes:
        shape = table[name]
        oh = shape.out_hw
        x = rng.standard_normal(
            (shape.n, shape.c, shape.hw, shape.hw), dtype=np.float32
        )
        w = rng.standard_normal(
            (shape.f, shape.c, shape.k, shape.k), dtype=np.float32
        ) / np.float32(np.sqrt(shape.c * shape.k * shape.k))
        b = rng.standard_normal(shape.f, dtype=np.float32)
        dout = rng.standard_normal((shape.n, shape.f, oh, oh), dtype=np.float32)
        peak_n, peak = _gemm_peak(shape.forward_flops, repeat, rng)
        candidates = {}
        torch_fns = _torch_fns(shape, x, w, b, dout, threads)
        if (
            torch_fns is not None
        ):  # first in every round: each round's ratios use its time
            result["torch"] = torch_fns[2]
            candidates["torch"] = torch_fns[:2]
        for m in _methods_for(shape, quick):
            candidates[m] = _convbook_fns(shape, m, x, w, b, dout, engine_threads)
        # warm-up (and a correctness cross-check against the first method's output)
        outs, grads, per_kind_repeats, calls, times = {}, {}, {}, {}, {}
        for m, (fwd, train) in candidates.items():
            t0 = time.perf_counter()
            outs[m] = _as_float64(fwd())
            t_fwd = time.perf_counter() - t0
            t0 = time.perf_counter()
            grads[m] = [_as_float64(g) for g in train()]
            t_call = t_fwd + time.perf_counter() - t0
            if t_call < 2:
                # a second call decides: the first pays one-time costs (PyTorch's
                # first call of a run, layer a: 0.63 s, the next 0.15 s; so far
                # its rounds on layer a held one call against convbook's five)
                t_call = _timeit(lambda fwd=fwd, train=train: (fwd(), train()))
            per_kind_repeats[m] = 1 if t_call > 10 else (3 if t_call > 2 else repeat)
            per_kind_repeats[m] = min(per_kind_repeats[m], repeat)
            calls[m] = CALLS if t_call < CALLS_UNDER_S else 1
            times[m] = {"forward": [], "train": []}
        for r in range(repeat):
            for m, (fwd, train) in candidates.items():
                if r < per_kind_repeats[m]:
                    # NumPy's BLAS threads and PyTorch's OpenMP threads keep spinning
                    # for a moment after a call, taking cores from whichever library
                    # runs next: pause, then one untimed call first.
                    time.sleep(0 if quick else SETTLE_S)
                    _warm(fwd, 0 if quick else WARM_S)
                    times[m]["forward"].append(_median_time(fwd, calls[m]))
                    times[m]["train"].append(_median_time(train, calls[m]))
        ref_name = "torch" if "torch" in outs else "strided"
        ref_out, ref_grads = outs[ref_name], grads[ref_name]
        rows = {}
        for m in candidates:
            f_s = float(np.median(times[m]["forward"]))
            t_s = float(np.median(times[m]["train"]))
            rows[m] = {
                "forward_s": f_s,
                "train_s": t_s,
                "forward_gflops": shape.forward_flops / f_s / 1e9,
                "train_gflops": shape.train_flops / t_s / 1e9,
                "forward_peak_fraction": shape.forward_flops / f_s / 1e9 / peak,
                "train_peak_fraction": shape.train_flops / t_s / 1e9 / peak,
                # the fastest round too: less sensitive than the median to other work
                # on a shared machine
                "forward_min_s": float(np.min(times[m]["forward"])),
                "train_min_s": float(np.min(times[m]["train"])),
                "runs": len(times[m]["forward"]),
                # timed calls in each round, their median kept
                "calls_per_round": calls[m],
                # float32 accuracy, relative to the largest entry of the reference's
                # result
                "max_rel_diff": _rel_diff(outs[m], ref_out),
                "train_max_rel_diff": max(
                    _rel_diff(g, r) for g, r in zip(grads[m], ref_grads, strict=True)
                ),
            }
            if memory and m != "torch":
                fwd, train = candidates[m]
                rows[m]["forward_peak_mem_x"] = peak_memory(fwd) / x.nbytes
                rows[m]["train_peak_mem_x"] = peak_memory(train) / x.nbytes
        if "torch" in rows:
            base = "torch"
        else:
            base = min(
                (k for k in rows if k != "reference"), key=lambda k: rows[k]["train_s"]
            )
        result["baseline"] = "torch" if base == "torch" else "fastest convbook method"
        for m, v in rows.items():
            for kind in ("forward", "train"):
                # the ratio in each round, to the baseline's time in the same round: a
                # shared machine's slow drifts hit both alike
                n_runs = min(len(times[m][kind]), len(times[base][kind]))
                per_round = [
                    times[m][kind][r] / times[base][kind][r] for r in range(n_runs)
                ]
                v[f"{kind}_ratio"] = float(np.median(per_round))
                v[f"{kind}_ratio_min"] = float(np.min(per_round))
                v[f"{kind}_ratio_max"] = float(np.max(per_round))
        ours = [
            k for k in rows if k in CONVBOOK_METHODS and k not in ("reference", "auto")
        ]
        result["shapes"][name] = {
            "shape": list(shape),
            "label": str(shape),
            "forward_gflop": shape.forward_flops / 1e9,
            # the column matrix the seed's im2col builds, and the output, as multiples
            # of the input's size
            "im2col_matrix_x": shape.k**2 * oh * oh / shape.hw**2,
            "output_x": shape.f * oh * oh / (shape.c * shape.hw**2),
            "peak_gemm_n": peak_n,
            "peak_gflops": peak,
            "methods": rows,
            "best_forward": min(ours, key=lambda k: rows[k]["forward_s"]),
            "best_train": min(ours, key=lambda k: rows[k]["train_s"]),
        }
        log(f"  {name} {shape}: done")
    if digits is None:
        digits = not quick
    if digits:
        result["digits"] = run_digits(
            repeat=repeat, methods=("auto", "strided"), log=log, threads=engine_threads
        )
    result["machine"]["loadavg_end"] = loadavg()
    return result


def _as_float64(a):
    return np.asarray(a.numpy() if hasattr(a, "numpy") else a, dtype=np.float64)


def _rel_diff(got, want):
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m convbook.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--shapes",
        default=None,
        help="comma-separated shape keys (default: all; a..e, or q1,q2 with --quick)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per method (median reported)"
    )
    parser.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        help="also write the results as JSON to PATH",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny shapes, including the loop reference (seconds)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for NumPy's BLAS, PyTorch and convbook (default: the BLAS's)",
    )
    parser.add_argument(
        "--malloc",
        choices=("pinned", "default"),
        default="pinned",
        help="glibc's allocator: pinned (benchenv.pin_malloc: memory reused, the "
        "default) or as glibc sets it (page faults depend on what ran before)",
    )
    parser.add_argument(
        "--audit",
        action="store_true",
        help="time every method and route that method='auto' could pick against its "
        "pick, pass by pass, and mark where another was faster (convbook.benchaudit)",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("OLD", "NEW"),
        help="print two stored runs (--json files) side by side and exit",
    )
    args = parser.parse_args(argv)
    if args.compare:
        with open(args.compare[0]) as a, open(args.compare[1]) as b:
            text = compare(json.load(a), json.load(b))
        print(text)
        return text
    table = QUICK_SHAPES if args.quick else SHAPES
    shapes = tuple(args.shapes.split(",")) if args.shapes else tuple(table)
    for w in env_warnings():
        print("WARNING: " + w, file=sys.stderr)
    malloc = pin_malloc() if args.malloc == "pinned" else None
    if args.audit:
        return _audit(parser, args, shapes)
    try:
        result = run(
            shapes,
            repeat=args.repeat,
            quick=args.quick,
            log=lambda s: print(s, file=sys.stderr),
            threads=args.threads,
        )
    except ValueError as exc:
        parser.error(str(exc))
    result["machine"]["malloc"] = malloc or "default"
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


def _audit(parser, args, shapes):
    from .benchaudit import audit, format_audit

    try:
        with threads_held(args.threads):
            result = audit(
                _selected(shapes, args.quick),
                repeat=args.repeat,
                threads=args.threads,
                log=lambda s: print(s, file=sys.stderr),
            )
    except ValueError as exc:
        parser.error(str(exc))
    print(format_audit(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
