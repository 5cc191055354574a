"""Maintaining the message catalogs with Babel: extract, update, compile and check.

    python -m bot.i18n extract   # bot/ and handlers/ -> bot/i18n/locales/askdesk.pot
    python -m bot.i18n update    # the .pot merged into each locale's .po (new ids empty, old ones kept)
    python -m bot.i18n compile   # each .po -> its .mo (shipped in the package)
    python -m bot.i18n check     # exit 1 when an id has no translation, placeholders differ, or a .mo is stale

The workflow after changing a sentence: extract, update, translate the empty entries in the .po, compile.
"""

from __future__ import annotations

import io
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from bot.i18n import CATALOGS, DOMAIN, LOCALES_DIR, catalog_path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("bot", "handlers")
KEYWORDS = {"_": None, "N_": None, "pattern": None, "ngettext": (1, 2), "Nn_": (1, 2)}
POT = LOCALES_DIR / f"{DOMAIN}.pot"


def extract(root: Path = ROOT) -> Catalog:
    """Every message id used in the product code (the English source sentences)."""
    catalog = Catalog(project="askdesk", domain=DOMAIN, charset="utf-8")
    for folder in SOURCE_DIRS:
        for filename, lineno, message, comments, _context in extract_from_dir(
                root / folder, method_map=[("**.py", "python")], keywords=KEYWORDS,
                comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
            catalog.add(message, locations=[(f"{folder}/{filename}", lineno)], auto_comments=comments)
    return catalog


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


def write(catalog: Catalog, path: Path) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, sort_output=True, omit_header=False, include_lineno=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def placeholders(text: str) -> set[str]:
    """The `{names}` a `str.format` pattern fills (literal `{{` `}}` are not placeholders)."""
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError:
        return {"<not a valid format string>"}


@dataclass(frozen=True)
class Problem:
    locale: str
    msgid: str
    what: str

    def __str__(self) -> str:
        return f"{self.locale}: {self.msgid[:70]!r}: {self.what}"


def _ids(message: Message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)


def _texts(message: Message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, tuple | list) else (message.string,)


def problems(source: Catalog, locale: str, translated: Catalog) -> Iterator[Problem]:
    """What is wrong with `translated` for the ids in `source`: missing, fuzzy, empty, wrong placeholders."""
    for message in source:
        if not message.id:
            continue
        key = _ids(message)[0]
        found = translated.get(key)
        if found is None:
            yield Problem(locale, key, "no translation")
            continue
        if found.fuzzy:
            yield Problem(locale, key, "translation marked fuzzy")
        wanted = set().union(*(placeholders(i) for i in _ids(message)))
        for text in _texts(found):
            if not text:
                yield Problem(locale, key, "empty translation")
            elif placeholders(text) != wanted:
                yield Problem(locale, key, f"placeholders {sorted(placeholders(text))} != {sorted(wanted)}")
        if len(_ids(message)) != len(_ids(found)):
            yield Problem(locale, key, "plural forms differ from the source")
    yield from _bad_sources(source)


def _bad_sources(source: Catalog) -> Iterator[Problem]:
    for message in source:
        ids = _ids(message)
        if len(ids) == 2 and placeholders(ids[0]) - {"n"} != placeholders(ids[1]) - {"n"}:
            yield Problem("source", ids[0], "singular and plural use different placeholders")


def check(root: Path = ROOT) -> list[Problem]:
    source = extract(root)
    found: list[Problem] = []
    for locale in CATALOGS:
        po = read(catalog_path(locale, ".po"), CATALOGS[locale])
        found += problems(source, locale, po)
        mo = catalog_path(locale)
        if not mo.exists() or mo.read_bytes() != compiled(po):
            found.append(Problem(locale, str(mo.name), "the shipped .mo is not the compiled .po (run compile)"))
    return found


def update(root: Path = ROOT) -> None:
    source = extract(root)
    write(source, POT)
    for locale, folder in CATALOGS.items():
        path = catalog_path(locale, ".po")
        if path.exists():
            po = read(path, folder)
            po.update(source, no_fuzzy_matching=True)
            po.obsolete.clear()
        else:
            po = Catalog(locale=folder, project="askdesk", domain=DOMAIN, charset="utf-8")
            po.update(source, no_fuzzy_matching=True)
        write(po, path)


def compile_all() -> None:
    for locale, folder in CATALOGS.items():
        po = read(catalog_path(locale, ".po"), folder)
        catalog_path(locale).write_bytes(compiled(po))
