"""The request loop end to end: signed Slack requests in, Web API calls out, state in the database."""

from __future__ import annotations

from sqlmodel import select

from bot.render.ids import Action, Block, Callback
from bot.services.sealed import key_for, seal
from storage import requests as queries
from storage.models import Request, RequestEvent
from storage.session import session_scope
from tests.conftest import ADMIN, ALICE, BOB, CAROL, DAVE, ERIN, FINANCE_CH, GENERAL, IT_CH, MALLORY, Harness


def ask(h: Harness, text: str, user: str = DAVE, command: str = "/ask-finance") -> Request:
    """Send a slash command and wait until its triage post and DM exist; return the stored request."""
    resp = h.driver.slash(command, text, user_id=user, channel_id=GENERAL)
    assert resp.status == 200, resp.body
    return h.wait(lambda: _latest_posted(h, user))


def _latest_posted(h: Harness, user: str) -> Request | None:
    with session_scope(h.deps.engine) as s:
        req = s.exec(select(Request).where(Request.requester_id == user).order_by(Request.id.desc())).first()
    return req if req and req.post_state == "posted" and req.dm_ts else None


def load(h: Harness, request_id: int) -> Request:
    with session_scope(h.deps.engine) as s:
        req = queries.get(s, request_id)
        assert req is not None
        return req


def events(h: Harness, request_id: int) -> list[str]:
    with session_scope(h.deps.engine) as s:
        return [e.kind for e in s.exec(select(RequestEvent).where(RequestEvent.request_id == request_id)
                                       .order_by(RequestEvent.id)).all()]


def button(h: Harness, req: Request, action: Action, user: str, *, where: str = "triage") -> None:
    channel, ts = (req.triage_channel, req.triage_ts) if where == "triage" else (req.dm_channel, req.dm_ts)
    resp = h.driver.block_action(user_id=user, action_id=action.value, value=str(req.id), channel_id=channel,
                                 message_ts=ts)
    assert resp.status == 200, resp.body


def submit_transfer(h: Harness, req: Request, user: str, *, to: str, note: str) -> None:
    """Submit the transfer modal of `req` (to team `to`, with `note`)."""
    resp = h.driver.view_submission(user_id=user, callback_id=Callback.TRANSFER_MODAL.value,
                                    private_metadata=str(req.id), values={
                                        Block.TRANSFER_TEAM: {"value": {"type": "static_select",
                                                                        "selected_option": {"value": to}}},
                                        Block.TRANSFER_NOTE: {"value": {"type": "plain_text_input", "value": note}}})
    assert resp.status == 200, resp.body


def texts_of(message: dict) -> str:
    import json

    return json.dumps(message.get("blocks") or []) + (message.get("text") or "")


def test_slash_command_saves_posts_and_confirms(h: Harness) -> None:
    resp = h.driver.slash("/ask-finance", "Why was my March expense report rejected?", user_id=DAVE,
                          channel_id=GENERAL)
    assert resp.status == 200
    assert "#1" in resp.body and "Finance" in resp.body  # the ephemeral ack names number and team
    req = h.wait(lambda: _latest_posted(h, DAVE))
    assert req.team == "finance" and req.department == "Sales" and req.status == "open"
    triage = h.triage(FINANCE_CH)
    assert len(triage) == 1 and triage[0]["ts"] == req.triage_ts
    shown = texts_of(triage[0])
    for expected in ("Why was my March expense report rejected?", "<@U0DAVE>", "Sales", "Claim", "Resolve",
                     "Transfer", "Open"):
        assert expected in shown, expected
    assert triage[0]["metadata"]["event_type"] == "askdesk_request"
    # the requester's DM status message
    dm = h.sim.messages(h.sim.dm_channel_for(DAVE))
    assert len(dm) == 1 and "Your request #1 to Finance" in texts_of(dm[0])
    # the confirmation is the ack itself: number, team, a link to the triage channel and one to the
    # DM with the app, where the status message links the triage message itself
    assert f"<#{FINANCE_CH}>" in resp.body
    dm_link = f"https://slack.com/app_redirect?app={h.driver.api_app_id}&amp;team={h.driver.team_id}"
    assert dm_link in resp.body  # "&" escaped in the link, as Slack asks
    assert f"/archives/{FINANCE_CH}/p{req.triage_ts.replace('.', '')}" in texts_of(dm[0])
    assert not h.sim.response_posts  # no second answer: nothing to replace, no extra API call
    assert resp.json is None and resp.body.startswith(":white_check_mark:")  # plain text (mrkdwn), no Block Kit
    assert events(h, req.id) == ["created", "posted"]


def test_claim_resolve_reopen_with_history(h: Harness) -> None:
    req = ask(h, "Payroll date?")
    button(h, req, Action.CLAIM, ALICE)
    h.wait(lambda: load(h, req.id).status == "claimed")
    h.clock.advance(minutes=5)
    button(h, req, Action.RESOLVE, ALICE)
    h.wait(lambda: load(h, req.id).status == "resolved")
    stored = load(h, req.id)
    assert stored.assignee_id == ALICE and stored.first_response_at is not None
    assert (stored.resolved_at - stored.first_response_at).total_seconds() == 300
    # the triage message reflects the stored state
    h.wait(lambda: "Resolved" in texts_of(h.triage(FINANCE_CH)[0]))
    assert "req_claim" not in texts_of(h.triage(FINANCE_CH)[0])
    # the requester reopens from their DM
    button(h, stored, Action.REOPEN, DAVE, where="dm")
    h.wait(lambda: load(h, req.id).status == "claimed")
    assert events(h, req.id) == ["created", "posted", "claimed", "first_response", "resolved", "reopened"]
    dm = h.sim.messages(stored.dm_channel)[0]
    h.wait(lambda: "Claimed" in texts_of(h.sim.messages(stored.dm_channel)[0]))
    assert dm["ts"] == stored.dm_ts


def test_requester_can_resolve_own_request_from_dm(h: Harness) -> None:
    req = ask(h, "Never mind, found it")
    button(h, req, Action.RESOLVE, DAVE, where="dm")
    h.wait(lambda: load(h, req.id).status == "resolved")
    assert load(h, req.id).first_response_at is None  # the requester's own action is no response


def test_thread_reply_by_responder_is_first_response(h: Harness) -> None:
    req = ask(h, "Invoice question")
    h.clock.advance(minutes=7)
    h.driver.event(h.driver.message_event(DAVE, FINANCE_CH, "any news?", thread_ts=req.triage_ts))
    h.driver.event(h.driver.message_event(BOB, FINANCE_CH, "Looking now", thread_ts=req.triage_ts))
    h.wait(lambda: load(h, req.id).first_response_at is not None)
    stored = load(h, req.id)
    assert (stored.first_response_at - stored.created_at).total_seconds() == 420
    assert stored.status == "open"  # a reply is a response, not a claim


def test_permission_refusals_change_nothing(h: Harness) -> None:
    req = ask(h, "Where is my reimbursement?")
    before = events(h, req.id)
    button(h, req, Action.CLAIM, MALLORY)  # not in Finance's triage channel
    refusal = h.wait(lambda: [p for p in h.sim.response_posts if "Only members" in str(p)])
    assert "ephemeral" in str(refusal[-1])
    button(h, req, Action.RESOLVE, MALLORY)
    h.wait(lambda: [p for p in h.sim.response_posts if "can resolve" in str(p)])
    button(h, req, Action.TRANSFER, MALLORY)
    h.wait(lambda: [p for p in h.sim.response_posts if "can transfer" in str(p)])
    button(h, req, Action.CLAIM, ALICE)
    h.wait(lambda: load(h, req.id).status == "claimed")
    button(h, load(h, req.id), Action.RESOLVE, ALICE)
    h.wait(lambda: load(h, req.id).status == "resolved")
    button(h, load(h, req.id), Action.REOPEN, ALICE)  # only the requester may reopen
    h.wait(lambda: [p for p in h.sim.response_posts if "can reopen" in str(p)])
    assert load(h, req.id).status == "resolved"
    assert events(h, req.id) == [*before, "claimed", "first_response", "resolved"]


def test_transfer_moves_request_and_keeps_history(h: Harness) -> None:
    req = ask(h, "My laptop is broken, not finance really")
    button(h, req, Action.TRANSFER, BOB)
    opened = h.wait(lambda: h.sim.opened_views and h.sim.opened_views[-1])
    assert "Transfer" in str(opened)
    submit_transfer(h, req, BOB, to="it", note="Hardware is IT's")
    moved = h.wait(lambda: (r := load(h, req.id)).triage_channel == IT_CH and r.post_state == "posted" and r)
    assert moved.team == "it" and moved.origin_team == "finance" and moved.transfer_count == 1
    assert "transferred from Finance" in texts_of(h.triage(IT_CH)[0])
    h.wait(lambda: "transferred from Finance to" in texts_of(h.triage(FINANCE_CH)[0]))
    note = h.wait(lambda: [m for m in h.sim.messages(IT_CH)
                         if m.get("thread_ts") == moved.triage_ts and m["ts"] != moved.triage_ts])
    assert "Hardware is IT&#39;s" in note[0]["text"] or "Hardware is IT's" in note[0]["text"]
    # now IT's responders own it, Finance's do not
    button(h, moved, Action.CLAIM, ALICE)
    h.wait(lambda: [p for p in h.sim.response_posts if "IT's triage channel" in str(p)])
    button(h, moved, Action.CLAIM, CAROL)
    h.wait(lambda: load(h, req.id).assignee_id == CAROL)
    assert events(h, req.id)[:4] == ["created", "posted", "transferred", "posted"]


def test_empty_command_opens_modal_and_submission_creates_request(h: Harness) -> None:
    resp = h.driver.slash("/ask-finance", "   ", user_id=ERIN, channel_id=GENERAL)
    assert resp.status == 200 and resp.body == ""
    view = h.wait(lambda: h.sim.opened_views and h.sim.opened_views[-1])
    as_text = str(view)
    for label in ("Summary", "Details", "Category", "Urgency", "Expenses"):
        assert label in as_text
    meta = view["view"]["private_metadata"] if "view" in view else view["private_metadata"]
    # a submission without summary is refused inline
    bad = h.driver.view_submission(user_id=ERIN, callback_id=Callback.REQUEST_MODAL.value,
                                   private_metadata=meta, values={})
    assert bad.json["response_action"] == "errors" and Block.SUMMARY in bad.json["errors"]
    ok = h.driver.view_submission(user_id=ERIN, callback_id=Callback.REQUEST_MODAL.value,
                                  private_metadata=meta, values={
                                      Block.SUMMARY: {"value": {"type": "plain_text_input", "value": "Card limit"}},
                                      Block.DETAILS: {"value": {"type": "plain_text_input", "value": "Need 5k"}},
                                      Block.CATEGORY: {"value": {"type": "static_select",
                                                                 "selected_option": {"value": "Expenses"}}},
                                      Block.URGENCY: {"value": {"type": "radio_buttons",
                                                                "selected_option": {"value": "high"}}}})
    assert ok.status == 200
    req = h.wait(lambda: _latest_posted(h, ERIN))
    assert (req.summary, req.category, req.urgency, req.department) == ("Card limit", "Expenses", "high", "Other")
    assert req.text == "Card limit\n\nNeed 5k"


def test_listener_calls_reuse_pooled_connections(h: Harness) -> None:
    """Bolt gives every request a new stock WebClient (a new connection, in production a TLS handshake,
    for each call, which eats into a trigger_id's 3 seconds); askdesk's listeners call Slack over the
    pooled keep-alive connections instead. Counted where it shows: the connections Slack accepted."""
    opened = []
    for _ in range(4):
        n = len(h.sim.opened_views)
        assert h.driver.slash("/ask-finance", "", user_id=ERIN, channel_id=GENERAL).status == 200
        h.wait(lambda n=n: len(h.sim.opened_views) > n)
        opened.append(h.sim.connections)
    # the message shortcut opens its modal from a lazy listener, which Bolt runs on a deep copy of the
    # request's context: the copied client still sends over the shared pool
    for _ in range(2):
        n = len(h.sim.opened_views)
        assert h.driver.message_shortcut(user_id=ERIN, callback_id=Callback.SHORTCUT.value, channel_id=GENERAL,
                                         message={"ts": "1700000000.000300", "user": DAVE, "text": "?"}).status == 200
        h.wait(lambda n=n: len(h.sim.opened_views) > n)
        opened.append(h.sim.connections)
    # five more modals, at most one more connection (a call may start while the one before it is still
    # reading its answer); the stock client would have opened five
    assert opened[-1] - opened[0] <= 1, opened


def test_message_shortcut_attaches_permalink_and_picks_team(h: Harness) -> None:
    resp = h.driver.message_shortcut(user_id=ERIN, callback_id=Callback.SHORTCUT.value, channel_id=GENERAL,
                                     message={"ts": "1700000000.000200", "user": DAVE, "text": "Who approves POs?"})
    assert resp.status == 200
    view = h.wait(lambda: h.sim.opened_views and h.sim.opened_views[-1])
    assert "p1700000000000200" in str(view) and "Who approves POs?" in str(view)
    meta = view["view"]["private_metadata"] if "view" in view else view["private_metadata"]
    ok = h.driver.view_submission(user_id=ERIN, callback_id=Callback.REQUEST_MODAL.value, private_metadata=meta,
                                  values={Block.TEAM: {"value": {"type": "static_select",
                                                                 "selected_option": {"value": "it"}}},
                                          Block.SUMMARY: {"value": {"type": "plain_text_input",
                                                                    "value": "Who approves POs?"}}})
    assert ok.status == 200
    req = h.wait(lambda: _latest_posted(h, ERIN))
    assert req.team == "it" and req.source_permalink.endswith("/archives/C0GENERAL/p1700000000000200")
    assert "original message" in texts_of(h.triage(IT_CH)[0])


def test_app_home_shows_my_requests_and_queue_for_responders(h: Harness) -> None:
    first = ask(h, "First question")
    ask(h, "Second question")
    h.driver.event(h.driver.app_home_opened(DAVE))
    home = h.wait(lambda: h.sim.published_views.get(DAVE))
    assert "First question" in str(home) and "Second question" in str(home) and "queue" not in str(home)
    h.driver.event(h.driver.app_home_opened(ALICE))
    home = h.wait(lambda: h.sim.published_views.get(ALICE))
    text = str(home)
    assert "Finance queue · 2 open" in text and text.index("First question") < text.index("Second question")
    # claiming from App Home works and refreshes the home view
    resp = h.driver.block_action(user_id=ALICE, action_id=Action.CLAIM.value, value=str(first.id),
                                 view={"type": "home", "id": "VHOME"})
    assert resp.status == 200
    h.wait(lambda: load(h, first.id).assignee_id == ALICE)


def test_department_from_channel_membership_then_profile_then_other(h: Harness) -> None:
    assert ask(h, "from a finance member", user=BOB).department == "Finance"
    assert ask(h, "from carol", user=CAROL).department == "IT"
    assert ask(h, "from dave", user=DAVE).department == "Sales"
    assert ask(h, "from erin", user=ERIN).department == "Other"
    assert ask(h, "from admin", user=ADMIN).department == "People"


def test_custom_command_and_unknown_command(h: Harness) -> None:
    req = ask(h, "Holiday allowance?", command="/ask-people")
    assert req.team == "hr"
    resp = h.driver.slash("/ask-legal", "contract review", user_id=DAVE)
    assert resp.status == 200
    for cmd in ("/ask-finance", "/ask-it", "/ask-people"):
        assert cmd in resp.body
    with session_scope(h.deps.engine) as s:
        assert len(s.exec(select(Request)).all()) == 1


def test_admin_listed_in_config_may_reopen(h: Harness) -> None:
    req = ask(h, "admin reopen")
    button(h, req, Action.RESOLVE, DAVE, where="dm")
    h.wait(lambda: load(h, req.id).status == "resolved")
    button(h, load(h, req.id), Action.REOPEN, ADMIN)
    h.wait(lambda: load(h, req.id).status == "open")


def test_every_change_to_a_request_that_is_not_there_answers_no_longer_exists(h: Harness) -> None:
    """Claim, resolve, reopen, retry and transfer share one locked load: a missing request is one answer."""
    def answers() -> int:
        return sum("Request #424242 no longer exists." in str(p) for p in h.sim.response_posts)

    for done, action in enumerate((Action.CLAIM, Action.RESOLVE, Action.REOPEN, Action.RETRY_POST), start=1):
        resp = h.driver.block_action(user_id=ALICE, action_id=action.value, value="424242", channel_id=FINANCE_CH,
                                     message_ts="1700000000.000100")
        assert resp.status == 200, resp.body
        h.wait(lambda n=done: answers() == n)
    moved = h.driver.view_submission(user_id=ALICE, callback_id=Callback.TRANSFER_MODAL.value,
                                     private_metadata="424242", values={
                                         Block.TRANSFER_TEAM: {"value": {"type": "static_select",
                                                                         "selected_option": {"value": "it"}}}})
    assert moved.json == {"response_action": "errors",
                          "errors": {Block.TRANSFER_TEAM: "Request #424242 no longer exists."}}


def test_the_request_modal_names_each_wrong_field(h: Harness) -> None:
    """One form and one check: what is wrong is shown under the input it is about (forged values too)."""
    def submit(metadata: str, **inputs: dict) -> dict:
        values = {block: {"value": element} for block, element in inputs.items()}
        return h.driver.view_submission(user_id=ERIN, callback_id=Callback.REQUEST_MODAL.value,
                                        private_metadata=metadata, values=values).json

    def sealed(team: str | None) -> str:  # what request_modal_for puts into a form it opens
        return seal(key_for(h.deps.settings), {"team": team, "channel": None, "permalink": None})

    summary = {"type": "plain_text_input", "value": "Card limit"}
    assert submit(sealed(None), details={"type": "plain_text_input", "value": "no summary"}) == {
        "response_action": "errors",
        "errors": {Block.SUMMARY: "Please write a one-line summary.", Block.TEAM: "Please pick a team."}}
    forged = submit(sealed("finance"), summary=summary,
                    category={"type": "static_select", "selected_option": {"value": "Laptop"}},
                    urgency={"type": "radio_buttons", "selected_option": {"value": "panic"}})
    assert forged["errors"] == {
        Block.CATEGORY: "'Laptop' is not one of Finance's categories: Expenses, Payroll, Invoices.",
        Block.URGENCY: "Urgency must be one of low, normal, high."}
    picked = submit(sealed(None), summary=summary, team={"type": "static_select", "selected_option": {"value": "it"}})
    assert picked is None  # an empty ack closes the modal
    req = h.wait(lambda: _latest_posted(h, ERIN))
    assert (req.team, req.summary, req.text, req.urgency) == ("it", "Card limit", "Card limit", "normal")
