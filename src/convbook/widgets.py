"""Live explorers over :mod:`convbook.plotting`: sliders in, the same pictures out (needs a running kernel).

Every ``explore_*`` returns an ``ipywidgets.VBox``: a row of controls, an ``Image`` holding the picture (PNG) and an
``HTML`` readout with the numbers convbook computed. The picture lives in the image widget's value, so the widget
state a notebook saves shows the last picture even in static HTML, where the sliders no longer do anything (the
``animate_*`` functions are the static twins). For tests and for readers poking at them, the returned box has

* ``.controls``: dict name -> control widget,
* ``.image``, ``.readout``: the picture and the text,
* ``.refresh()``: redraw from the controls' current values.

ipywidgets is imported here only; :mod:`convbook.plotting` works without it.
"""

from __future__ import annotations

import html

import ipywidgets as W
import numpy as np

from . import plotting as P
from .conv import conv2d_forward
from .columns import im2col
from .shapes import conv_output_shape

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


def _slider(description, value, lo, hi):
    return W.IntSlider(value=value, min=lo, max=hi, description=description, continuous_update=False,
                       style={"description_width": "initial"}, layout=W.Layout(width="210px"))


def _explorer(controls, draw, adjust=None, dpi=72):
    """Wire controls to a drawing function ``draw(**values) -> (Figure, readout_html)``.

    ``adjust(controls)`` runs first on every change, to fit dependent ranges (e.g. an output position's maximum);
    the changes it makes do not trigger a second drawing.
    """
    image = W.Image(format="png", layout=W.Layout(max_width="100%"))
    readout = W.HTML()
    box = W.VBox([W.HBox(list(controls.values()), layout=W.Layout(flex_flow="row wrap")), image, readout])
    busy = [False]

    def refresh(change=None):
        if busy[0]:
            return
        busy[0] = True
        try:
            if adjust is not None:
                adjust(controls)
            values = {k: c.value for k, c in controls.items()}
            try:
                fig, text = draw(**values)
            except ValueError as err:  # an impossible setting (kernel wider than the input, ...): say why
                readout.value = f"<b>not a valid setting:</b> {html.escape(str(err))}"
                return
            image.value = P._png(fig, dpi)
            readout.value = text
        finally:
            busy[0] = False

    for c in controls.values():
        c.observe(refresh, names="value")
    refresh()
    box.controls, box.image, box.readout, box.refresh = controls, image, readout, refresh
    return box


def _fit(slider, n):
    """Set a position slider's range to 0..n-1 (n >= 1)."""
    slider.max = max(n - 1, 0)


# ----------------------------------------------------------------------------------------------------------------


def explore_sliding_window(x=None, w=None):
    """Stride, padding, dilation and the output position of :func:`convbook.plotting.plot_sliding_window`.

    Parameters
    ----------
    x, w : as in :func:`~convbook.plotting.plot_sliding_window` (defaults: the same examples); without ``x`` a
        ``size`` slider picks the input size.

    Returns
    -------
    ipywidgets.VBox
    """
    w = P._image(w, "w", P._W3)
    controls = {}
    if x is None:
        controls["size"] = _slider("input size", 5, 3, 8)
    controls.update(stride=_slider("stride", 2, 1, 3), padding=_slider("padding", 1, 0, 2),
                    dilation=_slider("dilation", 1, 1, 2), row=_slider("output row", 0, 0, 2),
                    col=_slider("output col", 0, 0, 2))

    def image(size):
        return P._image(x, "x", None) if x is not None else P._example((size, size), 0, 0, 4)

    def adjust(c):
        size = c["size"].value if "size" in c else None
        try:
            s = conv_output_shape(image(size).shape, w.shape, stride=c["stride"].value, padding=c["padding"].value,
                                  dilation=c["dilation"].value)
        except ValueError:
            return
        _fit(c["row"], s.oh)
        _fit(c["col"], s.ow)

    def draw(stride, padding, dilation, row, col, size=None):
        xi = image(size)
        fig = P.plot_sliding_window(xi, w, stride=stride, padding=padding, dilation=dilation, position=(row, col))
        y = conv2d_forward(xi[None, None], w[None, None], stride=stride, padding=padding, dilation=dilation)[0, 0]
        return fig, (f"Y is {y.shape[0]}×{y.shape[1]}; Y[{row},{col}] = <b>{P._fmt(y[row, col])}</b> "
                     f"(cb.conv2d_forward)")

    return _explorer(controls, draw, adjust)


def explore_im2col(x=None, w=None):
    """Stride, padding, dilation and the highlighted row of :func:`convbook.plotting.plot_im2col`.

    Returns
    -------
    ipywidgets.VBox
    """
    xi = P._image(x, "x", P._example((4, 4), 0, 0, 5))
    wi = P._image(w, "w", P._W2)
    controls = dict(stride=_slider("stride", 1, 1, 3), padding=_slider("padding", 0, 0, 2),
                    dilation=_slider("dilation", 1, 1, 2), row=_slider("row", 0, 0, 8))

    def adjust(c):
        try:
            s = conv_output_shape(xi.shape, wi.shape, stride=c["stride"].value, padding=c["padding"].value,
                                  dilation=c["dilation"].value)
        except ValueError:
            return
        _fit(c["row"], s.oh * s.ow)

    def draw(stride, padding, dilation, row):
        fig = P.plot_im2col(xi, wi, stride=stride, padding=padding, dilation=dilation, row=row)
        cols = im2col(xi[None, None], wi.shape, stride=stride, padding=padding, dilation=dilation)
        return fig, (f"X' = cb.im2col(X) has shape <b>{cols.shape}</b>: {cols.shape[0]} windows × "
                     f"{cols.shape[1]} values; it holds {cols.size} numbers for the input's {xi.size}")

    return _explorer(controls, draw, adjust)


def explore_output_size():
    """Input size, kernel, padding, stride and dilation of :func:`convbook.plotting.plot_output_size`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(input_size=_slider("input", 6, 1, 12), kernel_size=_slider("kernel", 3, 1, 5),
                    padding=_slider("padding", 0, 0, 3), stride=_slider("stride", 2, 1, 4),
                    dilation=_slider("dilation", 1, 1, 3))

    def draw(input_size, kernel_size, padding, stride, dilation):
        s = conv_output_shape(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation)
        fig = P.plot_output_size(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation)
        return fig, (f"output <b>{s.oh}×{s.ow}</b>; {s.unused_h} row(s) and {s.unused_w} column(s) of the padded "
                     f"input are never read (cb.conv_output_shape → {tuple(s)})")

    return _explorer(controls, draw)


def explore_groups():
    """Input channels, output channels and groups (only values that divide both) of
    :func:`convbook.plotting.plot_groups`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(in_channels=_slider("in channels", 4, 1, 8), out_channels=_slider("out channels", 4, 1, 8),
                    groups=W.Dropdown(options=[1, 2, 4], value=2, description="groups",
                                      layout=W.Layout(width="160px")))

    def adjust(c):
        ci, co = c["in_channels"].value, c["out_channels"].value
        options = [g for g in range(1, min(ci, co) + 1) if ci % g == 0 and co % g == 0]
        if list(c["groups"].options) != options:
            keep = c["groups"].value if c["groups"].value in options else options[-1]
            c["groups"].options = options
            c["groups"].value = keep

    def draw(in_channels, out_channels, groups):
        fig = P.plot_groups(in_channels, out_channels, groups=groups)
        conn = P._connections(in_channels, out_channels, groups)
        return fig, (f"weight shape ({out_channels}, {in_channels // groups}, k, k); each output channel reads "
                     f"<b>{int(conn[:, 0].sum())}</b> of {in_channels} input channels (found by running "
                     f"cb.conv2d_forward on one-hot inputs)")

    return _explorer(controls, draw, adjust)


def explore_grad_weight(x=None):
    """Kernel size, stride, padding, dilation and the kernel entry of :func:`convbook.plotting.plot_grad_weight`.

    Returns
    -------
    ipywidgets.VBox
    """
    xi = P._image(x, "x", P._example((5, 5), 0, 0, 5))
    controls = dict(kernel_size=_slider("kernel", 2, 1, 3), stride=_slider("stride", 1, 1, 2),
                    padding=_slider("padding", 0, 0, 1), dilation=_slider("dilation", 1, 1, 2),
                    p=_slider("entry row p", 0, 0, 1), q=_slider("entry col q", 0, 0, 1))

    def adjust(c):
        _fit(c["p"], c["kernel_size"].value)
        _fit(c["q"], c["kernel_size"].value)

    def draw(kernel_size, stride, padding, dilation, p, q):
        fig = P.plot_grad_weight(xi, None, kernel_size=kernel_size, stride=stride, padding=padding,
                                 dilation=dilation, entry=(p, q))
        _, dout, _, dw, _ = P._grad_weight_data(xi, None, kernel_size, stride, padding, dilation)
        return fig, (f"∇K[{p},{q}] = <b>{P._fmt(dw[p, q])}</b> (cb.conv2d_grad_weight), a sum of "
                     f"{dout.size} products ∇Y[i,j]·X[…]")

    return _explorer(controls, draw, adjust)


def explore_grad_input_map():
    """Input size, kernel, stride, padding, dilation and the pixel of
    :func:`convbook.plotting.plot_grad_input_map`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(input_size=_slider("input", 6, 2, 9), kernel_size=_slider("kernel", 3, 1, 4),
                    stride=_slider("stride", 2, 1, 4), padding=_slider("padding", 0, 0, 2),
                    dilation=_slider("dilation", 1, 1, 2), r=_slider("pixel row", 2, 0, 5),
                    c=_slider("pixel col", 2, 0, 5))

    def adjust(c):
        _fit(c["r"], c["input_size"].value)
        _fit(c["c"], c["input_size"].value)

    def draw(input_size, kernel_size, stride, padding, dilation, r, c):
        fig = P.plot_grad_input_map(input_size, kernel_size, stride=stride, padding=padding, dilation=dilation,
                                    pixel=(r, c))
        counts = P._dependency_data(input_size, kernel_size, stride, padding, dilation)[3]
        zero = int((counts == 0).sum())
        return fig, (f"X[{r},{c}] is reached by <b>{int(counts[r, c])}</b> (output, weight) pairs; "
                     f"{zero} of {counts.size} pixels get zero gradient whatever ∇Y is")

    return _explorer(controls, draw, adjust)


def explore_full_conv():
    """∇Y size, kernel size, stride, padding, dilation and the window position of
    :func:`convbook.plotting.plot_full_conv`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(dout_size=_slider("∇Y size", 2, 1, 3), kernel_size=_slider("kernel", 3, 2, 3),
                    stride=_slider("stride", 2, 1, 3), padding=_slider("padding", 0, 0, 1),
                    dilation=_slider("dilation", 1, 1, 2), row=_slider("row", 0, 0, 4), col=_slider("col", 0, 0, 4))

    def args(dout_size, kernel_size):
        dout = P._example((dout_size, dout_size), 3, 1, 4)
        w = P._W3 if kernel_size == 3 else P._W2
        return dout, w

    def adjust(c):
        dout, w = args(c["dout_size"].value, c["kernel_size"].value)
        try:
            full = P._full_conv_data(dout, w, c["stride"].value, c["padding"].value, c["dilation"].value, None)[-1]
        except ValueError:
            return
        _fit(c["row"], full.shape[0])
        _fit(c["col"], full.shape[1])

    def draw(dout_size, kernel_size, stride, padding, dilation, row, col):
        dout, w = args(dout_size, kernel_size)
        fig = P.plot_full_conv(dout, w, stride=stride, padding=padding, dilation=dilation, position=(row, col))
        dx = P._full_conv_data(dout, w, stride, padding, dilation, None)[5]
        return fig, f"∇X (cb.conv2d_grad_input) =<pre>{html.escape(np.array2string(dx, precision=3))}</pre>"

    return _explorer(controls, draw, adjust)


def explore_col2im():
    """Stride, dilation and how many rows of ∇X' have been added in :func:`convbook.plotting.plot_col2im`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(stride=_slider("stride", 1, 1, 2), dilation=_slider("dilation", 1, 1, 2),
                    upto=_slider("rows added", 9, 0, 9))
    dout = P._example((3, 3), 4, 1, 4)
    w = P._W2

    def draw(stride, dilation, upto):
        fig = P.plot_col2im(dout, w, stride=stride, dilation=dilation, upto=upto)
        dx = P._col2im_data(dout, w, stride, 0, dilation, None)[5]
        return fig, (f"{upto} of {dout.size} rows added; with all of them ∇X = cb.conv2d_grad_input ="
                     f"<pre>{html.escape(np.array2string(dx, precision=3))}</pre>")

    return _explorer(controls, draw)


def explore_winograd():
    """The tile size m and the tile's values (a seed) of :func:`convbook.plotting.plot_winograd`.

    Returns
    -------
    ipywidgets.VBox
    """
    controls = dict(m=W.Dropdown(options=[2, 4], value=2, description="m", layout=W.Layout(width="120px")),
                    seed=_slider("tile values (seed)", 5, 0, 20))

    def draw(m, seed):
        d = P._example((m + 2, m + 2), seed, 0, 4)
        fig = P.plot_winograd(d, None, m=m)
        n_direct, n_wino = P._winograd.winograd_multiplications(m)
        return fig, (f"F({m}×{m}, 3×3): <b>{n_wino}</b> multiplications per {m}×{m} output tile instead of "
                     f"{n_direct}; output checked against cb.conv2d_forward")

    return _explorer(controls, draw)
