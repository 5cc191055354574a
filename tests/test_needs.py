"""Needs surveys end to end through the real app and the Slack simulator: a scheduled round opens, invites
requesters and the audience channel (not the team's own responders) in their working hours and within the
shared survey budget, takes answers, reminds once, closes, and reports to the team and to leadership."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from bot.config import Settings
from bot.render.ids import Action
from slacksim.simulator import SlackSimulator
from storage import feedback as feedback_queries
from storage.models import NeedsRound, Person
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, FINANCE_CH, MALLORY, Harness, make_settings, start_harness
from tests.needs_helpers import (
    LEADS,
    P1,
    P2,
    P3,
    P4,
    P5,
    T0,
    add_audience,
    answered,
    click,
    dms,
    invitations,
    needs_config,
    posts,
    questionnaire,
    rounds,
    shown,
    start_clock,
    submit,
    tick,
)
from tests.test_request_loop import ask


@pytest.fixture
def settings(sim: SlackSimulator, db_url: str) -> Settings:
    add_audience(sim)
    return make_settings(sim, db_url, config=needs_config())


@pytest.fixture
def h(h: Harness) -> Iterator[Harness]:
    start_clock(h)
    yield h
    assert h.scheduler is not None
    h.scheduler.stop(wait=False)


def open_round(h: Harness) -> NeedsRound:
    """Dave asks Finance; the clock opens the quarter's round and plans its invitations."""
    ask(h, "Why was my expense report rejected?")
    h.clock.advance(minutes=1)
    tick(h)  # the cadence opens 2026-Q1 (inside its first 14 days)
    opened = rounds(h)
    assert [r.key for r in opened] == ["2026-Q1"] and opened[0].status == "open"
    h.clock.advance(seconds=11)  # the planning job is due after the kick grace
    tick(h, 2)
    planned = rounds(h)[0]
    assert planned.planned_at is not None
    return planned


def test_a_scheduled_round_from_invitation_to_report(h: Harness) -> None:
    with session_scope(h.deps.engine) as s:  # P4 had a pulse survey two days ago: the budget is shared
        feedback_queries.spend_budget(s, user_id=P4, sent_at=T0 - timedelta(days=2))
    rnd = open_round(h)
    invited = invitations(h, rnd.id)
    # requesters of the previous period plus the audience channel, never the team's responders or the bot
    assert set(invited) == {DAVE, P1, P2, P3, P4, P5}
    assert invited[DAVE].source == "requester" and invited[P1].source == "audience"
    assert rnd.invited == 6
    for user in (P1, P2, P3, P5):  # in their working hours now
        assert len(dms(h, user)) == 1, user
    assert dms(h, DAVE) == []  # 07:01 in Los Angeles
    assert dms(h, P4) == [] and invitations(h, rnd.id)[P4].status == "scheduled"  # budget: not before day 5
    assert "Finance" in shown(dms(h, P1)[0]) and "needs_score_5" in shown(dms(h, P1)[0])

    # Dave's working morning
    h.clock.set(T0.replace(hour=17, minute=0))
    tick(h)
    assert len(dms(h, DAVE)) == 1

    # answers: a click, the questionnaire, and a forged click refused
    first = dms(h, P1)[0]
    click(h, P1, "needs_score_5", str(invited[P1].id), first, h.sim.dm_channel_for(P1))
    h.wait(lambda: answered(h, invited[P1].id))
    submit(h, P1, invited[P1].id, questionnaire(overall="5", obstacle="The expense report tool is confusing",
                                                start_stop="Publish the expense report rules"))
    submit(h, P2, invited[P2].id, questionnaire(overall="4", communication="3",
                                                obstacle="Expense report approvals are slow"))
    submit(h, P3, invited[P3].id, questionnaire(overall="2", obstacle="My expense report status is never clear"))
    click(h, DAVE, "needs_score_3", str(invited[DAVE].id), dms(h, DAVE)[0], h.sim.dm_channel_for(DAVE))
    h.wait(lambda: answered(h, invited[DAVE].id))
    click(h, MALLORY, "needs_score_1", str(invited[P5].id), dms(h, P5)[0], h.sim.dm_channel_for(P5))
    h.wait(lambda: [p for p in h.sim.response_posts if "sent to someone else" in str(p.body)])
    assert not answered(h, invited[P5].id)
    h.wait(lambda: "Thank you" in shown(h.sim.messages(h.sim.dm_channel_for(P2))[-1]))  # the DM is updated

    # one reminder after three days, to the one person reached who has not answered
    h.clock.set(T0 + timedelta(days=3, hours=1))
    tick(h, 2)
    assert len(dms(h, P5, "askdesk_needs_reminder")) == 1
    assert all(dms(h, u, "askdesk_needs_reminder") == [] for u in (P1, P2, P3, DAVE, P4))
    h.clock.advance(days=1)
    tick(h, 2)
    assert len(dms(h, P5, "askdesk_needs_reminder")) == 1

    # P4's budget frees up on day 5, a Sunday: invited on Monday morning, within the round
    h.clock.set(T0 + timedelta(days=5, hours=1))
    tick(h, 2)
    assert dms(h, P4) == []
    h.clock.set(T0 + timedelta(days=6))
    tick(h, 2)
    assert len(dms(h, P4)) == 1

    # the round closes after its 14-day window: report to Finance's channel and to leadership
    h.clock.set(rnd.closes_at + timedelta(minutes=1))
    tick(h, 3)
    assert rounds(h)[0].status == "reported"
    report = h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_report"))
    assert len(report) == 1 and len(posts(h, LEADS, "askdesk_needs_report")) == 1
    body = shown(report[0])
    assert "4 of 6 people answered (67%)" in body
    assert "3.5 / 5" in body  # overall: 5, 4, 2, 3
    assert "not enough answers to show" in body  # communication efficiency: one answer
    assert "expense report" in body and "3 people" in body
    assert "Expense report approvals are slow" in body  # a quote
    assert "U0P" not in body and "<@" not in body  # nobody is named
    assert rounds(h)[0].report_ts == report[0]["ts"]
    # answering after the close is refused and changes nothing
    click(h, P5, "needs_score_4", str(invited[P5].id), dms(h, P5)[0], h.sim.dm_channel_for(P5))
    h.wait(lambda: [p for p in h.sim.response_posts if "closed" in str(p.body)])
    assert not answered(h, invited[P5].id)
    tick(h, 2)  # nothing is posted twice
    assert len(posts(h, FINANCE_CH, "askdesk_needs_report")) == 1
    assert all(len(dms(h, u)) == 1 for u in (DAVE, P1, P2, P3, P4, P5))


@pytest.mark.parametrize(("cadence", "days", "expected"), [
    ("off", 0, []), ("quarterly", 0, ["2026-Q1"]), ("quarterly", 20, []), ("monthly", 20, ["2026-02"])])
def test_the_cadence_opens_a_round_only_early_in_its_period(sim: SlackSimulator, db_url: str, cadence: str,
                                                           days: int, expected: list[str]) -> None:
    """A round opens at the start of its period (or late, within its window); turned on later in the
    period, the first round waits for the next period or `askdesk needs start`."""
    add_audience(sim)
    harness, stop = start_harness(sim, make_settings(sim, db_url, config=needs_config(needs_survey=cadence)))
    try:
        start_clock(harness, T0 + timedelta(days=days))
        tick(harness, 2)
        assert [r.key for r in rounds(harness)] == expected
    finally:
        assert harness.scheduler is not None
        harness.scheduler.stop(wait=False)
        stop()


def test_unshared_answers_never_reach_themes_or_quotes(h: Harness) -> None:
    rnd = open_round(h)
    invited = invitations(h, rnd.id)
    for user in (P1, P2):
        submit(h, user, invited[user].id, questionnaire(overall="4", obstacle="Payroll questions go unanswered"))
    submit(h, P3, invited[P3].id, questionnaire(overall="4", obstacle="Payroll questions go unanswered twice",
                                                share=False))
    h.clock.set(rnd.closes_at + timedelta(minutes=1))
    tick(h, 3)
    body = shown(h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_report"))[0])
    assert "payroll" not in body.lower() and "twice" not in body
    assert "No common need was written by at least 3 people" in body
    with session_scope(h.deps.engine) as s:
        assert s.exec(select(Person).where(col(Person.user_id) == P3)).first() is not None


def test_an_open_rounds_report_is_refused_and_the_action_button_needs_a_responder(h: Harness) -> None:
    from bot.services import needs_report
    from bot.services.needs_report import ReportError

    rnd = open_round(h)
    with session_scope(h.deps.engine) as s, pytest.raises(ReportError, match="open until"):
        needs_report.build(s, h.deps.settings, rnd)
    h.clock.set(rnd.closes_at + timedelta(minutes=1))
    tick(h, 3)
    report = h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_report"))[0]
    click(h, MALLORY, Action.NEEDS_ACTION_NEW.value, str(rnd.id), report, FINANCE_CH)
    h.wait(lambda: [p for p in h.sim.response_posts if "Only Finance's responders" in str(p.body)])
    assert not [v for v in h.sim.opened_views if "needs_action" in str(v)]
    click(h, ALICE, Action.NEEDS_ACTION_NEW.value, str(rnd.id), report, FINANCE_CH)
    view = h.wait(lambda: [v for v in h.sim.opened_views if "needs_action" in str(v)])
    assert "Improvement action" in str(view[-1])


def close_with_answers(h: Harness) -> NeedsRound:
    """A round where P1-P3 write about expense reports and Dave only clicks; closed and reported."""
    rnd = open_round(h)
    invited = invitations(h, rnd.id)
    for user, overall, words in ((P1, "5", "The expense report tool is confusing"),
                                 (P2, "4", "Expense report approvals are slow"),
                                 (P3, "2", "My expense report status is never clear")):
        submit(h, user, invited[user].id, questionnaire(overall=overall, obstacle=words))
    h.clock.set(rnd.closes_at + timedelta(minutes=1))
    tick(h, 3)
    h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_report"))
    return rounds(h)[0]


def job_status(h: Harness, key: str) -> str | None:
    from storage import jobs as job_queries

    with session_scope(h.deps.engine) as s:
        job = job_queries.get_by_key(s, key=key)
    return job.status if job else None


def digest_shown(h: Harness, days: float = 0) -> str:
    """Finance's weekly digest for the 7 days ending an hour (plus `days`) from now, as posted."""
    from bot.i18n import translator
    from bot.render import digest_blocks
    from bot.services.digest_periods import period_ending
    from bot.services.digests import team_digest

    team = h.deps.settings.team("finance")
    assert team is not None
    period = period_ending(h.clock() + timedelta(hours=1, days=days), h.deps.settings.workspace.timezone)
    digest = team_digest(h.deps.engine, h.deps.settings, team, period)
    return shown({"blocks": digest_blocks.team_digest(digest, t=translator("en"), chart=False).as_dicts()})


def test_you_said_we_did(h: Harness) -> None:
    from bot.render.ids import Block, Callback
    from storage import needs as queries

    rnd = close_with_answers(h)
    report = posts(h, FINANCE_CH, "askdesk_needs_report")[0]
    with session_scope(h.deps.engine) as s:
        theme = queries.themes_of(s, round_id=rnd.id)[0]
    assert theme.label.startswith("expense report") and theme.people == 3
    click(h, ALICE, Action.NEEDS_ACTION_NEW.value, str(rnd.id), report, FINANCE_CH)
    h.wait(lambda: [v for v in h.sim.opened_views if "needs_action" in str(v)])
    empty = h.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value,
                                     private_metadata=f'{{"round": {rnd.id}}}', values={})
    assert "errors" in empty.body and "title" in empty.body  # nothing recorded without a title
    resp = h.driver.view_submission(
        user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value, private_metadata=f'{{"round": {rnd.id}}}',
        values={Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "One page of expense rules"}},
                Block.ACTION_THEME: {"value": {"type": "static_select", "selected_option": {"value": str(theme.id)}}},
                Block.ACTION_DETAIL: {"value": {"type": "plain_text_input",
                                                "value": "The rules now fit on one page, linked from the tool."}},
                Block.ACTION_DUE: {"value": {"type": "datepicker", "selected_date": "2026-02-27"}}})
    assert resp.status == 200 and "errors" not in resp.body
    card = h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_action"))[0]
    assert "One page of expense rules" in shown(card) and "Planned" in shown(card) and "2026-02-27" in shown(card)
    with session_scope(h.deps.engine) as s:
        action = queries.actions_of(s, team="finance")[0]
    assert action.owner_id == ALICE and action.theme_id == theme.id and action.status == "planned"

    assert "One page of expense rules" in digest_shown(h) and "planned, due 2026-02-27" in digest_shown(h)

    click(h, MALLORY, Action.NEEDS_ACTION_PROGRESS.value, str(action.id), card, FINANCE_CH)  # not a responder
    h.wait(lambda: [p for p in h.sim.response_posts if "Only Finance's responders" in str(p.body)])
    click(h, ALICE, Action.NEEDS_ACTION_PROGRESS.value, str(action.id), card, FINANCE_CH)
    h.wait(lambda: "In progress" in shown(h.sim.messages(FINANCE_CH)[-1]) or
           any("In progress" in shown(m) for m in posts(h, FINANCE_CH, "askdesk_needs_action")))
    click(h, ALICE, Action.NEEDS_ACTION_DONE.value, str(action.id), card, FINANCE_CH)
    h.wait(lambda: [v for v in h.sim.opened_views if "needs_action_done" in str(v)])
    done = h.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_DONE_MODAL.value,
                                    private_metadata=str(action.id), values={})
    assert done.status == 200 and "errors" not in done.body
    h.wait(lambda: job_status(h, f"needs_action_announce:{action.id}") == "done")  # the fan-out, kicked
    tick(h, 2)  # one DM per person surveyed
    surveyed = (P1, P2, P3, P4, P5)  # Dave's invitation was still waiting for his morning when the round closed
    for user in surveyed:
        got = h.wait(lambda user=user: dms(h, user, "askdesk_needs_done"))
        assert len(got) == 1, user
        body = shown(got[0])
        assert "One page of expense rules" in body and "expense report" in body
        assert "The rules now fit on one page" in body and "<@" not in body and "U0" not in body
    assert dms(h, ALICE, "askdesk_needs_done") == [] and dms(h, DAVE, "askdesk_needs_done") == []
    h.clock.advance(hours=1)
    tick(h, 2)
    assert all(len(dms(h, u, "askdesk_needs_done")) == 1 for u in surveyed)
    assert any("Done" in shown(m) for m in posts(h, FINANCE_CH, "askdesk_needs_action"))
    assert "done this week" in digest_shown(h)  # shown until done: the week it was done, then no more
    assert "One page of expense rules" not in digest_shown(h, days=8)

    # the next round opens with what was done
    from bot.services import needs

    team = h.deps.settings.team("finance")
    assert team is not None
    started = needs.start_round(h.deps, team)
    assert started.key == "2026-Q1-2"
    h.clock.advance(seconds=11)
    tick(h, 2)
    second = h.wait(lambda: [m for m in dms(h, P1) if "Last time" in shown(m)])
    assert "Last time you told us: expense report" in shown(second[0])
    assert "We did: One page of expense rules" in shown(second[0])


def test_askdesk_action_opens_the_form_for_the_latest_closed_round(h: Harness) -> None:
    from tests.conftest import GENERAL

    def refusal(text: str) -> list:
        return [p for p in h.sim.response_posts if text in str(p.body)]

    assert h.driver.slash("/askdesk", "action finance", user_id=ALICE, channel_id=GENERAL).status == 200
    h.wait(lambda: refusal("no closed needs-survey round yet"))
    close_with_answers(h)
    views = len(h.sim.opened_views)
    assert h.driver.slash("/askdesk", "action", user_id=MALLORY, channel_id=GENERAL).status == 200
    h.wait(lambda: refusal("Which team?"))
    assert h.driver.slash("/askdesk", "action finance", user_id=MALLORY, channel_id=GENERAL).status == 200
    h.wait(lambda: refusal("Only Finance's responders"))
    assert h.driver.slash("/askdesk", "action legal", user_id=ALICE, channel_id=GENERAL).status == 200
    h.wait(lambda: refusal("I don't know the team `legal`"))
    assert len(h.sim.opened_views) == views
    assert h.driver.slash("/askdesk", "action", user_id=ALICE, channel_id=GENERAL).status == 200  # her own team
    view = h.wait(lambda: h.sim.opened_views[views:])
    assert "2026-Q1" in str(view[0]) and "expense report" in str(view[0])
    help_text = h.driver.slash("/askdesk", "help", user_id=ALICE, channel_id=GENERAL).body
    assert "/askdesk action [team]" in help_text


def test_the_quarterly_scorecard_is_posted_to_leadership_once(h: Harness) -> None:
    close_with_answers(h)  # a 2026-Q1 round: P1-P3 answered 5, 4 and 2
    h.clock.set(datetime(2026, 4, 1, 9, tzinfo=UTC))  # Q1 has ended (Berlin time)
    tick(h, 2)
    posted = h.wait(lambda: posts(h, LEADS, "askdesk_scorecard"))
    assert len(posted) == 1
    body = shown(posted[0])
    assert "Internal satisfaction scorecard 2026-Q1" in body and "Finance" in body
    assert "3.7 / 5" in body and "(provisional)" not in body
    assert "not enough answers to show" in body  # pulse CSAT: no answers
    h.clock.advance(days=1)
    tick(h, 2)
    assert len(posts(h, LEADS, "askdesk_scorecard")) == 1
    h.clock.set(datetime(2026, 4, 20, 9, tzinfo=UTC))  # catch-up is a week: nothing late, nothing twice
    tick(h, 2)
    assert len(posts(h, LEADS, "askdesk_scorecard")) == 1


def test_a_needs_invitation_spends_the_budget_a_pulse_survey_then_respects(h: Harness) -> None:
    from tests.conftest import BOB
    from tests.feedback_helpers import button, load, survey

    rnd = open_round(h)
    req = ask(h, "Another question", user=P1)  # P1 got the needs invitation a moment ago
    button(h, load(h, req.id), Action.RESOLVE, BOB)
    h.wait(lambda: load(h, req.id).status == "resolved")
    h.clock.advance(minutes=31)
    tick(h, 3)
    pulse = h.wait(lambda: (s := survey(h, req.id)).status != "scheduled" and s)
    assert pulse.status == "skipped" and "survey budget" in (pulse.reason or "")
    assert len(dms(h, P1)) == 1 and invitations(h, rnd.id)[P1].status == "sent"


def test_the_action_form_refuses_bad_input_where_it_is_and_a_submission_twice_records_once(h: Harness) -> None:
    """Adversarial input in "Record an action": an empty title, a due date already past (in the asker's
    time zone), an owner who is an app, deactivated or unknown; each refusal under its own field, nothing
    recorded. The same modal submitted twice (a double submit, Slack sent again after a slow answer)
    records one action and posts one card."""
    import json

    from bot.render.ids import Block, Callback
    from storage import needs as queries

    h.sim.add_user("U0GONE", name="gone", tz="Europe/Berlin", deleted=True)
    rnd = close_with_answers(h)
    report = posts(h, FINANCE_CH, "askdesk_needs_report")[0]
    click(h, ALICE, Action.NEEDS_ACTION_NEW.value, str(rnd.id), report, FINANCE_CH)
    h.wait(lambda: [v for v in h.sim.opened_views if "needs_action" in str(v)])
    today = h.clock().astimezone(ZoneInfo("Europe/Berlin")).date()  # Alice's calendar

    def submit_action(**fields: dict) -> Any:
        values = {Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "Expense rules on one page"}},
                  **fields}
        resp = h.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value,
                                        private_metadata=f'{{"round": {rnd.id}}}', values=values)
        assert resp.status == 200
        return json.loads(resp.body) if resp.body else {}

    def due(day: object) -> dict:
        return {"value": {"type": "datepicker", "selected_date": str(day)}}

    def owner(user: str) -> dict:
        return {"value": {"type": "users_select", "selected_user": user}}

    blank = {Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "   "}}}
    assert submit_action(**blank)["errors"].keys() == {Block.ACTION_TITLE}
    past = submit_action(**{Block.ACTION_DUE: due(today - timedelta(days=1))})
    assert past["errors"] == {Block.ACTION_DUE: f"The due date {today - timedelta(days=1)} is in the past."}
    for who in (h.sim.bot_user_id, "U0GONE", "U0NOBODY"):
        refused = submit_action(**{Block.ACTION_OWNER: owner(who)})
        assert list(refused["errors"]) == [Block.ACTION_OWNER] and "must be a person" in str(refused), who
    with session_scope(h.deps.engine) as s:
        assert queries.actions_of(s, team="finance") == []

    good = {Block.ACTION_DUE: due(today), Block.ACTION_OWNER: owner(P1)}
    assert "errors" not in submit_action(**good)
    assert "errors" not in submit_action(**good)  # the same modal's submission delivered again
    h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_action"))
    tick(h, 2)
    with session_scope(h.deps.engine) as s:
        recorded = queries.actions_of(s, team="finance")
    assert [(a.title, a.owner_id, a.due_on) for a in recorded] == [("Expense rules on one page", P1, today)]
    assert len(posts(h, FINANCE_CH, "askdesk_needs_action")) == 1


def test_a_double_click_on_the_action_buttons_moves_the_action_once(h: Harness) -> None:
    """Another team's responder cannot record or finish Finance's actions through forged modals;
    [In progress] clicked twice (or sent again by Slack): one move, the second click is told why;
    [Mark done…] submitted twice: one "we did" DM per person surveyed."""
    from bot.render.ids import Block, Callback
    from storage import needs as queries
    from tests.conftest import CAROL

    rnd = close_with_answers(h)
    resp = h.driver.view_submission(
        user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value, private_metadata=f'{{"round": {rnd.id}}}',
        values={Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "Faster approvals"}}})
    assert resp.status == 200 and "errors" not in resp.body
    card = h.wait(lambda: posts(h, FINANCE_CH, "askdesk_needs_action"))[0]
    with session_scope(h.deps.engine) as s:
        action = queries.actions_of(s, team="finance")[0]
    # IT's responder forging Finance's round and action into her own modals: refused, nothing changes
    forged = h.driver.view_submission(
        user_id=CAROL, callback_id=Callback.NEEDS_ACTION_MODAL.value, private_metadata=f'{{"round": {rnd.id}}}',
        values={Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "Forged"}}})
    assert "Only Finance's responders" in forged.body
    forged = h.driver.view_submission(user_id=CAROL, callback_id=Callback.NEEDS_DONE_MODAL.value,
                                      private_metadata=str(action.id), values={})
    assert "Only Finance's responders" in forged.body
    with session_scope(h.deps.engine) as s:
        assert [(a.title, a.status) for a in queries.actions_of(s, team="finance")] == [("Faster approvals", "planned")]
    for _ in range(2):
        click(h, ALICE, Action.NEEDS_ACTION_PROGRESS.value, str(action.id), card, FINANCE_CH)
    h.wait(lambda: [p for p in h.sim.response_posts if "already in progress" in str(p.body)])
    for _ in range(2):
        done = h.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_DONE_MODAL.value,
                                        private_metadata=str(action.id), values={})
        assert done.status == 200
    assert "already done" in done.body  # the second submission is told, in the modal
    h.wait(lambda: job_status(h, f"needs_action_announce:{action.id}") == "done")
    tick(h, 3)
    for user in (P1, P2, P3):
        assert len(h.wait(lambda user=user: dms(h, user, "askdesk_needs_done"))) == 1, user
    with session_scope(h.deps.engine) as s:
        assert queries.get_action(s, action.id).status == "done"  # type: ignore[union-attr, arg-type]


def test_the_cadence_opens_no_round_while_an_ad_hoc_one_is_open_and_opens_it_after(h: Harness) -> None:
    """An ad-hoc round started late in December is still open when the quarter's round falls due: the
    cadence waits (nobody is asked twice at once) and opens 2026-Q1 once it has closed, within the window."""
    from bot.services import needs as needs_service

    team = h.deps.settings.team("finance")
    assert team is not None
    h.clock.set(datetime(2025, 12, 31, 15, 0, tzinfo=UTC))
    adhoc = needs_service.start_round(h.deps, team)
    assert adhoc.created and adhoc.key == "2025-Q4"
    h.clock.set(T0)  # 13 January: 2026-Q1 is due, the ad-hoc round closes on the 14th
    tick(h, 2)
    assert [(r.key, r.status) for r in rounds(h)] == [("2025-Q4", "open")]
    h.clock.set(datetime(2026, 1, 14, 16, 0, tzinfo=UTC))
    tick(h, 3)
    assert [(r.key, r.status) for r in rounds(h)] == [("2025-Q4", "reported"), ("2026-Q1", "open")]
