"""The drawing canvas every figure is made on: the colour language, a grid-of-cells
axes, and the small helpers that turn arguments and numbers into cells.

Nothing here knows about convolutions: the figures (:mod:`~convbook.plotting.forward`,
:mod:`~convbook.plotting.columns`, :mod:`~convbook.plotting.backward`,
:mod:`~convbook.plotting.transforms`) compute their numbers with convbook and draw them
with :class:`Diagram`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.patches import Patch, Rectangle

from ..shapes import as_pair

__all__ = [
    "PALETTE",
    "tint",
    "legend_handles",
    "example",
    "example_kernel",
    "as_image",
    "as_cell",
    "fmt",
    "paren",
    "wrap_terms",
    "blank_faces",
    "filled_so_far",
    "lines_needed",
    "padded_image",
    "Diagram",
]

#: The book's colour language (Okabe & Ito's colour-blind-safe palette). Cells are
#: filled with :func:`tint` of these; outlines and labels use them at full strength.
PALETTE = {
    "input": "#56B4E9",  # sky blue: X
    "kernel": "#E69F00",  # orange: K (weights)
    "output": "#009E73",  # bluish green: Y
    "gradient": "#CC79A7",  # reddish purple: every gradient (dY, dX, dK)
    "padding": "#999999",  # grey: zero padding
    "zeros": "#F0E442",  # yellow: zeros the stride inserts between dY's rows/columns
    "unused": "#D55E00",  # vermillion: rows/columns no window reaches
    "highlight": "#0072B2",  # blue: the current window / selected cell
    "text": "#000000",
}

_NAMES = {
    "input": "input X",
    "kernel": "kernel K",
    "output": "output Y",
    "gradient": "gradient (∇Y, ∇X, ∇K)",
    "padding": "zero padding",
    "zeros": "zeros inserted by the stride",
    "unused": "never read by a window",
    "highlight": "current window / selection",
}

# The example kernels every figure defaults to: small integers, checkable by hand.
_KERNELS = {
    3: ((1.0, 0.0, -1.0), (2.0, 1.0, 0.0), (0.0, -1.0, 1.0)),
    2: ((1.0, 2.0), (0.0, -1.0)),
}


def tint(color, amount=0.4):
    """``color`` (a :data:`PALETTE` key or any matplotlib colour) mixed with white;
    ``amount`` 1 is the colour itself.

    Examples
    --------
    >>> tint("input", 1.0) == to_rgb(PALETTE["input"])
    True
    """
    rgb = np.array(to_rgb(PALETTE.get(color, color)))
    return tuple(float(v) for v in amount * rgb + (1 - amount))


def legend_handles(*keys):
    """Legend patches for :data:`PALETTE` keys (all of them by default), labelled in the
    book's words.

    Examples
    --------
    >>> [h.get_label() for h in legend_handles("input", "kernel")]
    ['input X', 'kernel K']
    """
    keys = keys or tuple(k for k in PALETTE if k != "text")
    return [
        Patch(facecolor=tint(k), edgecolor=PALETTE[k], label=_NAMES.get(k, k))
        for k in keys
    ]


def example(shape, seed=0, low=0, high=4):
    """Small integer example data (as floats), the same on every call.

    Examples
    --------
    >>> example((2, 3), seed=0)
    array([[3., 2., 2.],
           [1., 1., 0.]])
    """
    return np.random.default_rng(seed).integers(low, high, size=shape).astype(float)


def example_kernel(size=3):
    """The figures' example kernel: 3x3 (the default) or 2x2, a new array on every call.

    Examples
    --------
    >>> example_kernel(2)
    array([[ 1.,  2.],
           [ 0., -1.]])
    """
    if size not in _KERNELS:
        raise ValueError(f"size must be 2 or 3 (the example kernels), got {size!r}")
    return np.array(_KERNELS[size])


def as_image(a, name, default):
    """A single-channel image as a 2-D float array; accepts (H, W) or (1, 1, H, W).

    ``None`` stands for ``default``. The result is a new array (the caller's is never
    written).
    """
    if a is None:
        a = default
    a = np.array(a, dtype=float)
    if a.ndim == 4:
        if a.shape[:2] != (1, 1):
            raise ValueError(
                f"{name}: pictures show one sample and one channel, "
                "expected (1, 1, H, W), "
                f"got {a.shape}"
            )
        a = a[0, 0]
    if a.ndim != 2:
        raise ValueError(
            f"{name} must have shape (H, W) or (1, 1, H, W), got {a.shape}"
        )
    return a


def as_cell(pos, shape, name):
    """Validate a (row, col) position inside a grid of the given shape."""
    i, j = as_pair(pos, name, minimum=0)
    if not (0 <= i < shape[0] and 0 <= j < shape[1]):
        raise ValueError(
            f"{name}={pos!r} is outside the {shape[0]}x{shape[1]} grid it indexes"
        )
    return i, j


def fmt(v):
    """A cell's number: integers without a decimal point, others with 3 significant
    digits.

    Examples
    --------
    >>> fmt(3.0), fmt(-0.125), fmt(float("nan"))
    ('3', '-0.125', '')
    """
    if v is None or not np.isfinite(v):
        return ""
    r = round(float(v))
    if abs(v - r) < 1e-9:
        return str(int(r))
    return f"{v:.3g}"


def paren(v):
    """:func:`fmt`, in parentheses when negative (a term of a written-out sum)."""
    s = fmt(v)
    return f"({s})" if s.startswith("-") else s


def wrap_terms(terms, per_line, first, last):
    """Lines of a long sum: ``first`` then ``per_line`` terms a line, then ``last``."""
    lines = [first]
    for k in range(0, len(terms), per_line):
        chunk = " + ".join(terms[k : k + per_line])
        lines.append(("  " if k == 0 else "  + ") + chunk)
    lines.append(last)
    return lines


def blank_faces(shape, default):
    """A (rows, cols) list of lists of one face colour, to colour cell by cell."""
    return [[default for _ in range(shape[1])] for _ in range(shape[0])]


def filled_so_far(values, upto, key):
    """Faces and text of a grid filled in row-major order up to and including cell
    ``upto``; the rest blank."""
    rows, cols = values.shape
    last = upto[0] * cols + upto[1]
    faces = blank_faces((rows, cols), (1.0, 1.0, 1.0))
    text = [["" for _ in range(cols)] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            if r * cols + c <= last:
                faces[r][c] = tint(key)
                text[r][c] = fmt(values[r, c])
    return faces, text


def lines_needed(n):
    """Rows of cells reserved for n lines of text."""
    return 0.55 * n + 0.2


def padded_image(x, padding):
    """Values and faces of ``x`` zero-padded by ``(top, bottom, left, right)``: input
    cells in the input's colour, padding in grey."""
    pt, pb, pl, pr = padding
    hp, wp = x.shape[0] + pt + pb, x.shape[1] + pl + pr
    faces = blank_faces((hp, wp), tint("padding", 0.35))
    vals = np.zeros((hp, wp))
    vals[pt : pt + x.shape[0], pl : pl + x.shape[1]] = x
    for a in range(x.shape[0]):
        for b in range(x.shape[1]):
            faces[pt + a][pl + b] = tint("input")
    return vals, faces


class Diagram:
    """One axes in cell units (y down), sized so a cell is about ``cell`` inches; text
    scaled to the cells.

    With ``ax=None`` it makes (and :meth:`done` closes) its own figure, so a notebook
    shows the returned figure exactly once; given an axes it draws there and closes
    nothing.
    """

    def __init__(self, ax, width, height, *, cell=0.42, max_size=(9.5, 5.5)):
        self.owns = ax is None
        if ax is None:
            s = min(cell, max_size[0] / width, max_size[1] / height)
            fig = plt.figure(figsize=(width * s, height * s))
            ax = fig.add_axes((0, 0, 1, 1))
        self.ax, self.fig = ax, ax.figure
        self.width, self.height = width, height
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_aspect("equal")
        ax.set_axis_off()
        pos = ax.get_position()
        fw, fh = self.fig.get_size_inches()
        # points per cell, and the label font size that goes with it
        self.pt = 72 * min(pos.width * fw / width, pos.height * fh / height)
        self.fs = float(np.clip(0.42 * self.pt, 5, 12))

    def grid(
        self,
        values,
        x0,
        y0,
        face,
        *,
        text=None,
        edge="#444444",
        lw=0.6,
        hatch=None,
        color="black",
        shape=None,
        fontscale=1.0,
        name=None,
    ):
        """Cells of a 2-D grid with top-left corner (x0, y0). ``face`` is one colour or
        a list of lists of colours.

        Each number is a Text with gid ``"{name}[i,j]"``, so tests can read back what a
        picture shows.
        """
        if values is not None:
            values = np.asarray(values, dtype=float)
            shape = values.shape
        rows, cols = shape
        if text is None and values is not None:
            text = [[fmt(values[i, j]) for j in range(cols)] for i in range(rows)]
        faces = []
        rects = []
        for i in range(rows):
            for j in range(cols):
                x, y = x0 + j, y0 + i
                rects.append(((x, y), (x + 1, y), (x + 1, y + 1), (x, y + 1)))
                f = face[i][j] if isinstance(face, list) else face
                faces.append(f)
        self.ax.add_collection(
            PolyCollection(
                rects, facecolors=faces, edgecolors=edge, linewidths=lw, hatch=hatch
            )
        )
        if text is None:
            return
        longest = max((len(t) for row in text for t in row), default=1)
        size = fontscale * min(0.42 * self.pt, 1.55 * self.pt / max(longest, 2))
        if size < 4.0:  # unreadable: leave the cells blank
            return
        for i in range(rows):
            for j in range(cols):
                c = color[i][j] if isinstance(color, list) else color
                if text[i][j]:
                    self.ax.text(
                        x0 + j + 0.5,
                        y0 + i + 0.53,
                        text[i][j],
                        ha="center",
                        va="center",
                        fontsize=size,
                        color=c,
                        gid=f"{name}[{i},{j}]" if name else None,
                    )

    def hatch(self, cells, x0, y0, color):
        """Hatch some cells (marks 'never read' without hiding their numbers)."""
        for i, j in cells:
            self.ax.add_patch(
                Rectangle(
                    (x0 + j, y0 + i),
                    1,
                    1,
                    fill=False,
                    hatch="///",
                    edgecolor=color,
                    lw=0,
                )
            )

    def outline(self, x, y, w, h, color=None, lw=2.4, ls="-", z=5):
        """A rectangle's outline (the current window, a selected cell)."""
        self.ax.add_patch(
            Rectangle(
                (x, y),
                w,
                h,
                fill=False,
                edgecolor=color or PALETTE["highlight"],
                lw=lw,
                ls=ls,
                zorder=z,
            )
        )

    def text(
        self,
        x,
        y,
        s,
        *,
        scale=1.0,
        ha="left",
        va="center",
        color="black",
        weight="normal",
    ):
        """A label at (x, y), in the canvas's font size times ``scale``."""
        self.ax.text(
            x, y, s, ha=ha, va=va, fontsize=self.fs * scale, color=color, weight=weight
        )

    def title(self, s, *, scale=1.0, weight="bold"):
        """Bold heading on the top row, shrunk to fit the width."""
        size = min(
            self.fs * scale, 0.97 * self.width * self.pt / (0.62 * max(len(s), 1))
        )
        self.ax.text(
            0, 0.5, s, ha="left", va="center", fontsize=size, weight=weight, gid="title"
        )

    def lines(self, x, y, lines, *, width=None, scale=1.0, color="black", name="text"):
        """A block of text lines from (x, y) down, shrunk to fit ``width`` cells;
        returns the y below the last line."""
        width = width or (self.width - x - 0.2)
        longest = max(len(s) for s in lines)
        size = min(self.fs * scale, 0.95 * width * self.pt / (0.6 * max(longest, 1)))
        step = 1.25 * size / self.pt
        for k, s in enumerate(lines):
            self.ax.text(
                x,
                y + k * step,
                s,
                ha="left",
                va="top",
                fontsize=size,
                color=color,
                gid=f"{name}{k}",
            )
        return y + len(lines) * step

    def done(self):
        """The figure, closed first if the canvas made it."""
        if self.owns:
            plt.close(self.fig)
        return self.fig
