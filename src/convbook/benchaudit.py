"""Is ``method="auto"`` right on this machine? Each pass of a layer, by every method and
route that ``auto`` could pick, timed against ``auto``'s own pick.

The rules behind ``auto`` (:func:`convbook.engine.choose`) were measured on the machines
that built the book, and a new machine, BLAS or NumPy can move them: on a 2-core Zen 1
EPYC the input gradient of seven stride-2 layers took up to 1.58 times as long on the
wide rows the rule picked as on the strided method (median 1.13-1.20), which had learned
to add back channels last since the rule was measured
(:func:`convbook.engine.use_wide_rows`). ``python -m convbook.bench --audit``
prints, per layer and pass, each candidate's time as a ratio to ``auto``'s, measured in
interleaved rounds, and marks those below ``MARGIN``. The candidate that *is* ``auto``'s
pick (``=`` in the table) shows the noise and the cost of ``auto``'s dispatch, a few
microseconds a call: it is never counted as a miss.
"""

from __future__ import annotations

import numpy as np

from . import engine
from .bench import _median_time
from .conv import ROUTES, conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from .shapes import conv_params

__all__ = [
    "MARGIN",
    "PASSES",
    "audit",
    "candidates",
    "faster_than_auto",
    "format_audit",
]

PASSES = ("forward", "grad_input", "grad_weight")

#: A candidate at under this fraction of ``auto``'s time is marked: ``auto`` chose
#: worse. Above it, run-to-run noise on a shared 2-core machine (the same code timed
#: twice differed by up to 8% in a round's median) could explain the gap.
MARGIN = 0.9

#: Back-to-back calls a turn (their median kept): as many as fit in this many seconds.
TURN_S = 0.03


def candidates(pass_, w_shape, p):
    """What the audit times against ``auto``'s pick: ``{label: (method, route)}``.

    The strided method and wide rows always; Winograd where its tiles compute the layer
    (kernel, stride, dilation and groups, as :func:`convbook.engine.choose` tests them,
    but not its floor of 16 channels, so that the audit checks that rule too); for the
    input gradient each by both routes.

    Examples
    --------
    >>> list(candidates("forward", (8, 4, 3, 3), conv_params(3, stride=2)))
    ['strided', 'wide']
    >>> list(candidates("grad_input", (8, 4, 3, 3), conv_params(3)))[-2:]
    ['winograd/col2im', 'winograd/rot180']
    """
    methods = ["strided", "wide"]
    if engine._winograd_fits(w_shape, p):
        methods.append("winograd")
    if pass_ == "grad_input":
        return {f"{m}/{r}": (m, r) for m in methods for r in ROUTES}
    return {m: (m, None) for m in methods}


def _pass_fn(pass_, method, route, x, w, dout, kw, threads):
    def fn():
        with engine.options(threads=threads):
            if pass_ == "forward":
                return conv2d_forward(x, w, **kw, method=method)
            if pass_ == "grad_weight":
                return conv2d_grad_weight(dout, x, w.shape, **kw, method=method)
            return conv2d_grad_input(dout, w, x.shape, **kw, method=method, route=route)

    return fn


def audit(shapes, *, repeat=5, dtype=np.float32, seed=0, threads=None, log=None):
    """Time every candidate of every pass against ``auto``'s pick.

    Parameters
    ----------
    shapes : dict
        ``{name: Shape}`` (:data:`convbook.bench.SHAPES`, or a selection of it).
    repeat : int
        Rounds; in each, ``auto`` and every candidate, a turn each, the order rotated by
        one from round to round (a turn's place in the round moves its time).
    dtype, seed : the arrays' dtype and random seed
    threads : int, optional
        The engine's threads (``cb.options(threads=...)``); default: its own choice.
    log : callable, optional
        Called with a progress line per layer.

    Returns
    -------
    dict
        ``{"dtype", "repeat", "shapes": {name: {pass: {"auto": [method, route],
        "pick": label, "auto_s": seconds, "ratios": {label: median}, "spread":
        {label: [min, max]}}}}}``: a candidate's time over ``auto``'s in the same
        round, the median over the rounds; ``pick`` is the candidate ``auto`` runs.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    rng = np.random.default_rng(seed)
    result = {"dtype": np.dtype(dtype).name, "repeat": repeat, "shapes": {}}
    for name, s in shapes.items():
        kw = dict(stride=s.stride, padding=s.padding)
        x = rng.standard_normal((s.n, s.c, s.hw, s.hw)).astype(dtype)
        w = rng.standard_normal((s.f, s.c, s.k, s.k)).astype(dtype)
        dout = rng.standard_normal((s.n, s.f, s.out_hw, s.out_hw)).astype(dtype)
        p = conv_params(s.k, **kw)
        layer = result["shapes"][name] = {}
        for pass_ in PASSES:
            fns = {"auto": _pass_fn(pass_, "auto", None, x, w, dout, kw, threads)}
            for label, (method, route) in candidates(pass_, w.shape, p).items():
                fns[label] = _pass_fn(pass_, method, route, x, w, dout, kw, threads)
            calls = {}
            for label, fn in fns.items():  # warm-up; a second call sets the turn
                fn()
                once = max(_median_time(fn, 1), 1e-6)
                calls[label] = max(1, min(50, int(TURN_S / once)))
            times = {label: [] for label in fns}
            order = list(fns)
            for k in range(repeat):  # each round starts one further along the list
                for label in order[k % len(order) :] + order[: k % len(order)]:
                    times[label].append(_median_time(fns[label], calls[label]))
            ratios = {label: np.divide(t, times["auto"]) for label, t in times.items()}
            del ratios["auto"]
            pick = engine.choose(pass_, x.shape, w.shape, p)
            layer[pass_] = {
                "auto": list(pick),
                "pick": pick[0] + (f"/{pick[1]}" if pick[1] else ""),
                "auto_s": float(np.median(times["auto"])),
                "ratios": {k: float(np.median(r)) for k, r in ratios.items()},
                "spread": {
                    k: [float(r.min()), float(r.max())] for k, r in ratios.items()
                },
            }
        if log:
            log(f"  {name} {s}: done")
    return result


def faster_than_auto(result, margin=MARGIN):
    """``[(layer, pass, label, ratio)]``: the candidates under ``margin`` of ``auto``'s
    time, ``auto``'s own pick left out (the same code).

    Examples
    --------
    >>> row = {"pick": "wide", "ratios": {"strided": 0.7, "wide": 0.8}}
    >>> faster_than_auto({"shapes": {"a": {"forward": row}}})
    [('a', 'forward', 'strided', 0.7)]
    """
    return [
        (name, pass_, label, ratio)
        for name, layer in result["shapes"].items()
        for pass_, row in layer.items()
        for label, ratio in row["ratios"].items()
        if ratio < margin and label != row["pick"]
    ]


def format_audit(result, margin=MARGIN):
    """The audit as text: a line per layer and pass, then what ``auto`` missed."""
    lines = [
        f"method='auto' against every candidate, {result['dtype']}, median of "
        f"{result['repeat']} interleaved rounds:",
        f"time / auto's time (=: auto's own pick; <: under {margin}, marked)",
    ]
    missed = faster_than_auto(result, margin)
    marked = {(n, p, label) for n, p, label, _ in missed}
    for name, layer in result["shapes"].items():
        for pass_, row in layer.items():
            cells = ", ".join(
                f"{label} {r:.2f}"
                + ("=" if label == row["pick"] else "")
                + (" <" if (name, pass_, label) in marked else "")
                for label, r in row["ratios"].items()
            )
            ms = row["auto_s"] * 1e3
            lines.append(f"{name:5} {pass_:11} auto={row['pick']:15} {ms:8.3f} ms")
            lines.append(f"{'':6}{cells}")  # within 88 columns for four candidates
    if missed:
        lines.append(f"auto missed a faster candidate {len(missed)} time(s):")
        lines += [f"  {n} {p}: {label} {r:.2f}" for n, p, label, r in missed]
    else:
        lines.append(f"no candidate took under {margin} of auto's time on any pass")
    return "\n".join(lines)
