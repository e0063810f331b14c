"""The book's sources: notebooks stored clean, every page in the table of contents,
config sane.

The book build executes every notebook (`execute_notebooks: force`), so a stored output
would only be stale noise in diffs; nbval (`pytest --nbval-lax`) fails only on
exceptions, so a notebook with no assert-ing cell would pass whatever it printed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml  # PyYAML, a dependency of jupyter-book

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))
# The chapters, in reading order (the shared brief's list); _toc.yml must list exactly
# these.
PAGES = [
    "book/intro",
    "book/gallery",
    "book/notation",
    "book/by-hand",
    "book/im2col",
    "book/forward",
    "book/grad-weight",
    "book/grad-input",
    "book/layer",
    "book/train",
    "book/bug-zoo",
    "book/fast-im2col",
    "book/winograd",
    "book/benchmarks",
    "book/cuda",
    "book/references",
    "book/status",
]


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _toc_files(node) -> list[str]:
    """Every `file:` entry of a jupyter-book toc, in order (root first)."""
    found = []
    if isinstance(node, dict):
        if "root" in node:
            found.append(node["root"])
        if "file" in node:
            found.append(node["file"])
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found += _toc_files(child)
    return found


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {BOOK}"


def test_toc_lists_every_page_in_order():
    files = _toc_files(_yaml(ROOT / "_toc.yml"))
    assert files == PAGES, f"_toc.yml lists {files}"


def test_every_toc_entry_exists_once():
    files = _toc_files(_yaml(ROOT / "_toc.yml"))
    for entry in files:
        matches = [
            p for p in (ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb") if p.exists()
        ]
        # Two sources with one stem: Sphinx warns "multiple files found for the
        # document".
        assert len(matches) == 1, (
            f"_toc.yml entry {entry!r}: found {[str(m) for m in matches]}"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_in_toc(path):
    files = _toc_files(_yaml(ROOT / "_toc.yml"))
    assert path.relative_to(ROOT).with_suffix("").as_posix() in files, (
        f"{path.name} is not in _toc.yml"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = _load(path)
    dirty = [
        k
        for k, cell in enumerate(nb["cells"])
        if cell["cell_type"] == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        f"{path.name}: cells {dirty} have outputs or execution counts (clear them)"
    )
    assert "widgets" not in nb.get("metadata", {}), (
        f"{path.name}: saved widget state in the metadata"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_kernelspec(path):
    spec = _load(path).get("metadata", {}).get("kernelspec", {})
    assert spec.get("name") == "python3", (
        f"{path.name}: kernelspec {spec!r} (the build needs 'python3')"
    )
    assert spec.get("language") == "python"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asserts_its_claims(path):
    """At least one code cell really asserts (an `assert` statement, not a comment or a
    string)."""
    asserting = []
    for k, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "code":
            continue
        # IPython magics and shell lines are not Python: blank them before parsing.
        src = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line
            for line in _source(cell).splitlines()
        )
        try:
            tree = ast.parse(src)
        except SyntaxError as err:
            pytest.fail(f"{path.name}: cell {k} is not valid Python: {err}")
        if any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
            asserting.append(k)
    assert asserting, f"{path.name}: no code cell asserts anything"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_one_title(path):
    """One H1 per page (the build warns otherwise)."""
    titles = [
        line
        for cell in _load(path)["cells"]
        if cell["cell_type"] == "markdown"
        for line in re.sub(r"```.*?```", "", _source(cell), flags=re.S).splitlines()
        if re.match(r"^# ", line)
    ]
    assert len(titles) == 1, f"{path.name}: H1 headings {titles}"


def test_book_config():
    config = _yaml(ROOT / "_config.yml")
    assert config["only_build_toc_files"] is True
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["raise_on_error"] is True
    sphinx = config["sphinx"]["config"]
    assert "sphinx.ext.intersphinx" not in sphinx["extensions"]
    assert "intersphinx_mapping" not in sphinx
    assert "sphinx_thebe" not in sphinx["extensions"]
    for pattern in (".*", "src", "tests", "_build", ".venv"):
        assert pattern in config["exclude_patterns"]
    # The browser assets the built HTML needs are in the repository, not on a CDN.
    static = ROOT / "book" / "_static"
    assert (static / sphinx["mathjax_path"]).is_file()
    for script in sphinx["nb_ipywidgets_js"]:
        assert not script.startswith(("http:", "https:", "//")), script
        assert (static / script).is_file(), script


def _repo_links():
    spec = importlib.util.spec_from_file_location(
        "repo_links", BOOK / "_ext" / "repo_links.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    "remote, url",
    [
        ("git@github.com:someone/convbook.git", "https://github.com/someone/convbook"),
        (
            "https://github.com/someone/convbook.git",
            "https://github.com/someone/convbook",
        ),
        ("https://github.com/someone/convbook/", "https://github.com/someone/convbook"),
        (
            "ssh://git@gitlab.com/group/convbook.git",
            "https://gitlab.com/group/convbook",
        ),
        (
            "https://user:token@github.com/someone/convbook",
            "https://github.com/someone/convbook",
        ),
        ("git@bitbucket.org:team/convbook.git", "https://bitbucket.org/team/convbook"),
        ("/srv/clones/convbook", None),
        ("file:///srv/clones/convbook", None),
        ("../convbook", None),
        ("https://example.org/someone/convbook.git", None),
        ("https://github.com/someone", None),
        ("", None),
    ],
)
def test_repo_links_remote_to_https(remote, url):
    assert _repo_links().https_url(remote) == url


def test_repo_links_options(tmp_path, monkeypatch):
    repo_links = _repo_links()
    monkeypatch.setenv("CONVBOOK_REPO_URL", "git@github.com:someone/convbook.git")
    opts = repo_links.repository_options(tmp_path)
    assert opts["repository_url"] == "https://github.com/someone/convbook"
    assert opts["use_repository_button"] is True
    assert opts["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert opts["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    monkeypatch.setenv("CONVBOOK_REPO_URL", "https://gitlab.com/group/convbook")
    assert "colab_url" not in repo_links.repository_options(tmp_path)["launch_buttons"]
    monkeypatch.setenv("CONVBOOK_REPO_URL", "")
    opts = repo_links.repository_options(tmp_path)
    assert opts["repository_url"] == "" and opts["launch_buttons"] == {}
    assert opts["use_repository_button"] is False


# What JupyterLab fills in from the python3 kernel (ipykernel): stored, a chapter opens
# in Lab without being marked modified. `tools/notebook_metadata.py` writes it.
LAB_KERNELSPEC = {
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "name": "python3",
}
LAB_LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
}
FIX = "run .venv/bin/python tools/notebook_metadata.py"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_the_metadata_lab_expects(path):
    meta = _load(path)["metadata"]
    assert meta.get("kernelspec") == LAB_KERNELSPEC, f"{path.name}: kernelspec ({FIX})"
    info = dict(meta.get("language_info", {}))
    version = info.pop("version", "")
    assert info == LAB_LANGUAGE_INFO, f"{path.name}: language_info {info} ({FIX})"
    assert re.fullmatch(r"3\.\d+\.\d+", version), f"{path.name}: language_info.version"


def test_notebooks_store_one_python_version():
    versions = {
        _load(p)["metadata"].get("language_info", {}).get("version") for p in NOTEBOOKS
    }
    assert len(versions) == 1, (
        f"language_info.version differs between chapters: {versions}"
    )


def test_notebook_metadata_script_changes_nothing():
    """The maintenance script, which derives the metadata from the installed kernel
    (the constants above only spell it out), finds nothing to change."""
    import platform
    import subprocess
    import sys

    stored = _load(NOTEBOOKS[0])["metadata"].get("language_info", {}).get("version")
    if stored != platform.python_version():
        pytest.skip(
            f"the chapters store Python {stored}, this is {platform.python_version()}"
        )
    script = ROOT / "tools" / "notebook_metadata.py"
    cmd = [sys.executable, str(script), "--check"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_setup_cell_collapsed_in_lab(path):
    """The first code cell (imports, tagged hide-cell for the book) is collapsed in
    Lab."""
    first = next(c for c in _load(path)["cells"] if c["cell_type"] == "code")
    meta = first["metadata"]
    assert "hide-cell" in meta.get("tags", []), f"{path.name}: first code cell"
    hidden = meta.get("jupyter", {}).get("source_hidden")
    assert hidden is True, f"{path.name}: the setup cell shows in Lab ({FIX})"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_myst_directives_in_one_form(path):
    """Every directive is a colon fence (`:::{admonition} Title`, options, a blank
    line): the form the book uses and jupyterlab-myst renders. A solution is a
    dropdown."""
    for k, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        lines = _source(cell).splitlines()
        for n, line in enumerate(lines):
            where = f"{path.name}: cell {k}, line {n + 1}: {line!r}"
            assert not re.match(r"^\s*`{3,}\s*\{[\w-]+\}", line), (
                f"backtick fence: {where}"
            )
            if not re.match(r"^:::+\{[\w-]+\}", line):
                continue
            rest = lines[n + 1 :]
            options = 0
            while options < len(rest) and re.match(r"^:[\w-]+:", rest[options]):
                options += 1
            after = rest[options] if options < len(rest) else ""
            assert not after.strip(), f"no blank line after the options: {where}"
            if line.startswith(":::{admonition}"):
                assert ":class: dropdown" in rest[:options], f"not a dropdown: {where}"
