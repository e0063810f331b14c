"""The grader, tested as a reader uses it: every specimen named as itself, every method
of convbook passing, planted off-by-ones never passing, unfinished and misbehaving code
reported per setting without a crash."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convbook as cb
from convbook import bugs, ladder
from convbook.check import LADDER, check_layer, check_module, main

ROOT = Path(__file__).resolve().parents[1]
LAYER_BUGS = [b for b in bugs.BUGS if b.graded is not None]


# --------------------------------------------------------------------------------------
# The specimens


@pytest.mark.parametrize("bug", LAYER_BUGS, ids=[b.name for b in LAYER_BUGS])
def test_every_specimen_is_diagnosed_as_itself_and_nothing_else(bug):
    role, fn = bug.graded
    report = check_layer(**{role: fn})
    assert not report and report.diagnosed == [bug.name], str(report)
    # it fails exactly where the register says the mistake shows, and the way it says
    assert report.failed(bug.output) == [s.name for s in LADDER if bug.shows_on(s)]
    kinds = {report.cell(s, bug.output).kind for s in report.failed(bug.output)}
    assert kinds == {bug.kind}
    (diagnosis,) = report.diagnoses
    assert diagnosis.output == bug.output and diagnosis.case is None
    assert diagnosis.links == ((bug.title, f"bug-zoo.html#{bug.anchor}"),)
    assert bug.diagnosis in diagnosis.sentence


def test_every_specimen_has_its_own_pattern_of_failing_settings():
    # what makes "diagnosed as itself and nothing else" possible on the full ladder
    patterns = {}
    for bug in LAYER_BUGS:
        key = (bug.output, frozenset(s.name for s in LADDER if bug.shows_on(s)))
        assert key not in patterns, f"{bug.name} and {patterns[key]} fail alike"
        assert key[1], f"{bug.name} shows on no setting of the ladder"
        patterns[key] = bug.name


def test_every_specimen_section_exists_in_the_bug_zoo():
    nb = json.loads((ROOT / "book" / "bug-zoo.ipynb").read_text(encoding="utf-8"))
    text = "\n".join(
        "".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"
    )
    for bug in bugs.BUGS:
        assert f"({bug.anchor})=" in text, bug.anchor


def test_the_correct_twins_pass():
    for bug in LAYER_BUGS:
        role, _ = bug.graded
        if (
            bug.name == "= instead of +="
        ):  # its twin is a col2im; the layer's is convbook's
            correct = functools.partial(cb.conv2d_grad_input, route="col2im")
        else:
            correct = bug.correct
        report = check_layer(**{role: correct})
        assert report and not report.diagnoses, str(report)


# --------------------------------------------------------------------------------------
# convbook's own methods


def _winograd_settings():
    """The ladder's settings Winograd's F(m x m, r x r) supports."""
    return [
        s.name
        for s in LADDER
        if s.w_shape[2] == s.w_shape[3] in cb.winograd.LAYER_TILES
        and s.params.stride == (1, 1)
        and s.params.dilation == (1, 1)
        and s.groups == 1
    ]


METHOD_ROUTES = [
    (m, r)
    for m in cb.METHODS
    for r in (None, *cb.ROUTES)
    if not (m == "reference" and r) and not (m == "winograd" and r == "col2im")
] + [("auto", None), ("auto", "col2im"), ("auto", "rot180")]


@pytest.mark.parametrize("method, route", METHOD_ROUTES)
def test_every_convbook_method_passes_every_setting(method, route):
    supported = _winograd_settings() if method == "winograd" else None
    report = check_layer(
        forward=functools.partial(cb.conv2d_forward, method=method),
        grad_input=functools.partial(cb.conv2d_grad_input, method=method, route=route),
        grad_weight=functools.partial(cb.conv2d_grad_weight, method=method),
        grad_bias=cb.conv2d_grad_bias,
        settings=supported,
    )
    assert report.passed and not report.diagnoses, str(report)
    assert report.unsupported() == [
        s.name for s in LADDER if supported is not None and s.name not in supported
    ]


def test_backward_and_the_layer_pass():
    report = check_layer(forward=cb.conv2d_forward, backward=cb.conv2d_backward)
    assert report.passed and report.outputs == ("y", "dx", "dw", "db")
    assert report.failed() == [] and len(report.cells) == 4 * len(LADDER)


def test_the_reference_agrees_with_finite_differences_on_every_setting():
    # the grader's expected answers are the loop reference's; tie them to the definition
    from convbook.check import _expected

    for s in LADDER:
        want = _expected(s)
        for name in ("dx", "dw", "db"):
            assert cb.rel_error(want[name], ladder._finite_differences(name, s)) < 1e-13


# --------------------------------------------------------------------------------------
# Planted off-by-ones: a small implementation of the layer, right with nothing planted


def small_layer(target=None, kind=None, axis=0, delta=0):
    """forward, grad_input, grad_weight written from the window indices, with one
    off-by-one planted in ``target``: the padding, the stride or a flipped kernel axis,
    along ``axis``."""

    def geometry(fn_name, w_shape, x_hw, stride, padding, dilation, groups):
        p = cb.conv_params(
            w_shape[2:],
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
        s, pad = list(p.stride), [p.padding[0], p.padding[2]]
        if fn_name == target and kind == "stride":
            s[axis] = max(1, s[axis] + delta) if s[axis] + delta >= 1 else s[axis] + 1
        if fn_name == target and kind == "padding":
            pad[axis] += delta
        oh, ow, _, _ = p.output_shape(x_hw, w_shape[2:])
        return p, s, pad, (oh, ow)

    def kernel(fn_name, w):
        if fn_name == target and kind == "flip":
            return np.flip(w, axis=2 + axis)
        return w

    def taps(x_hw, w_shape, p, s, pad, out_hw):
        margin = sum(x_hw) + sum(w_shape[2:]) * max(p.dilation) + 8
        for a in range(w_shape[2]):
            for b in range(w_shape[3]):
                r0 = margin - pad[0] + p.dilation[0] * a
                c0 = margin - pad[1] + p.dilation[1] * b
                rows = slice(r0, r0 + s[0] * (out_hw[0] - 1) + 1, s[0])
                cols = slice(c0, c0 + s[1] * (out_hw[1] - 1) + 1, s[1])
                yield margin, a, b, rows, cols

    def forward(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
        p, s, pad, out_hw = geometry(
            "forward", w.shape, x.shape[2:], stride, padding, dilation, groups
        )
        wk = kernel("forward", w)
        n, f, cg = x.shape[0], w.shape[0], w.shape[1]
        fg = f // groups
        y = np.zeros((n, f, *out_hw))
        for margin, a, bb, rows, cols in taps(x.shape[2:], w.shape, p, s, pad, out_hw):
            xp = np.pad(x, ((0, 0), (0, 0), (margin, margin), (margin, margin)))
            for g in range(groups):
                patch = xp[:, g * cg : (g + 1) * cg, rows, cols]
                wg = wk[g * fg : (g + 1) * fg, :, a, bb]
                y[:, g * fg : (g + 1) * fg] += np.einsum("nchw,fc->nfhw", patch, wg)
        return y if b is None else y + b.reshape(-1, 1, 1)

    def grad_input(dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1):
        p, s, pad, out_hw = geometry(
            "grad_input", w.shape, x_shape[2:], stride, padding, dilation, groups
        )
        wk = kernel("grad_input", w)
        f, cg = w.shape[:2]
        fg = f // groups
        h, wd = x_shape[2:]
        dxp = None
        for margin, a, bb, rows, cols in taps((h, wd), w.shape, p, s, pad, out_hw):
            if dxp is None:
                dxp = np.zeros(
                    (x_shape[0], x_shape[1], h + 2 * margin, wd + 2 * margin)
                )
            for g in range(groups):
                wg = wk[g * fg : (g + 1) * fg, :, a, bb]
                contrib = np.einsum("nfhw,fc->nchw", dout[:, g * fg : (g + 1) * fg], wg)
                dxp[:, g * cg : (g + 1) * cg, rows, cols] += contrib
        return dxp[:, :, margin : margin + h, margin : margin + wd]

    def grad_weight(dout, x, w_shape, *, stride=1, padding=0, dilation=1, groups=1):
        p, s, pad, out_hw = geometry(
            "grad_weight", w_shape, x.shape[2:], stride, padding, dilation, groups
        )
        f, cg = w_shape[:2]
        fg = f // groups
        dw = np.zeros(w_shape)
        for margin, a, bb, rows, cols in taps(x.shape[2:], w_shape, p, s, pad, out_hw):
            xp = np.pad(x, ((0, 0), (0, 0), (margin, margin), (margin, margin)))
            for g in range(groups):
                patch = xp[:, g * cg : (g + 1) * cg, rows, cols]
                dout_g = dout[:, g * fg : (g + 1) * fg]
                dw[g * fg : (g + 1) * fg, :, a, bb] = np.einsum(
                    "nchw,nfhw->fc", patch, dout_g
                )
        if target == "grad_weight" and kind == "flip":
            dw = np.flip(dw, axis=2 + axis)
        return dw

    return dict(forward=forward, grad_input=grad_input, grad_weight=grad_weight)


def test_the_small_layer_is_right_when_nothing_is_planted():
    report = check_layer(**small_layer())
    assert report.passed, str(report)


OUTPUT_OF = {"forward": "y", "grad_input": "dx", "grad_weight": "dw"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=st.sampled_from(sorted(OUTPUT_OF)),
    kind=st.sampled_from(["padding", "stride", "flip"]),
    axis=st.sampled_from([0, 1]),
    delta=st.sampled_from([-2, -1, 1, 2]),
)
def test_a_planted_off_by_one_is_never_reported_as_passing(target, kind, axis, delta):
    report = check_layer(**small_layer(target, kind, axis, delta))
    assert not report.passed
    failing_output = OUTPUT_OF[target]
    assert report.failed(failing_output)
    # the others are untouched, and pass
    assert all(not report.failed(o) for o in report.outputs if o != failing_output), (
        str(report)
    )
    # no specimen's numbers are these: no mistake named, a case to read instead
    (d,) = [d for d in report.diagnoses if d.output == failing_output]
    assert not d.bugs and "expected" in d.case


def test_the_same_mistake_written_another_way_is_named():
    def grad_input_kernel_not_turned(dout, w, x_shape, **kw):
        return cb.conv2d_grad_input(dout, cb.rot180(w), x_shape, **kw)

    def grad_input_window_assign(
        dout, w, x_shape, *, stride=1, padding=0, dilation=1, groups=1
    ):
        # col2im window by window (not kernel offset by kernel offset), with =
        p = cb.conv_params(
            w.shape[2:],
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
        n, c, h, wd = x_shape
        f, cg, kh, kw = w.shape
        fg = f // groups
        (sh, sw), (dh, dw) = p.stride, p.dilation
        pt, pb, pl, pr = p.padding
        dxp = np.zeros((n, c, h + pt + pb, wd + pl + pr))
        for g in range(groups):
            dout_g, w_g = dout[:, g * fg : (g + 1) * fg], w[g * fg : (g + 1) * fg]
            dwin = np.einsum("nfij,fcpq->nijcpq", dout_g, w_g)
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    rows = slice(sh * i, sh * i + dh * (kh - 1) + 1, dh)
                    cols = slice(sw * j, sw * j + dw * (kw - 1) + 1, dw)
                    dxp[:, g * cg : (g + 1) * cg, rows, cols] = dwin[:, i, j]
        return dxp[:, :, pt : pt + h, pl : pl + wd]

    report = check_layer(grad_input=grad_input_kernel_not_turned)
    assert report.diagnosed == ["kernel not rotated"], str(report)
    report = check_layer(grad_input=grad_input_window_assign)
    assert report.diagnosed == ["= instead of +="], str(report)


# --------------------------------------------------------------------------------------
# Forgiving of unfinished work, strict about what it returns


def test_not_supported_is_not_wrong():
    def forward_no_groups(x, w, b=None, *, stride=1, padding=0, dilation=1):
        if dilation != 1:
            raise NotImplementedError("dilation comes next week")
        return cb.conv2d_forward(x, w, b, stride=stride, padding=padding)

    report = check_layer(forward=forward_no_groups)
    assert report.passed and report.failed() == []
    assert report.unsupported() == ["dilation 2", "groups 2", "depthwise", "everything"]
    assert (
        "NotImplementedError: dilation comes next week"
        in report.cell("dilation 2", "y").detail
    )
    assert report.cell("groups 2", "y").detail == "no `groups` parameter"

    report = check_layer(grad_input=cb.conv2d_grad_input, settings=["one channel"])
    assert report.passed and len(report.unsupported()) == len(LADDER) - 1
    assert report.cell("bias", "dx").detail == "not in settings="

    def forward_no_bias(x, w, *, stride=1, padding=0, dilation=1, groups=1):
        return cb.conv2d_forward(
            x,
            w,
            **dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
        )

    report = check_layer(forward=forward_no_bias)
    assert report.passed and report.unsupported() == [s.name for s in LADDER[1:]]


def test_settings_of_ones_own_are_graded_after_the_ladder():
    mine = bugs.Setting("tiny", (1, 1, 3, 3), (1, 1, 2, 2), stride=2, bias=False)
    report = check_layer(forward=cb.conv2d_forward, settings=["one channel", mine])
    assert report.settings[-1] == mine and report.cell("tiny", "y").status == "pass"
    with pytest.raises(ValueError, match="not a setting of the ladder"):
        check_layer(forward=cb.conv2d_forward, settings=["stride 3"])


def test_misbehaving_code_is_reported_per_setting_never_a_crash():
    def raises(dout, w, x_shape, **kw):
        raise IndexError("index 5 is out of bounds")

    def wrong_shape(dout, w, x_shape, **kw):
        return np.zeros((1, 1, 2, 2))

    def float32(dout, w, x_shape, **kw):
        return cb.conv2d_grad_input(dout, w, x_shape, **kw).astype(np.float32)

    def writes(dout, w, x_shape, **kw):
        dx = cb.conv2d_grad_input(dout, w, x_shape, **kw)
        dout *= 2  # the caller's array
        return dx

    def returns_none(dout, w, x_shape, **kw):
        return None

    def view(dout):
        return dout.reshape(-1)[: dout.shape[1]]  # shaped like db, and a view of dout

    def nan(dout, w, x_shape, **kw):
        return np.full(x_shape, np.nan)

    cases = [
        (dict(grad_input=raises), "dx", "error", "raised IndexError: index 5 is out"),
        (dict(grad_input=wrong_shape), "dx", "shape", "shape (1, 1, 2, 2), expected"),
        (dict(grad_input=float32), "dx", "dtype", "dtype float32, expected float64"),
        (dict(grad_input=writes), "dx", "wrote", "wrote into its input dout"),
        (dict(grad_input=returns_none), "dx", "error", "returned None"),
        (dict(grad_bias=view), "db", "view", "returned a view of its input dout"),
        (dict(grad_input=nan), "dx", "value", "rel. error inf"),
    ]
    for kwargs, output, kind, detail in cases:
        report = check_layer(**kwargs)
        assert not report and report.failed(output) == [s.name for s in LADDER]
        for s in LADDER:
            cell = report.cell(s, output)
            assert cell.kind == kind and cell.detail.startswith(detail), cell
        assert report.diagnoses and str(report) and report._repr_html_()


def test_backward_must_return_three_arrays():
    def two(dout, x, w, **kw):
        dx, dw, _ = cb.conv2d_backward(dout, x, w, **kw)
        return dx, dw

    report = check_layer(backward=two)
    assert report.failed("db") == [s.name for s in LADDER]
    assert (
        report.cell("bias", "dx").detail == "returned 2 values, expected (dx, dw, db)"
    )


def test_an_unknown_mistake_gets_the_smallest_failing_case():
    def forward_pads_top_left(
        x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1
    ):
        p = cb.conv_params(
            w.shape[2:],
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
        )
        pt, pb, pl, pr = p.padding
        xp = np.pad(x, ((0, 0), (0, 0), (pt + pb, 0), (pl + pr, 0)))  # all on one side
        return cb.conv2d_forward(
            xp, w, b, stride=stride, dilation=dilation, groups=groups
        )

    report = check_layer(forward=forward_pads_top_left)
    assert report.failed("y") == [
        "padding 1",
        "'same', even kernel",
        "padding (2, 1)",
        "everything",
    ]
    (d,) = report.diagnoses
    assert d.bugs == () and "no bug-zoo specimen" in d.sentence
    lines = d.case.splitlines()
    assert lines[0].startswith("setting: padding 1: x (1, 1, ")
    assert any(line.startswith("expected y =") for line in lines)
    assert any(line.startswith("your y (rel. error") for line in lines)
    assert len(lines) < 25  # small enough to read
    assert all(line in str(report) for line in lines)


def test_raising_on_some_settings_suggests_not_implemented():
    def forward_ints_only(x, w, b=None, **kw):
        if isinstance(kw.get("padding"), str):
            raise TypeError("padding must be an int")
        return cb.conv2d_forward(x, w, b, **kw)

    report = check_layer(forward=forward_ints_only)
    assert report.failed() == ["'same', even kernel", "'valid'"]
    (d,) = report.diagnoses
    assert "NotImplementedError" in d.sentence and "settings=" in d.sentence


def test_a_forward_mistake_comes_with_a_note_on_the_gradients():
    report = check_layer(
        forward=bugs.forward_kernel_flipped, grad_bias=bugs.grad_bias_batch_mean
    )
    assert report.diagnosed == [
        "kernel flipped in the forward pass",
        "bias gradient averaged over the batch",
    ]
    assert report.diagnoses[-1].output == "note"


def test_wrong_use_of_the_grader_is_an_error_at_once():
    with pytest.raises(TypeError, match="at least one function"):
        check_layer()
    with pytest.raises(TypeError, match="not both"):
        check_layer(backward=cb.conv2d_backward, grad_input=cb.conv2d_grad_input)
    with pytest.raises(TypeError, match="must be a function"):
        check_layer(forward=np.zeros(3))


# --------------------------------------------------------------------------------------
# What the reader sees


def test_the_html_table_is_green_and_red():
    report = check_layer(grad_input=bugs.grad_input_stride_forgotten)
    page = report._repr_html_()
    assert page.count("<tr>") == len(LADDER) + 1
    assert page.count("#fce8e6") == 3 and page.count("#e6f4ea") == len(LADDER) - 3
    assert "href='bug-zoo.html#bug-stride-forgotten'" in page
    assert "FAILED" in page and "dY is not dilated by the stride" in page


def test_the_text_report_fits_a_terminal():
    report = check_layer(forward=cb.conv2d_forward, backward=cb.conv2d_backward)
    text = str(report)
    assert text.splitlines()[0].startswith("check_layer (y, dx, dw, db): PASSED")
    assert all(len(line) <= 88 for line in text.splitlines())
    text = str(check_layer(grad_input=bugs.grad_input_not_rotated))
    assert "see the bug zoo: The kernel that was not turned" in text
    assert all(len(line) <= 88 for line in text.splitlines())


def test_check_module_and_the_command_line(tmp_path):
    good = tmp_path / "good.py"
    good.write_text(
        "import convbook as cb\n"
        "def conv2d_forward(x, w, b=None, **kw):\n"
        "    return cb.conv2d_forward(x, w, b, **kw)\n"
        "def conv2d_backward(dout, x, w, **kw):\n"
        "    return cb.conv2d_backward(dout, x, w, **kw)\n"
    )
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from convbook.bugs import grad_input_dilation_twice as grad_input\n"
        "SETTINGS = ['one channel', 'dilation 2']\n"
    )
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert check_module(good).passed
    report = check_module(bad)
    assert report.diagnosed == ["dilation counted twice"]
    assert report.unsupported("dx") == [
        s.name for s in LADDER if s.name not in ("one channel", "dilation 2")
    ]
    assert main([str(good)]) == 0 and main([str(bad)]) == 1 and main([str(empty)]) == 2

    run = subprocess.run(
        [sys.executable, "-m", "convbook.check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr
    assert (
        "dilation 2" in run.stdout and "bug-zoo.html#bug-dilation-twice" in run.stdout
    )
    assert run.stderr == ""
