"""Store in every chapter the metadata JupyterLab expects, so it opens clean in Lab.

JupyterLab fills in the notebook's ``kernelspec`` and ``language_info`` from the kernel
it starts; where the stored values differ, the chapter opens marked as modified
("unsaved") before the reader has done anything. This script stores what this
environment's ``python3`` kernel (ipykernel) reports, and marks the setup cell (the
first code cell, tagged ``hide-cell`` for the book) collapsed in Lab as well
(``jupyter.source_hidden``). Nothing else changes: cells, outputs (none are stored) and
formatting stay as they are.

Usage, from the repository root::

    .venv/bin/python tools/notebook_metadata.py          # rewrite what needs it
    .venv/bin/python tools/notebook_metadata.py --check  # exit 1 where one needs it

``language_info.version`` is the Python version of the kernel, so a chapter opens clean
where the reader's Python is the one stored (the project's); elsewhere Lab updates that
one field. ``tests/test_notebooks.py`` checks that every chapter has this metadata.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def expected_metadata() -> dict:
    """``kernelspec`` and ``language_info`` as Lab sets them from the python3 kernel."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    kernelspec = {
        "display_name": spec.display_name,
        "language": spec.language,
        "name": "python3",
    }
    return {
        "kernelspec": kernelspec,
        "language_info": json.loads(
            json.dumps(IPythonKernel.language_info, sort_keys=True)
        ),
    }


def setup_cell(nb: dict) -> dict | None:
    """The first code cell, if it is the setup cell (tagged ``hide-cell``)."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if code and "hide-cell" in code[0].get("metadata", {}).get("tags", []):
        return code[0]
    return None


def updated(nb: dict, metadata: dict) -> dict:
    """A copy of ``nb`` with the metadata and the collapsed setup cell."""
    nb = copy.deepcopy(nb)
    nb["metadata"].update(copy.deepcopy(metadata))
    cell = setup_cell(nb)
    if cell is not None:
        meta = cell["metadata"]
        jupyter = meta.get("jupyter", {})
        jupyter["source_hidden"] = True
        # keys in nbformat's (sorted) order, so the diff is the new lines only
        cell["metadata"] = dict(sorted({**meta, "jupyter": jupyter}.items()))
    return nb


def dumps(nb: dict) -> str:
    """The notebook as the book stores it: indent 1, UTF-8 as is, a final newline."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if needed"
    )
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "book").glob("*.ipynb"))
    metadata = expected_metadata()
    stale = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        new = dumps(updated(json.loads(text), metadata))
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    verb = "needs the metadata:" if args.check else "updated:"
    for path in stale:
        print(verb, path)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
