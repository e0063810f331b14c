"""The book in several languages from one set of sources: Sphinx's gettext i18n.

Every edition is built from the same notebooks and pages; only the prose differs, taken
from the gettext catalogs in ``locale/<language>/LC_MESSAGES/`` (one per page:
``gettext_compact: false``). ``book/_ext/translation.py`` extracts the messages, updates
the catalogs and derives each edition's configuration; this extension fills the gaps
that Sphinx leaves under jupyter-book:

- display maths, and text with no English words outside its maths and code, is not
  sent to translators (``translatable=False``, set before Sphinx's Locale transform);
- the ``_toc.yml`` part captions are translated, by a transform at priority 101:
  sphinx-external-toc inserts its toctrees at 100, after Locale (20) has run;
- the book title, the interface strings set in ``_config.yml`` (search box, toggle
  hints, code-cell prompts) and a few theme strings come from the ``sphinx`` catalog
  (``locale/<language>/LC_MESSAGES/sphinx.po``): the gettext builder extracts them into
  it, and Sphinx loads that catalog before its own;
- every page links to the same page in the other editions
  (``book/_templates/lang-switch.html``, in the article header): a plain relative link,
  so it works offline and on ``file://``;
- Chinese search knows the book's terms (``locale/zh_CN/jieba-words.txt``).

The English edition is the root of the site and each other edition a folder in it
(``EDITIONS``), so one site holds them all and the links between them are relative.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx import locale as sphinx_locale
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.i18n import docname_to_domain

logger = logging.getLogger(__name__)

# language -> folder of its edition under the English site; the first one is the source.
EDITIONS = {"en": "", "zh_CN": "zh"}
# How each edition names itself in its switch link, and the switch's tooltip, written in
# the language of the page it leads to.
NAMES = {"en": "English", "zh_CN": "中文"}
TOOLTIPS = {"en": "Read this page in English", "zh_CN": "阅读本页的中文版"}

# Interface strings set in the configuration, by config name, and the theme options that
# hold some. Their English values go into the `sphinx` catalog.
CONFIG_STRINGS = (
    "html_title",
    "togglebutton_hint",
    "togglebutton_hint_hide",
    "nb_code_prompt_show",
    "nb_code_prompt_hide",
)
THEME_OPTION_STRINGS = ("search_bar_text",)
# Theme strings that the themes' catalogs leave in English or word unlike the book
# (sphinx-book-theme's zh_CN says 列印, Taiwan's word, for "print").
THEME_STRINGS = ("© Copyright %(copyright)s.", "Print to PDF")
# Third-party message catalogs that the book's `sphinx` catalog overrides.
THEME_CATALOGS = ("booktheme",)
# The book's terms for the search index's word splitter (jieba), one per line.
SEARCH_WORDS = "jieba-words.txt"
# sphinx-book-theme's default for its `article_header_end` option.
THEME_HEADER_END = ["article-header-buttons.html"]

# What a message may contain that is not prose: maths, code, roles, link targets.
_NOT_PROSE = re.compile(
    r"\$\$.*?\$\$|\$[^$]+\$"  # maths
    r"|\{[\w:.-]+\}`[^`]*`"  # a role: {ref}`target`
    r"|``.+?``|`[^`]+`"  # inline code
    r"|\]\([^)]*\)"  # a link's target
    r"|<[a-z]+://[^>]*>",  # an autolink
    re.S,
)
# The sources are English: text with no Latin letter (the glossary's 卷积) has no words
# to translate.
_LETTER = re.compile(r"[A-Za-z]")


def has_prose(text: str) -> bool:
    """Whether ``text`` has English words outside its maths, code and links.

    >>> has_prose("$X$"), has_prose("`(N, C)`"), has_prose("$O_H$ (`OH`, `OW`)")
    (False, False, False)
    >>> has_prose("卷积核, 滤波器"), has_prose("空洞卷积: dilated convolution")
    (False, True)
    >>> has_prose("a batch of $N$ images"), has_prose("[im2col](im2col.ipynb)")
    (True, True)
    """
    return _LETTER.search(_NOT_PROSE.sub(" ", text)) is not None


class KeepUntranslated(SphinxTransform):
    """Mark display maths, and text with no prose in it, as not for translation."""

    # Before sphinx.transforms.i18n.Locale (20), which replaces translatable nodes.
    default_priority = 15

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for node in self.document.findall(nodes.TextElement):
            if isinstance(node, nodes.math_block | nodes.Inline | nodes.literal_block):
                continue
            text = node.rawsource.replace("\n", " ").strip()
            if text and not has_prose(text):
                node["translatable"] = False


class TranslateTocCaptions(SphinxTransform):
    """Translate the `_toc.yml` part captions from the page's catalog."""

    # sphinx-external-toc inserts the toctrees at priority 100.
    default_priority = 101

    def apply(self, **kwargs) -> None:
        if _is_source_language(self.config.language):
            return
        toctrees = [
            t for t in self.document.findall(addnodes.toctree) if t.get("caption")
        ]
        if not toctrees:
            return
        # The same (cached) catalog as Sphinx's Locale transform uses for this page.
        dirs = [str(Path(self.env.srcdir, d)) for d in self.config.locale_dirs]
        domain = docname_to_domain(self.env.docname, self.config.gettext_compact)
        catalog, found = sphinx_locale.init(dirs, self.config.language, domain)
        if not found:
            return
        for toctree in toctrees:
            toctree["caption"] = catalog.gettext(toctree["caption"])


def _is_source_language(language: str | None) -> bool:
    return not language or language == next(iter(EDITIONS))


def _translate_config(app, config) -> None:
    """Put the translated title and interface strings into the configuration."""
    if _is_source_language(config.language):
        return
    if config.language not in EDITIONS:
        logger.warning(
            f"[editions] language {config.language!r} is not one of {list(EDITIONS)}",
            type="editions",
        )
    # app.translator: the `sphinx` catalog from locale_dirs first, then Sphinx's own.
    translate = app.translator.gettext
    for name in CONFIG_STRINGS:
        value = config[name]
        if isinstance(value, str) and value:
            config[name] = translate(value)
    options = config.html_theme_options
    for name in THEME_OPTION_STRINGS:
        if isinstance(options.get(name), str):
            options[name] = translate(options[name])
    _override_theme_catalogs(app, config)
    # Sphinx splits Chinese into words for its search index with jieba, whose own
    # dictionary cuts 卷积层 into 卷积 + 层: a search for 卷积层 found nothing.
    for locale_dir in config.locale_dirs:
        words = Path(app.srcdir, locale_dir, config.language, SEARCH_WORDS)
        if words.is_file():
            config.html_search_options = {
                "dict": str(words),
                **config.html_search_options,
            }
            break


def _override_theme_catalogs(app, config) -> None:
    """Let the book's `sphinx` catalog win over the themes' catalogs."""
    from gettext import GNUTranslations

    book_mo = [
        Path(app.srcdir, d, config.language, "LC_MESSAGES", "sphinx.mo")
        for d in config.locale_dirs
    ]
    for path in book_mo:
        if not path.is_file():
            continue
        for catalog in THEME_CATALOGS:
            theirs = sphinx_locale.translators.get(("general", catalog))
            with path.open("rb") as f:
                mine = GNUTranslations(f)
            if theirs is not None:
                mine.add_fallback(theirs)
            sphinx_locale.translators["general", catalog] = mine
        break


def _add_switch_to_header(app, config) -> None:
    """Put the language switch in the article header, before the theme's buttons."""
    options = config.html_theme_options
    end = options.get("article_header_end") or THEME_HEADER_END
    if isinstance(end, str):
        end = [s.strip() for s in end.split(",") if s.strip()]
    if "lang-switch.html" not in end:
        options["article_header_end"] = ["lang-switch.html", *end]
    templates = str(Path(__file__).resolve().parents[1] / "_templates")
    if templates not in config.templates_path:
        config.templates_path.append(templates)


def _on_config_inited(app, config) -> None:
    _add_switch_to_header(app, config)
    _translate_config(app, config)


def edition_links(pagename: str, language: str | None) -> list[dict[str, str]]:
    """Links from ``pagename`` in the ``language`` edition to it in the other editions.

    >>> edition_links("book/by-hand", "en")[0]["href"]
    '../zh/book/by-hand.html'
    >>> edition_links("book/by-hand", "zh_CN")[0]["href"]
    '../../book/by-hand.html'
    >>> edition_links("search", "zh_CN")[0]["href"]
    '../search.html'
    """
    here = language if language in EDITIONS else next(iter(EDITIONS))
    # From the page up to the root of its edition, then up to the English site's root.
    up = "../" * pagename.count("/")
    if EDITIONS[here]:
        up += "../" * (EDITIONS[here].count("/") + 1)
    links = []
    for lang, folder in EDITIONS.items():
        if lang == here:
            continue
        href = up + (folder + "/" if folder else "") + pagename + ".html"
        links.append(
            {
                "href": href,
                "name": NAMES[lang],
                "title": TOOLTIPS[lang],
                "lang": lang.replace("_", "-"),
            }
        )
    return links


def _on_html_page_context(app, pagename, templatename, context, doctree) -> None:
    context["edition_links"] = edition_links(pagename, app.config.language)


def _add_config_messages(app) -> None:
    """Under the gettext builder: the configuration's strings go into `sphinx.pot`."""
    if app.builder.name != "gettext":
        return
    from sphinx.builders.gettext import MsgOrigin

    config = app.config
    messages = [config[name] for name in CONFIG_STRINGS]
    messages += [config.html_theme_options.get(n) for n in THEME_OPTION_STRINGS]
    messages += THEME_STRINGS
    catalog = app.builder.catalogs["sphinx"]
    for msg in messages:
        if isinstance(msg, str) and msg.strip():
            catalog.add(msg, MsgOrigin("_config.yml", 0))


def setup(app):
    app.add_transform(KeepUntranslated)
    app.add_transform(TranslateTocCaptions)
    # Before sphinx-togglebutton reads its hints into the page's scripts (priority 500).
    app.connect("config-inited", _on_config_inited, priority=100)
    app.connect("html-page-context", _on_html_page_context)
    app.connect("builder-inited", _add_config_messages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
