"""Recurring topics in request texts, English and Chinese, computed locally (no external service).

A topic's count is the number of texts (requests) that mention it, so a text counts at most once per
topic. English words are lowercased, filtered against stopwords and help-desk filler, and crudely
de-pluralised ("expenses" -> "expense"); adjacent content words also form bigrams ("expense report"),
which replace their unigrams when just as frequent. Chinese runs are segmented with ``jieba`` (loaded
lazily, once) and tokens of at least two characters are kept. Slack markup, URLs, emails, emoji codes,
numbers and ticket ids are ignored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = ["CHINESE_STOPWORDS", "ENGLISH_STOPWORDS", "extract_topics", "normalize_word", "term_sets", "tokenize"]

ENGLISH_STOPWORDS = frozenset(
    """
    a about above after again against ago all also am an and any are aren't around as at be because been
    before being below between both but by did didn't do does doesn't doing don't down during each either
    else etc even ever every few for from further had hadn't has hasn't have haven't having he her here
    hers herself him himself his i i'd i'll i'm i've if in into is isn't it it's its itself just let's me
    more most much my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should shouldn't so some such than that that's the their theirs them themselves then there
    there's these they they're this those through to too under until up upon us very was wasn't we we're
    were weren't what what's when where which while who whom whose will with won't would wouldn't yet you
    you'd you'll you're you've your yours yourself yourselves via per vs via within without
    hi hey hello hallo dear morning afternoon evening team folks guys all everyone anyone someone somebody
    please pls plz kindly thanks thank thx ty cheers appreciate appreciated regards best sorry
    help helping question asking ask wondering wonder quick quickly need needs needed can can't cannot
    could couldn't why how may might must shall want wanted like would know let get got getting gets
    try trying tried able unable make made still already again today tomorrow yesterday week now soon
    asap urgent urgently issue problem thing stuff something anything everything way lot lots really
    ok okay yes yeah sure also just actually currently anymore one two see seem seems think
    """.split()
)
CHINESE_STOPWORDS = frozenset(
    """
    的 了 是 我 你 他 她 它 在 有 和 就 不 人 都 一 一个 上 也 很 到 说 要 去 会 着 没有 看 好 自己 这 那
    我们 你们 他们 大家 这个 那个 这些 那些 这样 那样 这里 那里 请问 请 问 问下 问一下 怎么 怎么办 怎样
    为什么 为啥 什么 如何 可以 可能 能否 能不能 是否 是不是 吗 呢 吧 啊 哦 嗯 帮忙 帮助 帮 一下 谢谢 感谢
    多谢 麻烦 您好 你好 各位 同事 老师 问题 需要 想 想要 应该 因为 所以 但是 但 然后 如果 还是 或者 还有
    已经 现在 今天 明天 昨天 目前 之前 之后 时候 一直 为了 关于 对于 以及 还 又 再 才 让 被 把 给 从 跟
    没 不是 不能 不会 不上 不了 不到 不行 有没有 一些 有点 还是 比较 非常 特别 知道 觉得
    看看 一样 出现 进行 怎么样 急 紧急
    """.split()
)
# Words that end in "s" but are not plurals (or are names): left as they are by normalize_word().
NO_STEM = frozenset(
    """
    always perhaps whereas various previous famous serious analysis basis axis canvas alias bias news
    series species windows macos ios aws jenkins kubernetes analytics sales teams ms physics ethics
    """.split()
)

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# Slack markup (<@U1>, <#C1|x>, <https://…|label>, <!channel>), bare URLs, emails, emoji codes, code spans.
_NOISE = re.compile(
    r"<[@#!][^>]*>|<(?:https?|mailto|tel|slack):[^>]*>"
    r"|(?:https?://|ftp://|www\.)\S+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|:[a-z0-9_+'-]+:(?::skin-tone-\d:)?"
    r"|`[^`]*`",
    re.IGNORECASE,
)
# Groups: a CJK run | a word (letters/digits, inner ' - . allowed) | punctuation (breaks bigrams).
_TOKEN = re.compile(rf"([{_CJK}]+)|([^\W_{_CJK}]+(?:['’\-.][^\W_{_CJK}]+)*)|([^\w\s])")
# Ticket-ish ids (JIRA-123, inc0012345, anything with 4+ digits) and numbers with units (3pm, 5th, 10gb).
_TICKET_ID = re.compile(
    r"^(?:[a-z]+-\d+|(?:\D*\d){4,}\D*|\d+(?:am|pm|st|nd|rd|th|s|k|m|h|d|x|kb|mb|gb|tb|min|mins|hr|hrs|ms))$"
)
_HAS_ALPHA = re.compile(r"[^\W\d_]")

# Workplace terms missing from jieba's dictionary (it would split them into single characters).
_EXTRA_CHINESE_WORDS = ("钉钉", "飞书", "企业微信", "腾讯会议", "打卡")
_jieba_lock = threading.Lock()
_jieba_cut: Callable[[str], list[str]] | None = None


def _get_jieba_cut() -> Callable[[str], list[str]]:
    """Import and initialise jieba once (thread-safe), with its chatty logging silenced."""
    global _jieba_cut
    if _jieba_cut is None:
        with _jieba_lock:
            if _jieba_cut is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                for word in _EXTRA_CHINESE_WORDS:
                    tokenizer.add_word(word)
                _jieba_cut = tokenizer.lcut
    return _jieba_cut


@lru_cache(maxsize=50_000)
def _segment_cjk(run: str) -> tuple[str, ...]:
    """jieba tokens of a CJK-only run, keeping words of >= 2 characters that are not stopwords."""
    return tuple(t for t in _get_jieba_cut()(run) if len(t) >= 2 and t not in CHINESE_STOPWORDS)


@lru_cache(maxsize=100_000)
def normalize_word(word: str) -> str:
    """Crude English normalisation: lowercase, drop possessives, de-pluralise ("policies" -> "policy")."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    w = w.strip("'.-")
    if "-" in w:
        head, _, tail = w.rpartition("-")
        return f"{head}-{normalize_word(tail)}" if tail else w
    if len(w) <= 3 or w in NO_STEM or not w.isalpha():
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith(("ss", "us", "is", "'s")):
        return w
    if w.endswith("s"):
        return w[:-1]
    return w


class _Scanner:
    """Tokeniser with its stopwords and a per-run cache of word decisions (vocabularies are small)."""

    def __init__(self, extra_stopwords: Iterable[str]) -> None:
        self.extra = _normalize_extra(tuple(extra_stopwords))
        self.stop_en = ENGLISH_STOPWORDS | self.extra
        self.cache: dict[str, str | None] = {}

    def word(self, low: str) -> str | None:
        """Normalised content word, or ``None`` for stopwords, numbers, ids and other noise."""
        low = low.replace("’", "'")
        if low in self.stop_en or len(low) < 2 or not _HAS_ALPHA.search(low) or _TICKET_ID.match(low):
            return None
        word = normalize_word(low)
        if len(word) < 2 or word in self.stop_en:
            return None
        return word

    def scan(self, text: str) -> tuple[list[str | None], list[str]]:
        """English token stream (``None`` = break: stopword, punctuation, markup, Chinese) + Chinese words."""
        stream: list[str | None] = []
        chinese: list[str] = []
        cache = self.cache
        for run, raw, _punct in _TOKEN.findall(_NOISE.sub(" | ", text).lower()):
            if raw:
                if raw not in cache:
                    cache[raw] = self.word(raw)
                stream.append(cache[raw])
            else:
                stream.append(None)
                if run:
                    chinese.extend(t for t in _segment_cjk(run) if t not in self.extra)
        return stream, chinese


def tokenize(text: str, extra_stopwords: Iterable[str] = ()) -> list[str]:
    """Content terms of one text: English words (normalised, in order), then Chinese words."""
    stream, chinese = _Scanner(extra_stopwords).scan(text)
    return [t for t in stream if t is not None] + chinese


def term_sets(texts: Iterable[str], extra_stopwords: Iterable[str] = ()) -> list[frozenset[str]]:
    """Per text, its set of content terms: English words (normalised) and bigrams of adjacent content
    words ("expense report"), and Chinese words — the same terms `extract_topics` counts."""
    scanner = _Scanner(extra_stopwords)
    out: list[frozenset[str]] = []
    for text in texts:
        if not text:
            out.append(frozenset())
            continue
        stream, chinese = scanner.scan(text)
        terms = {t for t in stream if t is not None}
        terms.update(chinese)
        terms.update(f"{a} {b}" for a, b in zip(stream, stream[1:], strict=False) if a and b and a != b)
        out.append(frozenset(terms - scanner.extra))
    return out


@lru_cache(maxsize=64)
def _normalize_extra(words: tuple[str, ...]) -> frozenset[str]:
    """Extra stopwords as given (lowercased) and in normalised form, so "Laptops" also stops "laptop"."""
    result: set[str] = set()
    for word in words:
        low = " ".join(word.lower().split())
        if low:
            result.add(low)
            result.add(" ".join(normalize_word(part) for part in low.split()))
    return frozenset(result)


def extract_topics(
    texts: Iterable[str], *, top: int = 5, min_count: int = 2, extra_stopwords: Iterable[str] = ()
) -> list[tuple[str, int]]:
    """The ``top`` recurring topics as ``(term, number of texts mentioning it)``, count desc then term.

    Only topics found in at least ``min_count`` texts are returned. English bigrams ("expense report")
    are candidates too; a unigram is left out when a reported bigram containing it is as frequent
    (i.e. the word only ever appears in that phrase). ``extra_stopwords`` are words or phrases to
    ignore (e.g. the team's own name).
    """
    if top <= 0:
        return []
    scanner = _Scanner(extra_stopwords)
    extra = scanner.extra
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for text in texts:
        if not text:
            continue
        stream, chinese = scanner.scan(text)
        words = {t for t in stream if t is not None}
        words.update(chinese)
        if not words:
            continue
        unigrams.update(words)
        pairs = {f"{a} {b}" for a, b in zip(stream, stream[1:], strict=False) if a and b and a != b}
        if pairs:
            bigrams.update(pairs)

    floor = max(1, min_count)
    candidates = [(term, n, 0) for term, n in bigrams.items() if n >= floor and term not in extra]
    candidates += [(term, n, 1) for term, n in unigrams.items() if n >= floor]
    # Bigrams first on equal counts so that they can cover their unigrams.
    candidates.sort(key=lambda c: (-c[1], c[2], c[0]))

    chosen: list[tuple[str, int]] = []
    covered: dict[str, int] = {}  # unigram -> count of a chosen bigram containing it
    for term, n, is_unigram in candidates:
        if len(chosen) >= top:
            break
        if is_unigram:
            if covered.get(term) == n:
                continue
        else:
            for part in term.split(" "):
                covered[part] = max(covered.get(part, 0), n)
        chosen.append((term, n))
    chosen.sort(key=lambda c: (-c[1], c[0]))
    return chosen
