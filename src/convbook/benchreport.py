"""Reading a benchmark result: the text table, two runs compared, the book's HTML tables
and pictures (:mod:`convbook.bench` measures; the chapter "How fast is it?" reads).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .benchenv import OPENBLAS_VARS

__all__ = [
    "read_run",
    "best_ratio",
    "machine_change",
    "format_table",
    "compare",
    "plot_result",
    "html_table",
    "METHOD_COLORS",
    "METHOD_ORDER",
    "FAST_METHODS",
    "HTML_COLUMNS",
    "UNSET_ENV",
]

#: OpenBLAS's two variables (:data:`convbook.benchenv.OPENBLAS_VARS`) as every stored
#: run must record them: unset (they can force a slower kernel; a benchmark command
#: unsets them, ``env -u ...``)
UNSET_ENV = dict.fromkeys(OPENBLAS_VARS)


def read_run(path):
    """A stored run (``--json``), checked as the chapter "How fast is it?" reads it.

    Each check is a ValueError that names the file and what broke: the ratios are
    against PyTorch measured in the same run (``baseline``), whose own ratio is 1;
    every spread brackets its ratio; the run unset OpenBLAS's two variables
    (:data:`UNSET_ENV`); and every method's forward pass and gradients agree with
    PyTorch's to float32 rounding (under ``1e-3`` of the largest entry).
    """
    run = json.loads(Path(path).read_text(encoding="utf-8"))
    problems = []
    if run.get("baseline") != "torch":
        problems.append(f"baseline is {run.get('baseline')!r}, not 'torch'")
    if run["machine"].get("env") != UNSET_ENV:
        problems.append(f"machine.env is {run['machine'].get('env')}, not unset")
    for name, layer in run["shapes"].items():
        for method, r in layer["methods"].items():
            for key in ("forward_ratio", "train_ratio"):
                low, high = r.get(key + "_min", r[key]), r.get(key + "_max", r[key])
                bracketed = 0 < low <= r[key] <= high
                if not bracketed or (method == "torch" and r[key] != 1):
                    problems.append(f"{name} {method} {key} {r[key]} ({low}-{high})")
            error = max(r["max_rel_diff"], r.get("train_max_rel_diff", 0.0))
            if not error < 1e-3:
                problems.append(f"{name} {method}: error {error:.1e} against PyTorch")
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems))
    return run


def best_ratio(layer, pass_):
    """The fastest convbook method's ratio to the baseline, for one layer and pass.

    ``layer`` is one entry of a run's ``"shapes"``; ``pass_`` is ``"forward"`` or
    ``"train"``. The fastest method is the run's own choice (``best_forward``,
    ``best_train``: the shortest median time).

    Examples
    --------
    >>> layer = {"best_train": "wide", "methods": {"wide": {"train_ratio": 1.5}}}
    >>> best_ratio(layer, "train")
    1.5
    """
    if pass_ not in ("forward", "train"):
        raise ValueError(f"pass_ must be 'forward' or 'train', got {pass_!r}")
    return layer["methods"][layer["best_" + pass_]][pass_ + "_ratio"]


def machine_change(old, new):
    """Two stored runs, layer by layer: what changed from ``old`` to ``new``.

    Returns ``{layer: {"peak": ..., "torch_step": ..., "forward": (old, new), "train":
    (old, new)}}`` for the layers in both: the float32 matrix product's peak and
    PyTorch's training step time as ``new / old``, and the fastest convbook method's
    ratio to PyTorch (:func:`best_ratio`) in each run.

    Examples
    --------
    >>> def run(peak, step, ratio):
    ...     methods = {"torch": {"train_s": step}, "wide": {"forward_ratio": ratio,
    ...                                                     "train_ratio": ratio}}
    ...     layer = {"peak_gflops": peak, "methods": methods,
    ...              "best_forward": "wide", "best_train": "wide"}
    ...     return {"shapes": {"a": layer}}
    >>> machine_change(run(100.0, 2.0, 1.5), run(50.0, 3.0, 1.2))
    {'a': {'peak': 0.5, 'torch_step': 1.5, 'forward': (1.5, 1.2), 'train': (1.5, 1.2)}}
    """
    change = {}
    for name, n in new["shapes"].items():
        o = old["shapes"].get(name)
        if o is None:
            continue
        change[name] = {
            "peak": n["peak_gflops"] / o["peak_gflops"],
            "torch_step": n["methods"]["torch"]["train_s"]
            / o["methods"]["torch"]["train_s"],
        }
        for pass_ in ("forward", "train"):
            change[name][pass_] = (best_ratio(o, pass_), best_ratio(n, pass_))
    return change


def format_table(result):
    """The benchmark result as a plain-text table (one row per shape and method).

    Ratios are medians of the per-round ratios, with their spread (min-max) over the
    rounds.
    """
    lines = []
    m = result["machine"]
    for blas in m["blas"]:
        lines.append(
            f"BLAS: {blas['library']} {blas['version']} kernel={blas['architecture']} "
            f"threads={blas['threads']} ({blas['filepath']})"
        )
    lines.append(
        f"numpy {m['numpy']}, torch {result['torch'] or 'not installed'}, "
        f"{m['cpu_count']} CPUs"
        + (f" ({m['cpu']})" if m.get("cpu") else "")
        + f", {m['platform']}, {result['date']}, float32, "
        f"{result['repeat']} interleaved rounds"
        + (
            f" (a round: the median of up to {result['calls_per_round']} calls)"
            if result.get("calls_per_round", 1) > 1
            else ""
        )
    )
    env = ", ".join(f"{k}={v}" for k, v in m["env"].items() if v is not None) or "unset"
    lines.append(
        f"OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: {env}; load average at the start "
        f"{m.get('loadavg_start')}, at the end {m.get('loadavg_end')}"
    )
    malloc = m.get("malloc")
    if malloc == "default":
        lines.append("malloc: as the C library set it (page faults vary with history)")
    elif malloc:
        mmap, trim = malloc["mmap_threshold"] >> 20, malloc["trim_threshold"] >> 20
        lines.append(
            f"malloc: pinned, blocks up to {mmap} MB from the heap, up to {trim} MB "
            "freed memory kept"
        )
    for w in result["warnings"]:
        lines.append("WARNING: " + w)
    lines.append(
        f"ratio = time / time of {result['baseline']} in the same round: the median "
        "over the rounds (min-max); %peak = GFLOP/s / float32 GEMM GFLOP/s; "
        "err = max |difference| / max |reference| (forward, gradients)"
    )
    head = (
        f"{'shape':<8} {'method':<9} {'fwd ms':>8} {'ratio (min-max)':>17} {'%peak':>5}"
        f"  {'train ms':>8} {'ratio (min-max)':>17} {'%peak':>5}  {'err fwd/grad':>15}"
        f"  {'mem fwd/train':>13}"
    )
    lines.append(head)
    lines.append("-" * len(head))

    def ratio(r, kind, star):
        spread = ""
        if f"{kind}_ratio_min" in r:
            spread = f" ({r[f'{kind}_ratio_min']:.2f}-{r[f'{kind}_ratio_max']:.2f})"
        return f"{r[f'{kind}_ratio']:.2f}{star}{spread}"

    for name, s in result["shapes"].items():
        for i, (meth, r) in enumerate(s["methods"].items()):
            star_f = "*" if meth == s["best_forward"] else " "
            star_t = "*" if meth == s["best_train"] else " "
            err = ""
            if "train_max_rel_diff" in r:
                err = f"{r['max_rel_diff']:.0e}/{r['train_max_rel_diff']:.0e}"
            mem = ""
            if "train_peak_mem_x" in r:
                mem = f"{r['forward_peak_mem_x']:>5.2f}x/{r['train_peak_mem_x']:>5.2f}x"
            lines.append(
                f"{name if i == 0 else '':<8} {meth:<9} {r['forward_s'] * 1e3:>8.2f}"
                f" {ratio(r, 'forward', star_f):>17}"
                f" {100 * r['forward_peak_fraction']:>4.0f}%"
                f"  {r['train_s'] * 1e3:>8.2f} {ratio(r, 'train', star_t):>17}"
                f" {100 * r['train_peak_fraction']:>4.0f}%  {err:>15}  {mem:>13}"
            )
        lines.append(
            f"{'':<8} {s['label']}: GEMM peak {s['peak_gflops']:.1f} GFLOP/s "
            f"(n={s['peak_gemm_n']}); * = best convbook method; memory as multiples of "
            f"the input (im2col matrix {s['im2col_matrix_x']:.2f}x, output "
            f"{s['output_x']:.2f}x)"
        )
    d = result.get("digits")
    if d:
        lines.append(
            f"digits network, one training epoch ({d['steps']} steps of 32, float32): "
            f"torch {d['torch_s'] * 1e3:.1f} ms"
        )
        for meth, r in d.items():
            if isinstance(r, dict):
                lines.append(
                    f"{'':<8} {meth:<9} {r['epoch_s'] * 1e3:>8.1f} ms, ratio "
                    f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})"
                )
    return "\n".join(lines)


def compare(old, new):
    """Two stored runs side by side: each method's ratios in ``old`` and ``new``.

    Parameters
    ----------
    old, new : dict
        Results of :func:`convbook.bench.run` (e.g. read from ``--json`` files).

    Returns
    -------
    str
        A plain-text table, one row per shape and method present in both.
    """
    lines = [
        f"old: {old['date']} {old['machine']['platform']}, baseline {old['baseline']}",
        f"new: {new['date']} {new['machine']['platform']}, baseline {new['baseline']}",
        f"{'shape':<6} {'method':<9} {'fwd old':>8} {'fwd new':>8} {'change':>7}"
        f"  {'train old':>9} {'train new':>9} {'change':>7}",
    ]
    for name, s_new in new["shapes"].items():
        s_old = old["shapes"].get(name)
        if s_old is None:
            continue
        for meth, r_new in s_new["methods"].items():
            r_old = s_old["methods"].get(meth)
            if r_old is None:
                continue
            cells = []
            for kind in ("forward", "train"):
                a, b = r_old[f"{kind}_ratio"], r_new[f"{kind}_ratio"]
                cells.append(f"{a:>8.2f} {b:>8.2f} {100 * (b / a - 1):>+6.0f}%")
            lines.append(f"{name:<6} {meth:<9} {cells[0]}  {cells[1]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Reading a result: pictures and the memory table (the benchmarks chapter draws stored
# and live runs with these)

#: One colour per method, from the book's Okabe-Ito palette.
METHOD_COLORS = {
    "reference": "#CC79A7",
    "tutorial": "#E69F00",
    "strided": "#0072B2",
    "wide": "#56B4E9",
    "winograd": "#009E73",
    "auto": "#D55E00",
    "torch": "#555555",
}
FAST_METHODS = ("tutorial", "strided", "wide", "winograd")


def plot_result(result, title=None):
    """Training-step time per method and shape, its ratio to the baseline, and its
    fraction of the GEMM peak.

    Returns a matplotlib Figure (matplotlib is imported here only).
    """
    import matplotlib.pyplot as plt

    names = list(result["shapes"])
    methods = [
        m
        for m in METHOD_COLORS
        if m != "reference"
        and any(m in s["methods"] for s in result["shapes"].values())
    ]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    width = 0.8 / len(methods)
    for k, m in enumerate(methods):
        xs = [i + (k - (len(methods) - 1) / 2) * width for i in range(len(names))]
        rows = [result["shapes"][n]["methods"].get(m) for n in names]
        for ax, key, scale in zip(
            axes,
            ("train_s", "train_ratio", "train_peak_fraction"),
            (1e3, 1, 1),
            strict=True,
        ):
            ax.bar(
                xs,
                [r[key] * scale if r else np.nan for r in rows],
                width,
                label=m,
                color=METHOD_COLORS[m],
            )
    axes[0].set_ylabel("training step (ms, log)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel(f"time / {result['baseline']} (log)")
    axes[1].set_yscale("log")
    axes[1].axhline(1, color="k", lw=0.8)
    axes[2].set_ylabel("fraction of GEMM peak")
    for ax in axes:
        ax.set_xticks(range(len(names)), names)
    axes[0].legend(fontsize=8)
    if title is None:
        blas = (
            result["machine"]["blas"][0]
            if result["machine"]["blas"]
            else {"architecture": "?", "threads": "?"}
        )
        title = (
            f"{result['date'][:10]}: {result['machine']['cpu_count']} CPUs, "
            f"BLAS kernel {blas['architecture']}, "
            f"{blas['threads']} threads, torch {result['torch']}"
        )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------
# The result as HTML tables, narrow enough for a book page

#: The columns :func:`html_table` can show: a method row's key -> (pass, unit, format).
#: A ratio column also shows the ratio's spread over the rounds where the row has it
#: (``<key>_min``, ``<key>_max``).
HTML_COLUMNS = {
    "forward_s": ("forward", "ms", lambda v: f"{v * 1e3:.2f}"),
    "forward_ratio": ("forward", "ratio", lambda v: f"{v:.2f}"),
    "forward_peak_fraction": ("forward", "% peak", lambda v: f"{100 * v:.0f}"),
    "forward_peak_mem_x": ("forward", "memory", lambda v: f"{v:.2f}"),
    "max_rel_diff": ("forward", "error", lambda v: f"{v:.0e}"),
    "train_s": ("training step", "ms", lambda v: f"{v * 1e3:.2f}"),
    "train_ratio": ("training step", "ratio", lambda v: f"{v:.2f}"),
    "train_peak_fraction": ("training step", "% peak", lambda v: f"{100 * v:.0f}"),
    "train_peak_mem_x": ("training step", "memory", lambda v: f"{v:.2f}"),
    "train_max_rel_diff": ("training step", "error", lambda v: f"{v:.0e}"),
}
#: The order of the method rows; methods not listed here follow, in the result's order.
METHOD_ORDER = ("reference", "tutorial", "strided", "wide", "winograd", "auto", "torch")
_NUMBER = (
    '<td style="text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums">'
    "{}</td>"
)


def html_table(
    result,
    columns=("forward_s", "forward_ratio", "train_s", "train_ratio"),
    *,
    caption=None,
):
    """The benchmark result as an HTML table: a row per layer and method.

    Driven by what ``result`` holds: a method that a layer lacks (Winograd on the
    stride-2 layer c, ``"wide"`` in a run made before it existed) has no row, and a
    value a row lacks shows as a dash. In the time and ratio columns the layer's fastest
    convbook method (``best_forward``, ``best_train``) is in bold; a ratio is followed
    by its spread over the rounds (min-max) where the result has it.

    Parameters
    ----------
    result : dict
        What :func:`convbook.bench.run` returns, or its JSON read back.
    columns : sequence of str
        Keys of :data:`HTML_COLUMNS`, in order.
    caption : str, optional
        A caption above the table (escaped).

    Returns
    -------
    str
        A ``<table>``; in a notebook ``IPython.display.HTML(html_table(result))``
        shows it.

    Examples
    --------
    >>> row = {"forward_s": 0.002, "forward_ratio": 1.5, "train_s": 0.006}
    >>> layer = {"label": "(1, 1->1, 8, 3, 1, 1)", "methods": {"strided": row},
    ...          "best_forward": "strided", "best_train": "strided"}
    >>> table = html_table({"shapes": {"a": layer}})
    >>> "<b>6.00</b>" in table, table.count("<tr>")
    (True, 2)
    """
    import html

    unknown = [c for c in columns if c not in HTML_COLUMNS]
    if unknown:
        raise ValueError(
            f"columns {unknown} are not in bench.HTML_COLUMNS; "
            f"choose from {list(HTML_COLUMNS)}"
        )
    rank = {m: k for k, m in enumerate(METHOD_ORDER)}
    head = "".join(
        "<th>{}<br>{}</th>".format(*map(html.escape, HTML_COLUMNS[c][:2]))
        for c in columns
    )
    lines = ['<table class="convbook-bench" style="border-collapse:collapse">']
    if caption:
        style = "text-align:left;caption-side:top"
        lines.append(f'<caption style="{style}">{html.escape(caption)}</caption>')
    lines.append(f"<thead><tr><th>layer</th><th>method</th>{head}</tr></thead><tbody>")
    for name, s in result["shapes"].items():
        methods = sorted(s["methods"], key=lambda m: rank.get(m, len(rank)))
        label = html.escape(s.get("label", "")).replace("-&gt;", "→")
        for i, m in enumerate(methods):
            row, cells = s["methods"][m], []
            for c in columns:
                value = row.get(c)
                text = "–" if value is None else html.escape(HTML_COLUMNS[c][2](value))
                best = s.get("best_forward" if c[:7] == "forward" else "best_train")
                if value is not None and m == best and c.endswith(("_s", "_ratio")):
                    text = f"<b>{text}</b>"
                low, high = row.get(c + "_min"), row.get(c + "_max")
                if value is not None and low is not None and high is not None:
                    text += f" <small>({low:.2f}–{high:.2f})</small>"
                cells.append(_NUMBER.format(text))
            layer = ""
            if i == 0:  # the layer's name and shape, once for all its methods
                layer = (
                    f'<td rowspan="{len(methods)}" style="vertical-align:top">'
                    f"<b>{html.escape(name)}</b><br><small>{label}</small></td>"
                )
            lines.append(f"<tr>{layer}<td>{html.escape(m)}</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
