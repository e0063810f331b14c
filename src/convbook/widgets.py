"""Live explorers over :mod:`convbook.plotting`: sliders in, the same pictures out
(needs a running kernel).

Every ``explore_*`` returns an ``ipywidgets.VBox``: a row of controls, an ``Image``
holding the picture (PNG) and an ``HTML`` readout with the numbers convbook computed. On
every change the figure's numbers are computed once (``cbp.<figure>_data``), drawn from
there (``cbp.draw_<figure>``) and read out from there. The picture lives in the image
widget's value, so the widget state a notebook saves shows the last picture even in
static HTML, where the sliders no longer do anything (the ``animate_*`` functions are
the static twins). For tests and for readers poking at them, the returned box has

* ``.controls``: dict name -> control widget,
* ``.image``, ``.readout``: the picture and the text,
* ``.refresh()``: redraw from the controls' current values.

ipywidgets is imported here only; :mod:`convbook.plotting` works without it. Only public
names of :mod:`convbook.plotting` are used.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from . import plotting as cbp

__all__ = [
    "explore_sliding_window",
    "explore_im2col",
    "explore_output_size",
    "explore_groups",
    "explore_grad_weight",
    "explore_grad_input_map",
    "explore_full_conv",
    "explore_col2im",
    "explore_winograd",
]

#: CSS pixels per inch of figure: the size a notebook shows a matplotlib figure at.
CSS_DPI = 72
#: Image pixels per CSS pixel: 2 keeps the pictures sharp on high-density screens.
PIXEL_RATIO = 2


def _slider(description, value, lo, hi):
    return W.IntSlider(
        value=value,
        min=lo,
        max=hi,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
        layout=W.Layout(width="210px"),
    )


def _fit(slider, n):
    """Set a position slider's range to 0..n-1 (n >= 1); its value, clamped."""
    slider.max = max(n - 1, 0)
    return slider.value


def _explorer(controls, draw):
    """Wire controls to ``draw(controls) -> (Figure, readout_html)``.

    ``draw`` reads the controls' values and may first fit dependent ranges (an output
    position's maximum, the groups that divide the channels); the changes it makes do
    not trigger a second drawing.
    """
    # Shown at its natural size (a stretched picture is a blurred one), never wider
    # than the output area.
    image = W.Image(format="png", layout=W.Layout(max_width="100%", height="auto"))
    readout = W.HTML()
    row = W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap"))
    box = W.VBox([row, image, readout])
    busy = [False]

    def refresh(change=None):
        if busy[0]:
            return
        busy[0] = True
        try:
            try:
                fig, text = draw(controls)
            except ValueError as err:  # an impossible setting: say why
                readout.value = f"<b>not a valid setting:</b> {html.escape(str(err))}"
                return
            png = cbp.png_bytes(fig, dpi=CSS_DPI * PIXEL_RATIO)
            image.value = png
            width = int.from_bytes(png[16:20], "big")  # the PNG header's width
            image.layout.width = f"{width / PIXEL_RATIO:.0f}px"
            readout.value = text
        finally:
            busy[0] = False

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    box.controls, box.image, box.readout, box.refresh = (
        controls,
        image,
        readout,
        refresh,
    )
    return box


def _hyper(c):
    return dict(
        stride=c["stride"].value,
        padding=c["padding"].value,
        dilation=c["dilation"].value,
    )


# --------------------------------------------------------------------------------------


def explore_sliding_window(x=None, w=None):
    """Stride, padding, dilation and the output position of
    :func:`convbook.plotting.plot_sliding_window`.

    Parameters
    ----------
    x, w : as in :func:`~convbook.plotting.plot_sliding_window` (defaults: the same
        examples); without ``x`` a ``size`` slider picks the input size.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = {}
    if x is None:
        controls["size"] = _slider("input size", 5, 3, 8)
    controls.update(
        stride=_slider("stride", 2, 1, 3),
        padding=_slider("padding", 1, 0, 2),
        dilation=_slider("dilation", 1, 1, 2),
        row=_slider("output row", 0, 0, 2),
        col=_slider("output col", 0, 0, 2),
    )

    def draw(c):
        xi = x if x is not None else cbp.example((c["size"].value,) * 2)
        data = cbp.sliding_window_data(xi, w, **_hyper(c))
        y = data.y
        row, col = _fit(c["row"], y.shape[0]), _fit(c["col"], y.shape[1])
        fig = cbp.draw_sliding_window(data, position=(row, col))
        return fig, (
            f"Y is {y.shape[0]}×{y.shape[1]}; Y[{row},{col}] = "
            f"<b>{cbp.fmt(y[row, col])}</b> (cb.conv2d_forward)"
        )

    return _explorer(controls, draw)


def explore_im2col(x=None, w=None):
    """Stride, padding, dilation and the highlighted row of
    :func:`convbook.plotting.plot_im2col`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        stride=_slider("stride", 1, 1, 3),
        padding=_slider("padding", 0, 0, 2),
        dilation=_slider("dilation", 1, 1, 2),
        row=_slider("row", 0, 0, 8),
    )

    def draw(c):
        data = cbp.im2col_data(x, w, **_hyper(c))
        cols = data.cols
        fig = cbp.draw_im2col(data, row=_fit(c["row"], cols.shape[0]))
        return fig, (
            f"X' = cb.im2col(X) has shape <b>{cols.shape}</b>: "
            f"{cols.shape[0]} windows × {cols.shape[1]} values; "
            f"it holds {cols.size} numbers for the input's {data.x.size}"
        )

    return _explorer(controls, draw)


def explore_output_size():
    """Input size, kernel, padding, stride and dilation of
    :func:`convbook.plotting.plot_output_size`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        input_size=_slider("input", 6, 1, 12),
        kernel_size=_slider("kernel", 3, 1, 5),
        padding=_slider("padding", 0, 0, 3),
        stride=_slider("stride", 2, 1, 4),
        dilation=_slider("dilation", 1, 1, 3),
    )

    def draw(c):
        sizes = c["input_size"].value, c["kernel_size"].value
        data = cbp.output_size_data(*sizes, **_hyper(c))
        s = data.out_shape
        return cbp.draw_output_size(data), (
            f"output <b>{s.oh}×{s.ow}</b>; {s.unused_h} row(s) and {s.unused_w} "
            f"column(s) of the padded input are never read "
            f"(cb.conv_output_shape → {tuple(s)})"
        )

    return _explorer(controls, draw)


def explore_groups():
    """Input channels, output channels and groups (only values that divide both) of
    :func:`convbook.plotting.plot_groups`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        in_channels=_slider("in channels", 4, 1, 8),
        out_channels=_slider("out channels", 4, 1, 8),
        groups=W.Dropdown(
            options=[1, 2, 4],
            value=2,
            description="groups",
            layout=W.Layout(width="160px"),
        ),
    )

    def draw(c):
        ci, co = c["in_channels"].value, c["out_channels"].value
        options = [g for g in range(1, min(ci, co) + 1) if ci % g == 0 and co % g == 0]
        if list(c["groups"].options) != options:
            keep = c["groups"].value if c["groups"].value in options else options[-1]
            c["groups"].options = options
            c["groups"].value = keep
        g = c["groups"].value
        data = cbp.groups_data(ci, co, groups=g)
        return cbp.draw_groups(data), (
            f"weight shape ({co}, {ci // g}, k, k); each output channel reads "
            f"<b>{int(data.connected[:, 0].sum())}</b> of {ci} input channels "
            "(found by running cb.conv2d_forward on one-hot inputs)"
        )

    return _explorer(controls, draw)


def explore_grad_weight(x=None):
    """Kernel size, stride, padding, dilation and the kernel entry of
    :func:`convbook.plotting.plot_grad_weight`.

    Returns
    -------
    ipywidgets.VBox
    """
    xi = x if x is not None else cbp.example((5, 5), 0, 0, 5)
    controls = dict(
        kernel_size=_slider("kernel", 2, 1, 3),
        stride=_slider("stride", 1, 1, 2),
        padding=_slider("padding", 0, 0, 1),
        dilation=_slider("dilation", 1, 1, 2),
        p=_slider("entry row p", 0, 0, 1),
        q=_slider("entry col q", 0, 0, 1),
    )

    def draw(c):
        k = c["kernel_size"].value
        data = cbp.grad_weight_data(xi, None, kernel_size=k, **_hyper(c))
        p, q = _fit(c["p"], k), _fit(c["q"], k)
        return cbp.draw_grad_weight(data, entry=(p, q)), (
            f"∇K[{p},{q}] = <b>{cbp.fmt(data.dw[p, q])}</b> (cb.conv2d_grad_weight), a "
            f"sum of {data.dout.size} products ∇Y[i,j]·X[…]"
        )

    return _explorer(controls, draw)


def explore_grad_input_map():
    """Input size, kernel, stride, padding, dilation and the pixel of
    :func:`convbook.plotting.plot_grad_input_map`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        input_size=_slider("input", 6, 2, 9),
        kernel_size=_slider("kernel", 3, 1, 4),
        stride=_slider("stride", 2, 1, 4),
        padding=_slider("padding", 0, 0, 2),
        dilation=_slider("dilation", 1, 1, 2),
        r=_slider("pixel row", 2, 0, 5),
        c=_slider("pixel col", 2, 0, 5),
    )

    def draw(c):
        n = c["input_size"].value
        data = cbp.grad_input_map_data(n, c["kernel_size"].value, **_hyper(c))
        r, col = _fit(c["r"], n), _fit(c["c"], n)
        counts = data.counts
        zero = int((counts == 0).sum())
        return cbp.draw_grad_input_map(data, pixel=(r, col)), (
            f"X[{r},{col}] is reached by <b>{int(counts[r, col])}</b> (output, weight) "
            f"pairs; {zero} of {counts.size} pixels get zero gradient whatever ∇Y is"
        )

    return _explorer(controls, draw)


def explore_full_conv():
    """∇Y size, kernel size, stride, padding, dilation and the window position of
    :func:`convbook.plotting.plot_full_conv`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        dout_size=_slider("∇Y size", 2, 1, 3),
        kernel_size=_slider("kernel", 3, 2, 3),
        stride=_slider("stride", 2, 1, 3),
        padding=_slider("padding", 0, 0, 1),
        dilation=_slider("dilation", 1, 1, 2),
        row=_slider("row", 0, 0, 4),
        col=_slider("col", 0, 0, 4),
    )

    def draw(c):
        n = c["dout_size"].value
        dout = cbp.example((n, n), 3, 1, 4)
        w = cbp.example_kernel(c["kernel_size"].value)
        data = cbp.full_conv_data(dout, w, **_hyper(c))
        row, col = (
            _fit(c["row"], data.full.shape[0]),
            _fit(c["col"], data.full.shape[1]),
        )
        dx = html.escape(np.array2string(data.dx, precision=3))
        fig = cbp.draw_full_conv(data, position=(row, col))
        return fig, f"∇X (cb.conv2d_grad_input) =<pre>{dx}</pre>"

    return _explorer(controls, draw)


def explore_col2im():
    """Stride, dilation and how many rows of ∇X' have been added in
    :func:`convbook.plotting.plot_col2im`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        stride=_slider("stride", 1, 1, 2),
        dilation=_slider("dilation", 1, 1, 2),
        upto=_slider("rows added", 9, 0, 9),
    )
    dout = cbp.example((3, 3), 4, 1, 4)

    def draw(c):
        hyper = dict(stride=c["stride"].value, dilation=c["dilation"].value)
        data = cbp.col2im_data(dout, cbp.example_kernel(2), **hyper)
        upto = c["upto"].value
        dx = html.escape(np.array2string(data.dx, precision=3))
        return cbp.draw_col2im(data, upto=upto), (
            f"{upto} of {dout.size} rows added; with all of them "
            f"∇X = cb.conv2d_grad_input =<pre>{dx}</pre>"
        )

    return _explorer(controls, draw)


def explore_winograd():
    """The tile size m and the tile's values (a seed) of
    :func:`convbook.plotting.plot_winograd`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(
        m=W.Dropdown(
            options=[2, 4], value=2, description="m", layout=W.Layout(width="120px")
        ),
        seed=_slider("tile values (seed)", 5, 0, 20),
    )

    def draw(c):
        m = c["m"].value
        tile = cbp.example((m + 2, m + 2), c["seed"].value, 0, 4)
        data = cbp.winograd_data(tile, None, m=m)
        n_direct, n_wino = data.multiplications
        return cbp.draw_winograd(data), (
            f"F({m}×{m}, 3×3): <b>{n_wino}</b> multiplications per {m}×{m} output tile "
            f"instead of {n_direct}; output checked against cb.conv2d_forward"
        )

    return _explorer(controls, draw)
