"""The grader's report: a cell per setting and output, the diagnoses, and how they show.

:func:`convbook.check.check_layer` returns a :class:`Report`: a table in Jupyter, plain
text in a terminal.
"""

from __future__ import annotations

import html
import textwrap
from typing import NamedTuple

__all__ = ["Cell", "Diagnosis", "Report"]


class Cell(NamedTuple):
    """One output on one setting.

    ``status``: ``"pass"``, ``"fail"`` or ``"unsupported"``. ``kind`` says how it
    failed: ``"value"``, ``"shape"``, ``"dtype"``, ``"error"`` (it raised), ``"wrote"``
    (into an input) or ``"view"`` (of an input); empty otherwise. ``error`` is the
    relative error
    where one was measured, ``detail`` one line for a reader.
    """

    status: str
    kind: str = ""
    error: float | None = None
    detail: str = ""


class Diagnosis(NamedTuple):
    """What the grader makes of one output's failures.

    ``bugs``: the bug-zoo specimens (names) that fail on exactly the same settings
    (empty when none does); ``sentence``: the diagnosis, one sentence; ``links``:
    ``(title, address)`` of the sections that explain it; ``case``: the smallest failing
    case found, as text (``None`` when a specimen matched).
    """

    output: str
    bugs: tuple
    sentence: str
    links: tuple = ()
    case: str | None = None


class Report:
    """What :func:`check_layer` found: a :class:`Cell` per setting and output, and a
    :class:`Diagnosis` per output that failed.

    Truthy when every output graded passed on every setting graded (and something was).
    Shows as a table in Jupyter (``_repr_html_``) and as text elsewhere (``str``).
    """

    def __init__(self, settings, outputs, cells, diagnoses, seconds):
        self.settings = tuple(settings)
        self.outputs = tuple(outputs)
        self.cells = dict(cells)
        self.diagnoses = tuple(diagnoses)
        self.seconds = seconds

    def cell(self, setting, output):
        """The :class:`Cell` of a setting (or its name) and an output."""
        return self.cells[getattr(setting, "name", setting), output]

    def failed(self, output=None):
        """Names of the settings that failed (for one output, or any), ladder order."""
        outs = self.outputs if output is None else (output,)
        return [
            s.name
            for s in self.settings
            if any(self.cells[s.name, o].status == "fail" for o in outs)
        ]

    def unsupported(self, output=None):
        """Names of the settings marked "not supported" (for one output, or any)."""
        outs = self.outputs if output is None else (output,)
        return [
            s.name
            for s in self.settings
            if any(self.cells[s.name, o].status == "unsupported" for o in outs)
        ]

    @property
    def passed(self):
        graded = [c for c in self.cells.values() if c.status in ("pass", "fail")]
        return bool(graded) and all(c.status == "pass" for c in graded)

    def __bool__(self):
        return self.passed

    @property
    def diagnosed(self):
        """The names of the specimens the diagnoses name, in output order."""
        return [b for d in self.diagnoses for b in d.bugs]

    def summary(self):
        """One line: how many settings pass, fail, are not supported."""
        n = len(self.settings)
        bad, skip = len(self.failed()), len(self.unsupported())
        ok = n - len(set(self.failed()) | set(self.unsupported()))
        outs = ", ".join(self.outputs) or "nothing"
        parts = [f"{ok} of {n} settings pass", f"{bad} fail"]
        if skip:
            parts.append(f"{skip} not supported")
        head = "PASSED" if self.passed else "FAILED"
        return f"check_layer ({outs}): {head}: " + ", ".join(parts)

    def __str__(self):
        width = max(len(s.name) for s in self.settings) + 2
        lines = [self.summary(), ""]
        header = f"{'setting':<{width}}" + "".join(f"{o:<16}" for o in self.outputs)
        lines.append(header.rstrip())
        for s in self.settings:
            cells = [f"{_text(self.cells[s.name, o]):<16}" for o in self.outputs]
            lines.append(f"{s.name:<{width}}{''.join(cells)}".rstrip())
        for d in self.diagnoses:
            lines.append("")
            lines += textwrap.wrap(
                f"{d.output}: {d.sentence}", 88, subsequent_indent="    "
            )
            lines += [f"    see the bug zoo: {t} ({u})" for t, u in d.links]
            if d.case:
                lines += ["    " + line for line in d.case.splitlines()]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        esc = html.escape
        head = "".join(f"<th style='{_TH}'>{esc(o)}</th>" for o in self.outputs)
        rows = []
        for s in self.settings:
            changed = ", ".join(f"{k}={v!r}" for k, v in s.changed().items())
            changed += "" if s.bias else (", " if changed else "") + "no bias"
            label = (
                f"<td style='{_TD}text-align:left' title='{esc(str(s))}'>"
                f"{esc(s.name)}<br><small style='color:#5f6368'>{esc(changed)}"
                "</small></td>"
            )
            tds = "".join(_html_cell(self.cells[s.name, o]) for o in self.outputs)
            rows.append(f"<tr>{label}{tds}</tr>")
        table = (
            f"<table style='border-collapse:collapse;font-size:0.85em'>"
            f"<thead><tr><th style='{_TH}text-align:left'>setting</th>{head}</tr>"
            "</thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
        items = []
        for d in self.diagnoses:
            links = " ".join(
                f"(<a href='{esc(u)}'>the bug zoo: {esc(t)}</a>)" for t, u in d.links
            )
            case = (
                f"<pre style='font-size:0.85em'>{esc(d.case)}</pre>" if d.case else ""
            )
            items.append(
                f"<li><b>{esc(d.output)}</b>: {esc(d.sentence)} {links}{case}</li>"
            )
        colour = "#137333" if self.passed else "#a50e0e"
        diag = f"<ul>{''.join(items)}</ul>" if items else ""
        return (
            f"<div class='convbook-check'><p style='color:{colour}'>"
            f"<b>{esc(self.summary())}</b> ({self.seconds:.2f} s)</p>"
            f"{table}{diag}</div>"
        )


_TH = "border:1px solid #dadce0;padding:2px 8px;background:#f8f9fa;"
_TD = "border:1px solid #dadce0;padding:2px 8px;"
_COLOURS = {
    "pass": ("#e6f4ea", "#137333"),
    "fail": ("#fce8e6", "#a50e0e"),
    "unsupported": ("#f1f3f4", "#5f6368"),
}


def _text(cell):
    if cell.status == "pass":
        return "ok 0" if cell.error == 0 else f"ok {cell.error:.0e}"
    if cell.status == "unsupported":
        return "not supported"
    if cell.kind == "value":
        return f"FAIL {cell.error:.1e}"
    return (
        "FAIL "
        + {
            "shape": "shape",
            "error": "raised",
            "dtype": "dtype",
            "wrote": "wrote input",
            "view": "view of input",
        }[cell.kind]
    )


def _html_cell(cell):
    bg, fg = _COLOURS[cell.status]
    mark = {"pass": "✓", "fail": "✗", "unsupported": "–"}[cell.status]
    short = _text(cell).removeprefix("ok ").removeprefix("FAIL ")
    return (
        f"<td style='{_TD}background:{bg};color:{fg};text-align:center;"
        "white-space:nowrap' "
        f"title='{html.escape(cell.detail)}'>{mark} {html.escape(short)}</td>"
    )
