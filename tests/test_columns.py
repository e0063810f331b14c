"""im2col's three builds agree; col2im is its adjoint; the view is read-only."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import CASES, make_case, random_like

import convbook as cb


@pytest.mark.parametrize("name", sorted(CASES))
def test_loop_and_view_builds_agree(name):
    x, w, _, kw = make_case(name)
    kw.pop("groups", None)
    cols = cb.im2col(x, w.shape[2:], **kw)
    out = cb.conv_output_shape(x.shape[2:], w.shape[2:], **kw)
    assert cols.shape == (
        x.shape[0] * out.oh * out.ow,
        x.shape[1] * w.shape[2] * w.shape[3],
    )
    np.testing.assert_array_equal(cb.im2col_loop(x, w.shape[2:], **kw), cols)


@pytest.mark.parametrize("name", sorted(CASES))
def test_col2im_is_the_adjoint_of_im2col(name):
    """<im2col(x), c> == <x, col2im(c)> for random x and c."""
    x, w, _, kw = make_case(name)
    kw.pop("groups", None)
    cols = cb.im2col(x, w.shape[2:], **kw)
    c = random_like(cols.shape, seed=9)
    back = cb.col2im(c, x.shape, w.shape[2:], **kw)
    assert back.shape == x.shape
    assert np.isclose(np.vdot(cols, c), np.vdot(x, back), rtol=1e-12)


def test_rows_are_windows_in_n_i_j_order_and_columns_in_c_p_q_order():
    x = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3)
    cols = cb.im2col(x, 2)
    # row (n=1, i=0, j=1): channel 0's window then channel 1's, each row-major
    row = cols[1 * 4 + 0 * 2 + 1]
    np.testing.assert_array_equal(
        row, np.concatenate([x[1, 0, 0:2, 1:3].ravel(), x[1, 1, 0:2, 1:3].ravel()])
    )


def test_seed_im2col_matches_for_batch_one():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 6, 5))
    seed = cb.im2col_tutorial(
        x.transpose(0, 2, 3, 1), 3, 1
    )  # the seed flattens (k, k, C): channels last
    ours = cb.im2col(x, 3)  # (c, p, q) order
    np.testing.assert_array_equal(
        seed, ours.reshape(-1, 3, 3, 3).transpose(0, 2, 3, 1).reshape(ours.shape)
    )


def test_col2im_adds_where_windows_overlap():
    counts = cb.col2im(np.ones((9, 4)), (1, 1, 4, 4), 2)[0, 0]
    np.testing.assert_array_equal(
        counts, [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]
    )
    assert (
        counts.sum() == 9 * 4
    )  # every column entry lands somewhere: nothing is overwritten


def test_window_view_is_read_only_and_im2col_copies():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    v = cb.window_view(x, 2)
    assert not v.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        v[0, 0, 0, 0, 1, 1] = -1.0
    cols = cb.im2col(x, 2)
    assert not np.shares_memory(cols, x)
    cols[0, 3] = -1.0
    assert x[0, 0, 1, 1] == 5.0


def test_col2im_leaves_unreached_pixels_zero():
    x_shape = (1, 1, 8, 9)
    out = cb.conv_output_shape(x_shape[2:], 3, stride=3)
    back = cb.col2im(np.ones((out.oh * out.ow, 9)), x_shape, 3, stride=3)
    assert np.all(back[0, 0, -out.unused_h :, :] == 0)
    assert np.all(back[0, 0, : -out.unused_h, :] == 1)
