"""The animation player: a figure drawn frame by frame, rendered once with matplotlib's
``to_jshtml`` into self-contained HTML that plays with no kernel (in the built book
too).

Deterministic: the same arguments give byte-identical HTML (the player's random element
id is replaced by a hash of the arguments, the frames are re-encoded without dithering),
so a rebuild of the book changes nothing. The same palette PNG encoding makes the
explorers' pictures (:func:`png_bytes`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

__all__ = ["MAX_FRAMES", "JSAnimation", "sample_frames", "png_bytes", "animate"]

#: Longest animation, in frames (longer sweeps are sub-sampled evenly).
MAX_FRAMES = 36


class JSAnimation:
    """An animation player as self-contained HTML (frames embedded as PNG); displays
    itself in Jupyter.

    Examples
    --------
    >>> from convbook.plotting import animate_groups
    >>> a = animate_groups(2, 2, dpi=30)
    >>> a.frames, a.nbytes < 600 * 1024, a.html == animate_groups(2, 2, dpi=30).html
    (2, True, True)

    Attributes
    ----------
    html : str
    frames : int
    name : str
    """

    def __init__(self, html, frames, name):
        self.html, self.frames, self.name = html, frames, name

    @property
    def nbytes(self):
        """Size of the HTML in bytes."""
        return len(self.html.encode("utf-8"))

    def _repr_html_(self):
        return self.html

    def __str__(self):
        return self.html

    def __repr__(self):
        size = f"{self.nbytes / 1024:.0f} KB"
        return f"<JSAnimation {self.name}: {self.frames} frames, {size}>"


def sample_frames(n, limit=MAX_FRAMES):
    """Frame indices 0..n-1, evenly sub-sampled to at most ``limit`` (first and last
    kept).

    Examples
    --------
    >>> sample_frames(4)
    [0, 1, 2, 3]
    >>> s = sample_frames(40); len(s), s[0], s[-1]
    (36, 0, 39)
    """
    if n <= limit:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, limit)})


def _key(name, kwargs, param, values, dpi):
    """A 32-hex id from the function name and its arguments (arrays by content)."""
    h = hashlib.sha256(name.encode())
    for k in sorted(kwargs):
        v = kwargs[k]
        if isinstance(v, np.ndarray):
            v = (v.shape, str(v.dtype), v.tobytes().hex())
        h.update(f"|{k}={v!r}".encode())
    h.update(f"|{param}={values!r}|dpi={dpi}".encode())
    return h.hexdigest()[:32]


_FRAME = re.compile(
    r'(frames\[\d+\] = "data:image/png;base64,)((?:[A-Za-z0-9+/=]|\\\n)*)"'
)


def _quantize(png):
    """PNG bytes re-encoded with a 64-colour palette: about 4x smaller, no visible loss
    on flat diagrams. Deterministic (fast octree, no dithering)."""
    from PIL import Image  # a matplotlib dependency

    with Image.open(io.BytesIO(png)) as im:
        q = im.convert("RGB").quantize(
            colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE
        )
    out = io.BytesIO()
    q.save(out, format="png", optimize=True)
    return out.getvalue()


def _quantize_frame(match):
    """One embedded frame of a to_jshtml player, quantized."""
    png = _quantize(base64.b64decode(match.group(2).replace("\\\n", "")))
    return match.group(1) + base64.b64encode(png).decode("ascii") + '"'


def png_bytes(fig, dpi=72):
    """The figure as palette PNG bytes, encoded as the animations' frames are.

    Examples
    --------
    >>> from convbook.plotting import plot_groups
    >>> png_bytes(plot_groups(2, 2, groups=1), dpi=20)[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return _quantize(buf.getvalue())


def animate(name, draw, param, values, *, key, dpi=72, interval=700):
    """A :class:`JSAnimation` of ``draw(**{param: value}, ax=...)`` for each of
    ``values``.

    Parameters
    ----------
    name : str
        The animation's name (in its repr and its element id).
    draw : callable
        ``draw(**{param: value}, ax=None) -> Figure``: with ``ax=None`` it makes its own
        (closed) figure, which sets the player's size; then it redraws into that axes.
    param : str
    values : sequence, at most :data:`MAX_FRAMES` of them are used
    key : dict
        The arguments that, with ``param``, ``values`` and ``dpi``, define the
        animation: hashed into the player's element id, so equal calls give equal HTML
        and different animations on one page do not collide.
    dpi, interval : the frames' resolution and the time between them (ms)
    """
    values = list(values)[:MAX_FRAMES]
    fig = draw(
        **{param: values[0]}
    )  # sets the figure size for every frame (closed already)
    fig.set_dpi(dpi)
    ax = fig.axes[0]

    def update(k):
        ax.clear()
        draw(**{param: values[k]}, ax=ax)
        return ()

    anim = FuncAnimation(
        fig, update, frames=len(values), interval=interval, repeat=True
    )
    html = anim.to_jshtml(default_mode="loop")
    plt.close(fig)
    html = _FRAME.sub(_quantize_frame, html)
    # The player links FontAwesome 4 from a CDN: offline that is a console error on
    # every page. The book's theme (and JupyterLab) ship their own FontAwesome for the
    # buttons.
    html = re.sub(r'<link rel="stylesheet"[^>]*font-awesome[^>]*>\s*', "", html)
    match = re.search(r'id="_anim_img([0-9a-f]{32})"', html)
    if match:
        html = html.replace(match.group(1), _key(name, key, param, values, dpi))
    return JSAnimation(html, len(values), name)
