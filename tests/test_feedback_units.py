"""Pure functions of the feedback features: emoji normalisation, working hours, Block Kit, form parsing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import DEFAULT_RATINGS, Team
from bot.i18n import translator
from bot.render.feedback_blocks import (
    SurveyForm,
    dimension_block,
    parse_survey_form,
    score_action,
    survey_message,
    survey_modal,
)
from bot.render.ids import Block
from bot.services.ratings import base_emoji, score_of
from bot.services.surveys import next_working_time, zone
from storage.models import Request, Survey

EN = translator("en")

NINE_TO_SIX = (time(9, 0), time(18, 0))
MON_FRI = (0, 1, 2, 3, 4)
BERLIN, LA, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("America/Los_Angeles"), ZoneInfo("Asia/Shanghai")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- emoji ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "base", "score"), [
    ("+1", "+1", 5), ("+1::skin-tone-3", "+1", 5), (":-1::skin-tone-6:", "-1", 1),
    ("star-struck", "star-struck", 5),
    ("smiley", "smiley", 4), ("neutral_face", "neutral_face", 3), ("confused", "confused", 2),
    ("rage", "rage", 1), ("tada", "tada", None), ("thumbsup", "thumbsup", None),
])
def test_emoji_scores_and_skin_tones(name: str, base: str, score: int | None) -> None:
    assert base_emoji(name) == base
    assert score_of(name, DEFAULT_RATINGS) == score


# -- working hours ----------------------------------------------------------------------------------
def test_inside_working_hours_is_unchanged() -> None:
    when = utc(2026, 1, 13, 10, 0)  # Tuesday 11:00 in Berlin
    assert next_working_time(when, BERLIN, NINE_TO_SIX, MON_FRI) == when


def test_before_opening_moves_to_nine_the_same_day() -> None:
    assert next_working_time(utc(2026, 1, 13, 6, 30), BERLIN, NINE_TO_SIX, MON_FRI) == utc(2026, 1, 13, 8, 0)


def test_after_closing_on_friday_moves_to_monday_morning() -> None:
    friday_evening = utc(2026, 1, 16, 17, 30)  # 18:30 in Berlin
    assert next_working_time(friday_evening, BERLIN, NINE_TO_SIX, MON_FRI) == utc(2026, 1, 19, 8, 0)


def test_weekend_in_utc_but_friday_afternoon_locally_is_sent_now() -> None:
    saturday_utc = utc(2026, 1, 17, 0, 30)  # Friday 16:30 in Los Angeles
    assert next_working_time(saturday_utc, LA, NINE_TO_SIX, MON_FRI) == saturday_utc


def test_friday_afternoon_in_utc_is_already_the_weekend_in_shanghai() -> None:
    friday_utc = utc(2026, 1, 16, 16, 0)  # Saturday 00:00 in Shanghai
    assert next_working_time(friday_utc, SHANGHAI, NINE_TO_SIX, MON_FRI) == utc(2026, 1, 19, 1, 0)


def test_wall_clock_hours_follow_daylight_saving_time() -> None:
    # Berlin switches to CEST on Sunday 2026-03-29: 09:00 Monday is 07:00 UTC, not 08:00.
    assert next_working_time(utc(2026, 3, 28, 12, 0), BERLIN, NINE_TO_SIX, MON_FRI) == utc(2026, 3, 30, 7, 0)


def test_custom_days_and_end_of_day() -> None:
    tue_thu = (1, 3)
    assert next_working_time(utc(2026, 1, 14, 12, 0), BERLIN, NINE_TO_SIX, tue_thu) == utc(2026, 1, 15, 8, 0)
    always = (time(0, 0), time(23, 59))  # "23:59" means until midnight
    late = utc(2026, 1, 13, 22, 59, 30)  # 23:59:30 in Berlin
    assert next_working_time(late, BERLIN, always, tuple(range(7))) == late
    assert next_working_time(late, BERLIN, always, ()) == late


def test_unknown_time_zone_falls_back_to_the_workspace() -> None:
    assert zone("Mars/Olympus_Mons", "Europe/Berlin") == BERLIN
    assert zone(None, "UTC") == ZoneInfo("UTC")


# -- Block Kit --------------------------------------------------------------------------------------
TEAM = Team(slug="finance", name="Finance & Co", channel="C0FINANCE", command="/ask-finance")
NOW = utc(2026, 1, 13, 12, 0)


def _survey(**kw: object) -> Survey:
    base = dict(id=7, request_id=3, user_id="U0DAVE", team="finance", status="sent", due_at=NOW, sent_at=NOW,
                expires_at=NOW + timedelta(days=3), channel="D0DAVE", ts="1.1")
    return Survey(**{**base, **kw})


REQ = Request(id=3, team="finance", origin_team="finance", requester_id="U0DAVE", summary="Refund <@U0X> me")


def _texts(blocks: list[dict]) -> str:
    return str(blocks)


def test_open_survey_message_has_five_ordered_buttons_and_escapes_user_text() -> None:
    msg = survey_message(_survey(), REQ, TEAM, t=EN, now=NOW, threshold=5)
    blocks = msg.as_dicts()
    actions = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert [a["action_id"] for a in actions] == [score_action(n) for n in range(1, 6)] + ["survey_more"]
    assert all(a["value"] == "7" for a in actions)
    shown = _texts(blocks)
    assert "#3" in shown and "Finance &amp; Co" in shown and "&lt;@U0X&gt;" in shown and "<@U0X>" not in shown
    assert "at least 5 answers" in shown


def test_answered_message_thanks_and_highlights_the_choice() -> None:
    survey = _survey(status="answered", score=4, answered_at=NOW, clarity=5, comment="ok",
                     comment_anonymous=False)
    blocks = survey_message(survey, REQ, TEAM, t=EN, now=NOW, threshold=5).as_dicts()
    shown = _texts(blocks)
    for expected in ("Thank you", "4 · Good", "kept *private*", "Communication clarity"):
        assert expected in shown, expected
    buttons = [b for b in blocks if b["type"] == "actions"][0]["elements"]
    assert [b.get("style") for b in buttons][:5] == [None, None, None, "primary", None]


def test_closed_message_has_no_buttons() -> None:
    closed = survey_message(_survey(status="expired"), REQ, TEAM, t=EN, now=NOW, threshold=5).as_dicts()
    assert not [b for b in closed if b["type"] == "actions"] and "closed" in _texts(closed)
    by_time = survey_message(_survey(), REQ, TEAM, t=EN, now=NOW + timedelta(days=4), threshold=5).as_dicts()
    assert not [b for b in by_time if b["type"] == "actions"]


def test_modal_has_dimensions_comment_and_anonymous_on_by_default() -> None:
    view = survey_modal(_survey(score=2), REQ, TEAM, t=EN, threshold=5).to_dict()
    ids = [b.get("block_id") for b in view["blocks"]]
    dims = [dimension_block(d) for d in ("responsiveness", "clarity", "transparency", "support")]
    for expected in (Block.OVERALL, *dims, Block.COMMENT, Block.ANONYMOUS):
        assert expected in ids
    assert view["callback_id"] == "survey_more" and view["private_metadata"] == "7"
    anonymous = next(b for b in view["blocks"] if b.get("block_id") == Block.ANONYMOUS)
    assert anonymous["element"]["initial_options"][0]["value"] == "anonymous"
    overall = next(b for b in view["blocks"] if b.get("block_id") == Block.OVERALL)
    assert overall["element"]["initial_option"]["value"] == "2"


def test_parse_survey_form_keeps_valid_values_and_drops_forged_ones() -> None:
    values = {
        Block.OVERALL: {"value": {"selected_option": {"value": "5"}}},
        dimension_block("clarity"): {"value": {"selected_option": {"value": "9"}}},  # forged
        dimension_block("support"): {"value": {"selected_option": {"value": "2"}}},
        Block.COMMENT: {"value": {"value": "  thanks  "}},
        Block.ANONYMOUS: {"value": {"selected_options": []}},
    }
    form = parse_survey_form(values)
    dims = {"responsiveness": None, "clarity": None, "transparency": None, "support": 2}
    assert form == SurveyForm(score=5, dimensions=dims, comment="thanks", anonymous=False)
    assert form.values()["comment_anonymous"] is False and not form.empty
    assert parse_survey_form({}).empty and "score" not in parse_survey_form({}).values()
