"""The built HTML book in a real headless browser (Debian's chromium, by playwright).

Runs once both editions are built (`make test`: the book lane's last step, in two
chromiums by pytest-xdist, each worker with its own server and browser). For every page
of both editions (English in `_build/html`, Chinese in `_build/html/zh`), served from
127.0.0.1 with no internet: no console error or uncaught exception, no failed or 404
local request, no request to the internet (matplotlib's to_jshtml player links a
FontAwesome stylesheet from a CDN: convbook.plotting strips it, the theme's own icons
draw the buttons), no local link to a missing file or anchor, maths typeset by the
vendored MathJax without errors, saved widget state drawn by the vendored widget
manager, every `to_jshtml` animation playing when Play is clicked, no code block,
printed output or displayed equation scrolling sideways in a 1280-px window, the page's
language (`lang="zh-CN"` and the translated part captions in the Chinese edition), and
one language switch that lands on the same page in the other edition. Also: the switch
carries the section anchor along and works from `file://`, and Chinese search finds
Chinese words (jieba).

Each check has PAGE_DEADLINE_S to finish: playwright's `evaluate` and `close` have no
timeout of their own, and once a page's check never returned (a CI run waited on it for
75 minutes). Past the deadline playwright is stopped, which makes the waiting call
raise; the check then runs once more in a new browser, and a check that hangs twice
fails. A hang followed by a pass is reported as a warning (`PageHung`) with the line the
test was waiting on, never silently.

Skips (saying why) when the book is not built or chromium is not installed; `.ci/run`
installs it. Environment: CONVBOOK_HTML (default `_build/html`), CHROMIUM (default
`/usr/bin/chromium`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import http.server
import os
import re
import sys
import threading
import time
import warnings
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
from conftest import browser_deadline, chromium_missing, launch_chromium

pytestmark = [
    pytest.mark.browser,
    # pyproject makes warnings errors; a PageHung is reported, not raised
    pytest.mark.filterwarnings("default:hung for:UserWarning"),
]

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("CONVBOOK_HTML", ROOT / "_build" / "html")).resolve()
SKIP_PAGES = {"genindex.html", "search.html"}
# The other language editions: folder under the English site -> <html lang>.
EDITIONS = {"zh": "zh-CN"}
# A page's checks take 2-10 s here (the gallery's eight animations the longest).
PAGE_DEADLINE_S = 120


class PageHung(UserWarning):
    """A check hung, playwright was stopped, and the check passed in a new browser."""


@functools.cache
def _zh_captions() -> list[str]:
    """The _toc.yml part captions in the Chinese edition (English if untranslated)."""
    import polib
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    po = polib.pofile(
        str(ROOT / "locale" / "zh_CN" / "LC_MESSAGES" / "book" / "intro.po")
    )
    zh = {e.msgid: e.msgstr for e in po.translated_entries()}
    return [zh.get(part["caption"], part["caption"]) for part in toc["parts"]]


def _edition(rel: str) -> tuple[str, str]:
    """(the edition's folder, the page's path in it): ("zh", "book/intro.html")."""
    first, _, rest = rel.partition("/")
    return (first, rest) if first in EDITIONS and rest else ("", rel)


def _pages() -> list[Path]:
    if not HTML.is_dir():
        return []
    # Any `_` folder (`_static`, `_sources`, `zh/_static`, ...) holds assets, not pages.
    pages = [
        p
        for p in sorted(HTML.rglob("*.html"))
        if not any(part.startswith("_") for part in p.relative_to(HTML).parts)
    ]
    return [
        p
        for p in pages
        if _edition(p.relative_to(HTML).as_posix())[1] not in SKIP_PAGES
    ]


def _skip_reason() -> str | None:
    if not (HTML / "index.html").is_file():
        return (
            f"the book is not built: no {HTML / 'index.html'} (run `make book` first)"
        )
    if chromium_missing():
        return chromium_missing()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[book]')"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A page closed while its files still download (the context closed after the
        # language switch's navigation) breaks the pipe: not an error of the book.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


class _Browser:
    """playwright and one chromium for the module; :meth:`get` starts them again after
    a deadline stopped them."""

    def __init__(self):
        self.playwright = self.browser = None

    def get(self):
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            self.browser = launch_chromium(self.playwright)
        return self.browser

    def close(self, stopped: bool = False):
        """Close the browser and playwright; ``stopped``: a deadline ended them."""
        if stopped:  # what is left of them: the calls that raised, a closed connection
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with contextlib.suppress(Exception):
                    self.playwright.stop()
                gc.collect()  # (their coroutines, never awaited)
        elif self.browser is not None:
            with browser_deadline(PAGE_DEADLINE_S):
                self.browser.close()
                self.playwright.stop()
        self.playwright = self.browser = None


@pytest.fixture(scope="module")
def browser(server):
    browser = _Browser()
    try:
        yield browser
    finally:
        browser.close()


def _bounded(browser: _Browser, check, what: str):
    """``check(chromium)`` within PAGE_DEADLINE_S; once more in a new browser if it
    hung (reported as a PageHung warning), failing if it hangs again."""
    stacks = []
    for _ in range(2):
        chromium = browser.get()  # (launching has a timeout of its own)
        with browser_deadline(PAGE_DEADLINE_S) as watch:
            try:
                result = check(chromium)
            except Exception:
                if watch.stack is None:
                    raise
        if watch.stack is None:
            if stacks:
                warnings.warn(
                    PageHung(
                        f"hung for {PAGE_DEADLINE_S} s, then passed in a new browser:"
                        f" {what}; it was waiting at\n{stacks[0]}"
                    ),
                    stacklevel=2,
                )
            return result
        stacks.append(watch.stack)
        browser.close(stopped=True)
    pytest.fail(
        f"{what}: hung twice for {PAGE_DEADLINE_S} s (playwright was stopped each"
        " time); waiting at\n" + "\n--- then at\n".join(stacks)
    )


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\bid="([^"]+)"', path.read_text(encoding="utf-8")))


def _check_local_links(page, base: str, page_path: Path) -> list[str]:
    broken = []
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    for href in sorted(set(hrefs)):
        if not href.startswith(base + "/"):
            continue
        url, fragment = urldefrag(href)
        rel = unquote(urlsplit(url).path).lstrip("/")
        target = HTML / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} -> missing {target.relative_to(HTML)}")
        elif (
            fragment
            and target.suffix == ".html"
            and unquote(fragment) not in _ids(target)
        ):
            broken.append(f"{href} -> no id {fragment!r} in {target.relative_to(HTML)}")
    return broken


def _check_maths(page) -> list[str]:
    n_math = page.locator(".math").count()
    if n_math == 0:
        return []
    try:  # (playwright waits for the promise too: for the first typesetting)
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
            timeout=15_000,
        )
    except Exception as err:  # playwright's TimeoutError or MathJax's error
        return [
            f"{n_math} maths elements but MathJax did not start and typeset in 15 s"
            f" ({type(err).__name__}: {str(err).splitlines()[0]})"
        ]
    problems = []
    typeset = page.locator(".math mjx-container").count()
    if typeset < n_math:
        problems.append(f"MathJax typeset {typeset} of {n_math} maths elements")
    errors = page.locator("mjx-merror, [data-mjx-error]").count()
    if errors:
        first = page.locator("mjx-merror, [data-mjx-error]").first.get_attribute(
            "data-mjx-error"
        )
        problems.append(f"{errors} TeX errors, e.g. {first!r}")
    return problems


def _check_widgets(page) -> list[str]:
    n_views = page.locator(
        'script[type="application/vnd.jupyter.widget-view+json"]'
    ).count()
    if n_views == 0:
        return []
    try:
        page.wait_for_function(
            "() => document.querySelectorAll('.widget-subarea > *').length"
            f" >= {n_views}",
            timeout=15_000,
        )
    except Exception:
        drawn = page.locator(".widget-subarea > *").count()
        return [f"{drawn} of {n_views} saved widgets were drawn"]
    return []


# Every to_jshtml player on the page (matplotlib's `Animation` objects, globals named
# anim<id>) is set to step every PLAY_MS: a check of a few frames then takes a fraction
# of a second instead of the 0.7-1.5 s a frame that the chapters give their readers.
PLAY_MS = 120
_FAST_PLAYERS = f"""() => Object.keys(window).filter(k => k.startsWith("anim")
    && window[k] && typeof window[k].play_animation === "function")
    .map(k => {{ window[k].interval = {PLAY_MS}; return k; }}).length"""
# What a player shows now: its slider's value, and a hash of its image (a data URI).
_SHOWN = """els => els.map(div => {
    const img = div.querySelector("img");
    const slider = div.querySelector("input.anim-slider");
    if (!img || !slider) return [null, 0];
    let h = 0;
    for (let i = 0; i < img.src.length; i++) h = (h * 31 + img.src.charCodeAt(i)) | 0;
    return [slider.value, h];
})"""


def _check_animations(page) -> list[str]:
    """Press Play on every to_jshtml player, then watch: each slider moves twice, and
    its image changes."""
    problems = []
    animations = page.locator("div.animation")
    count = animations.count()
    if count == 0:
        return []
    players = page.evaluate(_FAST_PLAYERS)
    if players != count:
        problems.append(f"{players} animation players for {count} animations")
    started = []
    for k in range(count):
        anim = animations.nth(k)
        slider = anim.locator("input.anim-slider")
        if slider.count() != 1 or anim.locator("img").count() < 1:
            problems.append(f"animation {k}: no slider or no image")
            continue
        n_frames = (
            int(slider.get_attribute("max") or 0) + 1
        )  # set from the frames when the player starts
        if n_frames < 2:
            problems.append(f"animation {k}: {n_frames} frame")
            continue
        anim.locator('button[title="First frame"]').click()
        anim.locator('button[title="Play"]').click()
        started.append(k)
    values = {k: set() for k in started}
    images = {k: set() for k in started}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        shown = animations.evaluate_all(_SHOWN)
        for k in started:
            values[k].add(shown[k][0])
            images[k].add(shown[k][1])
        if all(len(values[k]) >= 3 and len(images[k]) >= 2 for k in started):
            break
        page.wait_for_timeout(PLAY_MS // 2)
    for k in started:
        animations.nth(k).locator('button[title="Pause"]').click()
        if len(values[k]) < 3:
            went = sorted(values[k])
            problems.append(
                f"animation {k}: slider went through {went} only after Play"
            )
        elif len(images[k]) < 2:
            problems.append(
                f"animation {k}: the slider moved but the image did not change"
            )
    return problems


def _check_fits(page) -> list[str]:
    """No code block, printed output or displayed equation scrolls sideways (the
    window is 1280 px wide).

    Code is written at 88 columns (ruff), and book/_static/convbook.css sizes it so
    that 88 columns fit the narrowest block; printed text wraps, as in JupyterLab; a
    long equation is broken into lines (``aligned``).
    """
    wide = page.evaluate(
        """() => [...document.querySelectorAll(
                '.bd-article pre, .bd-article mjx-container[display="true"]')]
            .filter(e => e.scrollWidth > e.clientWidth + 1)
            .map(e => `${e.tagName.toLowerCase()}: ${e.scrollWidth} px in `
                + `${e.clientWidth}: ` + (e.tagName === 'PRE' ? e.textContent
                .split('\\n').reduce((a, l) => (l.length > a.length ? l : a), '')
                : e.textContent.slice(0, 80)))"""
    )
    return [f"scrolls sideways: {w}" for w in wide]


def _check_edition(page, rel: str) -> list[str]:
    """The page's language, and the Chinese edition's translated part captions."""
    folder, _ = _edition(rel)
    problems = []
    lang = page.evaluate("() => document.documentElement.lang")
    want = EDITIONS.get(folder, "en")
    if lang != want:
        problems.append(f"<html lang={lang!r}>, expected {want!r}")
    if folder == "zh" and page.locator(".bd-sidebar-primary .caption-text").count():
        captions = page.locator(".bd-sidebar-primary .caption-text").all_inner_texts()
        if captions != _zh_captions():
            problems.append(f"part captions {captions}, expected {_zh_captions()}")
    return problems


def _check_edition_switch(page, base: str, rel: str) -> list[str]:
    """Exactly one switch, and clicking it lands on the page in the other edition."""
    switch = page.locator("a.edition-switch")
    if switch.count() != 1:
        return [f"{switch.count()} language switches, expected 1"]
    # Where the page is now: index.html redirects to the first chapter.
    here = urldefrag(page.url)[0].removeprefix(base + "/")
    folder, inner = _edition(here)
    other = inner if folder else f"zh/{inner}"
    switch.click()
    try:  # landed once the navigation commits: the page itself is checked on its own
        page.wait_for_url(f"{base}/{other}", wait_until="commit", timeout=10_000)
    except Exception:  # playwright's TimeoutError
        return [f"the language switch led to {page.url}, expected {base}/{other}"]
    return []


@pytest.mark.parametrize(
    "rel", [p.relative_to(HTML).as_posix() for p in _pages()] or ["index.html"]
)
def test_page_in_browser(browser, server, rel):
    problems = _bounded(browser, lambda chromium: _problems(chromium, server, rel), rel)
    assert not problems, f"{rel}:\n  " + "\n  ".join(problems)


def _problems(browser, server: str, rel: str) -> list[str]:
    """Everything wrong with one page of the built book, in a context of its own."""
    # 1280 px: a laptop's window, where the page's contents column still shows
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors, page_errors, failed, external = [], [], [], []

    def on_route(route):
        url = route.request.url
        if url.startswith(server + "/"):
            route.continue_()
        else:  # offline it would fail (a console error): answer it, report it instead
            external.append(url)
            route.fulfill(status=204, body="")

    context.route("**/*", on_route)
    page.on(
        "console",
        lambda m: (
            console_errors.append(f"{m.text} @ {m.location.get('url')}")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on(
        "requestfailed",
        lambda r: (
            failed.append(f"{r.url}: {r.failure}") if r.url.startswith(server) else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            failed.append(f"{r.url}: HTTP {r.status}") if r.status >= 400 else None
        ),
    )
    try:
        page.goto(f"{server}/{rel}", wait_until="load")
        page.wait_for_load_state("networkidle")
        problems = []
        problems += _check_maths(page)
        problems += _check_widgets(page)
        problems += _check_animations(page)
        problems += [
            f"broken link: {b}" for b in _check_local_links(page, server, HTML / rel)
        ]
        problems += _check_edition(page, rel)
        problems += _check_fits(page)
        page.wait_for_timeout(200)
        problems += [f"console error: {e}" for e in console_errors]
        problems += [f"uncaught exception: {e}" for e in page_errors]
        problems += [f"failed request: {f}" for f in failed]
        problems += [f"request to the internet: {u}" for u in external]
        # Last: it leaves the page (the other page is checked as a page of its own).
        problems += _check_edition_switch(page, server, rel)
    finally:
        context.close()
    return problems


def test_switch_keeps_the_section_and_works_from_disk(browser):
    """From file://: English section -> the same section in Chinese, and back."""
    if not (HTML / "zh" / "book" / "intro.html").is_file():
        pytest.skip("the Chinese edition is not built (run `make book`)")
    _bounded(browser, _switch_from_disk, "the switch from file://")


def _switch_from_disk(browser) -> None:
    page = browser.new_page()
    try:
        anchor = "#who-it-is-for"
        page.goto((HTML / "book" / "intro.html").as_uri() + anchor)
        page.locator("a.edition-switch").click()
        page.wait_for_url((HTML / "zh" / "book" / "intro.html").as_uri() + anchor)
        assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
        heading = page.locator(f"{anchor} h2").inner_text()
        assert re.search(r"[\u4e00-\u9fff]", heading), (
            f"untranslated heading {heading!r}"
        )
        page.locator("a.edition-switch").click()
        page.wait_for_url((HTML / "book" / "intro.html").as_uri() + anchor)
        assert page.evaluate("() => document.documentElement.lang") == "en"
    finally:
        page.close()


def test_chinese_search_finds_chinese_words(browser, server):
    """Sphinx indexes Chinese with jieba; without it no Chinese word is in the index."""
    if not (HTML / "zh" / "search.html").is_file():
        pytest.skip("the Chinese edition is not built (run `make book`)")
    _bounded(browser, lambda chromium: _search(chromium, server), "Chinese search")


def _search(browser, server: str) -> None:
    page = browser.new_page()
    try:
        # 卷积层: a word of locale/zh_CN/jieba-words.txt, not of jieba's own dictionary.
        for query in ("卷积", "卷积层", "反向传播"):
            page.goto(f"{server}/zh/search.html?q={query}")
            results = page.locator("#search-results ul.search li a")
            results.first.wait_for(timeout=15_000)
            hrefs = results.evaluate_all("els => els.map(e => e.getAttribute('href'))")
            assert any("book/intro.html" in h for h in hrefs), (query, hrefs)
    finally:
        page.close()


def test_a_check_that_hangs_is_stopped_and_run_again(browser, monkeypatch):
    """The deadline works: a never-settling evaluate is stopped, reported and run
    again; one that hangs twice fails, saying where it waited."""
    monkeypatch.setattr(sys.modules[__name__], "PAGE_DEADLINE_S", 3)
    calls = []

    def hangs_once(chromium):
        calls.append(1)
        page = chromium.new_page()
        if len(calls) == 1:
            page.evaluate("() => new Promise(() => {})")  # never settles
        return page.evaluate("() => 6 * 7")

    with pytest.warns(PageHung, match=r"(?s)hung for 3 s.*page\.evaluate"):
        assert _bounded(browser, hangs_once, "a test check") == 42
    assert len(calls) == 2

    def hangs(chromium):
        chromium.new_page().evaluate("() => new Promise(() => {})")

    with pytest.raises(pytest.fail.Exception, match=r"(?s)hung twice.*evaluate"):
        _bounded(browser, hangs, "a test check")
    assert browser.get().new_page().evaluate("() => 1") == 1  # a new browser again
