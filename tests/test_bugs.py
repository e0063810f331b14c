"""The bug zoo: every bug is caught by its check, every correct implementation passes every check."""

import functools

import numpy as np
import pytest

from convbook import bugs
from convbook.conv import conv2d_forward, conv2d_grad_input, conv2d_grad_weight
from convbook.gradcheck import numeric_vjp, rel_error
from convbook.columns import col2im

BUG_IDS = [b.name for b in bugs.BUGS]

CORRECT = [
    (bugs.check_grad_input, conv2d_grad_input),
    (bugs.check_grad_input, functools.partial(conv2d_grad_input, route="rot180")),
    (bugs.check_grad_input, functools.partial(conv2d_grad_input, method="reference")),
    (bugs.check_grad_input, bugs.grad_input_full_conv),
    (bugs.check_grad_weight, conv2d_grad_weight),
    (bugs.check_grad_weight, bugs.grad_weight_by_group),
    (bugs.check_col2im, col2im),
    (bugs.check_gradcheck, bugs.gradcheck),
]

# Where each bug shows: exactly the settings with the feature it gets wrong. The bug-zoo chapter says so.
SHOWS_ON = {
    "stride forgotten": {"stride 2, unused row", "everything"},
    "kernel not rotated": {s.name for s in bugs.SETTINGS},
    "dilation counted twice": {"dilation 2", "everything"},
    "= instead of +=": {s.name for s in bugs.SETTINGS},
    "groups sliced wrong": {"groups 2", "everything"},
    "float32 check cries wolf": {s.name for s in bugs.SETTINGS[:4]},
}


@pytest.mark.parametrize("bug", bugs.BUGS, ids=BUG_IDS)
def test_every_bug_is_caught_by_its_check(bug):
    verdict = bug.check(bug.fn)
    assert not verdict.passed and not verdict
    assert {s.name for s, ok, _ in verdict.rows if not ok} == SHOWS_ON[bug.name]
    assert verdict.failing is not None and "FAILED" in str(verdict)


@pytest.mark.parametrize("bug", [b for b in bugs.BUGS if b.correct is not None],
                         ids=[b.name for b in bugs.BUGS if b.correct is not None])
def test_every_bugs_correct_twin_passes_the_same_check(bug):
    verdict = bug.check(bug.correct)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize("check, fn", CORRECT, ids=lambda v: getattr(v, "__name__", None) or repr(v)[:40])
def test_correct_implementations_pass(check, fn):
    verdict = check(fn)
    assert verdict and verdict.failing is None and "PASSED" in str(verdict)
    assert len(verdict.rows) >= 4


def test_bugs_agree_with_correct_code_where_their_feature_is_absent():
    # the stride bug is invisible at stride 1: the reason tests with stride 1 never find it
    s = bugs.SETTINGS[1]
    x, w, dout = s.arrays()
    np.testing.assert_allclose(bugs.grad_input_stride_forgotten(dout, w, s.x_shape, **s.kwargs),
                               conv2d_grad_input(dout, w, s.x_shape, **s.kwargs), rtol=1e-12, atol=1e-12)


def test_col2im_assign_loses_the_overlap_counts():
    ones = np.ones((9, 9))  # a 5x5 image, 3x3 kernel: 9 windows of 9 entries
    counts = col2im(ones, (1, 1, 5, 5), 3)[0, 0]
    assigned = bugs.col2im_assign(ones, (1, 1, 5, 5), 3)[0, 0]
    assert counts[2, 2] == 9 and counts[0, 0] == 1
    np.testing.assert_array_equal(assigned, np.ones((5, 5)))


def test_checks_report_crashes_and_wrong_shapes_as_failures():
    def crashes(dout, w, x_shape, **kw):
        raise IndexError("oops")

    def wrong_shape(dout, w, x_shape, **kw):
        return np.zeros((1, 1, 2, 2))

    v = bugs.check_grad_input(crashes, bugs.SETTINGS[:2])
    assert not v and all("raised IndexError: oops" in d for _, _, d in v.rows)
    v = bugs.check_grad_input(wrong_shape, bugs.SETTINGS[1:3])
    assert not v and all(d.startswith("shape (1, 1, 2, 2), expected") for _, _, d in v.rows)
    assert v.failing == bugs.SETTINGS[1]


def test_check_gradcheck_fails_checkers_that_accept_anything_or_nothing():
    v_yes = bugs.check_gradcheck(lambda f, x, dout, grad: True)
    v_no = bugs.check_gradcheck(lambda f, x, dout, grad: False)
    assert not v_yes and all("ACCEPTS the wrong one" in d for _, _, d in v_yes.rows)
    assert not v_no and all("cries wolf" in d for _, _, d in v_no.rows)


def test_float32_check_errs_on_a_correct_gradient_and_float64_does_not():
    s = bugs.SETTINGS[0]
    x, w, dout = s.arrays()
    grad = conv2d_grad_input(dout, w, s.x_shape)

    def f(x_):
        return conv2d_forward(x_, w)

    err32 = rel_error(grad, bugs.numeric_vjp_float32(f, x, dout))
    err64 = rel_error(grad, numeric_vjp(f, x, dout))
    assert err64 < 1e-8 < 1e-3 < err32


def test_checks_do_not_modify_inputs():
    s = bugs.SETTINGS[-1]
    x, w, dout = s.arrays()
    copies = [a.copy() for a in (x, w, dout)]
    for fn in (bugs.grad_input_full_conv, bugs.grad_input_stride_forgotten, bugs.grad_input_not_rotated,
               bugs.grad_input_dilation_twice):
        fn(dout, w, s.x_shape, **s.kwargs)
    bugs.grad_weight_by_group(dout, x, s.w_shape, **s.kwargs)
    for a, c in zip((x, w, dout), copies):
        np.testing.assert_array_equal(a, c)
