"""The Jupyter-first promise: a chapter read and run in JupyterLab as a reader would.

Starts JupyterLab from this environment (the project's .venv) on 127.0.0.1 with a known
token, opens one chapter with explorers in headless Chromium (Debian's, driven by
playwright) and checks what a reader sees:

* the chapter opens clean: Lab does not mark it modified ("unsaved") once its kernel is
  up;
* the setup cell is collapsed; the MyST solutions render (jupyterlab-myst) as closed
  dropdowns with typeset maths, and no directive shows as raw text;
* "Run All Cells" runs every cell without an error;
* moving an explorer's slider from the keyboard redraws its picture, shown at its
  natural size;
* nothing is fetched from the internet, and no notebook on disk was modified (autosave
  off, no checkpoint left behind).

Lab renders only the cells in view unless told otherwise (windowing) and autosaves: both
are switched off in the user settings this test gives it. Skips (saying why) where
chromium or playwright is missing. Environment: CHROMIUM (default `/usr/bin/chromium`).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import browser_deadline, chromium_missing, launch_chromium

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTER = "by-hand.ipynb"  # two explorers, a dropdown of solutions with maths
# The test takes 35-55 s on 2 cores; past this it has hung: playwright is stopped.
DEADLINE_S = 300
SETTINGS = {
    # autosave would write the outputs of the run into book/*.ipynb
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # without it only the cells in view are rendered, and the text checks miss the rest
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none"
    },
    # no consent toast about fetching Jupyter news
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def _skip_reason() -> str | None:
    if chromium_missing():
        return chromium_missing()
    try:
        import jupyterlab  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        return f"{err.name} is not installed (pip install -e '.[book]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot() -> dict[str, str]:
    """Every file and folder under book/ (notebooks, checkpoints), files by content."""
    return {
        p.relative_to(BOOK).as_posix(): (
            hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        )
        for p in sorted(BOOK.rglob("*"))
        if "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("lab")
    for name, value in SETTINGS.items():
        path = tmp / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value), encoding="utf-8")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # an Agg backend would drop every figure
    # the reader's own Jupyter config and data stay out of it (kernelspecs and lab
    # extensions are found in this environment's prefix)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        env[var] = str(tmp / var.lower())
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={BOOK}",
        "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        # Lab makes a checkpoint of a notebook it opens, by default in
        # book/.ipynb_checkpoints/: an absolute folder keeps them out of the book
        f"--FileCheckpoints.checkpoint_dir={tmp / 'checkpoints'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.open_browser=False",
    ]
    if os.geteuid() == 0:  # in a container: Lab refuses to run as root without it
        cmd.append("--allow-root")
    log = open(tmp / "lab.log", "w+", encoding="utf-8")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=BOOK
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                url = f"{base}/api/status?token={token}"
                with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - local
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"JupyterLab did not start:\n{log.read()[-3000:]}")
            time.sleep(0.3)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# What the page runs in Lab (window.jupyterapp exists with expose_app_in_browser).
JS_PANEL = "() => window.jupyterapp.shell.currentWidget"
JS_READY = """() => {
  const p = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!p || !p.context || !p.context.isReady || !p.sessionContext) return false;
  const k = p.sessionContext.session && p.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""
JS_KERNEL_INFO = """async () => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  await k.info;
  await k.spec;
}"""
JS_STATE = """() => {
  const p = window.jupyterapp.shell.currentWidget;
  const cells = p.content.widgets.map(w => ({
    type: w.model.type,
    hidden: w.inputHidden,
    count: w.model.type === 'code' ? w.model.executionCount : null,
    errors: w.model.type === 'code'
      ? Array.from({length: w.model.outputs.length}, (_, i) => w.model.outputs.get(i))
          .filter(o => o.type === 'error')
          .map(o => o.toJSON().ename + ': ' + o.toJSON().evalue)
      : [],
  }));
  return {dirty: p.context.model.dirty, cells,
          status: p.sessionContext.session.kernel.status};
}"""


def test_chapter_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    base, token = lab
    before = _snapshot()
    outside = []
    # playwright's evaluate has no timeout of its own (conftest.browser_deadline)
    with browser_deadline(DEADLINE_S) as watch, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def offline(route):
                outside.append(route.request.url)
                route.abort()

            page.route(lambda url: not url.startswith(base), offline)
            page.goto(f"{base}/lab/tree/{CHAPTER}?token={token}")
            page.wait_for_function(JS_READY, timeout=60_000)
            # Lab sets the metadata when the kernel's info and spec arrive: after them
            page.evaluate(JS_KERNEL_INFO)
            page.wait_for_timeout(500)

            state = page.evaluate(JS_STATE)
            _check_opens_clean(page, state)
            first_code = next(c for c in state["cells"] if c["type"] == "code")
            assert first_code["hidden"], "the setup cell is not collapsed"
            _check_myst(page)

            page.evaluate(
                "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"
            )
            page.wait_for_function(
                """() => {
                  const p = window.jupyterapp.shell.currentWidget;
                  const k = p.sessionContext.session.kernel;
                  return k.status === 'idle' && p.content.widgets.every(
                    w => w.model.type !== 'code' || w.model.executionCount !== null);
                }""",
                timeout=120_000,
            )
            state = page.evaluate(JS_STATE)
            errors = [
                (k, c["errors"]) for k, c in enumerate(state["cells"]) if c["errors"]
            ]
            assert not errors, f"cells failed: {errors}"
            _check_explorer(page)
        except Exception:
            if watch.stack is None:
                raise
        finally:
            if watch.stack is None:
                browser.close()
    if watch.stack is not None:
        pytest.fail(f"hung for {DEADLINE_S} s (playwright stopped), at\n{watch.stack}")
    assert not outside, f"requests left 127.0.0.1: {outside[:5]}"
    assert _snapshot() == before, (
        "a file under book/ was written (autosave? checkpoint?)"
    )


def _check_opens_clean(page, state):
    """Lab found the metadata it expects stored: it changed nothing, so the chapter is
    not marked modified. Only ``language_info.version`` depends on the reader's Python:
    where that differs from the stored one (the project's), Lab updates that field."""
    stored = json.loads((BOOK / CHAPTER).read_text(encoding="utf-8"))["metadata"]
    seen = page.evaluate(f"() => ({JS_PANEL})().model.metadata")
    version = seen["language_info"]["version"]
    if stored["language_info"].get("version") != version:
        stored["language_info"]["version"] = version  # another Python than the stored
    else:
        assert not state["dirty"], "the chapter opens modified: metadata Lab fills in"
    assert seen == stored, f"Lab changed the metadata: stored {stored}, in Lab {seen}"


def _check_myst(page):
    """Solutions as closed dropdowns with typeset maths; no directive as raw text."""
    text = page.inner_text(".jp-Notebook")
    for raw in (":::{", "```{", ":class: dropdown"):
        assert raw not in text, f"MyST shows as raw text: {raw!r}"
    dropdowns = page.locator(".jp-MarkdownCell details")
    assert dropdowns.count() >= 1, (
        "no dropdown rendered (is jupyterlab-myst installed?)"
    )
    for k in range(dropdowns.count()):
        assert dropdowns.nth(k).get_attribute("open") is None, "a solution starts open"
    # maths typeset in the prose and inside the (closed) solutions, no TeX source left
    assert page.locator(
        ".jp-MarkdownCell mjx-container, .jp-MarkdownCell .katex"
    ).count()
    solution = dropdowns.first
    assert solution.locator("mjx-container, .katex").count() >= 1
    assert "\\lfloor" not in solution.inner_text()


def _check_explorer(page):
    """The first explorer: a slider moved from the keyboard redraws the picture."""
    box = page.locator(".jp-OutputArea .widget-vbox").first
    box.scroll_into_view_if_needed()
    image = box.locator("img").first
    image.wait_for(state="visible", timeout=30_000)
    src = image.get_attribute("src")
    natural = image.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
    assert abs(natural[0] / 2 - natural[1]) <= 1, (
        f"picture not at its natural size: {natural}"
    )
    handle = box.locator(".noUi-handle").first
    handle.focus()
    # the first slider (by-hand's explorer: the stride, saved at its minimum, 1) one up
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([img, before]) => img.getAttribute('src') !== before",
        arg=[image.element_handle(), src],
        timeout=30_000,
    )
