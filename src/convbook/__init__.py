"""convbook: a convolution layer's forward and backward passes, derived and verified.

Semantics are PyTorch's ``torch.nn.functional.conv2d`` (cross-correlation), layout NCHW,
weight ``(F, C // groups, KH, KW)``.
"""

from .columns import col2im, im2col, im2col_loop, im2col_tutorial, window_view
from .conv import (
    METHOD_NAMES,
    METHODS,
    ROUTES,
    conv2d_backward,
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_weight,
)
from .engine import options
from .gradcheck import compare, numeric_vjp, rel_error
from .kernels import dilate, rot180, rot180_tutorial, swap_in_out
from .layers import Conv2D
from .methods.strided import full_conv_border, full_conv_operands
from .nn import (
    SGD,
    Flatten,
    ReLU,
    Sequential,
    log_softmax,
    softmax_cross_entropy,
    to_torch,
)
from .shapes import (
    ConvParams,
    OutputShape,
    conv_output_shape,
    conv_params,
    describe_settings,
)
from .source import show_source

__version__ = "0.1.0"

# Submodules with heavier or optional dependencies (matplotlib, ipywidgets,
# scikit-learn) load on first use: `cb.plotting`, `cb.widgets`, `cb.digits`, ...;
# `import convbook` itself needs NumPy only.
_LAZY = ("bench", "bugs", "check", "digits", "gpu", "plotting", "widgets", "winograd")
# Functions of those submodules offered at the top level, loaded with their module.
_LAZY_FUNCTIONS = {"check_layer": "check"}


def __getattr__(name):
    if name in _LAZY or name in _LAZY_FUNCTIONS:
        import importlib

        module_name = _LAZY_FUNCTIONS.get(name, name)
        module = importlib.import_module(f".{module_name}", __name__)
        return getattr(module, name) if name in _LAZY_FUNCTIONS else module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY, *_LAZY_FUNCTIONS])


__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "ROUTES",
    "Conv2D",
    "ConvParams",
    "Flatten",
    "OutputShape",
    "ReLU",
    "SGD",
    "Sequential",
    "check_layer",
    "col2im",
    "compare",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_grad_bias",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv_output_shape",
    "conv_params",
    "describe_settings",
    "dilate",
    "full_conv_border",
    "full_conv_operands",
    "im2col",
    "im2col_loop",
    "im2col_tutorial",
    "log_softmax",
    "numeric_vjp",
    "options",
    "rel_error",
    "rot180",
    "rot180_tutorial",
    "show_source",
    "softmax_cross_entropy",
    "swap_in_out",
    "to_torch",
    "window_view",
]
