"""Scheduled digests through the loopback Slack fake: chart uploads (files v2), exactly once per team and
week across ticks, instances and crashes, late catch-up, quiet weeks, and `/askdesk digest`."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.runtime.scheduler import Clock
from bot.services import digest_jobs
from bot.services.digest_periods import period_ending
from slacksim.simulator import SlackSimulator
from storage.models import Digest
from storage.session import session_scope
from tests.conftest import (
    ADMIN,
    ALICE,
    CAROL,
    DAVE,
    FINANCE_CH,
    HR_CH,
    IT_CH,
    TEST_CONFIG,
    FakeClock,
    Harness,
    make_settings,
    start_harness,
)
from tests.digest_helpers import Seeder

LEADS = "C0LEADS"
DUE = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # Monday 09:00 Europe/Berlin: the W47 digest
PERIOD = period_ending(DUE, "Europe/Berlin")
H = timedelta(hours=1)


def _settings(sim: SlackSimulator, db_url: str):  # type: ignore[no-untyped-def]
    sim.add_channel(LEADS, name="leadership", members=[ADMIN, "UBOT"])
    config = {**TEST_CONFIG, "workspace": {**TEST_CONFIG["workspace"], "leadership_channel": LEADS}}
    return make_settings(sim, db_url, config)


@pytest.fixture
def dh(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    harness, stop = start_harness(sim, _settings(sim, db_url), clock=FakeClock(DUE + timedelta(seconds=30)))
    seed_finance(Seeder(harness.deps.engine))
    yield harness
    stop()


def seed_finance(seed: Seeder) -> None:
    for i in range(6):
        req = seed.request(created=PERIOD.start + i * H, department=["Sales", "IT"][i % 2],
                           category="Expenses", first_response=10 * timedelta(minutes=i + 1),
                           resolved=(i + 2) * H)
        seed.survey(req, answered=PERIOD.start + (i + 5) * H, score=[5, 4, 5, 3, 4, 5][i])


def tick(h: Harness, *, lead: bool = True) -> None:
    """One scheduler tick by a fresh Clock (so the periodic digest task runs), then let go of leadership.

    On PostgreSQL the advisory lock of the previous Clock is released when the server notices its closed
    connection, so with `lead` this waits (bounded) until this Clock holds it."""
    clock = Clock(h.deps)
    try:
        if lead:
            h.wait(clock.leadership.check, timeout=10)
        clock.tick()
    finally:
        clock.leadership.release()


def digest_posts(h: Harness, channel: str) -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(channel)
            if (m.get("metadata") or {}).get("event_type") == "askdesk_digest"]


def chart_posts(h: Harness, channel: str) -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(channel) if m.get("files")]


def rows(h: Harness) -> dict[str, Digest]:
    with session_scope(h.deps.engine) as s:
        return {d.team: d for d in s.exec(select(Digest)).all()}


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [], ensure_ascii=False) + message.get("text", "")


def test_scheduled_digests_post_once_each_with_chart_and_quiet_weeks(dh: Harness) -> None:
    tick(dh)
    finance = digest_posts(dh, FINANCE_CH)
    assert len(finance) == 1 and finance[0]["metadata"]["event_payload"]["ref"] == "finance:2026-W47"
    text = shown(finance[0])
    for expected in ("Finance · weekly digest", "New requests: *6*", "Internal customers", "Sales",
                     "Expenses", "CSAT (share of 4–5): *83%*", "within the 30m target"):
        assert expected in text, expected
    # the chart went through files v2: upload URL, the POST of the bytes, completion in the channel
    urls = dh.sim.calls_to("files.getUploadURLExternal")
    completes = dh.sim.calls_to("files.completeUploadExternal")
    assert {c.args["filename"] for c in urls} == {"askdesk-finance-2026-W47.png",
                                                  "askdesk-organisation-2026-W47.png"}
    assert {c.args.get("channel_id") for c in completes} == {FINANCE_CH, LEADS}
    uploads = {u.filename: u for u in dh.sim.uploads.values()}
    png = uploads["askdesk-finance-2026-W47.png"]
    assert png.completed and png.data and png.data.startswith(b"\x89PNG") and png.shares[0][0] == FINANCE_CH
    assert len(chart_posts(dh, FINANCE_CH)) == 1
    # IT and People had nothing: a short quiet-week digest, no chart
    for channel in (IT_CH, HR_CH):
        posts = digest_posts(dh, channel)
        assert len(posts) == 1 and "quiet week" in shown(posts[0]) and not chart_posts(dh, channel)
    org = digest_posts(dh, LEADS)
    assert len(org) == 1 and "Organisation · weekly digest" in shown(org[0])
    assert len(chart_posts(dh, LEADS)) == 1
    assert {t: (r.status, r.week, r.late) for t, r in rows(dh).items()} == {
        t: ("posted", "2026-W47", False) for t in ("finance", "it", "hr", "*")}

    dh.clock.advance(minutes=5)
    tick(dh)
    tick(dh)
    assert len(digest_posts(dh, FINANCE_CH)) == 1
    assert len(dh.sim.calls_to("files.completeUploadExternal")) == 2


def test_two_instances_ticking_at_once_post_each_digest_once(dh: Harness, sim: SlackSimulator) -> None:
    other, stop = start_harness(sim, dh.deps.settings, clock=dh.clock)
    try:
        threads = [threading.Thread(target=tick, args=(h,), kwargs={"lead": False})
                   for h in (dh, other, dh, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        tick(other)
        tick(dh)
    finally:
        stop()
    for channel in (FINANCE_CH, IT_CH, HR_CH, LEADS):
        assert len(digest_posts(dh, channel)) == 1, channel
    assert len(chart_posts(dh, FINANCE_CH)) == 1 and len(chart_posts(dh, LEADS)) == 1


def test_crash_after_posting_before_marking_is_reconciled(dh: Harness,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    real_save = digest_jobs._save
    crashed: list[str] = []

    def crash_once(deps: Any, digest_id: int, **values: Any) -> None:
        if values.get("channel") == FINANCE_CH and "ts" in values and not crashed:
            crashed.append(values["ts"])
            raise RuntimeError("process died right after chat.postMessage")
        real_save(deps, digest_id, **values)

    monkeypatch.setattr(digest_jobs, "_save", crash_once)
    tick(dh)
    assert crashed and rows(dh)["finance"].status == "scheduled" and rows(dh)["finance"].ts is None
    dh.clock.advance(minutes=10)
    tick(dh)
    posts = digest_posts(dh, FINANCE_CH)
    assert len(posts) == 1 and rows(dh)["finance"].ts == posts[0]["ts"] == crashed[0]
    assert rows(dh)["finance"].status == "posted" and len(chart_posts(dh, FINANCE_CH)) == 1
    assert len([c for c in dh.sim.calls_to("chat.postMessage") if c.args.get("channel") == FINANCE_CH]) == 1


def test_failed_chart_upload_is_retried_without_reposting(dh: Harness) -> None:
    dh.sim.http_error_next("files.completeUploadExternal", 500, count=2)
    tick(dh)
    dh.clock.advance(minutes=10)
    tick(dh)
    assert len(digest_posts(dh, FINANCE_CH)) == 1 and len(chart_posts(dh, FINANCE_CH)) == 1
    assert len(chart_posts(dh, LEADS)) == 1 and rows(dh)["finance"].status == "posted"


def test_a_missing_channel_fails_only_that_digest(dh: Harness) -> None:
    dh.sim.fail_next("chat.postMessage", "channel_not_found", channel=IT_CH)
    dh.sim.fail_next("files.completeUploadExternal", "not_in_channel", channel=LEADS)
    tick(dh)
    state = {t: (r.status, r.error) for t, r in rows(dh).items()}
    assert state["it"] == ("failed", "channel_not_found") and state["finance"] == ("posted", None)
    assert state["*"] == ("posted", "chart not uploaded: not_in_channel")  # the message itself went out
    assert len(digest_posts(dh, LEADS)) == 1 and not chart_posts(dh, LEADS)


def test_missed_digest_is_posted_late_within_a_day(dh: Harness) -> None:
    dh.clock.set(DUE + 5 * H)  # the app was down at 09:00 and came back at 14:00
    tick(dh)
    posts = digest_posts(dh, FINANCE_CH)
    assert len(posts) == 1 and "posted late" in shown(posts[0]) and rows(dh)["finance"].late
    assert "posted late" in shown(digest_posts(dh, IT_CH)[0])


def test_missed_digest_older_than_the_catch_up_window_is_skipped(dh: Harness) -> None:
    dh.clock.set(DUE + 25 * H)
    tick(dh)
    assert not digest_posts(dh, FINANCE_CH) and not rows(dh)


def test_askdesk_digest_shows_figures_to_a_responder_only_to_them(h: Harness) -> None:
    seed_finance(Seeder(h.deps.engine))
    h.clock.set(DUE)
    resp = h.driver.slash("/askdesk", "digest finance", user_id=ALICE)
    assert resp.status == 200
    post = h.wait(lambda: next((p for p in h.sim.response_posts if p.user_id == ALICE), None))
    assert post.body["response_type"] == "ephemeral"
    body = json.dumps(post.body, ensure_ascii=False)
    assert "Finance · figures so far" in body and "New requests: *6*" in body
    assert not [c for c in h.sim.calls_to("chat.postMessage") if c.args.get("channel") == FINANCE_CH]


def test_askdesk_digest_refuses_outsiders_and_allows_admins(h: Harness) -> None:
    h.driver.slash("/askdesk", "digest finance", user_id=DAVE)
    refused = h.wait(lambda: next((p for p in h.sim.response_posts if p.user_id == DAVE), None))
    assert "only for Finance's responders" in json.dumps(refused.body)
    assert "figures so far" not in str(refused.body)
    h.driver.slash("/askdesk", "digest finance", user_id=ADMIN)
    shown_to_admin = h.wait(lambda: next((p for p in h.sim.response_posts if p.user_id == ADMIN), None))
    assert "Finance · " in json.dumps(shown_to_admin.body, ensure_ascii=False)


def test_askdesk_digest_without_a_team_uses_the_askers_team(h: Harness) -> None:
    h.driver.slash("/askdesk", "digest", user_id=CAROL)  # Carol answers for IT
    post = h.wait(lambda: next((p for p in h.sim.response_posts if p.user_id == CAROL), None))
    assert "IT · " in json.dumps(post.body, ensure_ascii=False) and post.body["response_type"] == "ephemeral"


def test_askdesk_usage(h: Harness) -> None:
    for text in ("", "help"):
        resp = h.driver.slash("/askdesk", text, user_id=DAVE)
        assert resp.status == 200 and "/askdesk digest [team]" in resp.body
    resp = h.driver.slash("/askdesk", "frobnicate", user_id=DAVE)
    assert "I don't know `frobnicate`" in resp.body and "/askdesk digest [team]" in resp.body
    h.driver.slash("/askdesk", "digest nosuchteam", user_id=ALICE)
    post = h.wait(lambda: next((p for p in h.sim.response_posts if p.user_id == ALICE), None))
    assert "There is no team `nosuchteam`" in json.dumps(post.body)


# ------------------------------------------------------------------------------------------------
# Block Kit limits, however many departments, categories and teams
# ------------------------------------------------------------------------------------------------
def big_team(i: int, *, departments: int, categories: int) -> Any:
    from bot.analytics import GatedValue, RankedItem, WeekPoint
    from bot.services.digests import DueRef, RequestRef, Satisfaction, Speed, TeamDigest

    long = "Extremely long department name with <markup> & pipes | " * 3
    ok, hidden = GatedValue(87.5, 40, False), GatedValue(None, 2, True)
    refs = [RequestRef(id=n, title=f"#{n} · " + "a very long summary <@U1> " * 6, link=f"https://x/p{n}",
                       age=9e5) for n in range(10)]
    return TeamDigest(
        team=f"team{i:02d}", name=f"Team number {i:02d} with a rather long display name " * 4, period=PERIOD,
        new=900, new_prev=800, resolved=850, resolved_prev=700, transferred_in=12, transferred_out=9,
        open_end=300,
        oldest_open=refs[0], first_response=Speed(900, 1800, 7200, 55.5, 1800, 2000),
        resolution=Speed(850, 86400, 3e5, 70.0, 172800, 9e4),
        satisfaction=Satisfaction(PERIOD, 5, 40, 60, 66.7, GatedValue(4.2, 40, False), ok if i % 2 else hidden, ok,
                                  {d: ok for d in ("responsiveness", "clarity", "transparency", "support")},
                                  GatedValue({"5": 20, "4": 10, "1": 3}, 33, False),
                                  GatedValue(["a comment that is long " * 20] * 30, 40, False)),
        internal_customers=[RankedItem(f"{long}{n}", 100 - n, 90, 10 - n, n + 1, n + 2)
                            for n in range(departments)],
        top_categories=[(f"Category {n} " * 5, 50 - n) for n in range(categories)],
        topics=[(f"topic {n} " * 4, 9) for n in range(8)],
        unclaimed=[DueRef(id=r.id, title=r.title, link=r.link, due_at=PERIOD.start) for r in refs],
        unclaimed_count=57, reopened=refs,
        reopened_count=31, weeks=[WeekPoint(f"W{n}", 10, 50.0) for n in range(8)])


def check_limits(rendered: Any) -> None:
    from slacksim.state import validate_blocks

    blocks = rendered.as_dicts()  # slack_sdk validates lengths in to_dict()
    validate_blocks(blocks)
    assert len(blocks) <= 50
    for block in blocks:
        text = block.get("text") or {}
        if block["type"] == "section":
            assert len(text["text"]) <= 3000
        if block["type"] == "header":
            assert len(text["text"]) <= 150
        for element in block.get("elements") or []:
            assert len(element.get("text", "")) <= 3000


@pytest.mark.parametrize(("locale", "more_departments", "more_teams"),
                         [("en", "more departments", "more teams"), ("zh-CN", "个部门", "个团队")])
def test_block_kit_limits_hold_for_huge_digests(locale: str, more_departments: str, more_teams: str) -> None:
    from bot.i18n import translator
    from bot.render import digest_blocks
    from bot.services.digests import OrgDigest

    t = translator(locale)
    team = big_team(1, departments=60, categories=40)
    for rendered in (digest_blocks.team_digest(team, t=t), digest_blocks.on_demand(team, t=t)):
        check_limits(rendered)
        assert more_departments in json.dumps(rendered.as_dicts(), ensure_ascii=False)
    teams = [big_team(i, departments=60, categories=40) for i in range(50)]
    departments = [f"Department {n} with a long name" for n in range(60)]
    matrix = {(d, t.team): 7 for d in departments for t in teams}
    org = OrgDigest(period=PERIOD, teams=teams, departments=departments, matrix=matrix,
                    matrix_csat={cell: teams[1].satisfaction.csat for cell in matrix})
    rendered = digest_blocks.org_digest(org, t=t)
    check_limits(rendered)
    shown_text = json.dumps(rendered.as_dicts(), ensure_ascii=False)
    assert more_teams in shown_text and more_departments in shown_text
