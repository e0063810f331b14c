"""Show the real, tested source of a convbook function, so no chapter pastes code."""

from __future__ import annotations

import html
import inspect

__all__ = ["show_source", "Source"]


class Source:
    """A function's source with a plain-text and a syntax-highlighted HTML form."""

    def __init__(self, obj):
        self.name = getattr(obj, "__qualname__", repr(obj))
        self.module = getattr(obj, "__module__", "")
        self.text = inspect.getsource(obj)

    def __str__(self):
        return self.text

    def __repr__(self):
        return self.text

    def _repr_html_(self):
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
        except ImportError:  # pragma: no cover - pygments comes with Jupyter
            body = f"<pre>{html.escape(self.text)}</pre>"
        else:
            body = highlight(
                self.text,
                PythonLexer(),
                HtmlFormatter(noclasses=True, nobackground=True),
            )
        where = html.escape(f"{self.module}.{self.name}")
        return f'<div class="convbook-source"><p><code>{where}</code></p>{body}</div>'


def show_source(obj):
    """The source code of ``obj`` (a function, class or module), for a notebook.

    Examples
    --------
    >>> from convbook import rot180
    >>> print(str(show_source(rot180)).splitlines()[0])
    def rot180(w):
    """
    return Source(obj)
