"""The benchmark's machine: NumPy's BLAS, its threads, the OpenBLAS variables, the load,
the allocator.

:mod:`convbook.bench` records these with every run (and re-exports :func:`blas_info`).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = [
    "MALLOC_PINNED",
    "OPENBLAS_VARS",
    "blas_info",
    "blas_threads",
    "cpu_model",
    "env_warnings",
    "fresh_process_faults",
    "loadavg",
    "pin_malloc",
    "threads_held",
    "untouched_buffer",
]


def blas_info():
    """BLAS libraries NumPy uses: list of dicts (library, version, kernel/architecture,
    threads), via threadpoolctl.

    Returns an empty list when threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_info
    except (
        ImportError
    ):  # pragma: no cover - threadpoolctl ships with the book's dependencies
        return []
    out = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        out.append(
            {
                "library": info.get("internal_api"),
                "version": info.get("version"),
                "architecture": info.get("architecture"),
                "threading_layer": info.get("threading_layer"),
                "threads": info.get("num_threads"),
                "filepath": os.path.basename(info.get("filepath", "")),
            }
        )
    return out


def blas_threads():
    """The first BLAS library's threads (the CPU count without threadpoolctl).

    Examples
    --------
    >>> blas_threads() >= 1
    True
    """
    info = blas_info()
    return info[0]["threads"] if info else (os.cpu_count() or 1)


OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def env_warnings():
    """A warning per set OpenBLAS variable that can force a slower kernel (a list).

    Examples
    --------
    >>> import os
    >>> env_warnings() == [] or any(k in os.environ for k in OPENBLAS_VARS)
    True
    """
    set_vars = {k: os.environ[k] for k in OPENBLAS_VARS if k in os.environ}
    if not set_vars:
        return []
    return [
        "OpenBLAS variables are set ("
        + ", ".join(f"{k}={v}" for k, v in set_vars.items())
        + "): they can force a slower kernel (about half the matrix speed). "
        "For a fair run: "
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m convbook.bench"
    ]


@contextlib.contextmanager
def threads_held(threads):
    """Context manager: NumPy's BLAS on ``threads`` threads inside (``None``: as it
    is), yielding that thread count; PyTorch's threads as they were, after.

    Examples
    --------
    >>> with threads_held(1) as n:
    ...     n == blas_threads() == 1
    True
    """
    torch = sys.modules.get("torch")  # the runs set its threads: given back after
    torch_threads = torch.get_num_threads() if torch else None
    try:
        if threads is None:
            yield blas_threads()
            return
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads, user_api="blas"):
            yield threads
    finally:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)


def loadavg():
    """The 1-, 5- and 15-minute load averages, rounded (``None`` where unknown)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not on every platform
        return None


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The processor as Linux names it, with what tells its kind apart.

    A virtual machine's name can be as plain as "AMD EPYC" for chips whose float32
    matrix products differ 4x (the benchmark's 2-core machines, all "AMD EPYC": about
    100, 200 and 400 GFLOP/s), so the family, model and AVX-512 or AVX2 go with it.
    ``None`` where ``/proc/cpuinfo`` is not.
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            first = f.read().split("\n\n")[0]  # the first processor
    except OSError:
        return None
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = fields.get("flags", "").split()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    kind = [f"family {fields['cpu family']}"] if "cpu family" in fields else []
    kind += [f"model {fields['model']}"] if "model" in fields else []
    kind += [vector] if vector else []
    name = fields.get("model name", "unknown")
    return f"{name} ({', '.join(kind)})" if kind else name


#: glibc's allocator in a benchmark's own process (:func:`pin_malloc`): blocks up to
#: 32 MB (the largest threshold glibc takes) from its heap, and up to 1 GB of freed
#: memory kept there
MALLOC_PINNED = {"mmap_threshold": 32 << 20, "trim_threshold": 1 << 30}


def _glibc():
    import platform

    return sys.platform == "linux" and platform.libc_ver()[0] == "glibc"


def pin_malloc():
    """Set glibc's allocator to :data:`MALLOC_PINNED` for this process; None off glibc.

    glibc maps a block of 128 KB or more afresh from the operating system, and gives it
    back when freed, until the process has freed a larger block
    (:func:`fresh_process_faults`); so the page faults a call pays depend on what ran
    before it. PyTorch's forward pass of benchmark layer b took about 11 ms a call in a
    new process and about 1.5 ms with these settings (2-core Zen 3, 2 threads). Pinned,
    every method and PyTorch run on reused memory whatever ran before them. It cannot
    be undone: for a process of its own, as ``python -m convbook.bench``.
    """
    import ctypes

    if not _glibc():
        return None
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    pinned = libc.mallopt(m_mmap_threshold, MALLOC_PINNED["mmap_threshold"]) == 1
    pinned &= libc.mallopt(m_trim_threshold, MALLOC_PINNED["trim_threshold"]) == 1
    return dict(MALLOC_PINNED) if pinned else None


def _faults_here(calls, free_bytes, pin, layer, torch):
    """Page faults and seconds a call of a benchmark layer's forward pass (convbook's,
    or PyTorch's if ``torch``), in this process, before and after it frees one array of
    ``free_bytes`` (:func:`pin_malloc` first if ``pin``)."""
    import resource
    import statistics
    import time

    import numpy as np

    from .bench import SHAPES
    from .conv import conv2d_forward

    if pin:
        pin_malloc()
    s = SHAPES[layer]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s.n, s.c, s.hw, s.hw), dtype=np.float32)
    w = rng.standard_normal((s.f, s.c, s.k, s.k), dtype=np.float32)
    forward = conv2d_forward
    if torch:
        import torch as pt

        x, w = pt.from_numpy(x), pt.from_numpy(w)
        pt.set_num_threads(blas_threads() or 1)
        forward = pt.nn.functional.conv2d

    def per_call():  # medians over the calls after a first one
        forward(x, w, stride=s.stride, padding=s.padding)
        faults, seconds = [], []
        for _ in range(calls):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            forward(x, w, stride=s.stride, padding=s.padding)
            seconds.append(time.perf_counter() - start)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return statistics.median(faults), statistics.median(seconds)

    fresh = per_call()
    freed = np.ones(free_bytes, dtype=np.uint8)
    del freed
    return {"fresh": fresh, "after": per_call()}


def fresh_process_faults(
    calls=20, free_bytes=4 << 20, *, pin=False, layer="c", torch=False
):
    """Benchmark layer ``layer``'s forward pass in a new Python process: page faults
    and seconds a call, ``{"fresh": (faults, s), "after": (faults, s)}``, before and
    after that process frees one array of ``free_bytes``; medians over ``calls`` calls
    after a first, untimed one.

    Medians, because the allocator's heaps can still grow once after that first call:
    when the worker threads' allocations and frees interleave differently, the next
    call may need a few more pages from the operating system. Layer c, malloc pinned,
    nbval running beside it (2-core Zen 1): 22 faults (a thread arena's heap growing by
    88 KB) in one call, in 43 of 474 new processes, and 184 in three calls in one; none
    with the engine on one thread. That is not a buffer faulted in at every call, which
    is what this counts.

    glibc's allocator maps a block of 128 KB or more afresh from the operating system
    until a larger block has been freed (its threshold then rises to that size, up to
    32 MB: ``man mallopt``, ``M_MMAP_THRESHOLD``), so a new process faults in its
    large buffers at every call. ``pin=True``: the process calls :func:`pin_malloc`
    first; ``torch=True``: PyTorch's forward pass instead of convbook's. ``None`` where
    the C library is not glibc.
    """
    if not _glibc():
        return None
    args = (int(calls), int(free_bytes), bool(pin), str(layer), bool(torch))
    got = _in_new_process("_faults_here", args)
    return {k: tuple(v) for k, v in got.items()}


def _in_new_process(name, args):
    """What this module's function ``name(*args)`` returns (JSON) in a new process."""
    import json
    import subprocess

    code = (
        f"import json; from convbook.benchenv import {name}; "
        f"print(json.dumps({name}(*{args!r})))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout)


def _buffer_here(sets, engine_first):
    """:func:`untouched_buffer`'s measurement, in this process."""
    import resource
    import time

    import numpy as np

    from .conv import conv2d_forward
    from .engine import blas_single_thread

    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 36, 64, 64), dtype=np.float32)
    out = np.empty_like(u)
    a, b = np.ones((64, 64), np.float32), np.ones((64, 72), np.float32)
    wider = np.empty((64, 72), np.float32)

    def per_set():  # the fastest set of the 36 products, each into out
        seconds = []
        for _ in range(sets):
            start = time.perf_counter()
            np.matmul(u, v, out=out)
            seconds.append(time.perf_counter() - start)
        return min(seconds)  # what other work beside it adds is left out

    with blas_single_thread():  # on this thread, in its buffer
        if engine_first:  # a batch small enough for the calling thread alone
            x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32)
            conv2d_forward(x, w, method="strided")
        first = per_set()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        np.matmul(a, b, out=wider)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        return {"first": first, "wider_faults": faults, "then": per_set()}


def untouched_buffer(sets=20):
    """The 36 products ``(64, 64) @ (64, 64)`` of a Winograd layer-a sample, float32,
    in new Python processes on one BLAS thread: seconds a set (the fastest of ``sets``)
    at first, the page faults of one product eight columns wider, ``(64, 64) @ (64,
    72)`` (its packed block one page longer), and the seconds a set after it. The
    fastest, because the state measured lasts for every call while other work beside
    the process only adds time.

    ``{"new": ..., "engine first": ...}``, each ``{"first": s, "wider_faults": n,
    "then": s}``: in ``"engine first"`` the process first ran a small convbook batch,
    which touches the BLAS's buffers (``convbook.engine._touch_blas_buffers``). ``None``
    where the C library is not glibc.
    """
    if not _glibc():
        return None
    return {
        label: _in_new_process("_buffer_here", (int(sets), engine_first))
        for label, engine_first in (("new", False), ("engine first", True))
    }
