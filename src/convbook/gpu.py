"""An im2col + GEMM convolution for any NumPy-like module: NumPy, or CuPy on a GPU.

CuPy copies NumPy's interface (``as_strided``, ``pad``, ``matmul``), so the strided
im2col of the chapter "A faster im2col" runs on a GPU unchanged: the window view costs
nothing, the copy into the column matrix is one GPU kernel, and the product goes to
cuBLAS. CuPy is optional: nothing in convbook needs it, and :func:`available` says
whether a usable GPU is there.

``python -m convbook.gpu [--json PATH]`` (on a machine with CuPy, a GPU and PyTorch)
checks the CuPy results against the loop reference and times them against PyTorch's
cuDNN convolution on the benchmark's layers.

Notes
-----
Explained in the book's chapter "On the GPU" (``book/cuda.ipynb``).
"""

from __future__ import annotations

import functools

import numpy as np

from .shapes import check_channels, conv_params

__all__ = ["available", "array_module", "conv2d_forward_xp", "benchmark", "main"]


def available():
    """True when CuPy imports and sees at least one CUDA device.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    try:
        import cupy
    except Exception:  # ImportError, or a CuPy built for a CUDA that is not there
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no driver / no device
        return False


def array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "cupy":
            import cupy

            return cupy
    return np


def conv2d_forward_xp(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Forward pass by im2col + one GEMM, on the device ``x`` lives on (NumPy or CuPy).

    The whole batch goes into one column matrix ``(C*KH*KW, N*OH*OW)`` and one product
    (a GPU wants few large kernels; on the CPU :func:`convbook.conv2d_forward` with
    ``method="strided"`` is the faster choice, since it works sample group by sample
    group to stay in cache and bound memory).

    Parameters
    ----------
    x : (N, C, H, W) ndarray or cupy.ndarray
    w : (F, C // groups, KH, KW) array of the same module
    b : (F,) array, optional
    stride, padding, dilation, groups : as for :func:`convbook.conv2d_forward`

    Returns
    -------
    out : (N, F, OH, OW) array of the same module as ``x``

    Examples
    --------
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.arange(4.0).reshape(1, 1, 2, 2)
    >>> conv2d_forward_xp(x, w)
    array([[[[19., 25.],
             [37., 43.]]]])
    """
    xp = array_module(x, w, b)
    p = _checked(x, w, b, stride, padding, dilation, groups)  # errors name the shapes
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh, ow, _, _ = p.output_shape((h, wd), (kh, kw))
    (sh, sw), (dh, dw) = p.stride, p.dilation
    pt, pb, pl, pr = p.padding
    g = p.groups
    dtype = xp.result_type(x, w) if b is None else xp.result_type(x, w, b)
    xpad = xp.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if any(p.padding) else x
    s0, s1, s2, s3 = xpad.strides
    # (C, KH, KW, N, OH, OW) window view: no copy, read it only
    view = xp.lib.stride_tricks.as_strided(
        xpad,
        shape=(c, kh, kw, n, oh, ow),
        strides=(s1, s2 * dh, s3 * dw, s0, s2 * sh, s3 * sw),
    )
    cols = xp.ascontiguousarray(view, dtype=dtype).reshape(
        g, cg * kh * kw, n * oh * ow
    )  # the one copy
    wmat = w.astype(dtype, copy=False).reshape(
        g, f // g, cg * kh * kw
    )  # (G, Fg, Cg*KH*KW)
    y = xp.matmul(wmat, cols)  # (G, Fg, N*OH*OW)
    out = xp.ascontiguousarray(
        y.reshape(f, n, oh, ow).transpose(1, 0, 2, 3)
    )  # (N, F, OH, OW)
    if b is not None:
        out += b.astype(dtype, copy=False).reshape(1, f, 1, 1)
    return out


def _checked(x, w, b, stride, padding, dilation, groups):
    """The layer's :class:`~convbook.shapes.ConvParams`, after checking the arrays."""
    for name, a in (("x", x), ("w", w)):
        if getattr(a, "ndim", None) != 4:
            raise ValueError(
                f"expected {name} of 4 dimensions, "
                f"got shape {getattr(a, 'shape', None)}"
            )
        if np.dtype(a.dtype).kind != "f":
            raise TypeError(
                f"{name} must be a float16/32/64 array, got dtype {a.dtype}; "
                "convert it first"
            )
    if array_module(x) is not array_module(w) or (
        b is not None and array_module(b) is not array_module(x)
    ):
        raise TypeError(
            "x, w and b must live on the same device (all NumPy or all CuPy arrays)"
        )
    f = w.shape[0]
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    check_channels(x.shape, w.shape, p.groups)
    if b is not None and tuple(b.shape) != (f,):
        raise ValueError(
            f"expected b of shape ({f},) to match w's {f} filters, got {tuple(b.shape)}"
        )
    return p


def benchmark(repeat=20):  # pragma: no cover - needs CuPy, a GPU and PyTorch with CUDA
    """Checks (float64, vs the loop reference) and float32 timings vs cuDNN, layers a-e.

    Returns a JSON-ready dict. TF32 is switched off in PyTorch so that both sides
    compute in float32.
    """
    import platform
    import time

    import cupy
    import torch

    from .bench import SHAPES
    from .conv import conv2d_forward

    result = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cupy": cupy.__version__,
        "torch": torch.__version__,
        "device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(),
    }
    rng = np.random.default_rng(0)
    checks = []
    for case in (
        dict(padding=1),
        dict(stride=2, padding=1),
        dict(dilation=2),
        dict(groups=2, padding=(1, 0)),
    ):
        x = rng.standard_normal((3, 4, 11, 9))
        w = rng.standard_normal((6, 4 // case.get("groups", 1), 3, 3))
        got = cupy.asnumpy(conv2d_forward_xp(cupy.asarray(x), cupy.asarray(w), **case))
        want = conv2d_forward(x, w, method="reference", **case)
        checks.append(
            {"case": str(case), "max_abs_diff_f64": float(np.abs(got - want).max())}
        )
    result["checks"] = checks
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    F = torch.nn.functional

    def timed(fn, sync):
        for _ in range(3):
            fn()
        sync()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return float(np.median(times))

    rows = {}
    for name, sh in SHAPES.items():
        x = rng.standard_normal((sh.n, sh.c, sh.hw, sh.hw), dtype=np.float32)
        w = rng.standard_normal((sh.f, sh.c, sh.k, sh.k), dtype=np.float32)
        cx, cw = cupy.asarray(x), cupy.asarray(w)
        tx, tw = torch.from_numpy(x).cuda(), torch.from_numpy(w).cuda()
        kw = dict(stride=sh.stride, padding=sh.padding)
        t_cp = timed(
            functools.partial(conv2d_forward_xp, cx, cw, **kw),
            cupy.cuda.Device().synchronize,
        )
        t_th = timed(functools.partial(F.conv2d, tx, tw, **kw), torch.cuda.synchronize)
        ours = cupy.asnumpy(conv2d_forward_xp(cx, cw, **kw))
        theirs = F.conv2d(tx, tw, **kw).cpu().numpy()
        rows[name] = {
            "cupy_im2col_gemm_s": t_cp,
            "torch_cudnn_s": t_th,
            "ratio": t_cp / t_th,
            "cupy_tflops": sh.forward_flops / t_cp / 1e12,
            "max_rel_diff_vs_torch": float(
                np.abs(ours - theirs).max() / np.abs(theirs).max()
            ),
        }
    result["shapes"] = rows
    result["note"] = (
        f"float32, TF32 off, medians of {repeat} synchronised runs after 3 warm-ups"
    )
    return result


def main(argv=None):  # pragma: no cover - needs CuPy and a GPU
    import argparse
    import json

    parser = argparse.ArgumentParser(
        prog="python -m convbook.gpu", description="CuPy im2col + GEMM vs cuDNN"
    )
    parser.add_argument("--json", default=None, metavar="PATH")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    if not available():
        parser.exit(1, "CuPy with a CUDA device is needed for this check\n")
    result = benchmark(args.repeat)
    print(json.dumps(result, indent=1))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":  # pragma: no cover
    main()
