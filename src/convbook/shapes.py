"""Output sizes, normalised stride/padding/dilation, and all input validation.

Every public function of convbook validates its arguments here, so the error messages
are the same everywhere and name the argument and the shapes, in PyTorch's manner.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "OutputShape",
    "ConvParams",
    "as_pair",
    "conv_output_shape",
    "describe_settings",
    "conv_params",
    "check_float",
    "check_ndim",
    "check_conv_inputs",
    "check_channels",
    "check_shape_arg",
    "check_dout",
]


class OutputShape(NamedTuple):
    """Output height and width, and the input rows/columns the windows never reach.

    ``unused_h`` counts the rows at the bottom of the *padded* input that lie past the
    last window (the floor in the size formula throws them away); ``unused_w`` the
    columns at the right.
    """

    oh: int
    ow: int
    unused_h: int
    unused_w: int


@dataclass(frozen=True)
class ConvParams:
    """Normalised hyper-parameters of a 2-D convolution.

    Attributes
    ----------
    stride, dilation : (int, int)
        Per axis (h, w).
    padding : (int, int, int, int)
        (top, bottom, left, right). Symmetric except for ``padding="same"`` when the
        total padding ``D*(K-1)`` is odd: PyTorch puts the extra row/column at the
        bottom/right.
    groups : int
    """

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def output_shape(self, input_hw, kernel_hw) -> OutputShape:
        """The output size for an ``(H, W)`` input and a ``(KH, KW)`` kernel.

        Per axis, ``O = floor((I + P_before + P_after - D*(K-1) - 1) / S) + 1``; the
        remainder of that division is the number of padded-input rows (columns) past the
        last window, which no window reads.

        Examples
        --------
        >>> ConvParams(stride=(3, 3)).output_shape((7, 7), (3, 3))
        OutputShape(oh=2, ow=2, unused_h=1, unused_w=1)
        """
        return _output_shape(self, tuple(input_hw), tuple(kernel_hw))


# Cached: a layer asks the same question on every call, several times.
@functools.lru_cache(maxsize=512)
def _output_shape(p: ConvParams, input_hw, kernel_hw) -> OutputShape:
    (h, w), (kh, kw) = input_hw, kernel_hw
    pt, pb, pl, pr = p.padding
    span_h = p.dilation[0] * (kh - 1) + 1
    span_w = p.dilation[1] * (kw - 1) + 1
    hp, wp = h + pt + pb, w + pl + pr
    if span_h > hp or span_w > wp:
        raise ValueError(
            f"kernel size ({kh}, {kw}) with dilation {p.dilation} spans "
            f"({span_h}, {span_w}), larger than the padded input ({hp}, {wp}) "
            f"(input ({h}, {w}), padding {p.padding})"
        )
    oh, rh = divmod(hp - span_h, p.stride[0])
    ow, rw = divmod(wp - span_w, p.stride[1])
    return OutputShape(oh + 1, ow + 1, rh, rw)


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def as_pair(value, name: str, *, minimum: int) -> tuple[int, int]:
    """An int or an (h, w) pair of ints, each >= ``minimum``, as a pair.

    Examples
    --------
    >>> as_pair(3, "kernel_size", minimum=1), as_pair((1, 2), "stride", minimum=1)
    ((3, 3), (1, 2))
    """
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = (int(value[0]), int(value[1]))
    elif isinstance(value, (tuple, list)):
        raise ValueError(
            f"{name} must be an int or a pair (h, w), "
            f"got {len(value)} values: {value!r}"
        )
    else:
        raise TypeError(
            f"{name} must be an int or a pair of ints, "
            f"got {type(value).__name__} {value!r}"
        )
    if min(pair) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return pair


def conv_params(
    kernel_size, *, stride=1, padding=0, dilation=1, groups=1
) -> ConvParams:
    """Validate and normalise a convolution's hyper-parameters for this kernel size.

    Parameters
    ----------
    kernel_size : int or (KH, KW)
    stride, dilation : int or (int, int), >= 1
    padding : int, (int, int), "valid" or "same"
        ``"same"`` needs stride 1. Its total padding per axis is ``D*(K-1)``; when that
        is odd, the extra row/column goes to the bottom/right, as in PyTorch.
    groups : int, >= 1

    Examples
    --------
    >>> conv_params(3, padding="same")
    ConvParams(stride=(1, 1), padding=(1, 1, 1, 1), dilation=(1, 1), groups=1)
    >>> conv_params((2, 4), padding="same").padding
    (0, 1, 1, 2)
    """
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    stride = as_pair(stride, "stride", minimum=1)
    dilation = as_pair(dilation, "dilation", minimum=1)
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    "padding='same' is not supported for strided convolutions, "
                    f"got stride={stride}"
                )
            total_h, total_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
            pads = (
                total_h // 2,
                total_h - total_h // 2,
                total_w // 2,
                total_w - total_w // 2,
            )
        else:
            raise ValueError(
                f"padding string must be 'valid' or 'same', got {padding!r}"
            )
    else:
        ph, pw = as_pair(padding, "padding", minimum=0)
        pads = (ph, ph, pw, pw)
    return ConvParams(
        stride=stride, padding=pads, dilation=dilation, groups=int(groups)
    )


def describe_settings(settings) -> str:
    """Keyword hyper-parameters as text, for tables: ``"stride=2, padding=1"``.

    Examples
    --------
    >>> describe_settings(dict(stride=2, padding=(1, 0))), describe_settings({})
    ('stride=2, padding=(1, 0)', '(defaults)')
    """
    return ", ".join(f"{k}={v!r}" for k, v in settings.items()) or "(defaults)"


def conv_output_shape(
    input_size, kernel_size, *, stride=1, padding=0, dilation=1
) -> OutputShape:
    """Output size of a convolution, with the floor's remainder made visible.

    Per axis, ``O = floor((I + P_before + P_after - D*(K-1) - 1) / S) + 1``; the
    remainder of that division is the number of padded-input rows (columns) past the
    last window, which no window reads.

    Parameters
    ----------
    input_size : int or (H, W)
    kernel_size : int or (KH, KW)
    stride, padding, dilation : as in :func:`conv_params`

    Returns
    -------
    OutputShape
        ``(oh, ow, unused_h, unused_w)``

    Examples
    --------
    The formula ``[w, h] conv [k, k] -> [w-k+1, h-k+1]``:

    >>> conv_output_shape((3, 3), 2)
    OutputShape(oh=2, ow=2, unused_h=0, unused_w=0)

    A 7-pixel row, 3-wide kernel, stride 3: two windows, and the last pixel is never
    read.

    >>> conv_output_shape(7, 3, stride=3)
    OutputShape(oh=2, ow=2, unused_h=1, unused_w=1)
    """
    h, w = as_pair(input_size, "input_size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    p = conv_params((kh, kw), stride=stride, padding=padding, dilation=dilation)
    return p.output_shape((h, w), (kh, kw))


# --------------------------------------------------------------------------------------
# Array validation, used by every public entry point


def check_float(name: str, a) -> np.ndarray:
    """``a`` as an ndarray; a TypeError unless it holds float16, float32 or float64."""
    a = np.asarray(a)
    if a.dtype.kind != "f":
        raise TypeError(
            f"{name} must be a float16/32/64 array, got dtype {a.dtype}; "
            f"convert it first, e.g. {name}.astype(np.float64)"
        )
    return a


def check_ndim(name: str, a: np.ndarray, ndim: int, layout: str) -> None:
    """A ValueError unless ``a`` has ``ndim`` dimensions (``layout`` names them)."""
    if a.ndim != ndim:
        raise ValueError(
            f"expected {name} of {ndim} dimensions {layout}, "
            f"got {a.ndim} dimensions of shape {a.shape}"
        )


def check_conv_inputs(x, w, b=None, *, stride=1, padding=0, dilation=1, groups=1):
    """Validate a forward call; return ``(x, w, b, params, OutputShape)``."""
    x = check_float("x", x)
    w = check_float("w", w)
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_ndim("w", w, 4, "(F, C // groups, KH, KW)")
    if 0 in w.shape or 0 in x.shape[1:]:
        raise ValueError(
            f"x (N, C, H, W) and w (F, C // groups, KH, KW) may be empty only in the "
            f"batch N, got x {x.shape} and w {w.shape}"
        )
    p = conv_params(
        w.shape[2:], stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    check_channels(x.shape, w.shape, p.groups)
    if b is not None:
        b = check_float("b", b)
        if b.shape != (w.shape[0],):
            raise ValueError(
                f"expected b of shape ({w.shape[0]},) to match w's {w.shape[0]} "
                "filters, "
                f"got {b.shape}"
            )
    out = p.output_shape(x.shape[2:], w.shape[2:])
    return x, w, b, p, out


def check_channels(x_shape, w_shape, groups: int) -> None:
    """A ValueError unless ``groups`` divides the channels and ``w`` fits ``x``."""
    c = x_shape[1]
    f, cg = w_shape[:2]
    if c % groups or f % groups:
        raise ValueError(
            f"groups={groups} must divide both x's {c} input channels and w's {f} "
            f"output channels (x {tuple(x_shape)}, w {tuple(w_shape)})"
        )
    if cg * groups != c:
        raise ValueError(
            f"expected x of shape (N, {cg * groups}, H, W) to match w's {cg} input "
            f"channels x groups={groups}, "
            f"got x {tuple(x_shape)} with w {tuple(w_shape)}"
        )


def check_shape_arg(name: str, shape, *, batch: bool = False) -> tuple[int, ...]:
    """A shape argument as 4 ints, all positive (the first may be 0 when ``batch``)."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of 4 ints, got {shape!r}") from None
    if len(shape) != 4 or min(shape[1:]) < 1 or shape[0] < (0 if batch else 1):
        what = "N >= 0 and 3 positive ints" if batch else "4 positive ints"
        raise ValueError(f"{name} must be {what}, got {shape}")
    return shape


def check_dout(dout, x_shape, w_shape, p: ConvParams) -> np.ndarray:
    """Validate the output gradient against the forward output's shape."""
    dout = check_float("dout", dout)
    check_ndim("dout", dout, 4, "(N, F, OH, OW)")
    out = p.output_shape(x_shape[2:], w_shape[2:])
    want = (x_shape[0], w_shape[0], out.oh, out.ow)
    if dout.shape != want:
        raise ValueError(
            f"expected dout of shape {want}, the forward output for x {tuple(x_shape)} "
            f"and w {tuple(w_shape)}, got {dout.shape}"
        )
    return dout
