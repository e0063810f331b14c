"""The numerical helpers: they must be able to fail as well as pass."""

from __future__ import annotations

import numpy as np
import pytest

import convbook as cb
from convbook.gradcheck import LINEAR_H


def test_numeric_vjp_matches_a_known_gradient_and_leaves_x_alone():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    dout = rng.standard_normal(3)
    saved = x.copy()
    num = cb.numeric_vjp(lambda v: a @ np.sin(v), x, dout)
    np.testing.assert_allclose(num, (a.T @ dout) * np.cos(x), rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(x, saved)


def test_rel_error_separates_right_from_wrong():
    a = np.array([1.0, -2.0, 0.0])
    assert cb.rel_error(a, a) == 0.0
    assert cb.rel_error(a, a + np.array([0.0, 0.0, 1e-12])) < 1e-11
    assert cb.rel_error(a, 2 * a) > 0.1
    with pytest.raises(ValueError, match=r"one shape, got \(3,\) and \(2,\)"):
        cb.rel_error(a, a[:2])


def test_compare_reports_and_returns_the_verdict(capsys):
    a = np.linspace(0, 1, 5)
    assert cb.compare("same", a, a.copy()) is True
    assert cb.compare("off", a, a + 1e-3) is False
    assert cb.compare("shape", a, a[:3]) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("same") and "exact: True" in out[0]
    assert "close: False" in out[1] and "max diff: 1.0e-03" in out[1]
    assert "shape mismatch" in out[2]
    # float32 tolerances are float32's
    a32 = a.astype(np.float32)
    assert cb.compare("f32", a32, a32 + np.float32(1e-7)) is True


def test_rel_error_is_scaled_by_the_largest_entry():
    g = np.array([2.6, -3.1, 7e-4])  # one entry far smaller than the others
    noisy = g + np.array([1e-9, -1e-9, 5e-9])  # float64 finite-difference noise
    assert cb.rel_error(g, noisy) == pytest.approx(5e-9 / 3.1)
    # the scale and the number of entries do not matter; a zero array against itself
    assert cb.rel_error(1e9 * g, 1e9 * noisy) == pytest.approx(cb.rel_error(g, noisy))
    big = np.concatenate([g] * 1000)
    assert cb.rel_error(big, np.concatenate([noisy] * 1000)) == cb.rel_error(g, noisy)
    assert cb.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert cb.rel_error(np.zeros(3), g) == 1.0
    # one entry wrong by as much as a typical one scores near 1, among many
    wrong = big.copy()
    wrong[-1] += 3.0
    assert cb.rel_error(big, wrong) > 0.5
    # a NaN or an infinity that differs fails any tolerance; where both agree, it is 0
    assert cb.rel_error(g, np.array([2.6, np.nan, 7e-4])) == np.inf
    assert cb.rel_error(np.array([np.inf, 1.0]), np.array([np.inf, 1.0])) == 0.0


def test_linear_maps_take_the_large_step():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 5))
    x, dout = rng.standard_normal(5), rng.standard_normal(6)
    exact = a.T @ dout
    big = cb.rel_error(cb.numeric_vjp(lambda v: a @ v, x, dout, h=LINEAR_H), exact)
    small = cb.rel_error(cb.numeric_vjp(lambda v: a @ v, x, dout), exact)
    assert big < 1e-14 and big < small
    # not for a nonlinear map: the chord's slope is not the derivative
    err = cb.rel_error(cb.numeric_vjp(np.sin, x, np.ones(5), h=LINEAR_H), np.cos(x))
    assert err > 0.1
