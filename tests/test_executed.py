"""The chapters as the book of record executed them: every check ran, and passed.

`make test` runs this right after the book build (marker `executed`; the unit step
leaves it out). It reads the notebooks that build executed,
`_build/jupyter_execute/book/*.ipynb` (the English edition; the Chinese one takes the
same outputs from the shared jupyter cache), and fails, naming chapter and cell, when

- a chapter printed that a check was skipped ("PyTorch is not installed ... skipped"):
  the prose relies on its checks, so the build of record must run them all;
- a chapter has no executed cell with an `assert`, or a cell shows an error (a cell
  tagged `raises-exception`, which myst-nb and nbval let raise, may);
- a chapter of `_toc.yml` was not executed, or was executed from other code than the
  chapter has now (a stale build);
- the status page does not list every chapter as executed without error.

Without a build it skips, saying so.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml  # PyYAML, a dependency of jupyter-book

pytestmark = pytest.mark.executed

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
STATUS = ROOT / "_build" / "html" / "book" / "status.html"

# What a chapter prints when it leaves out a check (case-insensitive).
SKIP_WORDS = re.compile(
    r"\bskip(?:ped|ping)\b|\bnot installed\b|\bno module named\b", re.IGNORECASE
)


def _toc_files(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        found += [node[key] for key in ("root", "file") if key in node]
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key) or []:
                found += _toc_files(child)
    return found


TOC = _toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8")))
CHAPTERS = [entry for entry in TOC if (ROOT / f"{entry}.ipynb").is_file()]


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _code(nb) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _where(chapter, k, cell) -> str:
    first = next((line for line in _source(cell).splitlines() if line.strip()), "")
    return f"{chapter}, code cell {k} ({first[:60]!r})"


def _executed(chapter: str) -> dict:
    if not EXECUTED.is_dir():
        pytest.skip(f"no book build ({EXECUTED.relative_to(ROOT)}): run `make book`")
    path = EXECUTED / f"{chapter}.ipynb"
    assert path.is_file(), f"{chapter} was not executed by the book build ({path})"
    nb = json.loads(path.read_text(encoding="utf-8"))
    source = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    ran, now = [_source(c) for c in _code(nb)], [_source(c) for c in _code(source)]
    cells = range(max(len(ran), len(now)))
    differ = [k for k in cells if ran[k : k + 1] != now[k : k + 1]]
    if differ:
        pytest.fail(
            f"{chapter}: the build executed other code than the chapter holds, from "
            f"code cell {differ[0]} on (a stale build): run `make book`",
            pytrace=False,
        )
    return nb


def _output_text(output) -> str:
    """What a reader sees of one output as text; shown source code is not output."""
    if output["output_type"] == "stream":
        text = output.get("text", "")
        return "".join(text) if isinstance(text, list) else text
    data = output.get("data", {})
    if "convbook-source" in "".join(data.get("text/html", "")):
        return ""  # cb.show_source: the package's code, whose words are no message
    parts = [data.get(kind, "") for kind in ("text/plain", "text/markdown")]
    return "\n".join("".join(p) if isinstance(p, list) else p for p in parts)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_cell_ran(chapter):
    nb = _executed(chapter)
    missed = [
        _where(chapter, k, c)
        for k, c in enumerate(_code(nb))
        if _source(c).strip() and c.get("execution_count") is None
    ]
    assert not missed, f"cells the build did not execute: {missed}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_check_was_skipped(chapter):
    nb = _executed(chapter)
    skipped = []
    for k, cell in enumerate(_code(nb)):
        for output in cell.get("outputs", []):
            for line in _output_text(output).splitlines():
                if SKIP_WORDS.search(line):
                    skipped.append(f"{_where(chapter, k, cell)}: {line.strip()!r}")
    assert not skipped, "the build of record skipped checks:\n" + "\n".join(skipped)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_asserts_and_shows_no_error(chapter):
    nb = _executed(chapter)
    asserting, errors = [], []
    for k, cell in enumerate(_code(nb)):
        tags = cell.get("metadata", {}).get("tags", [])
        if any(o["output_type"] == "error" for o in cell.get("outputs", [])):
            if "raises-exception" not in tags:
                errors.append(_where(chapter, k, cell))
        src = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line
            for line in _source(cell).splitlines()
        )
        tree = ast.parse(src)
        if cell.get("execution_count") is not None and any(
            isinstance(node, ast.Assert) for node in ast.walk(tree)
        ):
            asserting.append(k)
    assert not errors, f"cells with an error output: {errors}"
    assert asserting, f"{chapter}: no executed cell asserts anything"


def test_status_page_lists_every_chapter():
    if not STATUS.is_file():
        where = STATUS.relative_to(ROOT)
        pytest.skip(f"no built status page ({where}): run `make book`")
    page = STATUS.read_text(encoding="utf-8")
    table = re.search(r"<table.*?</table>", page, re.S)
    assert table, "the status page has no table"
    rows = re.findall(r"<tr.*?</tr>", table.group(0), re.S)
    listed = {}
    for row in rows[1:]:
        cells = re.findall(r"<td.*?>(.*?)</td>", row, re.S)
        name = re.sub(r"<.*?>", "", cells[0]).strip()
        listed[name] = [re.sub(r"<.*?>", "", c).strip() for c in cells[1:]]
    assert sorted(listed) == sorted(CHAPTERS), f"the status page lists {sorted(listed)}"
    for chapter, (_modified, _method, runtime, status) in listed.items():
        assert status == "✅", f"{chapter}: status {status!r} on the status page"
        assert float(runtime) >= 0, f"{chapter}: run time {runtime!r}"
