"""The language editions' machinery: configurations, extraction, catalog checks.

    python book/_ext/translation.py configs DIR  # DIR/_config.<language>.yml
    python book/_ext/translation.py extract DIR  # English messages: DIR/<domain>.pot
    python book/_ext/translation.py update       # extract, update locale/*/ catalogs
    python book/_ext/translation.py status       # per catalog: translated, fuzzy, ...

jupyter-book 1.x takes no ``-D name=value`` (jupyter-book#1791), so each build reads a
configuration derived from ``_config.yml``:

- every edition executes with ``execute_notebooks: cache`` and one shared cache
  (``_build/.jupyter_cache``). ``make`` empties it before the English build, which then
  executes every notebook; the other editions take the same outputs from it. So code and
  outputs cannot differ between the editions, and a change in ``src/`` cannot leave
  stale outputs. (``_config.yml`` keeps ``force`` for a plain ``jupyter-book build .``,
  which empties no cache.)
- the other editions set ``language``; the extraction turns execution off (messages are
  the prose, never the outputs).

The checks (``tests/test_i18n.py``, ``status``) read the catalogs with polib.
"""

from __future__ import annotations

import argparse
import copy
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "_config.yml"
LOCALE = ROOT / "locale"
CACHE = ROOT / "_build" / ".jupyter_cache"
# The languages translated from English (catalogs in locale/<language>/LC_MESSAGES/).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from editions import EDITIONS  # noqa: E402

TRANSLATIONS = [lang for lang in EDITIONS if EDITIONS[lang]]


def edition_config(language: str | None, *, execute: str = "cache") -> dict:
    """``_config.yml`` for one edition (``language=None``: the English one)."""
    config = copy.deepcopy(yaml.safe_load(CONFIG.read_text(encoding="utf-8")))
    config["execute"]["execute_notebooks"] = execute
    config["execute"]["cache"] = str(CACHE)
    sphinx = config.setdefault("sphinx", {})
    # jupyter-book resolves these against the folder of the file it reads.
    sphinx["local_extensions"] = {
        name: str((ROOT / path).resolve())
        for name, path in (sphinx.get("local_extensions") or {}).items()
    }
    if language is not None:
        sphinx.setdefault("config", {})["language"] = language
    return config


def write_configs(outdir: Path) -> list[Path]:
    """Write ``_config.<language>.yml`` for every edition into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for language in EDITIONS:
        config = edition_config(language if EDITIONS[language] else None)
        path = outdir / f"_config.{language}.yml"
        header = (
            "# Written by book/_ext/translation.py from _config.yml: do not edit.\n"
        )
        path.write_text(header + yaml.safe_dump(config, allow_unicode=True), "utf-8")
        written.append(path)
    return written


def extract(outdir: Path, *, quiet: bool = True) -> Path:
    """Extract the English messages (``<domain>.pot``) into ``outdir``; return it."""
    outdir = Path(outdir).resolve()
    with tempfile.TemporaryDirectory(prefix="convbook-gettext-") as tmp:
        config = Path(tmp, "_config.gettext.yml")
        config.write_text(yaml.safe_dump(edition_config(None, execute="off")), "utf-8")
        cmd = [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(ROOT),
            "--all",
            "--builder=custom",
            "--custom-builder=gettext",
            f"--config={config}",
            f"--path-output={tmp}",
        ]
        if quiet:
            cmd.append("-q")
        subprocess.run(cmd, check=True, cwd=ROOT)
        if outdir.exists():
            shutil.rmtree(outdir)
        shutil.copytree(Path(tmp, "_build", "gettext"), outdir)
    return outdir


# ------------------------------------------------------------------------------------
# Checks on the catalogs

# What a translation must carry over from its English message unchanged. Order matters:
# code and roles first, so that a `$` or `](` in code is not read as maths or a link.
_PLACEHOLDERS = [
    ("role", re.compile(r"\{[\w:.-]+\}`[^`]*`")),
    ("code", re.compile(r"``.+?``|`[^`]+`")),
    ("maths", re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?:\\.|[^$\\])+\$")),
    ("link", re.compile(r"\]\(([^)]*)\)")),
    ("autolink", re.compile(r"<[a-z]+://[^>]*>")),
    ("format", re.compile(r"%\(\w+\)[sd]")),
]
# In {role}`text <target>`, the text may be translated, the role and the target not.
_ROLE = re.compile(r"\{(?P<role>[\w:.-]+)\}`(?P<body>[^`]*)`")
_TITLED = re.compile(r"^.*<(?P<target>[^<>]+)>$", re.S)


def placeholders(text: str) -> dict[str, list[str]]:
    """The maths, code, link targets, cross-references and format fields of ``text``.

    >>> p = placeholders("Let $S = 1$ in `conv(x)`, see [notation](notation.md#sizes).")
    >>> p["maths"], p["code"], p["link"]
    (['$S = 1$'], ['`conv(x)`'], ['notation.md#sizes'])
    >>> placeholders("{ref}`the layer <layer-section>` and {doc}`notation`")["role"]
    ['{doc}notation', '{ref}layer-section']
    """
    found: dict[str, list[str]] = {}
    rest = text
    for kind, pattern in _PLACEHOLDERS:
        items = []
        for m in pattern.finditer(rest):
            if kind == "role":
                role = _ROLE.match(m.group(0))
                titled = _TITLED.match(role["body"])
                target = titled["target"] if titled else role["body"]
                items.append("{" + role["role"] + "}" + target.strip())
            elif kind == "link":
                items.append(m.group(1).strip())
            else:
                items.append(m.group(0))
        found[kind] = sorted(items)
        rest = pattern.sub(" ", rest)
    return found


def placeholder_errors(msgid: str, msgstr: str) -> list[str]:
    """What of the maths, code, links and references of ``msgid`` that ``msgstr`` lost.

    A translation may add some (a link to the glossary, a path): only losses are errors,
    and a changed one is a loss.
    """
    want, got = placeholders(msgid), placeholders(msgstr)
    errors = []
    for kind, items in want.items():
        left = list(got[kind])
        missing = []
        for item in items:
            if item in left:
                left.remove(item)
            else:
                missing.append(item)
        if missing:
            errors.append(f"{kind} changed or missing: {missing}")
    return errors


def catalogs(language: str, locale_dir: Path = LOCALE) -> dict[str, Path]:
    """The ``.po`` files of ``language``, by domain (``book/intro``, ``sphinx``)."""
    base = Path(locale_dir, language, "LC_MESSAGES")
    return {
        p.relative_to(base).with_suffix("").as_posix(): p for p in base.rglob("*.po")
    }


def templates(potdir: Path) -> dict[str, Path]:
    """The ``.pot`` files of an extraction, by domain."""
    potdir = Path(potdir)
    return {
        p.relative_to(potdir).with_suffix("").as_posix(): p
        for p in potdir.rglob("*.pot")
    }


def counts(po_path: Path) -> dict[str, int]:
    """translated, fuzzy, untranslated and obsolete messages of one catalog."""
    import polib

    po = polib.pofile(str(po_path))
    return {
        "translated": len(po.translated_entries()),
        "fuzzy": len([e for e in po.fuzzy_entries() if not e.obsolete]),
        "untranslated": len(po.untranslated_entries()),
        "obsolete": len(po.obsolete_entries()),
    }


def sync_problems(po_path: Path, pot_path: Path | None) -> list[str]:
    """Messages of the English sources missing from the catalog, or left over in it."""
    import polib

    if pot_path is None:
        return ["no page or configuration extracts this catalog any more: delete it"]
    want = {e.msgid for e in polib.pofile(str(pot_path)) if e.msgid}
    have = {e.msgid for e in polib.pofile(str(po_path)) if e.msgid and not e.obsolete}
    problems = [
        f"new English message, not in the catalog: {m!r}" for m in sorted(want - have)
    ]
    problems += [f"no longer in the English: {m!r}" for m in sorted(have - want)]
    return problems


def status_table(language: str, potdir: Path | None = None) -> str:
    """One line per catalog; the sync column when ``potdir`` holds an extraction."""
    pots = templates(potdir) if potdir else {}
    rows = [("catalog", "translated", "fuzzy", "untransl.", "obsolete", "out of sync")]
    total = dict.fromkeys(rows[0][1:], 0)
    for domain, path in sorted(catalogs(language).items()):
        c = counts(path)
        stale = len(sync_problems(path, pots.get(domain))) if potdir else "-"
        row = (domain, *c.values(), stale)
        rows.append(tuple(str(x) for x in row))
        for key, value in zip(rows[0][1:], row[1:], strict=True):
            if isinstance(value, int):
                total[key] += value
    rows.append(("total", *(str(v) for v in total.values())))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return f"{language}:\n" + "\n".join(lines)


# ------------------------------------------------------------------------------------


def update(potdir: Path) -> None:
    """Extract, then merge the new messages into every language's catalogs."""
    extract(potdir, quiet=False)
    for language in TRANSLATIONS:
        subprocess.run(
            [
                str(Path(sys.executable).with_name("sphinx-intl")),
                "update",
                f"--pot-dir={potdir}",
                f"--locale-dir={LOCALE}",
                f"--language={language}",
                # One line per message: diffs show whole sentences.
                "--line-width=0",
                # A removed message's old translation is in `git diff`; fuzzy matching
                # has already carried it over to the message that replaced it.
                "--no-obsolete",
                "--jobs=1",
            ],
            check=True,
            cwd=ROOT,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("configs").add_argument("dir", type=Path)
    sub.add_parser("extract").add_argument("dir", type=Path)
    sub.add_parser("update").add_argument(
        "--pot-dir", type=Path, default=ROOT / "_build" / "gettext"
    )
    sub.add_parser("status").add_argument("--pot-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "configs":
        for path in write_configs(args.dir):
            print(
                f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
            )
    elif args.command == "extract":
        extract(args.dir)
    elif args.command == "update":
        update(args.pot_dir)
        for language in TRANSLATIONS:
            print(status_table(language, args.pot_dir))
    elif args.command == "status":
        for language in TRANSLATIONS:
            print(status_table(language, args.pot_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
