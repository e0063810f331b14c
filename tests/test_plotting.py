"""The pictures: every function runs with its defaults, draws convbook's own numbers,
and the animations are deterministic, small and closed after use. Headless: the Agg
backend is chosen here, not through MPLBACKEND."""

import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import convbook as cb  # noqa: E402
from convbook import plotting as P  # noqa: E402
from convbook import winograd  # noqa: E402
from convbook.plotting.player import sample_frames  # noqa: E402

PLOTS = [n for n in P.__all__ if n.startswith("plot_")]
ANIMATIONS = [n for n in P.__all__ if n.startswith("animate_")]
LIMIT = 600 * 1024
W3, W2 = P.example_kernel(3), P.example_kernel(2)


def shown(fig, name):
    """The numbers a picture writes in grid ``name``, as a dict (i, j) -> text."""
    out = {}
    for t in fig.axes[0].texts:
        m = re.fullmatch(re.escape(name) + r"\[(\d+),(\d+)\]", t.get_gid() or "")
        if m:
            out[int(m.group(1)), int(m.group(2))] = t.get_text()
    return out


def as_grid(fig, name, shape):
    cells = shown(fig, name)
    assert set(cells) == {(i, j) for i in range(shape[0]) for j in range(shape[1])}, (
        f"{name} cells missing"
    )
    return np.array(
        [[float(cells[i, j]) for j in range(shape[1])] for i in range(shape[0])]
    )


def texts(fig):
    return [t.get_text() for t in fig.axes[0].texts]


def all_text(fig):
    return "\n".join(texts(fig))


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a function left a pyplot figure open"


def test_enough_functions():
    assert len(PLOTS) >= 6 and len(ANIMATIONS) >= 6


def test_palette_is_the_colour_language():
    for key in (
        "input",
        "kernel",
        "output",
        "gradient",
        "padding",
        "zeros",
        "unused",
        "highlight",
    ):
        assert re.fullmatch(r"#[0-9A-F]{6}", P.PALETTE[key])
    assert len({P.PALETTE[k] for k in P.PALETTE}) == len(P.PALETTE)
    assert [h.get_label() for h in P.legend_handles("gradient")] == [
        "gradient (∇Y, ∇X, ∇K)"
    ]


@pytest.mark.parametrize("name", PLOTS)
def test_plot_defaults(name):
    fig = getattr(P, name)()
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    if name == "plot_palette":
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert (
            len(labels) == len(P.PALETTE) - 1
            and "zeros inserted by the stride" in labels
        )
        return
    assert len(fig.axes[0].texts) > 5
    assert fig.axes[0].collections, "no cells drawn"


@pytest.mark.parametrize("name", PLOTS)
def test_plot_into_given_axes(name):
    fig, ax = plt.subplots(figsize=(8, 4))
    try:
        assert getattr(P, name)(ax=ax) is fig
        assert ax.texts or ax.get_legend()
    finally:
        plt.close(fig)


def test_sliding_window_shows_conv2d_forward():
    x = np.arange(1.0, 26.0).reshape(5, 5)
    w = np.array([[1.0, -1.0], [2.0, 0.0]])
    y = cb.conv2d_forward(
        x[None, None], w[None, None], stride=2, padding=1, dilation=1
    )[0, 0]
    last = (y.shape[0] - 1, y.shape[1] - 1)
    fig = P.plot_sliding_window(x, w, stride=2, padding=1, position=last)
    np.testing.assert_array_equal(as_grid(fig, "Y", y.shape), y)
    assert all_text(fig).splitlines()[-1].strip() == f"= {P.fmt(y[last])}"
    # an earlier position: only the cells computed so far are written
    fig = P.plot_sliding_window(x, w, stride=2, padding=1, position=(0, 1))
    assert set(shown(fig, "Y")) == {(0, 0), (0, 1)}
    assert [t for t in texts(fig) if t.strip().startswith("=")][
        -1
    ].strip() == f"= {P.fmt(y[0, 1])}"


@pytest.mark.parametrize(
    "stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 1, 2), (3, 2, 1)]
)
def test_sliding_window_settings(stride, padding, dilation):
    x = P.example((6, 5), 3, -2, 3)
    y = cb.conv2d_forward(
        x[None, None], W3[None, None], stride=stride, padding=padding, dilation=dilation
    )[0, 0]
    fig = P.plot_sliding_window(
        x,
        W3,
        stride=stride,
        padding=padding,
        dilation=dilation,
        position=(y.shape[0] - 1, y.shape[1] - 1),
    )
    np.testing.assert_array_equal(as_grid(fig, "Y", y.shape), y)


def test_im2col_shows_im2col_and_product():
    x = P.example((5, 4), 1, 0, 6)
    w = W2
    cols = cb.im2col(x[None, None], 2, stride=(1, 2), padding=1)
    y = cb.conv2d_forward(x[None, None], w[None, None], stride=(1, 2), padding=1)[0, 0]
    fig = P.plot_im2col(x, w, stride=(1, 2), padding=1, row=3)
    np.testing.assert_array_equal(as_grid(fig, "cols", cols.shape), cols)
    np.testing.assert_array_equal(as_grid(fig, "Y", y.shape), y)
    np.testing.assert_array_equal(
        as_grid(fig, "vec", (cols.shape[0], 1))[:, 0], y.reshape(-1)
    )


@pytest.mark.parametrize(
    "kernel_size,padding,dilation", [(3, 1, 1), ((3, 2), "same", (1, 2)), (1, 0, 1)]
)
def test_shifted_rows_are_the_column_matrix(kernel_size, padding, dilation):
    """Each drawn row is the column matrix's (im2col's column for that tap), and sits
    under the flattened input's numbers it copies, except the cleared ones (zeros)."""
    x = P.example((3, 6), 2, 1, 9)  # no zero pixels: every drawn 0 is padding
    hyper = dict(padding=padding, dilation=dilation)
    fig = P.plot_shifted_rows(x, kernel_size, **hyper)
    d = P.shifted_rows_data(x, kernel_size, **hyper)
    cols = cb.im2col(x[None, None], kernel_size, **hyper)  # (OH*OW, KH*KW)
    flat = as_grid(fig, "flat", (1, d.flat.size))[0]
    np.testing.assert_array_equal(flat[d.front : d.front + x.size], x.ravel())
    for k, start in enumerate(d.starts):
        row = as_grid(fig, f"row{k}", (1, cols.shape[0]))[0]
        np.testing.assert_array_equal(row, cols[:, k])
        copied = flat[start : start + row.size]
        np.testing.assert_array_equal(row[~d.cleared[k]], copied[~d.cleared[k]])
        assert not row[d.cleared[k]].any()
    assert d.cleared.any() == (kernel_size != 1)
    with pytest.raises(ValueError, match="padding=0 .* 4 output columns for x's 6"):
        P.plot_shifted_rows(x, 3, padding=0)


@pytest.mark.parametrize("n,c,f", [(2, 2, 3), (1, 3, 1), (3, 1, 2)])
def test_im2col_batch_is_one_product(n, c, f):
    fig = P.plot_im2col_batch(n, c, f, input_size=3, kernel_size=2)
    x = P.example((n, c, 3, 3), 0, 0, 4)
    w = P.example((f, c, 2, 2), 1, -1, 2)
    cols = cb.im2col(x, 2)
    y = cb.conv2d_forward(x, w)
    drawn_cols = as_grid(fig, "cols", cols.shape)
    drawn_y = as_grid(fig, "Yrows", (cols.shape[0], f))
    np.testing.assert_array_equal(drawn_cols, cols)
    np.testing.assert_array_equal(as_grid(fig, "Wt", (c * 4, f)), w.reshape(f, -1).T)
    np.testing.assert_array_equal(drawn_y, drawn_cols @ w.reshape(f, -1).T)
    np.testing.assert_array_equal(drawn_y.reshape(n, 2, 2, f).transpose(0, 3, 1, 2), y)
    with pytest.raises(ValueError, match="batch"):
        P.plot_im2col_batch(4)


def test_output_size_counts_and_unused():
    s = cb.conv_output_shape(6, 3, stride=2)
    assert (s.unused_h, s.unused_w) == (1, 1)
    fig = P.plot_output_size(6, 3, stride=2)
    counts = as_grid(fig, "counts", (6, 6))
    assert f"output {s.oh}×{s.ow}" in texts(fig)[
        0
    ] or f"output {s.oh}×{s.ow}" in all_text(fig)
    np.testing.assert_array_equal(counts[-1], 0)  # the unused row
    np.testing.assert_array_equal(counts[:, -1], 0)
    assert counts.sum() == s.oh * s.ow * 9  # every window reads 9 cells
    # padding: the padded grid is drawn, and the formula has the numbers in
    fig = P.plot_output_size(
        (5, 7), (3, 2), stride=(2, 3), padding=(1, 0), dilation=(1, 2)
    )
    s = cb.conv_output_shape(
        (5, 7), (3, 2), stride=(2, 3), padding=(1, 0), dilation=(1, 2)
    )
    assert f"= {s.oh}" in all_text(fig) and f"= {s.ow}" in all_text(fig)
    assert as_grid(fig, "counts", (7, 7)).sum() == s.oh * s.ow * 6


@pytest.mark.parametrize(
    "c,f,g", [(4, 4, 1), (4, 4, 2), (4, 4, 4), (6, 3, 3), (2, 4, 2)]
)
def test_groups_lines_come_from_conv(c, f, g):
    fig = P.plot_groups(c, f, groups=g)
    drawn = {
        tuple(map(int, ln.get_gid()[4:].split(",")))
        for ln in fig.axes[0].lines
        if (ln.get_gid() or "").startswith("conn")
    }
    # which input channels reach which output channels, asked of conv2d_forward with a
    # random probe
    x = np.random.default_rng(0).normal(size=(1, c, 1, 1))
    w = np.ones((f, c // g, 1, 1))
    expect = set()
    for ci in range(c):
        xc = np.zeros_like(x)
        xc[0, ci] = 1.0
        y = cb.conv2d_forward(xc, w, groups=g)[0, :, 0, 0]
        expect |= {(ci, fo) for fo in np.flatnonzero(y)}
    assert drawn == expect and len(drawn) == f * c // g
    with pytest.raises(ValueError, match="groups"):
        P.plot_groups(4, 4, groups=3)


def test_grad_weight_shows_conv2d_grad_weight():
    x = P.example((5, 5), 0, -2, 4)
    dout = P.example((2, 2), 1, -2, 3)
    kw = dict(stride=2, padding=0, dilation=1)
    dw = cb.conv2d_grad_weight(dout[None, None], x[None, None], (1, 1, 3, 3), **kw)[
        0, 0
    ]
    fig = P.plot_grad_weight(x, dout, kernel_size=3, entry=(2, 2), **kw)
    np.testing.assert_array_equal(as_grid(fig, "dK", (3, 3)), dw)
    xs = as_grid(fig, "Xs", (2, 2))
    np.testing.assert_array_equal(
        xs, cb.window_view(x[None, None], 3, **kw)[0, 0, :, :, 2, 2]
    )
    assert (xs * dout).sum() == dw[2, 2]
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        P.plot_grad_weight(x, np.ones((3, 3)), kernel_size=3, **kw)


def test_grad_input_map_counts_and_pairs():
    fig = P.plot_grad_input_map(6, 3, stride=2, pixel=(2, 2))
    counts = cb.conv2d_grad_input(
        np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), (1, 1, 6, 6), stride=2
    )[0, 0]
    np.testing.assert_array_equal(as_grid(fig, "counts", (6, 6)), counts)
    assert (
        counts[5].sum() == 0 and counts[:, 5].sum() == 0
    )  # unused border: zero gradient
    assert set(shown(fig, "dY").values()) == {"K22", "K20", "K02", "K00"}
    # stride 3 with a 2-wide kernel leaves holes
    fig = P.plot_grad_input_map(5, 2, stride=3, pixel=(2, 2))
    assert "no window reads X[2,2]" in all_text(fig)
    assert as_grid(fig, "counts", (5, 5))[2].sum() == 0


@pytest.mark.parametrize(
    "stride,padding,dilation", [(2, 0, 1), (1, 1, 1), (2, 1, 2), (3, 0, 1)]
)
def test_full_conv_equals_conv2d_grad_input(stride, padding, dilation):
    dout = P.example((2, 3), 3, -2, 4)
    data = P.full_conv_data(dout, W3, stride=stride, padding=padding, dilation=dilation)
    full = data.full
    fig = P.plot_full_conv(
        dout,
        W3,
        stride=stride,
        padding=padding,
        dilation=dilation,
        position=(full.shape[0] - 1, full.shape[1] - 1),
    )
    drawn = as_grid(fig, "dXp", full.shape)
    h, w = data.input_size
    dx = cb.conv2d_grad_input(
        dout[None, None],
        W3[None, None],
        (1, 1, h, w),
        stride=stride,
        padding=padding,
        dilation=dilation,
    )[0, 0]
    np.testing.assert_allclose(
        drawn, dx
    )  # the correlation is ∇X itself: nothing to crop
    assert "✓" in all_text(fig)
    # the drawn input of the full convolution is dilate(dout) bordered by D(K-1), its
    # padding rows cut off: stride zeros included, dout[0, 0] at D(K-1) - P
    big = as_grid(fig, "big", data.big.shape)
    e = dilation * 2 - padding
    np.testing.assert_array_equal(
        big[e : e + stride * 1 + 1, e : e + stride * 2 + 1],
        cb.dilate(dout[None, None], stride)[0, 0],
    )
    np.testing.assert_array_equal(as_grid(fig, "rotK", (3, 3)), cb.rot180(W3))


def test_col2im_adds_up_to_grad_input():
    dout = P.example((3, 3), 4, 1, 4)
    kw = dict(stride=1, padding=0, dilation=1)
    dx = cb.conv2d_grad_input(dout[None, None], W2[None, None], (1, 1, 4, 4), **kw)[
        0, 0
    ]
    fig = P.plot_col2im(dout, W2, **kw)
    np.testing.assert_array_equal(as_grid(fig, "acc", (4, 4)), dx)
    counts = as_grid(fig, "counts", (4, 4))
    assert counts.max() == 4  # overlaps: why +=
    np.testing.assert_array_equal(
        as_grid(P.plot_col2im(dout, W2, upto=0), "acc", (4, 4)), 0
    )
    one = as_grid(P.plot_col2im(dout, W2, upto=1), "acc", (4, 4))
    np.testing.assert_array_equal(one[:2, :2], dout[0, 0] * W2)
    with pytest.raises(ValueError, match="upto"):
        P.plot_col2im(upto=10)


def test_col2im_is_as_wide_as_what_it_draws():
    """No room kept for a panel that is not drawn (the counts sit under dX): in the
    input-gradient chapter's stride-2 case the pictures reach the right edge (the
    outlines end at 16 of 17.3 cells; 24.7 when a third panel's room was kept)."""
    fig = P.plot_col2im(
        np.array([[1.0, 2.0], [3.0, 4.0]]),
        np.arange(9.0).reshape(3, 3),
        input_size=4,
        stride=2,
        padding=1,
    )
    ax = fig.axes[0]
    right = max(p.get_x() + p.get_width() for p in ax.patches if hasattr(p, "get_x"))
    assert right > 0.85 * max(ax.get_xlim()), (right, ax.get_xlim())


def test_rot180_tutorial_ways_drawn():
    w = np.arange(1.0, 19.0).reshape(3, 3, 1, 2)
    fig = P.plot_rot180(w)
    r1, r2 = cb.rot180_tutorial(w, 1), cb.rot180_tutorial(w, 2)
    for co in range(2):
        np.testing.assert_array_equal(
            as_grid(fig, f"R1_0{co}", (3, 3)), r1[:, :, co, 0]
        )
        np.testing.assert_array_equal(
            as_grid(fig, f"R2_0{co}", (3, 3)), r2[:, :, co, 0]
        )
        np.testing.assert_array_equal(as_grid(fig, f"R0_0{co}", (3, 3)), w[:, :, 0, co])
    assert "way 1 == way 2: True" in all_text(
        fig
    ) and "(C_out, C_in, k, k): True" in all_text(fig)


@pytest.mark.parametrize(
    "w_shape, groups", [((6, 2, 2, 2), 2), ((4, 1, 3, 3), 4), ((4, 3, 2, 3), 1)]
)
def test_swap_in_out_draws_the_turned_grouped_kernel(w_shape, groups):
    w = np.arange(1.0, 1 + np.prod(w_shape)).reshape(w_shape)
    w0 = w.copy()
    fig = P.plot_swap_in_out(w, groups=groups)
    np.testing.assert_array_equal(w, w0)
    turned = cb.rot180(cb.swap_in_out(w, groups))
    f, cg, kh, kw = w_shape
    assert turned.shape == (cg * groups, f // groups, kh, kw)
    for k in range(f):
        for q in range(cg):
            np.testing.assert_array_equal(as_grid(fig, f"W{k}_{q}", (kh, kw)), w[k, q])
    for r in range(cg * groups):
        for q in range(f // groups):
            np.testing.assert_array_equal(
                as_grid(fig, f"T{r}_{q}", (kh, kw)), turned[r, q]
            )
            # the label names the kernel of w it came from, turned: group g's block
            g, c = divmod(r, cg)
            source = w[g * (f // groups) + q, c]
            np.testing.assert_array_equal(turned[r, q], cb.rot180(source))
            assert f"w[{g * (f // groups) + q},{c}]" in texts(fig)
    text = all_text(fig)
    assert "cb.conv2d_grad_input's ∇X: ✓" in text
    if groups > 1:
        plain = (cg, f, kh, kw)
        assert f"gives {plain}: not a (C, F/G, KH, KW) kernel" in text
    else:
        assert "groups == 1: the swap is rot180(w).transpose(1, 0, 2, 3)" in text


def test_swap_in_out_bad_arguments_are_named():
    with pytest.raises(ValueError, match="groups=4 must divide the 6 filters"):
        P.plot_swap_in_out(np.ones((6, 1, 2, 2)), groups=4)
    with pytest.raises(ValueError, match=r"w must have shape \(F, C // groups"):
        P.swap_in_out_data(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="readable picture"):
        P.swap_in_out_data(np.ones((16, 1, 3, 3)), groups=1)


@pytest.mark.parametrize("m", [2, 4])
def test_winograd_tile(m):
    d = P.example((m + 2, m + 2), 7, -3, 4)
    fig = P.plot_winograd(d, m=m)
    direct = cb.conv2d_forward(d[None, None], W3[None, None])[0, 0]
    np.testing.assert_allclose(as_grid(fig, "direct", (m, m)), direct)
    np.testing.assert_allclose(
        as_grid(fig, "Y", (m, m)), direct, atol=1e-2
    )  # drawn with 3 significant digits
    n_direct, n_wino = winograd.winograd_multiplications(m)
    assert f"{n_wino} multiplications per tile instead of {n_direct}" in all_text(fig)
    with pytest.raises(ValueError, match="input tile"):
        P.plot_winograd(np.ones((3, 3)), m=m)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="position"):
        P.plot_sliding_window(position=(5, 0))
    with pytest.raises(ValueError, match=r"x must have shape \(H, W\)"):
        P.plot_sliding_window(np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="one sample and one channel"):
        P.plot_im2col(np.ones((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="row"):
        P.plot_im2col(row=9)


def test_inputs_not_modified():
    x = P.example((5, 5), 0, 0, 4)
    w = W3.copy()
    x0, w0 = x.copy(), w.copy()
    P.plot_sliding_window(x, w)
    P.plot_full_conv(None, w)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------------------
# Animations

_DEFAULTS = {}


def default_animation(name):
    if name not in _DEFAULTS:
        _DEFAULTS[name] = getattr(P, name)()
    return _DEFAULTS[name]


SMALL = {
    "animate_sliding_window": dict(
        x=np.arange(9.0).reshape(3, 3), w=W2, stride=1, padding=0
    ),
    "animate_im2col": dict(x=np.arange(9.0).reshape(3, 3), w=W2),
    "animate_output_size": dict(input_size=4, kernel_size=2),
    "animate_groups": dict(in_channels=2, out_channels=2),
    "animate_grad_weight": dict(x=np.arange(9.0).reshape(3, 3), kernel_size=2),
    "animate_grad_input_map": dict(input_size=2, kernel_size=1, stride=1),
    "animate_full_conv": dict(dout=np.ones((1, 1)), w=W2, stride=1),
    "animate_col2im": dict(dout=np.ones((1, 2)), w=W2),
}


def test_every_animation_has_a_small_case():
    assert set(SMALL) == set(ANIMATIONS)


@pytest.mark.parametrize("name", ANIMATIONS)
def test_animation_defaults(name):
    before = set(plt.get_fignums())
    a = default_animation(name)
    assert set(plt.get_fignums()) == before
    assert isinstance(a, P.JSAnimation)
    assert 2 <= a.frames <= P.MAX_FRAMES
    assert a.nbytes <= LIMIT, f"{name}: {a.nbytes / 1024:.0f} KB"
    html = a._repr_html_()
    assert html == str(a) == a.html
    assert html.count("data:image/png;base64,") == a.frames
    ids = set(re.findall(r'id="_anim_img([0-9a-f]+)"', html))
    assert len(ids) == 1
    # no random id left anywhere: every 32-hex id in the player is ours
    assert set(re.findall(r"anim([0-9a-f]{32})", html)) == ids
    assert name[len("animate_") :] in repr(a)
    assert "http" not in html  # nothing fetched from the network (no CDN stylesheet)


@pytest.mark.parametrize("name", ANIMATIONS)
def test_animation_deterministic_and_ids_distinct(name):
    f = getattr(P, name)
    one, two = f(**SMALL[name], dpi=30), f(**SMALL[name], dpi=30)
    assert one.html == two.html
    id_small = re.search(r"_anim_img([0-9a-f]{32})", one.html).group(1)
    id_default = re.search(
        r"_anim_img([0-9a-f]{32})", default_animation(name).html
    ).group(1)
    assert id_small != id_default


def test_two_different_animations_have_different_ids():
    ids = {
        re.search(r"_anim_img([0-9a-f]{32})", default_animation(n).html).group(1)
        for n in ANIMATIONS
    }
    assert len(ids) == len(ANIMATIONS)


def test_animation_frames_are_capped():
    # 40 output positions -> sub-sampled evenly to 36, first and last kept (cells too
    # small for numbers: fast)
    a = P.animate_sliding_window(
        np.arange(40.0).reshape(1, 40), np.ones((1, 1)), stride=1, padding=0, dpi=20
    )
    assert a.frames == P.MAX_FRAMES
    assert (
        sample_frames(40)[0] == 0
        and sample_frames(40)[-1] == 39
        and len(set(sample_frames(40))) == 36
    )


def test_plotting_imports_without_ipywidgets():
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import matplotlib; matplotlib.use('Agg')\n"
        "from convbook import plotting\n"
        "plotting.plot_output_size()\n"
        "print('ok')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# --------------------------------------------------------------------------------------
# The package's contract: canvas and player apart from the figures; each figure's data
# public and computed once

FIGURES = [n[len("plot_") :] for n in PLOTS if n != "plot_palette"]


def test_modules_hold_one_kind_of_thing():
    from pathlib import Path

    package = Path(P.__file__).parent
    for path in package.glob("*.py"):
        n_lines = len(path.read_text(encoding="utf-8").splitlines())
        assert n_lines <= 600, f"{path.name}: {n_lines} lines"
    from convbook.plotting import canvas, player

    for module in (canvas, player):
        assert not [
            n for n in module.__all__ if n.startswith(("plot_", "animate_", "draw_"))
        ], module
    assert {P.plot_sliding_window.__module__, P.plot_full_conv.__module__} <= {
        f"convbook.plotting.{m}"
        for m in ("forward", "columns", "backward", "transforms")
    }


@pytest.mark.parametrize("figure", FIGURES)
def test_every_figure_has_public_data_and_draw(figure):
    data_fn, draw_fn = getattr(P, f"{figure}_data"), getattr(P, f"draw_{figure}")
    assert f"{figure}_data" in P.__all__ and f"draw_{figure}" in P.__all__
    data = data_fn()
    assert isinstance(data, tuple) and hasattr(data, "_fields")  # a named tuple
    # drawing the data is the same picture as the one-call plot
    assert texts(draw_fn(data)) == texts(getattr(P, f"plot_{figure}")())


# the animations that sweep a position over one data: the data is computed once, not
# once a frame
SWEEPS = {
    "animate_sliding_window": ("forward", "sliding_window_data"),
    "animate_im2col": ("columns", "im2col_data"),
    "animate_col2im": ("columns", "col2im_data"),
    "animate_grad_weight": ("backward", "grad_weight_data"),
    "animate_grad_input_map": ("backward", "grad_input_map_data"),
    "animate_full_conv": ("backward", "full_conv_data"),
}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_animation_computes_its_data_once(name, monkeypatch):
    import importlib

    module_name, data_name = SWEEPS[name]
    module = importlib.import_module(f"convbook.plotting.{module_name}")
    calls = []
    real = getattr(module, data_name)
    monkeypatch.setattr(
        module, data_name, lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    a = getattr(P, name)(**SMALL[name], dpi=20)
    assert a.frames >= 2 and len(calls) == 1
