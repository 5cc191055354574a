"""Common needs: free-text answers grouped into themes, English and Chinese, computed locally.

The method is deterministic (the same answers always give the same themes, in the same order) and
needs no external service. It is documented for users in docs/needs.md:

1. **Terms.** Each answer's terms are those of the request topics (`bot.analytics.topics.term_sets`):
   English words (lowercased, stopwords dropped, crudely de-pluralised) and bigrams of adjacent
   words, and Chinese words segmented by jieba (two characters or more). Survey filler ("start",
   "stop", "more", 希望, 建议, …) and the team's own name are ignored.
2. **Candidates.** A term is a candidate when at least `min_people` answers contain it (at most
   `MAX_CANDIDATES`, the most frequent first).
3. **Clustering of co-occurring terms.** Candidates are taken most frequent first (a bigram before a
   word of the same frequency); a term joins the theme it is most associated with, else it starts a
   new theme. Association of two terms a, b: co(a, b) / min(df(a), df(b)), the share of the rarer
   term's answers that also contain the other; a term joins when it reaches `JOIN_AT` (0.5) with
   some term of the theme, they co-occur in at least `min_people` answers and in at least
   `JOIN_BALANCE` (0.2) of the commoner term's answers (so a word found in most answers, which
   co-occurs with everything, joins nothing). A bigram always joins the theme of a word it contains
   (and a word the theme of a bigram containing it).
4. **Assignment.** Each answer belongs to one theme at most: the one whose terms in the answer weigh
   most, a term weighing log((answers + 1) / df) (rarer terms say more; ties: the larger theme, then
   the earlier). A theme with fewer than `min_people` answers is dropped and its answers are assigned
   again among the rest, until every theme has enough.
5. **Labels and quotes.** A theme's label is its (up to) three most frequent terms; its quotes are
   the answers with the most of the theme's terms (shorter first, then alphabetical), one per
   distinct text. Quotes are passed through the anonymity gate by the caller.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.analytics.topics import term_sets

__all__ = ["JOIN_AT", "JOIN_BALANCE", "MAX_CANDIDATES", "NEEDS_STOPWORDS", "Theme", "group_themes", "representative"]

JOIN_AT = 0.5
JOIN_BALANCE = 0.2  # ... and co(a, b) / max(df(a), df(b)): a word in most answers joins nothing
MAX_CANDIDATES = 80
MAX_THEMES = 8
LABEL_TERMS = 3
# Words every needs-survey answer tends to contain: they say nothing about *which* need.
NEEDS_STOPWORDS = frozenset(
    """
    start stop starting stopping doing do more less better worse much many lot often sometimes always never
    obstacle biggest big main work working team teams us our we they them people person thing things
    would should could like want hope wish feel felt think good bad great nice fine well really very
    also maybe perhaps time times keep make give take use used using
    开始 停止 继续 希望 建议 最大 障碍 问题 工作 团队 部门 我们 他们 你们 觉得 能够 可以 应该 需要 一些 更多
    更好 多一些 少一些 比较 有时 经常 总是 时候 事情 东西 方面 情况 希望能 能够
    """.split()
)


@dataclass(frozen=True)
class Theme:
    """One common need: its label, its terms, and the answers (indexes into the input) it groups."""

    label: str
    terms: tuple[str, ...]
    members: tuple[int, ...]

    @property
    def people(self) -> int:
        return len(self.members)


def _order(term: str, df: Counter[str]) -> tuple[int, int, str]:
    return (-df[term], 0 if " " in term else 1, term)


def _related(a: str, b: str) -> bool:
    """A bigram and a word it contains (or two bigrams sharing a word) always belong together."""
    if " " not in a and " " not in b:
        return False
    return bool(set(a.split(" ")) & set(b.split(" ")))


def _cluster(candidates: list[str], df: Counter[str], co: dict[tuple[str, str], int],
             min_people: int) -> list[list[str]]:
    clusters: list[list[str]] = []
    for term in candidates:
        best, best_score = -1, 0.0
        for i, cluster in enumerate(clusters):
            for other in cluster:
                pair = (term, other) if term < other else (other, term)
                together = co.get(pair, 0)
                score = together / min(df[term], df[other]) if together else 0.0
                if _related(term, other):
                    score = max(score, 1.0)
                elif together < min_people or together < JOIN_BALANCE * max(df[term], df[other]):
                    continue
                if score >= JOIN_AT and score > best_score:
                    best, best_score = i, score
        if best >= 0:
            clusters[best].append(term)
        elif len(clusters) < MAX_THEMES * 2:  # spare themes for when small ones are dropped
            clusters.append([term])
    return clusters


def _assign(sets: Sequence[frozenset[str]], clusters: list[list[str]], alive: set[int],
            weight: dict[str, float]) -> dict[int, list[int]]:
    members: dict[int, list[int]] = defaultdict(list)
    owner = {term: i for i, cluster in enumerate(clusters) if i in alive for term in cluster}
    for index, terms in enumerate(sets):
        hits: dict[int, float] = defaultdict(float)
        for t in terms:
            if t in owner:
                hits[owner[t]] += weight[t]
        if hits:
            members[min(hits, key=lambda i: (-hits[i], -len(clusters[i]), i))].append(index)
    return members


def _label(terms: Sequence[str]) -> str:
    """Up to LABEL_TERMS of the theme's terms, most frequent first, leaving out words a chosen bigram
    already says ("expense report", not "expense report · expense")."""
    chosen: list[str] = []
    words: set[str] = set()
    for term in terms:
        parts = set(term.split(" "))
        if parts <= words:
            continue
        chosen.append(term)
        words |= parts
        if len(chosen) == LABEL_TERMS:
            break
    return " · ".join(chosen)


def group_themes(texts: Sequence[str], *, min_people: int, extra_stopwords: Iterable[str] = (),
                 limit: int = MAX_THEMES) -> list[Theme]:
    """Themes of `texts` (one text per person), each given by at least `min_people` of them, largest
    first (then by label). Deterministic: the order of `texts` changes nothing but member indexes."""
    min_people = max(1, min_people)
    sets = term_sets(texts, [*NEEDS_STOPWORDS, *extra_stopwords])
    df: Counter[str] = Counter()
    for terms in sets:
        df.update(terms)
    candidates = sorted((t for t, n in df.items() if n >= min_people), key=lambda t: _order(t, df))
    candidates = candidates[:MAX_CANDIDATES]
    chosen = set(candidates)
    co: Counter[tuple[str, str]] = Counter()
    for terms in sets:
        present = sorted(terms & chosen)
        for i, a in enumerate(present):
            for b in present[i + 1:]:
                co[(a, b)] += 1
    clusters = _cluster(candidates, df, co, min_people)
    total = max(1, len(sets))
    weight = {t: math.log((total + 1) / df[t]) for t in candidates}  # rarer terms say more (idf)
    alive = set(range(len(clusters)))
    while True:
        members = _assign(sets, clusters, alive, weight)
        small = {i for i in alive if len(members.get(i, [])) < min_people}
        if not small:
            break
        alive -= small
    themes = []
    for i in alive:
        terms = tuple(sorted(clusters[i], key=lambda t: _order(t, df)))
        themes.append(Theme(label=_label(terms), terms=terms,
                            members=tuple(sorted(members[i]))))
    themes.sort(key=lambda t: (-t.people, t.label))
    return themes[:limit]


def representative(texts: Iterable[str], terms: Sequence[str], *, k: int = 3, max_length: int = 200) -> list[str]:
    """Up to `k` distinct texts that best stand for a theme: most of its `terms` (whole words for
    English), then shorter, then alphabetical. Texts longer than `max_length` are cut."""
    wanted = list(terms)
    pool = list(texts)
    scored = []
    for text, found in zip(pool, term_sets(pool), strict=True):
        hits = sum(1 for t in wanted if t in found)
        if hits:
            scored.append((-hits, len(text), text))
    out: list[str] = []
    for _hits, _length, text in sorted(scored):
        cut = text if len(text) <= max_length else text[: max_length - 1].rstrip() + "…"
        if cut not in out:
            out.append(cut)
        if len(out) == k:
            break
    return out
