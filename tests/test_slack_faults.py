"""Slack misbehaves: messages still converge on the stored state, nothing is posted twice, and work
waits out rate limits and outages (issue 14, items 1-3), through the real app and the simulator.

The outbox's clock is the harness's FakeClock: a test moves it past a job's retry time and runs a
scheduler tick (`due`), so retries an hour or a day apart take milliseconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.render.ids import Action
from bot.runtime.outbox import GIVE_UP_AFTER, SETTLE
from bot.services.delivery import SWEEP_AFTER
from bot.services.messages import dm_view, triage_view
from bot.slack.client import build_client
from storage import jobs as job_queries
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import ALICE, BOB, BOT_TOKEN, DAVE, FINANCE_CH, GENERAL, IT_CH, Harness
from tests.feedback_helpers import resolve, survey, survey_dms, with_clock
from tests.test_request_loop import ask, events, load, submit_transfer


def slash(h: Harness, text: str) -> None:
    resp = h.driver.slash("/ask-finance", text, user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200 and "#" in resp.body, resp.body


def click(h: Harness, action: Action, request_id: int, user: str, *, ts: str) -> None:
    resp = h.driver.block_action(user_id=user, action_id=action.value, value=str(request_id), channel_id=FINANCE_CH,
                                 message_ts=ts)
    assert resp.status == 200, resp.body


def job(h: Harness, key: str) -> Job:
    with session_scope(h.deps.engine) as s:
        found = job_queries.get_by_key(s, key=key)
    assert found is not None, key
    return found


def due(h: Harness, key: str | None = None, *, plus: timedelta = timedelta(seconds=1)) -> None:
    """Move the clock to when `key` (else: now) is due, plus a little, and run one scheduler tick."""
    if key is not None:
        h.clock.set(max(h.clock(), job(h, key).due_at) + plus)
    else:
        h.clock.advance(seconds=plus.total_seconds())
    h.deps.outbox.tick()


def retried(h: Harness, key: str, attempts: int) -> Job:
    """Wait until the job has run `attempts` times and is back in the queue."""
    return h.wait(lambda: (j := job(h, key)).status == "pending" and j.attempts == attempts and j, timeout=5)


def dm_messages(h: Harness) -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(DAVE) if (m.get("metadata") or {}).get("event_type") == "askdesk_request_dm"]


def shown(message: dict[str, Any]) -> list[Any]:
    return [message.get("text"), message.get("blocks")]


def shows_stored_state(h: Harness, request_id: int) -> bool:
    """The triage message and the DM show exactly what the stored request renders to."""
    req = load(h, request_id)
    team = h.deps.settings.team(req.team)
    assert team is not None
    triage = [m for m in h.sim.messages(req.triage_channel or FINANCE_CH) if m["ts"] == req.triage_ts]
    dms = [m for m in h.sim.messages(DAVE) if m["ts"] == req.dm_ts]
    if not triage or not dms:
        return False
    want_triage, want_dm = triage_view(h.deps, req, team), dm_view(h.deps, req, team)
    return (shown(triage[0]) == [want_triage.text, want_triage.as_dicts()]
            and shown(dms[0]) == [want_dm.text, want_dm.as_dicts()])


def posted(h: Harness, request_id: int = 1) -> Request | None:
    with session_scope(h.deps.engine) as s:
        req = s.get(Request, request_id)
    return req if req is not None and req.post_state == "posted" and req.dm_ts else None


@pytest.fixture
def quick(h: Harness) -> Harness:
    """Jobs' Slack client gives up after 1 s (10 s in production), so "slower than the client
    waits" takes a second."""
    h.deps.send_client = build_client(BOT_TOKEN, h.sim.base_url, timeout=1, safe_retries_only=True)
    return h


# -------------------------------------------------------------------------------------------------
# 1. messages converge on the stored state
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("clicks", [["resolve"], ["claim"], ["resolve", "reopen"]])
def test_clicks_while_the_first_post_is_in_flight_end_up_in_both_messages(h: Harness, clicks: list[str]) -> None:
    h.sim.delay_next("chat.postMessage", 1.0, channel=DAVE)  # the DM post takes a second to land
    slash(h, "Clicked before my DM arrived")
    triage = h.wait(lambda: h.triage(FINANCE_CH))[0]  # the triage message is out, the DM is not
    for name in clicks:
        actor = DAVE if name == "reopen" else ALICE
        click(h, {"resolve": Action.RESOLVE, "claim": Action.CLAIM, "reopen": Action.REOPEN}[name], 1, actor,
              ts=triage["ts"])
    assert load(h, 1).post_state == "pending"  # every click came while the post job was running
    h.wait(lambda: posted(h) and shows_stored_state(h, 1), timeout=10)
    final = load(h, 1)
    assert final.status == {"resolve": "resolved", "claim": "claimed", "reopen": "claimed"}[clicks[-1]]
    assert len(h.triage(FINANCE_CH)) == 1 and len(dm_messages(h)) == 1


def test_a_claim_while_the_dm_waits_out_a_429_shows_once_it_is_posted(h: Harness) -> None:
    h.sim.rate_limit_next("chat.postMessage", retry_after=30, channel=DAVE)
    slash(h, "Rate-limited DM")
    h.wait(lambda: job(h, "post:1:0").status == "pending")  # back in the queue for 30 s
    triage = h.triage(FINANCE_CH)[0]
    click(h, Action.CLAIM, 1, ALICE, ts=triage["ts"])
    h.wait(lambda: load(h, 1).status == "claimed")
    waiting = job(h, "post:1:0")
    assert waiting.last_error == "ratelimited" and waiting.failing_since is None  # a 429 is no failure
    assert waiting.due_at >= h.clock() + timedelta(seconds=29)
    due(h, "post:1:0")
    h.wait(lambda: posted(h) and shows_stored_state(h, 1))
    assert "Claimed" in json.dumps(h.triage(FINANCE_CH)[0]["blocks"])
    assert len(h.triage(FINANCE_CH)) == 1 and len(dm_messages(h)) == 1


def test_a_render_that_finds_the_post_in_flight_stays_queued_until_the_post_is_stored(h: Harness) -> None:
    """The post job shows a click made during the post right after storing it; the click's render job
    stays queued meanwhile and looks again afterwards, in case that process died in between."""
    h.sim.delay_next("chat.postMessage", 1.0, channel=DAVE)
    slash(h, "Claimed mid-post")
    triage = h.wait(lambda: h.triage(FINANCE_CH))[0]
    click(h, Action.CLAIM, 1, ALICE, ts=triage["ts"])
    waiting = h.wait(lambda: [j for j in all_jobs(h) if j.kind == "render" and j.status == "pending"
                              and j.last_error == "waiting for the request to be posted"])[0]
    assert waiting.failing_since is None
    h.wait(lambda: posted(h) and shows_stored_state(h, 1), timeout=5)
    due(h, waiting.key)
    assert job(h, waiting.key).status == "done" and shows_stored_state(h, 1)


def test_an_older_update_landing_last_is_corrected(h: Harness) -> None:
    """Render jobs race: the claim's update reaches Slack after the resolve's. The claim's job reads
    the request again after its update and sends the newer state."""
    req = ask(h, "Racing updates")
    h.sim.delay_next("chat.update", 1.0, channel=FINANCE_CH)  # the claim's triage update lands 1 s late
    click(h, Action.CLAIM, req.id, ALICE, ts=req.triage_ts)  # type: ignore[arg-type]
    h.wait(lambda: h.sim.pending_faults() == 0)  # the claim's update is on its way
    click(h, Action.RESOLVE, req.id, ALICE, ts=req.triage_ts)  # type: ignore[arg-type]
    h.wait(lambda: load(h, req.id).status == "resolved")
    h.wait(lambda: len([c for c in h.sim.calls_to("chat.update") if c.args.get("channel") == FINANCE_CH]) >= 2,
           timeout=5)  # the late one has landed too...
    h.wait(lambda: shows_stored_state(h, req.id), timeout=5)  # ...and was corrected
    assert "Resolved" in json.dumps(h.triage(FINANCE_CH)[0]["blocks"])


def test_an_update_that_times_out_and_lands_late_is_overwritten_once_it_has_landed(quick: Harness) -> None:
    """The claim's update times out and reaches Slack only after the resolve's: its render job tries
    again once the late update has surely landed (not at once, when it could still land last)."""
    h = quick
    req = ask(h, "Late update")
    h.sim.delay_next("chat.update", 2.0, channel=FINANCE_CH)  # applied 2 s after the call; the client waits 1 s
    click(h, Action.CLAIM, req.id, ALICE, ts=req.triage_ts)  # type: ignore[arg-type]
    claim_render = h.wait(lambda: [j for j in all_jobs(h) if j.kind == "render" and j.status == "pending"
                                   and "Timeout" in (j.last_error or "")], timeout=5)[0]
    assert claim_render.due_at >= h.clock() + timedelta(seconds=SETTLE * 0.99)
    click(h, Action.RESOLVE, req.id, ALICE, ts=req.triage_ts)  # type: ignore[arg-type]
    h.wait(lambda: "Resolved" in json.dumps(h.triage(FINANCE_CH)[0]["blocks"]))
    h.wait(lambda: "Claimed" in json.dumps(h.triage(FINANCE_CH)[0]["blocks"]), timeout=5)  # the late one lands
    due(h, claim_render.key)
    h.wait(lambda: shows_stored_state(h, req.id))
    assert load(h, req.id).status == "resolved"


# -------------------------------------------------------------------------------------------------
# 2. exactly one message per thing
# -------------------------------------------------------------------------------------------------
def test_a_triage_post_that_lands_after_the_client_gave_up_is_found_not_repeated(quick: Harness) -> None:
    h = quick
    h.sim.delay_next("chat.postMessage", 2.0, channel=FINANCE_CH)  # stored 2 s after the call; the client waits 1 s
    slash(h, "Slow Slack")
    retry = h.wait(lambda: (j := job(h, "post:1:0")).status == "pending" and j, timeout=5)
    assert retry.last_error and "Timeout" in retry.last_error
    assert retry.due_at >= h.clock() + timedelta(seconds=SETTLE * 0.99)  # not before it could have landed
    h.wait(lambda: len(h.triage(FINANCE_CH)) == 1, timeout=5)  # the original lands
    due(h, "post:1:0")
    req = h.wait(lambda: posted(h), timeout=5)
    assert len(h.triage(FINANCE_CH)) == 1 and req.triage_ts == h.triage(FINANCE_CH)[0]["ts"]
    assert len(dm_messages(h)) == 1 and job(h, "post:1:0").status == "done"
    assert h.sim.calls_to("conversations.history")  # it looked before posting again


def test_posts_stored_before_a_5xx_are_found_not_repeated(h: Harness) -> None:
    """Slack stores the triage post and the DM but answers 503 and 502: each is looked for at once
    and found, not posted again (and the job needs no second run)."""
    h.sim.http_error_after_store_next("chat.postMessage", status=503, channel=FINANCE_CH)
    h.sim.http_error_after_store_next("chat.postMessage", status=502, channel=DAVE)
    slash(h, "Stored, then 503")
    req = h.wait(lambda: posted(h))
    assert len(h.triage(FINANCE_CH)) == 1 and len(dm_messages(h)) == 1
    assert (req.triage_ts, req.dm_ts) == (h.triage(FINANCE_CH)[0]["ts"], dm_messages(h)[0]["ts"])
    assert shows_stored_state(h, 1) and job(h, "post:1:0").attempts == 1


def test_a_5xx_that_stored_nothing_is_posted_again_at_once(h: Harness) -> None:
    h.sim.http_error_next("chat.postMessage", status=500, channel=FINANCE_CH)
    slash(h, "Not stored, 500")
    req = h.wait(lambda: posted(h))
    assert len(h.triage(FINANCE_CH)) == 1 and req.triage_ts == h.triage(FINANCE_CH)[0]["ts"]
    assert job(h, "post:1:0").attempts == 1


def test_a_slow_original_landing_after_the_retry_posted_is_swept(quick: Harness) -> None:
    """The retry looked before the slow original had landed, so both exist for a while; the sweep
    the retry left behind deletes the later copy, and the database points at the survivor."""
    h = quick
    h.sim.delay_next("chat.postMessage", 3.0, channel=FINANCE_CH)
    slash(h, "Very slow Slack")
    h.wait(lambda: job(h, "post:1:0").status == "pending", timeout=5)
    due(h, "post:1:0")  # before the original has landed
    req = h.wait(lambda: posted(h), timeout=5)
    h.wait(lambda: len(h.triage(FINANCE_CH)) == 2, timeout=5)  # now it lands: a duplicate, for now
    sweep = h.wait(lambda: [j for j in all_jobs(h) if j.kind == "sweep"])[0]
    assert sweep.due_at >= h.clock() + SWEEP_AFTER - timedelta(seconds=2)
    due(h, sweep.key)
    h.wait(lambda: len(h.triage(FINANCE_CH)) == 1)
    assert h.triage(FINANCE_CH)[0]["ts"] == req.triage_ts == load(h, 1).triage_ts
    assert shows_stored_state(h, 1) and len(dm_messages(h)) == 1


def all_jobs(h: Harness) -> list[Job]:
    from sqlmodel import select

    with session_scope(h.deps.engine) as s:
        return list(s.exec(select(Job)).all())


def test_a_transfer_note_stored_before_a_5xx_is_not_repeated(h: Harness) -> None:
    req = ask(h, "Laptop broken")
    h.sim.http_error_after_store_next("chat.postMessage", status=500, channel=IT_CH, count=2)  # post and note
    submit_transfer(h, req, BOB, to="it", note="Hardware")
    moved = h.wait(lambda: (r := load(h, req.id)).post_state == "posted" and r.triage_channel == IT_CH and r)
    top = [m for m in h.sim.messages(IT_CH) if m.get("thread_ts") in (None, m["ts"])]
    notes = [m for m in h.sim.messages(IT_CH) if m.get("thread_ts") == moved.triage_ts and m["ts"] != moved.triage_ts]
    assert len(top) == 1 and top[0]["ts"] == moved.triage_ts
    assert len(notes) == 1 and "Hardware" in notes[0]["text"]


@pytest.fixture
def hs(h: Harness) -> Iterator[Harness]:
    yield from with_clock(h)


def test_a_survey_dm_answered_after_the_client_gave_up_is_sent_once(hs: Harness) -> None:
    h = hs
    h.deps.send_client = build_client(BOT_TOKEN, h.sim.base_url, timeout=1, safe_retries_only=True)
    req = ask(h, "Survey me once")
    planned = resolve(h, req)
    h.sim.answer_late_next("chat.postMessage", 2.0, channel=DAVE)  # stored at once, answered after 2 s
    due(h, f"survey:{planned.id}")
    h.wait(lambda: job(h, f"survey:{planned.id}").status == "pending", timeout=5)
    assert len(survey_dms(h, DAVE)) == 1  # Slack has it; askdesk does not know yet
    due(h, f"survey:{planned.id}")
    sent = h.wait(lambda: (s := survey(h, req.id)).status == "sent" and s)
    assert len(survey_dms(h, DAVE)) == 1 and sent.ts == survey_dms(h, DAVE)[0]["ts"]


# -------------------------------------------------------------------------------------------------
# 3. rate limits and outages are waited out
# -------------------------------------------------------------------------------------------------
def test_ten_429s_in_a_row_do_not_fail_the_request(h: Harness) -> None:
    h.sim.rate_limit_next("chat.postMessage", retry_after=6, count=10, channel=FINANCE_CH)
    slash(h, "Throttled")
    for _ in range(10):
        h.wait(lambda: job(h, "post:1:0").status == "pending")
        assert job(h, "post:1:0").failing_since is None
        due(h, "post:1:0")
    h.wait(lambda: posted(h))
    assert "post_failed" not in events(h, 1) and len(h.triage(FINANCE_CH)) == 1
    assert not [p for p in h.sim.response_posts if "Retry" in json.dumps(p.body)]
    assert job(h, "post:1:0").attempts == 11  # ran 11 times, none of them a failure


def test_a_429_holds_the_channel_for_other_jobs(h: Harness) -> None:
    h.sim.rate_limit_next("chat.postMessage", retry_after=30, channel=FINANCE_CH)
    slash(h, "First")
    h.wait(lambda: job(h, "post:1:0").status == "pending")
    slash(h, "Second")
    h.wait(lambda: job(h, "post:2:0").status == "pending")  # waits without asking Slack
    to_finance = [c for c in h.sim.calls_to("chat.postMessage") if c.args.get("channel") == FINANCE_CH]
    assert len(to_finance) == 1 and job(h, "post:2:0").failing_since is None
    h.clock.advance(seconds=33)  # the Retry-After, and the up to 2 s the waiting jobs are spread over
    h.deps.outbox.tick()
    h.wait(lambda: posted(h, 1) and posted(h, 2))
    assert len(h.triage(FINANCE_CH)) == 2


def fail_everything(h: Harness, status: int = 503) -> None:
    h.sim.http_error_next("chat.postMessage", status=status, count=100_000)


def test_a_23_hour_outage_is_waited_out(h: Harness) -> None:
    fail_everything(h)
    slash(h, "During the outage")
    start, tries = h.clock(), 0
    while h.clock() - start < timedelta(hours=23, minutes=30):
        h.wait(lambda: job(h, "post:1:0").status == "pending")
        due(h, "post:1:0")
        tries += 1
    h.wait(lambda: job(h, "post:1:0").status == "pending")
    retry = job(h, "post:1:0")
    assert retry.failing_since is not None and 100 < tries < 400  # backoff grows to 5 minutes
    assert retry.due_at - h.clock() <= timedelta(minutes=6)
    h.sim.clear_faults()  # Slack is back
    due(h, "post:1:0")
    h.wait(lambda: posted(h))
    assert "post_failed" not in events(h, 1) and len(h.triage(FINANCE_CH)) == 1 and len(dm_messages(h)) == 1


def test_an_outage_longer_than_a_day_fails_the_post_naming_the_cause(h: Harness) -> None:
    fail_everything(h)
    slash(h, "Outage forever")
    start = h.clock()
    while job(h, "post:1:0").status != "failed":
        assert h.clock() - start < GIVE_UP_AFTER + timedelta(hours=1)
        due(h, "post:1:0")
        h.wait(lambda: job(h, "post:1:0").status in ("pending", "failed"))
    assert h.clock() - start >= GIVE_UP_AFTER
    told = h.wait(lambda: [p for p in h.sim.response_posts if "could not post" in json.dumps(p.body)])
    text = json.dumps(told[-1].body)
    assert "Slack kept refusing it for a day" in text and "service_unavailable" in text
    assert "channel is fixed" not in text
    h.sim.clear_faults()
    render = h.wait(lambda: [j for j in all_jobs(h) if j.kind == "render" and j.status == "pending"])[0]
    due(h, render.key)  # the DM that could not be sent during the outage goes out
    dm = h.wait(lambda: dm_messages(h))[0]
    assert "not posted" in dm["text"] and "open" not in dm["text"].lower()
    assert "Retry" in json.dumps(dm["blocks"])


def test_a_permanent_error_fails_at_once_and_says_why(h: Harness) -> None:
    h.sim.fail_next("chat.postMessage", "not_in_channel", channel=FINANCE_CH)
    slash(h, "Bot not invited")
    h.wait(lambda: load(h, 1).post_state == "failed")
    assert job(h, "post:1:0").attempts == 1
    told = h.wait(lambda: [p for p in h.sim.response_posts if "could not post" in json.dumps(p.body)])
    assert "not a member of the triage channel" in json.dumps(told[-1].body)
    dm = h.wait(lambda: dm_messages(h))[0]
    assert "not posted" in dm["text"] and ": open" not in dm["text"]


def test_a_survey_due_during_an_outage_goes_out_in_working_hours(hs: Harness) -> None:
    """Slack fails every survey DM until Dave's working day is over (18:00 in Los Angeles); it is
    back during the night, and the survey goes out the next morning, not at night."""
    h = hs
    req = ask(h, "Survey after the outage")
    planned = resolve(h, req)
    h.sim.http_error_next("chat.postMessage", status=500, count=100_000, channel=DAVE)
    key = f"survey:{planned.id}"
    due(h, key)
    while (waiting := retried(h, key, job(h, key).attempts)).last_error != "outside the requester's working hours":
        assert survey(h, req.id).status in ("scheduled", "sending")  # never given up
        due(h, key)
    assert survey_dms(h, DAVE) == [] and waiting.failing_since is not None
    night = h.clock().astimezone(ZoneInfo("America/Los_Angeles"))
    assert night.hour >= 18 or night.hour < 9
    h.sim.clear_faults()  # Slack is back at night
    due(h, key)
    sent = h.wait(lambda: (s := survey(h, req.id)).status == "sent" and s)
    local = sent.sent_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert 9 <= local.hour < 18 and sent.sent_at > h.clock() - timedelta(hours=1)
    assert len(survey_dms(h, DAVE)) == 1


def test_the_running_clock_is_not_held_up_by_a_slow_job(h: Harness) -> None:
    """While one job waits on a slow Slack, the clock keeps handing due jobs to the idle workers."""
    from bot.runtime.scheduler import Clock

    def sweep_job(channel: str, ref: str) -> None:
        with session_scope(h.deps.engine) as s:
            job_queries.enqueue(s, kind="sweep", key=f"sweep:test:{ref}", due_at=h.clock(),
                                payload={"channel": channel, "event_type": "askdesk_request", "ref": ref})

    h.sim.delay_next("conversations.history", 4.0, channel=FINANCE_CH)
    sweep_job(FINANCE_CH, "slow")
    clock = Clock(h.deps).start()
    try:
        h.wait(lambda: h.sim.pending_faults() == 0)  # the slow job is waiting on Slack
        sweep_job(IT_CH, "quick")  # falls due while it waits
        h.wait(lambda: job(h, "sweep:test:quick").status == "done", timeout=3)
        assert job(h, "sweep:test:slow").status == "running"
        h.wait(lambda: job(h, "sweep:test:slow").status == "done", timeout=10)
    finally:
        clock.stop()
