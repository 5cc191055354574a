"""Pure parts of needs surveys: theme grouping (English and Chinese), periods, the scorecard's formula,
the forms' parsers, and the configuration keys."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.analytics.themes import group_themes, representative
from bot.config import ConfigError, parse_config
from bot.render.needs_blocks import parse_needs_form, score_block
from bot.render.needs_report_blocks import parse_action_form
from bot.services.needs_periods import PeriodError, month_of, parse_quarter, previous, quarter_of
from bot.services.scorecard import index_of
from tests.conftest import TEST_CONFIG

ENGLISH = [
    "The expense report tool is slow and confusing", "Expense report approvals take weeks",
    "Expense report rules are unclear", "I never know the status of my expense report",
    "Reimbursement of my expense report takes too long",
    "Please answer faster on Slack", "Replies on Slack are slow", "Slow replies on Slack",
    "Slack replies take days", "Reply on Slack faster please",
    "Nothing", "All good", "More training on invoices",
]
CHINESE = ["报销流程太慢，审批要两周", "报销审批太慢了", "报销流程不透明", "报销进度查不到", "希望报销流程更快",
           "工资条看不懂", "发票抬头总是填错", "年假余额在哪里查"]


def labels(texts: list[str], people: int = 3) -> dict[str, int]:
    return {t.label: t.people for t in group_themes(texts, min_people=people)}


def test_english_answers_group_into_themes_of_co_occurring_terms() -> None:
    themes = group_themes(ENGLISH, min_people=3)
    assert [(t.label, t.people) for t in themes] == [("expense report", 5), ("slack · reply", 5)]
    assert {ENGLISH[i] for i in themes[0].members} == set(ENGLISH[:5])
    assert themes[0].label.startswith("expense report")  # the bigram, not its words again


def test_chinese_answers_are_segmented_and_grouped() -> None:
    themes = group_themes(CHINESE, min_people=3)
    assert [t.people for t in themes] == [5]
    assert "报销" in themes[0].terms and set(themes[0].members) == {0, 1, 2, 3, 4}
    assert representative([CHINESE[i] for i in themes[0].members], themes[0].terms, k=3) == [
        "报销流程不透明", "希望报销流程更快", "报销流程太慢，审批要两周"]


def test_mixed_languages_give_a_theme_per_language_and_nothing_under_the_threshold() -> None:
    found = labels(ENGLISH + CHINESE)
    assert set(found) == {"expense report", "slack · reply", "报销 · 流程"}
    assert labels(ENGLISH, people=6) == {}  # no theme was given by six people
    assert "invoice" not in str(found) and "training" not in str(found)  # one person's need is no theme


def test_themes_are_deterministic_whatever_the_order_and_count_each_person_once() -> None:
    texts = ENGLISH + CHINESE
    first = [(t.label, t.people) for t in group_themes(texts, min_people=3)]
    for seed in range(5):
        shuffled = texts[:]
        random.Random(seed).shuffle(shuffled)
        assert [(t.label, t.people) for t in group_themes(shuffled, min_people=3)] == first
    themes = group_themes(texts, min_people=3)
    members = [i for t in themes for i in t.members]
    assert len(members) == len(set(members))  # an answer belongs to one theme at most


def test_survey_filler_and_the_team_name_are_not_themes() -> None:
    texts = ["Finance should start sharing more", "Finance should stop doing that", "Finance: do more, better"]
    assert group_themes(texts, min_people=3, extra_stopwords=("finance",)) == []


def test_representative_quotes_prefer_the_most_terms_then_shorter_texts_and_cut_long_ones() -> None:
    texts = ["expense report", "the expense report tool", "x" * 50 + " expense report " + "y" * 300, "slack"]
    quotes = representative(texts, ("expense report", "expense", "report"), k=3, max_length=60)
    assert quotes[:2] == ["expense report", "the expense report tool"]
    assert len(quotes[2]) <= 60 and quotes[2].endswith("…") and "slack" not in quotes


def test_periods_in_the_workspace_time_zone() -> None:
    q4 = parse_quarter("2026-q4", "Europe/Berlin")
    assert (q4.key, q4.start, q4.end) == ("2026-Q4", datetime(2026, 9, 30, 22, tzinfo=UTC),
                                          datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert previous(q4, "Europe/Berlin").key == "2026-Q3"
    assert previous(parse_quarter("2027-Q1", "UTC"), "UTC").key == "2026-Q4"
    assert quarter_of(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Europe/Berlin").key == "2027-Q1"
    assert month_of(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "Asia/Shanghai").key == "2026-02"
    assert previous(month_of(datetime(2026, 1, 5, tzinfo=UTC), "UTC"), "UTC").key == "2025-12"
    for bad in ("2026-Q5", "Q4", "2026/Q4", ""):
        with pytest.raises(PeriodError, match="2026-Q4"):
            parse_quarter(bad, "UTC")


def test_the_index_is_the_weighted_mean_of_the_parts_that_have_a_value() -> None:
    weights = {"needs": 0.4, "csat": 0.3, "sla": 0.2, "response": 0.0, "actions": 0.1}
    parts = {"needs": 75.0, "csat": 80.0, "sla": 90.0, "response": 50.0, "actions": 100.0}
    assert index_of(parts, weights) == pytest.approx(0.4 * 75 + 0.3 * 80 + 0.2 * 90 + 0.1 * 100)
    assert index_of({**parts, "csat": None}, weights) == pytest.approx((0.4 * 75 + 0.2 * 90 + 0.1 * 100) / 0.7)
    assert index_of({**parts, "needs": None, "csat": None}, weights) is None  # no satisfaction, no index


def test_forms_drop_forged_values() -> None:
    form = parse_needs_form({score_block("overall"): {"value": {"selected_option": {"value": "9"}}},
                             score_block("support"): {"value": {"selected_option": {"value": "4"}}},
                             "needs_obstacle": {"value": {"value": "  " + "x" * 3000}},
                             "needs_share": {"value": {"selected_options": [{"value": "other"}]}}})
    assert form.scores == {"overall": None, "communication": None, "transparency": None, "support": 4}
    assert form.obstacle == "x" * 1500 and not form.shareable and not form.empty
    action = parse_action_form({"action_theme": {"value": {"selected_option": {"value": "1; DROP"}}},
                                "action_owner": {"value": {"selected_user": "<!channel>"}},
                                "action_due": {"value": {"selected_date": "2026-02-30"}},
                                "action_title": {"value": {"value": "  Fix it  "}}})
    assert (action.title, action.theme_id, action.owner_id, action.due_on) == ("Fix it", None, None, None)
    ok = parse_action_form({"action_due": {"value": {"selected_date": "2026-02-27"}}})
    assert ok.due_on == date(2026, 2, 27) and ok.title is None


def _config(**changes: object) -> dict:
    config = {**TEST_CONFIG, "teams": [dict(t) for t in TEST_CONFIG["teams"]]}
    config["teams"][0].update(changes.pop("finance", {}))  # type: ignore[arg-type]
    config.update(changes)
    return config


def test_config_keys_are_checked() -> None:
    parsed = parse_config("t.toml", _config(finance={"needs_survey": "monthly", "needs_audience": ["C0STAFF"],
                                                     "needs_window": "7d"},
                                            scorecard={"weights": {"needs": 1, "sla": 0.5}}))
    finance = parsed["teams"][0]
    assert (finance.needs_survey, finance.needs_audience, finance.needs_window) == (
        "monthly", ("C0STAFF",), timedelta(days=7))
    assert parsed["teams"][1].needs_survey == "off" and parsed["teams"][1].needs_window == timedelta(days=14)
    assert parsed["scorecard"].weights.as_dict() == {"needs": 1.0, "csat": 0.3, "sla": 0.5, "response": 0.0,
                                                     "actions": 0.1}  # parts not given keep their default
    for bad, message in (({"finance": {"needs_survey": "weekly"}},
                          "teams[0].needs_survey': expected 'quarterly', 'monthly'"),
                         ({"finance": {"needs_audience": ["#general"]}}, "teams[0].needs_audience"),
                         ({"finance": {"needs_window": "0d"}}, "teams[0].needs_window"),
                         ({"scorecard": {"weights": {"happiness": 1}}}, "scorecard.weights.happiness"),
                         ({"scorecard": {"weights": {"needs": -1}}}, "scorecard.weights.needs"),
                         ({"scorecard": {"weights": {"needs": 0, "csat": 0}}}, "'needs' or 'csat'"),
                         ({"scorecard": {"weight": {}}}, "did you mean 'weights'")):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_config("t.toml", _config(**bad))
