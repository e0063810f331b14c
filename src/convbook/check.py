"""Check your own layer: a grader that runs your functions over a ladder of settings and
names the mistake.

Give it what you wrote, with convbook's signatures::

    report = cb.check_layer(forward=my_forward, backward=my_backward)
    report = cb.check_layer(grad_input=my_dx)  # one gradient alone

and it runs them on the bug zoo's ladder of settings (:data:`convbook.bugs.SETTINGS`,
one channel first, then one feature more at a time, then everything at once), float64
inputs drawn from a seeded generator, against convbook's loop reference. For every
setting and output (``y``, ``dx``, ``dw``, ``db``) it says pass or fail, with the
scale-aware :func:`~convbook.gradcheck.rel_error`. Where the settings an output fails on
are exactly those on which a bug-zoo specimen fails, it names that mistake in one
sentence, with a link to the section of the book that explains it; where none matches,
it shows the smallest failing case it can find, small enough to read.

Unfinished work is welcome: a function that raises ``NotImplementedError``, lacks a
keyword (no ``groups`` parameter means groups 1 only) or is given with
``settings=[...]`` is "not supported" there, not wrong. Exceptions, wrong shapes and
dtypes, writing into the inputs and returning a view of them are reported per setting;
the grader itself does not crash on them.

In Jupyter the report is a table (green and red); in a terminal, text::

    python -m convbook.check my_module.py

where ``my_module.py`` defines some of ``conv2d_forward`` (or ``forward``),
``conv2d_backward`` (``backward``), ``conv2d_grad_input`` (``grad_input``),
``conv2d_grad_weight`` (``grad_weight``), ``conv2d_grad_bias`` (``grad_bias``), and
optionally ``SETTINGS``, the names of the settings it supports.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import inspect
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .bugs import BUGS, SETTINGS, TOL, Setting
from .checkreport import Cell, Diagnosis, Report
from .conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from .gradcheck import rel_error

__all__ = [
    "check_layer",
    "check_module",
    "Report",
    "Cell",
    "Diagnosis",
    "LADDER",
    "BOOK_URL",
    "main",
]

LADDER = SETTINGS
"""The settings the grader runs, simplest first: the bug zoo's."""

BOOK_URL = ""
"""Prefix of the links to the book's sections: empty, so that they are relative to a
page of the built book (the report shows inside one); set it to the address where the
book is served to get absolute links."""

OUTPUTS = ("y", "dx", "dw", "db")
_HYPER = ("stride", "padding", "dilation", "groups")
# which outputs each function the reader may give produces
_PRODUCES = {
    "forward": ("y",),
    "backward": ("dx", "dw", "db"),
    "grad_input": ("dx",),
    "grad_weight": ("dw",),
    "grad_bias": ("db",),
}
_NAMES_IN_MODULE = {
    "forward": ("conv2d_forward", "forward", "conv_forward"),
    "backward": ("conv2d_backward", "backward", "conv_backward"),
    "grad_input": ("conv2d_grad_input", "grad_input"),
    "grad_weight": ("conv2d_grad_weight", "grad_weight"),
    "grad_bias": ("conv2d_grad_bias", "grad_bias"),
}
# the inputs each function reads, in the order they are shown in a failing case
_READS = {
    "forward": ("x", "w", "b"),
    "backward": ("dout", "x", "w"),
    "grad_input": ("dout", "w"),
    "grad_weight": ("dout", "x"),
    "grad_bias": ("dout",),
}


# --------------------------------------------------------------------------------------
# Calling the reader's functions


def _parameters(fn):
    """``(hyper, bias)``: the hyper-parameters ``fn`` accepts (``None``: all of them),
    and how it takes a bias (``"positional"``, a keyword's name, or ``None``)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin or an odd callable: assume it takes all
        return None, "positional"
    params = list(sig.parameters.values())
    kinds = {p.kind for p in params}
    named = {
        p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    hyper = None if inspect.Parameter.VAR_KEYWORD in kinds else named & set(_HYPER)
    positional = [
        p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(positional) >= 3 or inspect.Parameter.VAR_POSITIONAL in kinds:
        bias = "positional"
    else:
        bias = next((n for n in ("b", "bias") if n in named), None)
    return hyper, bias


@functools.cache
def _expected(s):
    """convbook's loop reference on setting ``s``: y, dx, dw, db (read-only)."""
    x, w, dout = s.arrays()
    kw = dict(s.kwargs, method="reference")
    out = {
        "y": conv2d_forward(x, w, s.bias_array(), **kw),
        "dx": conv2d_grad_input(dout, w, s.x_shape, **kw),
        "dw": conv2d_grad_weight(dout, x, s.w_shape, **kw),
        "db": dout.sum(axis=(0, 2, 3)),
    }
    for a in out.values():
        a.flags.writeable = False
    return out


def _inputs(s, integers=False):
    x, w, dout = s.arrays(integers=integers)
    return {"x": x, "w": w, "b": s.bias_array(integers=integers), "dout": dout}


def _expected_for(s, integers):
    if not integers:
        return _expected(s)
    # the small cases with whole numbers are computed afresh (the loops are quick there)
    inputs = _inputs(s, integers=True)
    x, w, dout = inputs["x"], inputs["w"], inputs["dout"]
    kw = dict(s.kwargs, method="reference")
    return {
        "y": conv2d_forward(x, w, inputs["b"], **kw),
        "dx": conv2d_grad_input(dout, w, s.x_shape, **kw),
        "dw": conv2d_grad_weight(dout, x, s.w_shape, **kw),
        "db": dout.sum(axis=(0, 2, 3)),
    }


def _short(exc):
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else ""
    text = text or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _run_one(role, fn, s, *, integers=False):
    """Call the reader's ``fn`` (a ``role`` of :data:`_PRODUCES`) on setting ``s``.

    Returns ``(cells, got, inputs)``: a :class:`Cell` per output it produces, its
    outputs (or the exception) and the inputs it was given.
    """
    outputs = _PRODUCES[role]
    hyper, bias = _parameters(fn)
    missing = [k for k in s.changed() if hyper is not None and k not in hyper]
    if role != "grad_bias" and missing:
        why = ", ".join(f"no `{k}` parameter" for k in missing)
        return {o: Cell("unsupported", detail=why) for o in outputs}, None, None
    if role == "forward" and s.bias and bias is None:
        no_bias = Cell("unsupported", detail="no bias parameter")
        return {o: no_bias for o in outputs}, None, None

    pristine = _inputs(s, integers)
    given = {k: (None if v is None else v.copy()) for k, v in pristine.items()}
    kwargs = {k: v for k, v in s.kwargs.items() if hyper is None or k in hyper}
    x, w, b, dout = given["x"], given["w"], given["b"], given["dout"]
    if role == "forward":
        if bias == "positional":
            args = (x, w, b)
        else:
            args = (x, w)
            if s.bias:
                kwargs[bias] = b
    else:
        args = {
            "backward": (dout, x, w),
            "grad_input": (dout, w, tuple(s.x_shape)),
            "grad_weight": (dout, x, tuple(s.w_shape)),
            "grad_bias": (dout,),
        }[role]
        if role == "grad_bias":
            kwargs = {}

    try:
        with warnings.catch_warnings():
            # a warning in the reader's code (an error under pytest) is no failure
            warnings.simplefilter("ignore")
            got = fn(*args, **kwargs)
    except NotImplementedError as exc:
        detail = "raised NotImplementedError" + (f": {exc}" if str(exc) else "")
        return {o: Cell("unsupported", detail=detail) for o in outputs}, exc, given
    except Exception as exc:  # the reader's bug, reported, never the grader's crash
        cell = Cell("fail", "error", None, f"raised {_short(exc)}")
        return {o: cell for o in outputs}, exc, given

    if role == "backward":
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            what = type(got).__name__
            if isinstance(got, (tuple, list)):
                what = f"{len(got)} values"
            cell = Cell(
                "fail", "error", None, f"returned {what}, expected (dx, dw, db)"
            )
            return {o: cell for o in outputs}, got, given
        got = dict(zip(outputs, got, strict=True))
    else:
        got = {outputs[0]: got}

    wrote = [
        k
        for k in ("x", "w", "b", "dout")
        if pristine[k] is not None
        and not np.array_equal(given[k], pristine[k], equal_nan=True)
    ]
    want = _expected_for(s, integers)
    cells = {o: _grade(got[o], want[o], given, wrote) for o in outputs}
    return cells, got, given


def _grade(got, want, given, wrote):
    """A :class:`Cell` for one returned array against the reference."""
    if got is None:
        return Cell("fail", "error", None, "returned None")
    try:
        arr = np.asarray(got)
    except Exception as exc:  # noqa: BLE001 - e.g. a ragged list
        return Cell("fail", "error", None, f"returned something not an array ({exc})")
    if arr.dtype.kind not in "biuf":
        return Cell("fail", "error", None, f"returned an array of dtype {arr.dtype}")
    if arr.shape != want.shape:
        return Cell("fail", "shape", None, f"shape {arr.shape}, expected {want.shape}")
    err = rel_error(arr, want)
    if wrote:
        return Cell("fail", "wrote", err, f"wrote into its input {', '.join(wrote)}")
    shared = [
        k
        for k, v in given.items()
        if isinstance(got, np.ndarray) and v is not None and np.shares_memory(got, v)
    ]
    if shared:
        return Cell("fail", "view", err, f"returned a view of its input {shared[0]}")
    if arr.dtype != np.float64:
        return Cell("fail", "dtype", err, f"dtype {arr.dtype}, expected float64")
    if not err < TOL:
        return Cell("fail", "value", err, f"rel. error {err:.1e}")
    return Cell("pass", "", err, f"rel. error {err:.0e}")


# --------------------------------------------------------------------------------------
# Naming the mistake


def _link(bug):
    return (bug.title, f"{BOOK_URL}bug-zoo.html#{bug.anchor}")


def _match(output, graded, failing, kinds):
    """The specimens for ``output`` that fail on exactly the ``failing`` settings among
    the ``graded`` ones (a tie broken by how they fail)."""
    found = [
        b
        for b in BUGS
        if b.output == output and {s.name for s in graded if b.shows_on(s)} == failing
    ]
    if len(found) > 1:
        same_kind = [b for b in found if b.kind in kinds]
        found = same_kind or found
    return found


def _same_numbers(bug, output, failing, returned):
    """Whether the reader's ``output`` is, on every ``failing`` setting, what the
    specimen ``bug`` returns there (its shape and its numbers). A specimen whose wrong
    numbers depend on how the mistake is written (``bug.exact`` false), or that raises,
    is matched by the settings alone."""
    if not bug.exact:
        return True
    role, fn = bug.graded
    for s in failing:
        _, got, _ = _run_one(role, fn, s)
        if not isinstance(got, dict):  # the specimen raised: nothing to compare
            continue
        mine = returned.get((s.name, output))
        try:
            mine = np.asarray(mine, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        if mine.shape != got[output].shape or not rel_error(mine, got[output]) < TOL:
            return False
    return True


def _diagnose(output, report_cells, returned, settings, roles):
    graded = [
        s for s in settings if report_cells[s.name, output].status != "unsupported"
    ]
    failing = {s.name for s in graded if report_cells[s.name, output].status == "fail"}
    if not failing:
        return None
    kinds = {report_cells[n, output].kind for n in failing}
    first = next(s for s in graded if s.name in failing)
    detail = report_cells[first.name, output].detail
    generic = {
        "dtype": f"it returns {detail.split(',')[0].removeprefix('dtype ')} where the "
        "inputs are float64: compute in the inputs' dtype (np.result_type of them).",
        "wrote": f"it {detail}: the caller's arrays must not change; work on a copy.",
        "view": f"it {detail}: return a new array (add .copy()), or the caller's "
        "array changes when the result does.",
    }
    if len(kinds) == 1 and next(iter(kinds)) in generic:
        return Diagnosis(output, (), generic[next(iter(kinds))])
    found = [
        b
        for b in _match(output, graded, failing, kinds)
        if _same_numbers(b, output, [s for s in graded if s.name in failing], returned)
    ]
    if len(found) == 1:
        bug = found[0]
        return Diagnosis(
            output, (bug.name,), f"probably {bug.diagnosis}", (_link(bug),)
        )
    if found:
        sentence = "fails on exactly the settings of several mistakes (grade more "
        sentence += "settings to tell them apart): " + "; or ".join(
            b.diagnosis for b in found
        )
        return Diagnosis(
            output, tuple(b.name for b in found), sentence, tuple(map(_link, found))
        )
    role = roles[output]
    case = _smallest_case(role[0], role[1], output, first)
    n = len(failing)
    if kinds == {"error"}:
        sentence = (
            f"raises on {n} setting{'s' * (n > 1)} (first: {first.name}, {detail}); "
            "if they are not supported yet, raise NotImplementedError there or pass "
            "settings=."
        )
    else:
        sentence = (
            f"fails on {n} setting{'s' * (n > 1)}, in a pattern no bug-zoo specimen "
            "has; the smallest failing case found:"
        )
    return Diagnosis(output, (), sentence, (), case)


def _fails(role, fn, output, s, integers):
    try:
        cells, _, _ = _run_one(role, fn, s, integers=integers)
    except ValueError:  # a setting the shrinking made invalid (an empty output)
        return False
    return cells[output].status == "fail"


def _smaller(s):
    """Settings a step smaller than ``s``: a sample, channels, rows or columns fewer."""
    n, c, h, w = s.x_shape
    f, cg, kh, kw = s.w_shape
    g = s.groups
    if n > 1:
        yield s._replace(x_shape=(1, c, h, w))
    if f // g > 1:
        yield s._replace(w_shape=(g, cg, kh, kw))
    if cg > 1:
        yield s._replace(x_shape=(n, g, h, w), w_shape=(f, 1, kh, kw))
    for dh, dw in ((1, 0), (0, 1)):
        smaller = s._replace(x_shape=(n, c, h - dh, w - dw))
        try:
            smaller.params.output_shape((h - dh, w - dw), (kh, kw))
        except ValueError:
            continue
        yield smaller


def _smallest_case(role, fn, output, s):
    """The smallest setting, shrunk from ``s``, on which ``output`` still fails, as
    text; with whole-number inputs where the failure shows with them."""
    integers = _fails(role, fn, output, s, True)
    budget = 60  # calls of the reader's function, at most
    shrinking = True
    while shrinking and budget > 0:
        shrinking = False
        for smaller in _smaller(s):
            budget -= 1
            if _fails(role, fn, output, smaller, integers):
                s, shrinking = smaller, True
                break
            if budget <= 0:
                break
    cells, got, given = _run_one(role, fn, s, integers=integers)
    want = _expected_for(s, integers)[output]
    lines = [f"setting: {s}"]
    for k in _READS[role]:
        if given is not None and given.get(k) is not None:
            lines.append(f"{k} =\n{_show(given[k])}")
    lines.append(f"expected {output} =\n{_show(want)}")
    cell = cells[output]
    if isinstance(got, BaseException):
        lines.append(f"your {output}: {cell.detail}")
    else:
        mine = got.get(output) if isinstance(got, dict) else got
        try:
            lines.append(f"your {output} ({cell.detail}) =\n{_show(np.asarray(mine))}")
        except Exception:  # noqa: BLE001 - whatever it returned, say so
            lines.append(f"your {output}: {cell.detail}")
    return "\n".join(lines)


def _show(a):
    """An array as text, without leading axes of length 1, whole numbers as such."""
    a = np.asarray(a)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        a = a.astype(np.int64)
    return np.array2string(a, precision=3, suppress_small=True, max_line_width=88)


# --------------------------------------------------------------------------------------
# The grader


def _ladder(settings):
    if settings is None:
        return LADDER, {s.name for s in LADDER}
    if isinstance(settings, (str, Setting)):
        settings = [settings]
    names = {s.name: s for s in LADDER}
    supported, extra = set(), []
    for item in settings:
        if isinstance(item, Setting):
            supported.add(item.name)
            if item.name not in names:
                extra.append(item)
        elif item in names:
            supported.add(item)
        else:
            raise ValueError(
                f"settings: {item!r} is not a setting of the ladder; its settings are "
                f"{list(names)} (or pass Setting objects of your own)"
            )
    return (*LADDER, *extra), supported


def check_layer(
    forward=None,
    backward=None,
    *,
    grad_input=None,
    grad_weight=None,
    grad_bias=None,
    settings=None,
):
    """Grade a convolution layer of your own, setting by setting, and name the mistake.

    Parameters
    ----------
    forward : callable ``forward(x, w, b, *, stride, padding, dilation, groups) -> y``
    backward : callable ``backward(dout, x, w, *, ...) -> (dx, dw, db)``
    grad_input : callable ``grad_input(dout, w, x_shape, *, ...) -> dx``
    grad_weight : callable ``grad_weight(dout, x, w_shape, *, ...) -> dw``
    grad_bias : callable ``grad_bias(dout) -> db``
        Any of them; convbook's signatures (:func:`~convbook.conv.conv2d_forward`, ...).
        ``backward`` or the single gradients, not both. A hyper-parameter missing from
        a signature means the function supports its default only; a forward pass
        without a third positional parameter (or ``b=``) supports no bias.
    settings : sequence of str or :class:`~convbook.bugs.Setting`, optional
        The settings your code supports, by name (see :data:`LADDER`); the others are
        reported "not supported". Settings of your own are graded after the ladder.

    Returns
    -------
    Report
        Truthy when everything graded passed; a table in Jupyter, text in a terminal.

    Examples
    --------
    >>> import convbook as cb
    >>> report = check_layer(forward=cb.conv2d_forward, backward=cb.conv2d_backward)
    >>> report.passed, report.failed()
    (True, [])
    >>> from convbook import bugs
    >>> report = check_layer(grad_input=bugs.grad_input_stride_forgotten)
    >>> report.failed()
    ['stride 2', 'stride 2, kernel 2', 'everything']
    >>> report.diagnosed
    ['stride forgotten']
    """
    given = dict(
        forward=forward,
        backward=backward,
        grad_input=grad_input,
        grad_weight=grad_weight,
        grad_bias=grad_bias,
    )
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        raise TypeError("check_layer needs at least one function to grade")
    if "backward" in given and given.keys() & {
        "grad_input",
        "grad_weight",
        "grad_bias",
    }:
        raise TypeError("give check_layer backward or the single gradients, not both")
    for role, fn in given.items():
        if not callable(fn):
            raise TypeError(f"{role} must be a function, got {type(fn).__name__}")

    start = time.perf_counter()
    ladder, supported = _ladder(settings)
    roles = {o: (role, fn) for role, fn in given.items() for o in _PRODUCES[role]}
    outputs = [o for o in OUTPUTS if o in roles]
    cells, returned = {}, {}
    for s in ladder:
        for role, fn in given.items():
            if s.name not in supported:
                found = {
                    o: Cell("unsupported", detail="not in settings=")
                    for o in _PRODUCES[role]
                }
            else:
                found, got, _ = _run_one(role, fn, s)
                for o in found:
                    returned[s.name, o] = got.get(o) if isinstance(got, dict) else got
            for o, cell in found.items():
                cells[s.name, o] = cell
    diagnoses = [_diagnose(o, cells, returned, ladder, roles) for o in outputs]
    diagnoses = [d for d in diagnoses if d is not None]
    if "y" in {d.output for d in diagnoses} and len(diagnoses) > 1:
        note = "the gradients are graded against the correct forward pass: fix y first."
        diagnoses.append(Diagnosis("note", (), note))
    return Report(ladder, outputs, cells, diagnoses, time.perf_counter() - start)


def check_module(module, *, settings=None):
    """:func:`check_layer` on the functions a module (or a ``.py`` file) defines.

    It looks for ``conv2d_forward`` or ``forward``, ``conv2d_backward`` or ``backward``
    (or else ``conv2d_grad_input``/``grad_input``, ``..._weight``, ``..._bias``), and a
    list ``SETTINGS`` of the setting names it supports (``settings`` overrides it).
    """
    if isinstance(module, (str, Path)):
        path = Path(module)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot load {path} as a Python module")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        module = mod
    found = {}
    for role, names in _NAMES_IN_MODULE.items():
        fn = next(
            (getattr(module, n) for n in names if callable(getattr(module, n, None))),
            None,
        )
        if fn is not None:
            found[role] = fn
    if "backward" in found:
        for role in ("grad_input", "grad_weight", "grad_bias"):
            found.pop(role, None)
    if not found:
        wanted = ", ".join(n for names in _NAMES_IN_MODULE.values() for n in names)
        raise ValueError(
            f"{getattr(module, '__name__', module)} defines none of {wanted}"
        )
    if settings is None:
        settings = getattr(module, "SETTINGS", None)
    return check_layer(**found, settings=settings)


def main(argv=None):
    """``python -m convbook.check my_module.py``: the report as text; exit status 0 when
    everything passed, 1 when something failed, 2 when nothing could be graded."""
    parser = argparse.ArgumentParser(
        prog="python -m convbook.check",
        description="Grade a convolution layer of your own against convbook's "
        "reference.",
    )
    parser.add_argument("module", help="a .py file defining conv2d_forward, ...")
    parser.add_argument(
        "--settings",
        help="comma-separated names of the settings it supports (default: all)",
    )
    args = parser.parse_args(argv)
    settings = args.settings.split(",") if args.settings else None
    try:
        report = check_module(args.module, settings=settings)
    except (ValueError, TypeError, OSError) as exc:
        print(f"convbook.check: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
