"""Tests for the pure analytics layer (bot.analytics): stats, privacy gate, topics, charts."""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.analytics import (
    SUPPRESSED_TEXT,
    GatedValue,
    RankedItem,
    WeekPoint,
    csat_percent,
    effective_threshold,
    extract_topics,
    format_duration,
    gate,
    gate_breakdown,
    gate_comments,
    gated_csat,
    gated_mean,
    mean,
    median,
    percentile,
    ranked_change,
    render_matrix_chart,
    render_weekly_chart,
    share_within,
)
from bot.analytics.topics import normalize_word, tokenize

# --------------------------------------------------------------------------------------------- stats


def test_median_odd_even_empty() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([10, 20]) == 15
    assert median([7]) == 7
    assert median([]) is None
    assert median([None, 5, None, 1]) == 3  # None (e.g. unanswered) is ignored
    assert median([None]) is None


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 90, 3.7),  # h = 3 * 0.9 = 2.7 -> 3 + 0.7 * (4 - 3)
        ([10, 20, 30, 40, 50], 25, 20),  # h = 1 exactly
        ([10, 20, 30, 40, 50], 90, 46),  # h = 3.6 -> 40 + 0.6 * 10
        ([15, 20, 35, 40, 50], 40, 29),  # h = 1.6 -> 20 + 0.6 * 15
        ([5, 1, 9], 0, 1),
        ([5, 1, 9], 100, 9),
        ([5, 1, 9], 50, 5),
        ([42], 90, 42),
    ],
)
def test_percentile_hand_values(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_edges() -> None:
    assert percentile([], 90) is None
    assert percentile([1, 2, 3, 4], 50) == median([1, 2, 3, 4])
    with pytest.raises(ValueError):
        percentile([1, 2], 101)
    with pytest.raises(ValueError):
        percentile([1, 2], -1)


def test_percentile_matches_numpy() -> None:
    np = pytest.importorskip("numpy")
    rng = random.Random(7)
    for _ in range(200):
        values = [rng.uniform(0, 10_000) for _ in range(rng.randint(1, 40))]
        q = rng.choice([0, 10, 25, 50, 75, 90, 95, 99, 100, rng.uniform(0, 100)])
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-9)


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(finite, min_size=1, max_size=50), st.floats(min_value=0, max_value=100))
def test_percentile_and_median_within_bounds(values: list[float], q: float) -> None:
    p = percentile(values, q)
    m = median(values)
    assert p is not None and m is not None
    assert min(values) <= p <= max(values)
    assert min(values) <= m <= max(values)


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=30))
def test_percentile_monotonic_in_q(values: list[float]) -> None:
    ps = [percentile(values, q) for q in (0, 25, 50, 75, 90, 100)]
    assert all(a <= b for a, b in zip(ps, ps[1:], strict=False))  # type: ignore[operator]


def test_share_within_sla() -> None:
    assert share_within([60, 120, 300, 600], 300) == 75.0  # the limit itself counts as within
    assert share_within([60, 120], 30) == 0.0
    assert share_within([1, 2, 3], 3) == 100.0
    assert share_within([None, 100, 500], 200) == 50.0
    assert share_within([], 300) is None


def test_csat_and_mean() -> None:
    assert csat_percent([5, 4, 3, 2, 1, 5]) == 50.0
    assert csat_percent([5, 5, 4]) == 100.0
    assert csat_percent([1, 2, 3]) == 0.0
    assert csat_percent([4, 3, 2]) == pytest.approx(100 / 3)
    assert csat_percent([None, 5]) == 100.0
    assert csat_percent([]) is None
    with pytest.raises(ValueError):
        csat_percent([5, 6])
    assert mean([1, 2, 3, 4]) == 2.5
    assert mean([4.5]) == 4.5
    assert mean([]) is None
    assert mean([1e308, 1e308]) == pytest.approx(1e308)


def test_ranked_change_with_new_and_dropped_departments() -> None:
    current = {"Finance": 5, "HR": 3, "Legal": 3, "Sales": 1, "Idle": 0}
    previous = {"Finance": 2, "HR": 4, "Ops": 7}
    assert ranked_change(current, previous) == [
        RankedItem("Finance", 5, 2, 3, rank=1, previous_rank=3),
        RankedItem("HR", 3, 4, -1, rank=2, previous_rank=2),
        RankedItem("Legal", 3, 0, 3, rank=2, previous_rank=None),  # new, ties share a rank
        RankedItem("Sales", 1, 0, 1, rank=4, previous_rank=None),
    ]
    items = ranked_change(current, previous)
    assert [i.is_new for i in items] == [False, False, True, True]
    assert ranked_change({}, previous) == []
    assert [i.key for i in ranked_change({"b": 2, "a": 2, "c": 9}, {})] == ["c", "a", "b"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "—"),
        (0, "0s"),
        (45, "45s"),
        (59.4, "59s"),
        (59.6, "1m"),
        (720, "12m"),
        (3600, "1h"),
        (3 * 3600 + 5 * 60, "3h 5m"),
        (3599.9, "1h"),
        (2 * 86400 + 4 * 3600, "2d 4h"),
        (86400, "1d"),
        (86399, "1d"),
        (-5, "—"),
        (math.nan, "—"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


# ------------------------------------------------------------------------------------------- privacy


def test_effective_threshold_floor_of_three() -> None:
    assert effective_threshold(1) == 3
    assert effective_threshold(0) == 3
    assert effective_threshold(-4) == 3
    assert effective_threshold(3) == 3
    assert effective_threshold(5) == 5
    assert effective_threshold(12) == 12
    assert effective_threshold(None) == 5


@pytest.mark.parametrize(("count", "suppressed"), [(4, True), (5, False), (6, False), (0, True)])
def test_gate_around_threshold(count: int, suppressed: bool) -> None:
    result = gate(80.0, count=count, threshold=5)
    assert result == GatedValue(None if suppressed else 80.0, count, suppressed)
    assert result.display(lambda v: f"{v:.0f}%") == (SUPPRESSED_TEXT if suppressed else "80%")


def test_gate_configured_below_floor_still_needs_three() -> None:
    assert gate(1.0, count=2, threshold=1).suppressed
    assert gate(1.0, count=2, threshold=2).suppressed
    assert not gate(1.0, count=3, threshold=1).suppressed
    with pytest.raises(ValueError):
        gate(1.0, count=-1, threshold=5)


def test_gated_helpers() -> None:
    assert gated_csat([5, 5, 4, 1], threshold=5) == GatedValue(None, 4, True)
    assert gated_csat([5, 5, 4, 1, None, 2], threshold=5) == GatedValue(60.0, 5, False)
    assert gated_mean([4, 5, 3], threshold=3) == GatedValue(4.0, 3, False)
    assert gated_mean([4, 5], threshold=3).suppressed
    assert gate_breakdown({"😀": 2, "😐": 1}, threshold=5) == GatedValue(None, 3, True)
    assert gate_breakdown({"😀": 4, "😐": 1}, threshold=5).value == {"😀": 4, "😐": 1}
    assert GatedValue(None, 9, False).display() == "—"


COMMENTS = ["Fast and friendly", "Took too long", "Great answer", "Clear steps", "Needed two follow-ups"]


def test_comments_suppressed_below_threshold() -> None:
    result = gate_comments(COMMENTS[:4], threshold=5, shuffle_seed=1)
    assert result.suppressed and result.value is None and result.count == 4
    assert gate_comments(COMMENTS[:2], threshold=1, shuffle_seed=1).suppressed  # floor of 3
    assert gate_comments([*COMMENTS[:4], "  ", ""], threshold=5).suppressed  # blanks are no comments


def test_comments_shuffled_deterministically_never_in_input_order() -> None:
    for seed in [*range(50), None]:
        result = gate_comments(COMMENTS, threshold=5, shuffle_seed=seed)
        assert not result.suppressed and result.value is not None
        assert sorted(result.value) == sorted(COMMENTS)
        assert result.value != COMMENTS
        assert result == gate_comments(COMMENTS, threshold=5, shuffle_seed=seed)
        # The output depends only on the set of comments, not on the order they were submitted in.
        assert result == gate_comments(list(reversed(COMMENTS)), threshold=5, shuffle_seed=seed)
    three = ["a", "b", "c"]
    assert all(gate_comments(three, threshold=3, shuffle_seed=s).value != three for s in range(20))


def test_comments_never_carry_names() -> None:
    comments = [
        "<@U024BE7LH> fixed it fast",
        "ask <@W123|jane> next time",
        "mail bob.smith@example.com",
        "thanks @alice.w!",
        "   ",
        "fine",
    ]
    result = gate_comments(comments, threshold=5, shuffle_seed=3)
    assert result.value is not None and len(result.value) == 5
    joined = " ".join(result.value)
    for name in ("U024BE7LH", "W123", "jane", "bob.smith", "example.com", "alice"):
        assert name not in joined
    assert "[someone] fixed it fast" in result.value


# -------------------------------------------------------------------------------------------- topics


def test_normalize_word() -> None:
    assert [normalize_word(w) for w in ["expenses", "reports", "policies", "boxes", "access", "status"]] == [
        "expense",
        "report",
        "policy",
        "box",
        "access",
        "status",
    ]
    assert normalize_word("user's") == "user"
    assert normalize_word("windows") == "windows"


def test_topics_english_prefers_bigram() -> None:
    texts = [
        "Expense report rejected",
        "Hi, my expense reports were rejected again, please help!",
        "why was my expense report rejected? thanks",
        "Expenses report got rejected :sob:",
        "laptop screen broken",
        "Question: can I get a new laptop?",
        "How do I reset my password?",
    ]
    topics = extract_topics(texts, top=5)
    assert topics[0] == ("expense report", 4)
    assert ("rejected", 4) in topics
    assert ("laptop", 2) in topics
    terms = [t for t, _ in topics]
    assert "expense" not in terms and "report" not in terms  # covered by the bigram
    for filler in ("please", "help", "thanks", "hi", "question", "can", "how", "why"):
        assert filler not in terms
    assert topics == sorted(topics, key=lambda tc: (-tc[1], tc[0]))


def test_unigram_kept_when_more_frequent_than_bigram() -> None:
    texts = ["vpn access denied", "vpn access broken", "vpn slow", "vpn drops"]
    assert extract_topics(texts) == [("vpn", 4), ("vpn access", 2)]


def test_topics_chinese() -> None:
    texts = [
        "请问报销怎么提交？",
        "报销单被退回了，为什么",
        "发票和报销的问题",
        "我的发票丢了怎么办",
        "谢谢大家",
    ]
    topics = dict(extract_topics(texts, top=10))
    assert topics["报销"] == 3
    assert topics["发票"] == 2
    for stop in ("请问", "怎么", "为什么", "谢谢", "问题", "大家"):
        assert stop not in topics


def test_topics_mixed_language_and_counts_once_per_text() -> None:
    texts = ["VPN连接失败 vpn vpn", "vpn 连接 timeout", "报销 expense report", "expense report 报销 报销"]
    topics = dict(extract_topics(texts, top=10))
    assert topics == {"vpn": 2, "连接": 2, "报销": 2, "expense report": 2}


def test_topics_ignore_markup_urls_numbers_and_ids() -> None:
    noise = (
        "<@U123ABC> <#C024BE7LR|general> <https://example.com/x|link label> <!channel> :smile: "
        "see https://wiki.corp.example/page?id=7 INC0012345 JIRA-42 12345 3pm 2024-11-27 me@corp.example"
    )
    texts = [f"{noise} printer jam", f"printer jam {noise}", noise]
    assert extract_topics(texts, top=10) == [("printer jam", 2)]
    assert tokenize(noise) == []


def test_topics_options_and_edge_cases() -> None:
    texts = ["badge access", "badge access", "badge", "parking permit", "parking permit", "parking"]
    assert extract_topics(texts, top=1) == [("badge", 3)]
    assert extract_topics(texts, top=10, min_count=3) == [("badge", 3), ("parking", 3)]
    assert ("badge", 3) not in extract_topics(texts, extra_stopwords=["Badges"])
    assert extract_topics([], top=5) == []
    assert extract_topics(["", "   ", "???"], top=5) == []
    assert extract_topics(texts, top=0) == []
    assert extract_topics(iter(texts)) == extract_topics(texts)


messy_text = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(list("<>@#|:!_-'.?，。报销发票怎么连接 abcsVPN123"))),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(messy_text, max_size=20), st.integers(min_value=0, max_value=4))
def test_topics_never_crash_on_arbitrary_unicode(texts: list[str], min_count: int) -> None:
    topics = extract_topics(texts, top=5, min_count=min_count)
    assert len(topics) <= 5
    assert all(count >= max(1, min_count) and count <= len(texts) for _, count in topics)
    assert topics == sorted(topics, key=lambda tc: (-tc[1], tc[0]))


def test_topics_fast_enough() -> None:
    rng = random.Random(1)
    base = [
        "my expense report was rejected <@U1> INC{n}",
        "请问报销发票怎么提交 {n}",
        "vpn 连接失败 since {n}",
        "How do I get a new laptop? {n}",
        "password reset for jira please {n}",
    ]
    texts = [rng.choice(base).format(n=rng.randint(0, 10**6)) for _ in range(20_000)]
    extract_topics(texts[:10])  # jieba initialisation is a one-off cost
    started = time.perf_counter()
    topics = extract_topics(texts)
    assert time.perf_counter() - started < 5
    assert topics[0][1] > 3000


# -------------------------------------------------------------------------------------------- charts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


EIGHT_WEEKS = [
    WeekPoint(f"Nov {d}", v, c)
    for d, v, c in [
        (1, 12, 91.7),
        (8, 30, None),
        (15, 25, 80.0),
        (22, 0, None),
        (29, 41, 75.5),
        (36, 38, 88.0),
        (43, 2, 100.0),
        (50, 27, 66.7),
    ]
]


@pytest.mark.parametrize(
    "weeks",
    [[], [WeekPoint(f"W{i}", i * 3, None) for i in range(8)], EIGHT_WEEKS, [WeekPoint("2025-W48", 0, None)]],
    ids=["empty", "all-suppressed", "eight-weeks", "single-zero"],
)
def test_weekly_chart_writes_png(tmp_path: Path, weeks: list[WeekPoint]) -> None:
    out = render_weekly_chart(weeks, title="Finance desk — last 8 weeks", path=tmp_path / "sub" / "w.png")
    assert out == tmp_path / "sub" / "w.png"
    width, height = png_size(out)
    assert 900 <= width <= 1100 and 450 <= height <= 550
    assert out.stat().st_size > 5_000


@pytest.mark.filterwarnings("ignore:Glyph")  # no CJK font installed here
def test_matrix_chart(tmp_path: Path) -> None:
    rng = random.Random(3)
    departments = [f"Department {i}" for i in range(30)]
    teams = [f"team-{i}" for i in range(50)]
    counts = [[rng.choice([0, 0, 1, 2, 5, 13, 40]) for _ in teams] for _ in departments]
    width, height = png_size(
        render_matrix_chart(departments, teams, counts, title="Who asks whom", path=tmp_path / "m.png")
    )
    assert width >= 1000 and height >= 500
    png_size(render_matrix_chart(["财务部"], ["it"], [[3]], title="small", path=str(tmp_path / "s.png")))
    png_size(render_matrix_chart([], [], [], title="empty", path=tmp_path / "e.png"))
    with pytest.raises(ValueError):
        render_matrix_chart(["a"], ["x", "y"], [[1]], title="bad", path=tmp_path / "bad.png")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc")
def test_rendering_does_not_leak_memory(tmp_path: Path) -> None:
    # RSS climbs ~25 MB over the first ~15 renders (font/text caches, allocator arenas) and then stays
    # flat; a leaked figure per render would keep adding several MB each time.
    for i in range(15):
        render_weekly_chart(EIGHT_WEEKS, title=f"warm-up {i}", path=tmp_path / "w.png")
    before = _rss_bytes()
    for i in range(25):
        render_weekly_chart(EIGHT_WEEKS, title=f"run {i}", path=tmp_path / "w.png")
    growth = _rss_bytes() - before
    assert growth < 12 * 1024 * 1024, f"RSS grew by {growth / 1e6:.1f} MB over 25 renders"
