"""Pictures of every step of a convolution layer, forward and backward: pure matplotlib.

Every picture draws the numbers convbook itself computes (``conv2d_forward``,
``im2col``, ``col2im``, ``conv2d_grad_input``, ``conv2d_grad_weight``, ``window_view``,
``rot180_tutorial``, ``winograd``), never a second implementation of the maths. Each
figure comes as

* ``<figure>_data(...)``: its numbers, computed once, as a named tuple;
* ``draw_<figure>(data, ..., ax=None) -> Figure``: those numbers drawn;
* ``plot_<figure>(..., ax=None) -> Figure``: the two in one call. The figure is closed
  before it is returned, so a notebook shows it exactly once (as the cell's value); pass
  ``ax`` to draw into an axes of your own;
* ``animate_<figure>(...) -> JSAnimation``: one ``data`` drawn frame after frame, as a
  ``to_jshtml`` player that works in static HTML with no kernel. Deterministic (same
  arguments, byte-identical HTML), at most :data:`MAX_FRAMES` frames.

:data:`PALETTE` is the book's colour language (Okabe–Ito, colour-blind safe).

Single channel, single sample: ``x`` may be given as ``(H, W)`` or ``(1, 1, H, W)``,
kernels as ``(KH, KW)`` or ``(1, 1, KH, KW)``. Every argument has a small default
example whose numbers can be checked by hand (:func:`example`, :func:`example_kernel`).

The modules: :mod:`~convbook.plotting.canvas` (the colour language and the grid-of-cells
canvas), :mod:`~convbook.plotting.player` (the animation player),
and the figures: :mod:`~convbook.plotting.forward`, :mod:`~convbook.plotting.columns`,
:mod:`~convbook.plotting.backward`, :mod:`~convbook.plotting.transforms`,
:mod:`~convbook.plotting.checks`. The live
explorers over these pictures are in :mod:`convbook.widgets`.
"""

from .backward import *  # noqa: F403
from .backward import __all__ as _backward
from .canvas import PALETTE, example, example_kernel, fmt, legend_handles, tint
from .checks import *  # noqa: F403
from .checks import __all__ as _checks
from .columns import *  # noqa: F403
from .columns import __all__ as _columns
from .forward import *  # noqa: F403
from .forward import __all__ as _forward
from .player import MAX_FRAMES, JSAnimation, png_bytes
from .transforms import *  # noqa: F403
from .transforms import __all__ as _transforms

__all__ = [
    "PALETTE",
    "MAX_FRAMES",
    "JSAnimation",
    "legend_handles",
    "tint",
    "example",
    "example_kernel",
    "fmt",
    "png_bytes",
    *_forward,
    *_columns,
    *_backward,
    *_transforms,
    *_checks,
]
