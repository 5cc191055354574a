"""Bad and hostile input on the request loop: every path answers clearly and loses nothing."""

from __future__ import annotations

import json
import time
import urllib.request

from sqlmodel import select

from bot.render.ids import Action
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, FINANCE_CH, GENERAL, Harness
from tests.test_request_loop import ask, button, load, texts_of


def test_ten_thousand_characters_stored_whole_and_shown_within_limits(h: Harness) -> None:
    text = ("Lorem ipsum dolor sit amet, " * 400)[:10_000]
    req = ask(h, text)
    assert len(load(h, req.id).text) == 10_000
    message = h.triage(FINANCE_CH)[0]
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= 3000
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert len(message["blocks"]) <= 50
    assert "more characters" in texts_of(message) and "View full text" in texts_of(message)
    # the full text is one click away, in a modal split into sections
    button(h, req, Action.FULL_TEXT, ALICE)
    view = h.wait(lambda: h.sim.opened_views and h.sim.opened_views[-1])
    body = view.get("view", view)
    shown = "".join(b["text"]["text"] for b in body["blocks"])
    assert len(shown) >= 10_000 and all(len(b["text"]["text"]) <= 3000 for b in body["blocks"])


def test_mentions_and_markup_are_neutralised(h: Harness) -> None:
    req = ask(h, "<!channel> urgent <@U0ALICE> see <https://evil.example|bank> *bold* & more")
    rendered = texts_of(h.triage(FINANCE_CH)[0]) + texts_of(h.sim.messages(req.dm_channel)[0])
    assert "<!channel>" not in rendered and "<@U0ALICE>" not in rendered and "<https://evil" not in rendered
    assert "&lt;!channel&gt;" in rendered and "&amp; more" in rendered
    assert load(h, req.id).text.startswith("<!channel> urgent")  # stored verbatim


def test_invalid_and_stale_signatures_are_rejected(h: Harness) -> None:
    body = b"command=%2Fask-finance&text=hi&user_id=U0DAVE&trigger_id=1.2.3&response_url=x"
    bad = h.driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded",
                                   "X-Slack-Request-Timestamp": str(int(time.time())),
                                   "X-Slack-Signature": "v0=" + "0" * 64})
    assert bad.status == 401
    stale_headers = h.driver.sign(body, timestamp=int(time.time()) - 3600)
    stale = h.driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded", **stale_headers})
    assert stale.status == 401
    missing = h.driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert missing.status == 401
    with session_scope(h.deps.engine) as s:
        assert s.exec(select(Request)).all() == []


def test_malformed_bodies_get_4xx_and_the_process_stays_up(h: Harness) -> None:
    samples = [b"payload=%7Bnot-json", b"payload=" + b"%5B%5D", b"{\"type\": \"event_callback\", \"event\": 5}",
               b"\xff\xfe\x00garbage", b"", b"payload=%7B%22type%22%3A%22block_actions%22%7D"]
    for raw in samples:
        for ctype in ("application/x-www-form-urlencoded", "application/json"):
            resp = h.driver.send_raw(raw, {"Content-Type": ctype, **h.driver.sign(raw)})
            assert resp.status < 500 or resp.status == 501, (raw, resp.status, resp.body)
            assert "Traceback" not in resp.body
    health = urllib.request.urlopen(h.url.replace("/slack/events", "/healthz"), timeout=5)
    assert health.status == 200 and json.loads(health.read())["ok"] is True
    assert ask(h, "still works after garbage").id == 1


def test_oversized_body_is_refused(h: Harness) -> None:
    raw = b"text=" + b"a" * 1_200_000
    resp = h.driver.send_raw(raw, {"Content-Type": "application/x-www-form-urlencoded", **h.driver.sign(raw)})
    assert resp.status == 413


def test_same_event_delivered_twice_has_one_effect(h: Harness) -> None:
    req = ask(h, "dedupe me")
    event = h.driver.message_event(ALICE, FINANCE_CH, "on it", thread_ts=req.triage_ts)
    first = h.driver.event(event, event_id="Ev0DUPLICATE1")
    h.wait(lambda: load(h, req.id).first_response_at is not None)
    stamp = load(h, req.id).first_response_at
    h.clock.advance(minutes=10)
    again = h.driver.event(event, event_id="Ev0DUPLICATE1", retry_num=1, retry_reason="http_timeout")
    assert first.status == 200 and again.status == 200
    with session_scope(h.deps.engine) as s:
        from storage.models import ProcessedEvent, RequestEvent

        assert s.get(ProcessedEvent, "Ev0DUPLICATE1") is not None
        kinds = [e.kind for e in s.exec(select(RequestEvent).where(RequestEvent.request_id == req.id)).all()]
    assert kinds.count("first_response") == 1 and load(h, req.id).first_response_at == stamp


def test_channel_not_found_keeps_request_and_allows_retry(h: Harness) -> None:
    h.sim.fail_next("chat.postMessage", error="channel_not_found", channel=FINANCE_CH)
    resp = h.driver.slash("/ask-finance", "Budget question", user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200
    req = h.wait(lambda: (r := _req(h)) and r.post_state == "failed" and r.dm_ts and r)
    assert req.post_error == "channel_not_found"
    told = h.wait(lambda: [p for p in h.sim.response_posts if "could not post" in str(p)])
    assert "Nothing is lost" in str(told[-1])
    dm = h.sim.messages(req.dm_channel)[0]
    assert "Retry" in texts_of(dm)
    # once the channel is fixed, Retry posts it and the request was never lost
    button(h, req, Action.RETRY_POST, DAVE, where="dm")
    h.wait(lambda: load(h, req.id).post_state == "posted")
    assert len(h.triage(FINANCE_CH)) == 1
    h.wait(lambda: "Retry" not in texts_of(h.sim.messages(req.dm_channel)[0]))


def test_not_in_channel_is_explained_and_someone_else_cannot_retry(h: Harness) -> None:
    h.sim.fail_next("chat.postMessage", error="not_in_channel", channel=FINANCE_CH)
    h.driver.slash("/ask-finance", "Q", user_id=DAVE, channel_id=GENERAL)
    req = h.wait(lambda: (r := _req(h)) and r.post_state == "failed" and r.dm_ts and r)
    assert req.post_error == "not_in_channel"
    button(h, req, Action.RETRY_POST, ALICE, where="dm")
    h.wait(lambda: [p for p in h.sim.response_posts if "Only the person who asked" in str(p)])
    assert load(h, req.id).post_state == "failed"


def test_transient_slack_errors_are_retried_by_the_outbox(h: Harness) -> None:
    # one 5xx is tried again at once (after looking whether Slack stored it); three in a row are not
    h.sim.http_error_next("chat.postMessage", status=503, count=3)
    h.driver.slash("/ask-finance", "retry me", user_id=DAVE, channel_id=GENERAL)
    req = h.wait(lambda: _req(h))
    # the first attempt failed with a 5xx and was scheduled again; the scheduler's clock picks it up
    h.wait(lambda: _job(h, f"post:{req.id}:0").status == "pending")
    assert "service_unavailable" in (_job(h, f"post:{req.id}:0").last_error or "")
    h.clock.advance(minutes=5)
    h.wait(lambda: (h.tick(), load(h, req.id).post_state == "posted")[1], timeout=10)
    assert len(h.triage(FINANCE_CH)) == 1


def _job(h: Harness, key: str) -> Job:
    with session_scope(h.deps.engine) as s:
        return s.exec(select(Job).where(Job.key == key)).one()


def _req(h: Harness) -> Request | None:
    with session_scope(h.deps.engine) as s:
        return s.exec(select(Request).order_by(Request.id.desc())).first()
