"""The numerical helpers: they must be able to fail as well as pass."""

from __future__ import annotations

import numpy as np
import pytest

import convbook as cb


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
    assert cb.compare("f32", a.astype(np.float32), a.astype(np.float32) + np.float32(1e-7)) is True
