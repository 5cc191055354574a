"""Languages: what people read, in English or Simplified Chinese (gettext catalogs through Babel).

- `translator(locale)` gives a `Translator`: `_` and `ngettext` look messages up in the compiled
  catalog shipped in this package (`locales/<ll_CC>/LC_MESSAGES/askdesk.mo`); `fmt_date`,
  `fmt_duration`, `fmt_number`, ... format values the way that language writes them (Babel/CLDR).
- Message ids are the English sentences, written as `str.format` patterns with named placeholders
  (`"Request #{id} sent to {team}."`); a sentence is always one message, never glued from pieces.
- `N_(...)` makes a `Message`: a sentence chosen now and translated later, in the reader's language
  (services return these; the listener that answers knows who reads it).
- `resolve_locale` maps what Slack says about a person (`en-US`, `zh-CN`, `zh-TW`, ...) to a supported
  locale.

`python -m bot.i18n` extracts the message ids, updates the catalogs and compiles them (see --help).
"""

from __future__ import annotations

import gettext
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_skeleton
from babel.lists import format_list
from babel.numbers import format_decimal, format_percent
from babel.units import format_unit

from bot.analytics.stats import duration_parts
from bot.config import LOCALES

log = logging.getLogger(__name__)

DOMAIN = "askdesk"
LOCALES_DIR = Path(__file__).with_name("locales")
DEFAULT_LOCALE = "en"
SUPPORTED = LOCALES  # ("en", "zh-CN")
#: The CLDR locale whose formats each supported locale uses (British English: "4 Dec", 24-hour clock).
_CLDR = {"en": "en_GB", "zh-CN": "zh_Hans_CN"}
#: The catalog folder of each locale (English is the source language: no catalog).
CATALOGS = {"zh-CN": "zh_CN"}
_UNITS = {"d": "duration-day", "h": "duration-hour", "m": "duration-minute", "s": "duration-second"}


@dataclass(frozen=True)
class Message:
    """A sentence picked now, translated later in the reader's language (see `N_`)."""

    msgid: str
    values: Mapping[str, Any] = field(default_factory=dict)
    plural: str | None = None
    n: int | None = None

    def render(self, t: Translator) -> str:
        values = {k: t.render(v) if isinstance(v, Message) else v for k, v in self.values.items()}
        if self.plural is not None and self.n is not None:
            return t.ngettext(self.msgid, self.plural, self.n, **values)
        return t._(self.msgid, **values)


def N_(msgid: str, /, **values: Any) -> Message:  # noqa: N802 - the gettext convention
    """Mark a sentence for translation later: `N_("#{id} is already resolved.", id=7)`."""
    return Message(msgid, values)


def Nn_(singular: str, plural: str, n: int, /, **values: Any) -> Message:  # noqa: N802
    """A sentence with plural forms, translated later."""
    return Message(singular, values, plural, n)


class Translator:
    """Messages and formats of one locale. Cheap to share: one per locale per process."""

    def __init__(self, locale: str, catalog: gettext.NullTranslations) -> None:
        self.locale = locale
        self.cldr = Locale.parse(_CLDR[locale])
        self._catalog = catalog

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    # -- messages -------------------------------------------------------------------------------
    def _(self, msgid: str, /, **values: Any) -> str:
        """The translation of `msgid`, with its `{placeholders}` filled from `values`."""
        return self._catalog.gettext(msgid).format(**values)

    def pattern(self, msgid: str, /) -> str:
        """The translated pattern itself, its `{placeholders}` left for the caller to fill (`str.format`)."""
        return self._catalog.gettext(msgid)

    def ngettext(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        """The plural form for `n` (`{n}` is filled with the number unless given)."""
        values.setdefault("n", self.fmt_number(n))
        return self._catalog.ngettext(singular, plural, n).format(**values)

    def render(self, text: str | Message) -> str:
        """A `Message` translated here; a plain string as it is."""
        return text.render(self) if isinstance(text, Message) else text

    # -- formats ----------------------------------------------------------------------------------
    def fmt_number(self, value: float) -> str:
        return format_decimal(value, locale=self.cldr)

    def fmt_decimal(self, value: float, digits: int = 1) -> str:
        """A number with exactly `digits` decimals: "4.2"."""
        return format_decimal(value, format="#,##0." + "0" * digits if digits else "#,##0", locale=self.cldr,
                              decimal_quantization=True)

    def fmt_percent(self, value: float | None, empty: str = "—") -> str:
        """A percentage given as 0-100 ("87%"); `empty` for None."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return empty
        return format_percent(value / 100.0, format="#,##0%", locale=self.cldr)

    def fmt_duration(self, seconds: float | None) -> str:
        """A short duration with at most two units: "1h 27m" / "1小时27分钟"; "—" for None."""
        parts = duration_parts(seconds)
        if parts is None:
            return "∞" if seconds is not None and math.isinf(seconds) else "—"
        texts = [format_unit(value, _UNITS[unit], length="narrow", locale=self.cldr) for value, unit in parts]
        return format_list(texts, style="unit-narrow", locale=self.cldr)

    def fmt_date(self, when: datetime, tz: str | tzinfo | None = None, *, skeleton: str = "MMMd") -> str:
        """A date in `tz` (default UTC): "4 Dec" / "12月4日"; `skeleton` is a CLDR skeleton ("yMMMEd")."""
        return format_skeleton(skeleton, when, tzinfo=_zone(tz), locale=self.cldr)

    def fmt_time(self, when: datetime, tz: str | tzinfo | None = None) -> str:
        """A time of day in `tz`: "09:05"."""
        return format_skeleton("Hm", when, tzinfo=_zone(tz), locale=self.cldr)

    def fmt_datetime(self, when: datetime, tz: str | tzinfo | None = None, *, skeleton: str = "MMMEd") -> str:
        """Date and time in `tz`: "Fri 4 Dec, 09:05" / "12月4日周五 09:05"."""
        pattern = str(self.cldr.datetime_formats["medium"])
        date, clock = self.fmt_date(when, tz, skeleton=skeleton), self.fmt_time(when, tz)
        return pattern.replace("{1}", date).replace("{0}", clock)


def _zone(tz: str | tzinfo | None) -> tzinfo:
    if tz is None:
        return ZoneInfo("UTC")
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def catalog_path(locale: str, suffix: str = ".mo") -> Path:
    return LOCALES_DIR / CATALOGS[locale] / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@cache
def translator(locale: str | None = None) -> Translator:
    """The translator of a supported locale (`en`, `zh-CN`); anything else gets English."""
    locale = locale if locale in SUPPORTED else DEFAULT_LOCALE
    if locale not in CATALOGS:
        return Translator(locale, gettext.NullTranslations())
    with catalog_path(locale).open("rb") as file:
        return Translator(locale, gettext.GNUTranslations(file))


_recent_lock = threading.Lock()
_recent: dict[str, str] = {}
_RECENT_MAX = 50_000


def remember_locale(user_id: str, locale: str) -> None:
    """Note the language a person was last answered in (bot.services.directory does, on every lookup)."""
    with _recent_lock:
        if len(_recent) >= _RECENT_MAX and user_id not in _recent:
            _recent.pop(next(iter(_recent)))
        _recent[user_id] = locale


def recent_translator(user_id: str | None, default: str = DEFAULT_LOCALE) -> Translator:
    """The translator a person was last answered with, from memory only (no database, no Slack): for the
    error funnel, which must speak while the database is down."""
    with _recent_lock:
        locale = _recent.get(user_id or "")
    return translator(locale or default)


_unknown_lock = threading.Lock()
_unknown_seen: set[str] = set()


def resolve_locale(raw: str | None, *, default: str = DEFAULT_LOCALE, chinese_fallback: str = "en") -> str:
    """A supported locale for what Slack reports (`en-US`, `zh-CN`, `zh-TW`, `fr-FR`, ...).

    English variants are `en`; Simplified Chinese (`zh-CN`, `zh-SG`, `zh-Hans`) is `zh-CN`; other
    Chinese locales (`zh-TW`, `zh-HK`, `zh-Hant`) are `chinese_fallback` (`en` unless configured);
    empty gives `default`; anything else gives `default` too, with one log line per unknown value."""
    if not raw:
        return default
    tag = raw.strip().replace("_", "-").lower()
    if tag == "en" or tag.startswith("en-"):
        return "en"
    if tag in ("zh", "zh-cn", "zh-sg", "zh-my") or tag.startswith("zh-hans"):
        return "zh-CN"
    if tag.startswith("zh-"):
        return chinese_fallback if chinese_fallback in SUPPORTED else DEFAULT_LOCALE
    with _unknown_lock:
        first = tag not in _unknown_seen
        _unknown_seen.add(tag)
    if first:
        log.info("locale %r is not supported (%s); using %s", raw[:20], ", ".join(SUPPORTED), default)
    return default


__all__ = ["DEFAULT_LOCALE", "SUPPORTED", "Message", "N_", "Nn_", "Translator", "recent_translator",
           "remember_locale", "resolve_locale", "translator"]
