"""The benchmark's machine: NumPy's BLAS, its threads, the OpenBLAS variables, the load.

:mod:`convbook.bench` records these with every run (and re-exports :func:`blas_info`).
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = [
    "OPENBLAS_VARS",
    "blas_info",
    "blas_threads",
    "cpu_model",
    "env_warnings",
    "loadavg",
    "threads_held",
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
