"""The bug zoo: every bug is caught by its check, exactly on the settings the register
says, and every correct implementation passes every check."""

import functools

import numpy as np
import pytest

from convbook import bugs, ladder
from convbook.columns import col2im
from convbook.conv import (
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from convbook.gradcheck import LINEAR_H, numeric_vjp, rel_error

BUG_IDS = [b.name for b in bugs.BUGS]

CORRECT = [
    (bugs.check_forward, conv2d_forward),
    (bugs.check_forward, functools.partial(conv2d_forward, method="reference")),
    (bugs.check_grad_input, conv2d_grad_input),
    (bugs.check_grad_input, functools.partial(conv2d_grad_input, route="rot180")),
    (bugs.check_grad_input, functools.partial(conv2d_grad_input, method="reference")),
    (bugs.check_grad_input, bugs.grad_input_full_conv),
    (bugs.check_grad_weight, conv2d_grad_weight),
    (bugs.check_grad_weight, bugs.grad_weight_by_group),
    (bugs.check_grad_bias, conv2d_grad_bias),
    (bugs.check_col2im, col2im),
    (bugs.check_gradcheck, bugs.gradcheck),
]


def _settings_of(check):
    return bugs.SETTINGS[:4] if check is bugs.check_gradcheck else bugs.SETTINGS


@pytest.mark.parametrize("bug", bugs.BUGS, ids=BUG_IDS)
def test_every_bug_is_caught_by_its_check_exactly_where_it_shows(bug):
    verdict = bug.check(bug.fn)
    assert not verdict.passed and not verdict
    assert verdict.failed == {
        s.name for s in _settings_of(bug.check) if bug.shows_on(s)
    }
    assert verdict.failing is not None and "FAILED" in str(verdict)


@pytest.mark.parametrize("bug", bugs.BUGS, ids=BUG_IDS)
def test_every_bugs_correct_twin_passes_the_same_check(bug):
    verdict = bug.check(bug.correct)
    assert verdict.passed, str(verdict)


@pytest.mark.parametrize(
    "check, fn", CORRECT, ids=lambda v: getattr(v, "__name__", None) or repr(v)[:40]
)
def test_correct_implementations_pass(check, fn):
    verdict = check(fn)
    assert verdict and verdict.failing is None and "PASSED" in str(verdict)
    assert len(verdict.rows) >= 4


def test_the_ladder_climbs_one_feature_at_a_time():
    names = [s.name for s in bugs.SETTINGS]
    assert names[:4] == ["one channel", "bias", "channels", "batch"]
    assert names[-1] == "everything" and len(set(names)) == len(names)
    first, last = bugs.SETTINGS[0], bugs.SETTINGS[-1]
    assert first.x_shape[:2] == (1, 1) and not first.bias and not first.changed()
    assert set(last.changed()) == {"stride", "padding", "dilation", "groups"}
    for s in bugs.SETTINGS[3:]:  # from "batch" on: two samples, channels, a bias
        assert s.x_shape[0] == 2 and s.x_shape[1] >= 2 and s.bias
        assert len(s.changed()) <= 1 or s is last


def test_the_settings_printout_shows_every_value_that_is_not_the_default():
    shown = {s.name: str(s) for s in bugs.SETTINGS}
    assert shown["padding 1"].endswith("padding=1")
    assert shown["'same', even kernel"].endswith("padding='same'")
    assert shown["dilation 2"].endswith("dilation=2")
    assert shown["depthwise"].endswith("groups=3")
    assert shown["one channel"].endswith("no bias")
    assert "=" not in shown["batch"]
    for s in bugs.SETTINGS:
        for key, value in s.changed().items():
            assert f"{key}={value!r}" in str(s)


def test_bugs_agree_with_correct_code_where_their_feature_is_absent():
    # each bug is invisible on the settings without its feature: the reason tests
    # written for those settings never find it
    for bug in bugs.BUGS:
        for s in _settings_of(bug.check):
            if not bug.shows_on(s):
                assert bug.check(bug.fn, [s]), (bug.name, s.name)


def test_the_stride_bug_returns_a_smaller_gradient():
    s = bugs.SETTINGS[8]  # stride 2
    x, w, dout = s.arrays()
    dx = bugs.grad_input_stride_forgotten(dout, w, s.x_shape, **s.kwargs)
    # a stride-1 layer's input for the 3 x 3 output (5 x 5), plus the row no window of
    # the stride-2 layer reached, instead of 8 x 7
    assert s.x_shape == (2, 2, 8, 7) and dx.shape == (2, 2, 5 + 1, 5)


def test_the_padding_bug_returns_the_padded_inputs_gradient():
    s = bugs.SETTINGS[7]  # padding (2, 1)
    x, w, dout = s.arrays()
    dxp = bugs.grad_input_padding_kept(dout, w, s.x_shape, **s.kwargs)
    dx = conv2d_grad_input(dout, w, s.x_shape, **s.kwargs)
    assert dxp.shape == (2, 2, 5 + 4, 6 + 2)
    np.testing.assert_allclose(dxp[:, :, 2:-2, 1:-1], dx, rtol=1e-12, atol=1e-12)


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
    assert not v and all(
        d.startswith("shape (1, 1, 2, 2), expected") for _, _, d in v.rows
    )
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


def test_the_checks_finite_differences_are_exact_to_rounding():
    # the convolution is linear in x, w and b: with the large step no truncation error
    for s in bugs.SETTINGS:
        x, w, dout = s.arrays()
        dx = conv2d_grad_input(dout, w, s.x_shape, **s.kwargs, method="reference")
        assert rel_error(dx, ladder._finite_differences("dx", s)) < 1e-14
    assert LINEAR_H == 1.0


def test_checks_do_not_modify_inputs():
    s = bugs.SETTINGS[-1]
    x, w, dout = s.arrays()
    copies = [a.copy() for a in (x, w, dout)]
    for fn in (
        bugs.grad_input_full_conv,
        bugs.grad_input_stride_forgotten,
        bugs.grad_input_padding_kept,
        bugs.grad_input_not_rotated,
        bugs.grad_input_dilation_twice,
        bugs.grad_input_col2im_assign,
    ):
        fn(dout, w, s.x_shape, **s.kwargs)
    bugs.grad_weight_by_group(dout, x, s.w_shape, **s.kwargs)
    bugs.grad_weight_groups_sliced(dout, x, s.w_shape, **s.kwargs)
    bugs.forward_kernel_flipped(x, w, None, **s.kwargs)
    bugs.grad_bias_batch_mean(dout)
    for a, c in zip((x, w, dout), copies, strict=True):
        np.testing.assert_array_equal(a, c)
