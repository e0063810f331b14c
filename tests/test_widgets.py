"""The live explorers, driven without a kernel: build each one, move a control, check
the picture and the readout follow, with the numbers convbook computes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

W = pytest.importorskip("ipywidgets")

import convbook as cb  # noqa: E402
from convbook import plotting as P  # noqa: E402
from convbook import widgets  # noqa: E402

EXPLORERS = widgets.__all__
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_figures_left():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


def test_enough_explorers():
    assert len(EXPLORERS) >= 6


def other_value(control):
    """A neighbouring value: small moves keep the other controls meaningful."""
    if isinstance(control, W.Dropdown):
        options = list(control.options)
        return options[(options.index(control.value) + 1) % len(options)]
    return control.value + 1 if control.value < control.max else control.value - 1


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_control_redraws(name):
    box = getattr(widgets, name)()
    assert isinstance(box, W.VBox)
    assert bytes(box.image.value).startswith(PNG) and box.readout.value
    assert box.image in box.children and box.readout in box.children
    for key, control in box.controls.items():
        before = bytes(box.image.value)
        control.value = other_value(control)
        assert "not a valid setting" not in box.readout.value, (key, box.readout.value)
        assert bytes(box.image.value) != before, (
            f"{name}: moving {key} did not change the picture"
        )
    assert len(box.controls) >= 2


def test_sliding_window_readout_is_conv2d_forward():
    box = widgets.explore_sliding_window()
    c = box.controls
    c["stride"].value = 1
    c["padding"].value = 0
    assert (
        c["row"].max == 2 and c["col"].max == 2
    )  # 5x5 input, 3x3 kernel: a 3x3 output
    c["row"].value, c["col"].value = 2, 1
    x = P.example((5, 5), 0, 0, 4)
    y = cb.conv2d_forward(x[None, None], P.example_kernel(3)[None, None])[0, 0]
    assert f"Y[2,1] = <b>{P.fmt(y[2, 1])}</b>" in box.readout.value
    c["stride"].value = 3  # output 1x1: the position sliders follow
    assert c["row"].max == 0 and c["row"].value == 0


def test_output_size_readout_and_invalid_setting():
    box = widgets.explore_output_size()
    c = box.controls
    c["input_size"].value, c["kernel_size"].value, c["stride"].value = 7, 3, 3
    s = cb.conv_output_shape(7, 3, stride=3)
    assert f"output <b>{s.oh}×{s.ow}</b>" in box.readout.value
    assert f"{s.unused_h} row(s)" in box.readout.value
    picture = bytes(box.image.value)
    c["input_size"].value = 1
    c["padding"].value = 0
    assert (
        "not a valid setting" in box.readout.value
        and "kernel size" in box.readout.value
    )
    assert bytes(box.image.value) == picture  # the last valid picture stays


def test_groups_options_follow_channels():
    box = widgets.explore_groups()
    c = box.controls
    c["in_channels"].value = 6
    c["out_channels"].value = 3
    assert list(c["groups"].options) == [1, 3]
    c["groups"].value = 3
    assert "reads <b>2</b> of 6" in box.readout.value


def test_grad_weight_readout():
    box = widgets.explore_grad_weight()
    c = box.controls
    c["kernel_size"].value = 3
    c["p"].value, c["q"].value = 2, 1
    x = P.example((5, 5), 0, 0, 5)
    dout = P.example((3, 3), 2, -1, 3)
    dw = cb.conv2d_grad_weight(dout[None, None], x[None, None], (1, 1, 3, 3))[0, 0]
    assert f"∇K[2,1] = <b>{P.fmt(dw[2, 1])}</b>" in box.readout.value


def test_grad_input_map_readout():
    box = widgets.explore_grad_input_map()
    c = box.controls
    c["r"].value, c["c"].value = 5, 0
    assert (
        "X[5,0] is reached by <b>0</b>" in box.readout.value
    )  # the row past the last window (6, 3, stride 2)
    c["input_size"].value = 3
    assert c["r"].max == 2 and c["r"].value == 2


def test_full_conv_and_col2im_readouts_show_grad_input():
    box = widgets.explore_full_conv()
    dout = P.example((2, 2), 3, 1, 4)
    dx = cb.conv2d_grad_input(
        dout[None, None], P.example_kernel(3)[None, None], (1, 1, 5, 5), stride=2
    )[0, 0]
    assert np.array2string(dx, precision=3) in box.readout.value.replace("&#x27;", "'")
    box = widgets.explore_col2im()
    box.controls["upto"].value = 0
    assert box.readout.value.startswith("0 of 9 rows added")


def test_winograd_counts():
    box = widgets.explore_winograd()
    box.controls["m"].value = 4
    assert (
        "<b>36</b> multiplications per 4×4 output tile instead of 144"
        in box.readout.value
    )


def test_widgets_use_only_public_plotting_names():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(widgets.__file__).read_text(encoding="utf-8"))
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and getattr(n.value, "id", "") == "cbp"
    }
    assert used and used <= set(P.__all__), used - set(P.__all__)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert "plotting." not in (node.module or ""), (
                "widgets reach into a plotting module"
            )
            assert not [a.name for a in node.names if a.name.startswith("_")]


def test_moving_a_control_computes_the_data_once(monkeypatch):
    calls = []
    real = P.sliding_window_data
    monkeypatch.setattr(
        P, "sliding_window_data", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    box = widgets.explore_sliding_window()
    assert len(calls) == 1
    box.controls[
        "stride"
    ].value = 1  # also refits the position sliders: still one computation
    assert len(calls) == 2


@pytest.mark.parametrize("name", ["explore_sliding_window", "explore_full_conv"])
def test_picture_at_natural_size_and_sharp(name):
    import struct

    box = getattr(widgets, name)()
    for _ in range(2):
        png = bytes(box.image.value)
        width, height = struct.unpack(">II", png[16:24])  # the PNG header's IHDR
        assert widgets.PIXEL_RATIO >= 2
        # shown as wide as the figure is at the notebook's 72 pixels an inch, drawn at
        # twice that
        assert box.image.layout.width == f"{width / widgets.PIXEL_RATIO:.0f}px"
        assert (
            box.image.layout.max_width == "100%" and box.image.layout.height == "auto"
        )
        box.controls["stride"].value = 1
