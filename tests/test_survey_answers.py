"""Pulse-survey answers: one click, the "Tell us more" modal, refusals, and expiry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.render.ids import Block
from slacksim.driver import SlackDriver
from storage.models import Survey
from tests.conftest import DAVE, MALLORY, Harness
from tests.feedback_helpers import ask, deliver, refusals, resolve, survey, survey_dms, texts, tick, with_clock


@pytest.fixture
def h(h: Harness) -> Iterator[Harness]:
    """A Tuesday inside Dave's working hours, and one persistent scheduler clock."""
    yield from with_clock(h)


def _click(h: Harness, sent: Survey, action_id: str, user: str = DAVE) -> None:
    resp = h.driver.block_action(user_id=user, action_id=action_id, value=str(sent.id),
                                 channel_id=sent.channel, message_ts=sent.ts)
    assert resp.status == 200, resp.body


def _dm(h: Harness, sent: Survey) -> dict:
    return next(m for m in h.sim.messages(sent.channel) if m["ts"] == sent.ts)


def test_one_click_answers_updates_the_dm_and_can_be_changed(h: Harness) -> None:
    req = ask(h, "Click me")
    resolve(h, req)
    sent = deliver(h, req.id)
    _click(h, sent, "survey_score_4")
    answered = h.wait(lambda: (s := survey(h, req.id)).score == 4 and s)
    assert answered.status == "answered" and answered.answered_at == h.clock()
    h.wait(lambda: "Thank you" in texts(_dm(h, sent)))
    assert "4 · Good" in texts(_dm(h, sent))
    h.clock.advance(hours=2)
    _click(h, sent, "survey_score_2")
    h.wait(lambda: survey(h, req.id).score == 2)
    h.wait(lambda: "2 · Poor" in texts(_dm(h, sent)))
    assert survey(h, req.id).answered_at == answered.answered_at  # the first answer time is kept
    assert len(survey_dms(h, DAVE)) == 1


def _modal_values(score: str | None, dims: dict[str, str], comment: str | None, anonymous: bool) -> dict:
    values: dict = {}
    if score:
        values[Block.OVERALL] = {"value": SlackDriver.select_value(score)}
    for name, value in dims.items():
        values[f"dim_{name}"] = {"value": SlackDriver.select_value(value)}
    values[Block.COMMENT] = {"value": SlackDriver.text_value(comment)}
    chosen = [{"value": "anonymous", "text": {"type": "plain_text", "text": "Share"}}] if anonymous else []
    values[Block.ANONYMOUS] = {"value": {"type": "checkboxes", "selected_options": chosen}}
    return values


def _open_modal(h: Harness, sent: Survey) -> dict:
    before = len(h.sim.opened_views)
    _click(h, sent, "survey_more")
    view = h.wait(lambda: len(h.sim.opened_views) > before and h.sim.opened_views[-1])
    assert view["callback_id"] == "survey_more" and view["private_metadata"] == str(sent.id)
    return view


def test_modal_answer_with_dimensions_and_a_private_comment(h: Harness) -> None:
    req = ask(h, "Modal please")
    resolve(h, req)
    sent = deliver(h, req.id)
    view = _open_modal(h, sent)
    shown = str(view)
    for label in ("Responsiveness", "Communication clarity", "Information transparency", "Support given",
                  "Share my comment anonymously"):
        assert label in shown, label
    anon = next(b for b in view["blocks"] if b.get("block_id") == Block.ANONYMOUS)
    assert anon["element"]["initial_options"][0]["value"] == "anonymous"  # on by default
    values = _modal_values("5", {"responsiveness": "4", "clarity": "5", "transparency": "3", "support": "5"},
                           "Alice sorted it within the hour", anonymous=False)
    resp = h.driver.view_submission(user_id=DAVE, callback_id="survey_more", view_id=view["id"],
                                    values=values)
    assert resp.status == 200 and not resp.body, resp.body
    stored = survey(h, req.id)
    answers = (stored.score, stored.responsiveness, stored.clarity, stored.transparency, stored.support)
    assert answers == (5, 4, 5, 3, 5)
    assert stored.comment == "Alice sorted it within the hour" and stored.comment_anonymous is False
    h.wait(lambda: "kept *private*" in texts(_dm(h, sent)))


def test_modal_answer_without_a_comment_keeps_the_click_score(h: Harness) -> None:
    req = ask(h, "Modal without comment")
    resolve(h, req)
    sent = deliver(h, req.id)
    _click(h, sent, "survey_score_3")
    h.wait(lambda: survey(h, req.id).score == 3)
    view = _open_modal(h, sent)
    overall = next(b for b in view["blocks"] if b.get("block_id") == Block.OVERALL)
    assert overall["element"]["initial_option"]["value"] == "3"
    values = _modal_values(None, {"support": "2"}, None, anonymous=True)
    resp = h.driver.view_submission(user_id=DAVE, callback_id="survey_more", view_id=view["id"],
                                    values=values)
    assert resp.status == 200 and not resp.body, resp.body
    stored = survey(h, req.id)
    assert (stored.score, stored.support, stored.responsiveness, stored.comment) == (3, 2, None, None)
    assert stored.comment_anonymous is True
    empty = h.driver.view_submission(user_id=DAVE, callback_id="survey_more", view_id=view["id"],
                                     values=_modal_values(None, {}, None, anonymous=True))
    assert empty.json["response_action"] == "errors" and Block.COMMENT in empty.json["errors"]


def test_clicks_and_submissions_by_anyone_but_the_recipient_are_refused(h: Harness) -> None:
    req = ask(h, "Only Dave may answer")
    resolve(h, req)
    sent = deliver(h, req.id)
    _click(h, sent, "survey_score_1", user=MALLORY)
    h.wait(lambda: refusals(h, "sent to someone else"))
    _click(h, sent, "survey_more", user=MALLORY)
    h.wait(lambda: len(refusals(h, "sent to someone else")) == 2)
    forged = h.driver.view_submission(user_id=MALLORY, callback_id="survey_more",
                                      private_metadata=str(sent.id),
                                      values=_modal_values("1", {}, "forged", anonymous=True))
    assert forged.json["response_action"] == "errors"
    stored = survey(h, req.id)
    assert stored.answered_at is None and stored.score is None and stored.comment is None
    assert h.sim.opened_views == []


def test_expired_survey_says_closed_and_answers_clicks_politely(h: Harness) -> None:
    req = ask(h, "Expire me")
    resolve(h, req)
    sent = deliver(h, req.id)
    _click(h, sent, "survey_score_5")
    h.wait(lambda: survey(h, req.id).score == 5)
    h.clock.advance(days=3, minutes=1)
    _click(h, sent, "survey_score_1")  # after expires_at, before the expiry task ran: refused too
    h.wait(lambda: refusals(h, "survey closed"))
    tick(h)
    assert survey(h, req.id).status == "expired"
    h.wait(lambda: "is closed" in texts(_dm(h, sent)))
    closed = _dm(h, sent)
    assert not [b for b in closed["blocks"] if b["type"] == "actions"] and "5 · Excellent" in texts(closed)
    _click(h, sent, "survey_more")
    h.wait(lambda: len(refusals(h, "survey closed")) == 2)
    assert survey(h, req.id).score == 5 and h.sim.opened_views == []
