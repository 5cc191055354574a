"""Tests of the loopback Slack fake (slacksim.simulator) and the signed-request driver (slacksim.driver),
driven by the real slack_sdk WebClient and a real Bolt app."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from slacksim.driver import SlackDriver
from slacksim.simulator import Chaos, SlackSimulator

TOKEN = "xoxb-test"
SECRET = "simulator-test-secret"
ADA, BEN, CY, GONE = "U0ADA", "U0BEN", "W0CY", "U0GONE"
GENERAL, FINANCE, SECRET_CH, OUTSIDE = "C0GENERAL", "C0FIN", "C0SECRET", "C0OUTSIDE"
QUICK = FixedValueRetryIntervalCalculator(0.01)


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def simulator() -> Iterator[SlackSimulator]:
    with SlackSimulator() as sim:
        sim.add_user(ADA, name="ada", real_name="Ada Lovelace", tz="Europe/London",
                     profile_fields={"Department": "Finance", "Title": "Analyst"})
        sim.add_user(BEN, name="ben", tz="America/New_York", tz_offset=-18000)
        sim.add_user(CY, name="cy", tz="Asia/Tokyo")
        sim.add_user(GONE, name="gone", deleted=True)
        sim.add_channel(GENERAL, name="general", members=[ADA, BEN, CY])
        sim.add_channel(FINANCE, name="finance", members=[ADA])
        sim.add_channel(SECRET_CH, name="secret", members=[BEN], bot_is_member=False, is_private=True)
        sim.add_channel(OUTSIDE, name="outside", members=[BEN], bot_is_member=False)
        yield sim


@pytest.fixture
def client(simulator: SlackSimulator) -> WebClient:
    return WebClient(token=TOKEN, base_url=simulator.base_url, retry_handlers=[])


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return str(info.value.response["error"])


def raw_post(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


# ---------------------------------------------------------------------------------------- auth & args
def test_auth_test_and_api_test(simulator: SlackSimulator, client: WebClient) -> None:
    auth = client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == ("UBOT", "BBOT", "T0001")
    assert auth["url"] == "https://askdesk-demo.slack.com/"
    assert client.api_test(foo="bar")["args"] == {"foo": "bar"}
    assert error_of(lambda: client.api_test(error="my_error")) == "my_error"
    assert simulator.base_url.endswith("/api/") and [c.method for c in simulator.calls] == ["auth.test"] + [
        "api.test"] * 2


def test_token_from_header_form_or_query(simulator: SlackSimulator) -> None:
    base = simulator.base_url
    assert raw_post(base + "auth.test")[1] == {"ok": False, "error": "not_authed"}
    assert raw_post(base + "auth.test?token=abc")[1] == {"ok": False, "error": "invalid_auth"}
    assert raw_post(base + "auth.test?token=xoxb-1")[1]["ok"] is True
    form = urllib.parse.urlencode({"token": "xoxb-1", "channel": GENERAL, "text": "hi",
                                   "blocks": json.dumps([{"type": "divider"}])}).encode()
    status, body = raw_post(base + "chat.postMessage", form)
    assert status == 200 and body["ok"] and body["message"]["blocks"] == [{"type": "divider"}]
    assert simulator.calls_to("chat.postMessage")[0].args["blocks"] == [{"type": "divider"}]  # decoded
    assert raw_post(base + "no.such", form)[1]["error"] == "unknown_method"


def test_required_arguments(client: WebClient) -> None:
    assert error_of(lambda: client.api_call("chat.postMessage", json={"text": "x"})) == "channel_not_found"
    assert error_of(lambda: client.chat_postMessage(channel=GENERAL)) == "no_text"
    assert error_of(lambda: client.chat_update(channel=GENERAL, ts="1.2")) == "no_text"
    assert error_of(lambda: client.views_open(view={"type": "modal"})) == "invalid_arguments"
    no_name = {"channel": GENERAL, "timestamp": "1.2"}
    assert error_of(lambda: client.api_call("reactions.add", params=no_name)) == "invalid_arguments"
    assert error_of(lambda: client.api_call("conversations.open", params={})) == "invalid_arguments"
    bad_blocks = [{"type": "section", "block_id": "a"}, {"type": "divider", "block_id": "a"}]
    assert error_of(lambda: client.chat_postMessage(channel=GENERAL, blocks=bad_blocks)) == "invalid_blocks"
    assert error_of(lambda: client.chat_postMessage(channel=GENERAL, text="x", metadata={"x": 1})) \
        == "invalid_metadata_format"


# ---------------------------------------------------------------------------------------- messages
def test_post_to_channels_and_dms(simulator: SlackSimulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=GENERAL, text="hello", metadata={
        "event_type": "askdesk_request", "event_payload": {"id": "7"}})
    assert posted["channel"] == GENERAL and posted["message"]["metadata"]["event_payload"] == {"id": "7"}
    assert error_of(lambda: client.chat_postMessage(channel="C0NOPE", text="x")) == "channel_not_found"
    assert error_of(lambda: client.chat_postMessage(channel=OUTSIDE, text="x")) == "not_in_channel"
    assert error_of(lambda: client.chat_postMessage(channel=SECRET_CH, text="x")) == "channel_not_found"
    assert error_of(lambda: client.chat_postMessage(channel="U0NOBODY", text="x")) == "user_not_found"
    assert error_of(lambda: client.chat_postMessage(channel=GONE, text="x")) == "user_disabled"
    dm = client.chat_postMessage(channel=ADA, text="your request")
    dm_w = client.chat_postMessage(channel=CY, text="hi cy")
    assert dm["channel"].startswith("D") and dm["channel"] == simulator.dm_channel_for(ADA)
    assert dm_w["channel"] == simulator.dm_channel_for(CY) != dm["channel"]
    assert client.conversations_open(users=ADA)["channel"]["id"] == dm["channel"]
    assert client.chat_postMessage(channel=dm["channel"], text="again")["channel"] == dm["channel"]
    assert [m["text"] for m in simulator.messages(ADA)] == ["your request", "again"]
    assert float(dm["ts"]) > float(posted["ts"]) and len({posted["ts"], dm["ts"], dm_w["ts"]}) == 3
    info = client.conversations_info(channel=dm["channel"])["channel"]
    assert info["is_im"] and info["user"] == ADA
    assert client.conversations_info(channel=GENERAL, include_num_members=True)["channel"]["num_members"] == 4


def test_threads_updates_deletes_permalinks_reactions(simulator: SlackSimulator, client: WebClient) -> None:
    root = client.chat_postMessage(channel=GENERAL, text="root")
    reply = client.chat_postMessage(channel=GENERAL, text="reply", thread_ts=root["ts"])
    human = simulator.add_message(GENERAL, user=BEN, text="me too", thread_ts=root["ts"])
    replies = client.conversations_replies(channel=GENERAL, ts=root["ts"])["messages"]
    assert [m["text"] for m in replies] == ["root", "reply", "me too"]
    assert replies[0]["reply_count"] == 2 and replies[0]["reply_users"] == ["UBOT", BEN]
    assert replies[1]["parent_user_id"] == "UBOT" and replies[2]["ts"] == human
    history = client.conversations_history(channel=GENERAL)["messages"]
    assert [m["text"] for m in history] == ["root"]  # replies stay in the thread
    divider = [{"type": "divider"}]
    updated = client.chat_update(channel=GENERAL, ts=root["ts"], text="root (edited)", blocks=divider)
    assert updated["text"] == "root (edited)" and simulator.messages(GENERAL)[0]["blocks"] == divider
    assert error_of(lambda: client.chat_update(channel=GENERAL, ts="1.0001", text="x")) == "message_not_found"
    assert error_of(lambda: client.chat_update(channel=GENERAL, ts=human, text="x")) == "cant_update_message"
    link = client.chat_getPermalink(channel=GENERAL, message_ts=root["ts"])["permalink"]
    assert link == f"https://askdesk-demo.slack.com/archives/{GENERAL}/p{root['ts'].replace('.', '')}"
    assert "thread_ts=" in client.chat_getPermalink(channel=GENERAL, message_ts=reply["ts"])["permalink"]
    client.reactions_add(channel=GENERAL, timestamp=human, name="eyes")
    again = error_of(lambda: client.reactions_add(channel=GENERAL, timestamp=human, name="eyes"))
    assert again == "already_reacted"
    client.chat_delete(channel=GENERAL, ts=reply["ts"])
    assert reply["ts"] not in [m["ts"] for m in simulator.messages(GENERAL)]
    eph = client.chat_postEphemeral(channel=GENERAL, user=ADA, text="only you")
    assert simulator.ephemeral_messages[-1]["message"]["ts"] == eph["message_ts"]
    outsider = error_of(lambda: client.chat_postEphemeral(channel=FINANCE, user=BEN, text="x"))
    assert outsider == "user_not_in_channel"


def test_history_metadata_and_pagination(simulator: SlackSimulator, client: WebClient) -> None:
    sent = [client.chat_postMessage(channel=FINANCE, text=f"m{i}", metadata={
        "event_type": "t", "event_payload": {"i": i}})["ts"] for i in range(5)]
    plain = client.conversations_history(channel=FINANCE)["messages"]
    assert [m["text"] for m in plain] == ["m4", "m3", "m2", "m1", "m0"] and "metadata" not in plain[0]
    pages = [[m["metadata"]["event_payload"]["i"] for m in page["messages"]]  # slack_sdk reuses the object
             for page in client.conversations_history(channel=FINANCE, limit=2, include_all_metadata=True)]
    assert pages == [[4, 3], [2, 1], [0]]
    newer = client.conversations_history(channel=FINANCE, oldest=sent[2])["messages"]
    assert [m["text"] for m in newer] == ["m4", "m3"]
    assert error_of(lambda: client.conversations_history(channel=OUTSIDE)) == "not_in_channel"


def test_members_pagination(simulator: SlackSimulator, client: WebClient) -> None:
    simulator.add_channel("C0BIG", name="big", members=[f"U{i:04d}" for i in range(5)])
    pages = [(list(p["members"]), p["response_metadata"]["next_cursor"])
             for p in client.conversations_members(channel="C0BIG", limit=2)]
    assert [len(members) for members, _ in pages] == [2, 2, 2] and pages[-1][1] == ""
    assert sum((members for members, _ in pages), []) == [f"U{i:04d}" for i in range(5)] + ["UBOT"]
    assert error_of(lambda: client.conversations_members(channel="C0BIG", cursor="bogus")) == "invalid_cursor"


# ---------------------------------------------------------------------------------------- users
def test_users_info_and_profiles(simulator: SlackSimulator, client: WebClient) -> None:
    ada = client.users_info(user=ADA)["user"]
    assert ada["tz"] == "Europe/London" and ada["tz_offset"] in (0, 3600)
    assert ada["real_name"] == "Ada Lovelace"
    assert ada["deleted"] is False and ada["profile"]["display_name"] == "ada"
    assert client.users_info(user=BEN)["user"]["tz_offset"] == -18000
    assert client.users_info(user=CY)["user"]["tz_offset"] == 9 * 3600
    assert client.users_info(user=GONE)["user"]["deleted"] is True
    assert error_of(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    fields = client.users_profile_get(user=ADA)["profile"]["fields"]
    assert sorted(f["value"] for f in fields.values()) == ["Analyst", "Finance"]
    assert all(k.startswith("Xf01") and "label" not in f for k, f in fields.items())
    labelled = client.users_profile_get(user=ADA, include_labels=True)["profile"]["fields"]
    by_label = {f["label"]: f["value"] for f in labelled.values()}
    assert by_label == {"Department": "Finance", "Title": "Analyst"}
    catalogue = {f["label"]: f["id"] for f in client.team_profile_get()["profile"]["fields"]}
    assert fields[catalogue["Department"]]["value"] == "Finance"
    assert client.users_lookupByEmail(email="ada@askdesk-demo.example.com")["user"]["id"] == ADA


# ---------------------------------------------------------------------------------------- views
MODAL = {"type": "modal", "callback_id": "ask", "title": {"type": "plain_text", "text": "Ask"},
         "blocks": [{"type": "input", "block_id": "q", "label": {"type": "plain_text", "text": "Q"},
                     "element": {"type": "plain_text_input", "action_id": "v"}}]}


def test_views_triggers_expire_and_are_single_use(simulator: SlackSimulator, client: WebClient) -> None:
    clock = FakeClock()
    simulator.clock = clock
    fresh = simulator.new_trigger_id()
    clock.advance(2.9)
    opened = client.views_open(trigger_id=fresh, view=MODAL)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "ask"
    assert simulator.opened_views[-1] == opened
    assert error_of(lambda: client.views_open(trigger_id=fresh, view=MODAL)) == "exchanged_trigger_id"
    stale = simulator.new_trigger_id()
    clock.advance(3.0)
    assert error_of(lambda: client.views_open(trigger_id=stale, view=MODAL)) == "expired_trigger_id"
    assert error_of(lambda: client.views_open(trigger_id="1.2.made-up", view=MODAL)) == "invalid_trigger_id"
    pushed = client.views_push(trigger_id=simulator.new_trigger_id(), view={**MODAL, "external_id": "ext-1"})
    updated = client.views_update(view_id=opened["id"], view={**MODAL, "private_metadata": "42"})["view"]
    assert updated["id"] == opened["id"] and updated["private_metadata"] == "42"
    by_ext = client.views_update(external_id="ext-1", view={**MODAL, "callback_id": "other"})["view"]
    assert by_ext["id"] == pushed["view"]["id"] and by_ext["external_id"] == "ext-1"
    conflict = error_of(lambda: client.views_update(view_id=opened["id"], hash="stale", view=MODAL))
    assert conflict == "hash_conflict"
    assert error_of(lambda: client.views_update(view_id="V404", view=MODAL)) == "not_found"
    home = client.views_publish(user_id=ADA, view={"type": "home", "blocks": []})["view"]
    assert simulator.published_views[ADA]["id"] == home["id"]
    again = client.views_publish(user_id=ADA, view={"type": "home", "blocks": [{"type": "divider"}]})["view"]
    assert again["id"] == home["id"] and simulator.published_views[ADA]["blocks"] == [{"type": "divider"}]
    assert error_of(lambda: client.views_open(trigger_id=simulator.new_trigger_id(), view={"type": "home"})) \
        == "invalid_arguments"


# ---------------------------------------------------------------------------------------- files, response_url
def test_files_upload_v2_end_to_end(simulator: SlackSimulator, client: WebClient) -> None:
    done = client.files_upload_v2(channel=FINANCE, content=b"a,b\n1,2\n", filename="digest.csv",
                                  title="Digest", initial_comment="Weekly digest")
    file_id = done["file"]["id"]
    assert simulator.uploads[file_id].data == b"a,b\n1,2\n" and simulator.uploads[file_id].length == 8
    share = simulator.messages(FINANCE)[-1]
    assert share["text"] == "Weekly digest" and share["files"][0]["id"] == file_id
    info = client.files_info(file=file_id)["file"]
    assert info["title"] == "Digest" and info["size"] == 8 and info["channels"] == [FINANCE]
    pending = client.files_getUploadURLExternal(filename="x.txt", length=3)
    assert pending["upload_url"].startswith(simulator.root_url + "/upload/")
    never = [{"id": pending["file_id"], "title": "x"}]
    assert error_of(lambda: client.files_completeUploadExternal(files=never)) == "file_not_found"
    assert error_of(lambda: client.files_info(file="F404")) == "file_not_found"


def test_response_url_posts(simulator: SlackSimulator) -> None:
    url = simulator.new_response_url(channel_id=GENERAL, user_id=ADA)
    hook = WebhookClient(url)
    assert hook.send(text="just you").status_code == 200
    assert hook.send(text="everyone", response_type="in_channel").status_code == 200
    assert [p.body["text"] for p in simulator.response_posts] == ["just you", "everyone"]
    assert simulator.messages(GENERAL)[-1]["text"] == "everyone"
    assert simulator.ephemeral_messages[-1]["user"] == ADA
    for _ in range(3):
        hook.send(text="more")
    assert hook.send(text="sixth").status_code == 404  # 5 posts per response_url
    assert WebhookClient(simulator.root_url + "/response/unknown").send(text="x").status_code == 404
    ts = WebClient(token=TOKEN, base_url=simulator.base_url).chat_postMessage(
        channel=GENERAL, text="card", blocks=[{"type": "divider"}])["ts"]
    original = WebhookClient(simulator.new_response_url(channel_id=GENERAL, message_ts=ts))
    original.send(text="claimed", replace_original=True)
    replaced = simulator.messages(GENERAL)[-1]
    assert replaced["ts"] == ts and replaced["text"] == "claimed" and "blocks" not in replaced
    original.send_dict({"delete_original": True})
    assert ts not in [m["ts"] for m in simulator.messages(GENERAL)]


# ---------------------------------------------------------------------------------------- fault injection
def test_rate_limit_injection_is_retried_by_slack_sdk(simulator: SlackSimulator,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler sleeps Retry-After + random(): record instead of sleeping. Only the handler module's
    # names are replaced: patching time.sleep itself would also catch other threads (an earlier
    # test's WAL checkpointer sleeping between checkpoints) and make them spin.
    slept: list[float] = []
    monkeypatch.setattr(builtin_handlers, "random", SimpleNamespace(random=lambda: 0.0))
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    client = WebClient(token=TOKEN, base_url=simulator.base_url,
                       retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    simulator.rate_limit_next("chat.postMessage", retry_after=3)
    assert client.chat_postMessage(channel=GENERAL, text="eventually")["ok"] and slept == [3]
    first, second = simulator.calls_to("chat.postMessage")
    assert (first.status, first.error, second.status) == (429, "ratelimited", 200)
    assert simulator.rate_limited_count == 1 and len(simulator.messages(GENERAL)) == 1
    simulator.rate_limit_next("users.info", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        WebClient(token=TOKEN, base_url=simulator.base_url, retry_handlers=[]).users_info(user=ADA)
    assert info.value.response.status_code == 429 and info.value.response.headers["Retry-After"] == "7"


def test_server_errors_failures_and_channel_filter(simulator: SlackSimulator, client: WebClient) -> None:
    simulator.http_error_next("auth.test", status=503)
    with pytest.raises(SlackApiError) as info:
        client.auth_test()
    assert info.value.response.status_code == 503
    handler = ServerErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK)
    retrying = WebClient(token=TOKEN, base_url=simulator.base_url, retry_handlers=[handler])
    simulator.http_error_next("auth.test", status=500)
    assert retrying.auth_test()["ok"]
    assert [c.status for c in simulator.calls_to("auth.test")] == [503, 500, 200]
    simulator.fail_next("chat.postMessage", "is_archived", channel=FINANCE)
    assert client.chat_postMessage(channel=GENERAL, text="unaffected")["ok"]
    assert error_of(lambda: client.chat_postMessage(channel=FINANCE, text="x")) == "is_archived"
    assert client.chat_postMessage(channel=FINANCE, text="ok now")["ok"]
    simulator.fail_next("chat.postMessage", "account_inactive", channel=ADA)
    assert error_of(lambda: client.chat_postMessage(channel=simulator.dm_channel_for(ADA), text="x")) \
        == "account_inactive"
    simulator.fail_next("*", "fatal_error", count=2)
    assert error_of(client.auth_test) == error_of(lambda: client.users_info(user=ADA)) == "fatal_error"
    assert client.auth_test()["ok"]


def test_delay_and_connection_reset(simulator: SlackSimulator) -> None:
    simulator.delay_next("users.info", 2.0)
    impatient = WebClient(token=TOKEN, base_url=simulator.base_url, timeout=0.3, retry_handlers=[])  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017 - socket timeout or URLError
        impatient.users_info(user=ADA)
    assert "timed out" in str(info.value).lower() and time.monotonic() - started < 1.5
    assert impatient.auth_test()["ok"]  # the delayed request does not block others
    simulator.reset_connection_next("auth.test")
    with pytest.raises(Exception):  # noqa: B017 - ConnectionResetError / RemoteDisconnected / URLError
        impatient.auth_test()
    retrying = WebClient(token=TOKEN, base_url=simulator.base_url, retry_handlers=[
        ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=QUICK)])
    simulator.reset_connection_next("auth.test")
    assert retrying.auth_test()["ok"]
    assert [c.status for c in simulator.calls_to("auth.test")][-3:] == [0, 0, 200]


def test_late_answers_and_errors_after_storing(simulator: SlackSimulator) -> None:
    """The two faults that make a retried post a duplicate: Slack stores the message, and the client
    hears only a timeout or a 5xx."""
    impatient = WebClient(token=TOKEN, base_url=simulator.base_url, timeout=0.3, retry_handlers=[])  # type: ignore[arg-type]
    simulator.answer_late_next("chat.postMessage", 2.0)
    with pytest.raises(Exception) as info:  # noqa: B017 - socket timeout or URLError
        impatient.chat_postMessage(channel=GENERAL, text="stored at once, answered late")
    assert "timed out" in str(info.value).lower()
    assert [m["text"] for m in simulator.messages(GENERAL)][-1] == "stored at once, answered late"

    simulator.delay_next("chat.postMessage", 0.6)  # the other slowness: stored only after the wait
    with pytest.raises(Exception):  # noqa: B017
        impatient.chat_postMessage(channel=GENERAL, text="stored late")
    assert "stored late" not in [m["text"] for m in simulator.messages(GENERAL)]
    simulator.wait_for(lambda: "stored late" in [m["text"] for m in simulator.messages(GENERAL)], timeout=3)

    simulator.http_error_after_store_next("chat.postMessage", status=503)
    with pytest.raises(SlackApiError) as err:
        impatient.chat_postMessage(channel=GENERAL, text="stored, then 503")
    assert err.value.response.status_code == 503
    assert [m["text"] for m in simulator.messages(GENERAL)][-1] == "stored, then 503"
    assert simulator.pending_faults() == 0


def test_chaos_draws_each_kind_of_fault_at_its_rate(simulator: SlackSimulator) -> None:
    chaos = Chaos(rate_limited=0.3, server_errors=0.3, stored_share=1.0, slow=0.0, seed=7,
                  methods=frozenset({"chat.postMessage"}))
    simulator.set_chaos(chaos)
    client = WebClient(token=TOKEN, base_url=simulator.base_url, retry_handlers=[])
    outcomes = []
    for i in range(200):
        try:
            client.chat_postMessage(channel=GENERAL, text=f"m{i}")
            outcomes.append(200)
        except SlackApiError as exc:
            outcomes.append(exc.response.status_code)
    assert client.users_info(user=ADA)["ok"]  # other methods are spared
    simulator.set_chaos(None)
    assert 40 <= outcomes.count(429) <= 80 and 40 <= sum(1 for s in outcomes if s >= 500) <= 80
    stored = len([m for m in simulator.messages(GENERAL) if m["text"].startswith("m")])
    assert stored == 200 - outcomes.count(429)  # every 5xx came after the message was stored
    assert chaos.drawn["ratelimit"] == outcomes.count(429)


def test_latency_keeps_server_concurrent() -> None:
    with SlackSimulator(latency=0.2) as sim:
        client = WebClient(token=TOKEN, base_url=sim.base_url)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=32) as pool:
            results = list(pool.map(lambda _: client.api_test()["ok"], range(32)))
        elapsed = time.monotonic() - started
    assert all(results) and 0.2 <= elapsed < 1.5  # serially this would take 6.4 s


def test_rate_limit_enforcement(simulator: SlackSimulator, client: WebClient) -> None:
    clock = FakeClock()
    simulator.clock = clock
    simulator.enforce_rate_limits = True
    assert all(client.chat_postMessage(channel=GENERAL, text=f"{i}")["ok"] for i in range(3))  # burst of 3
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=GENERAL, text="too fast")
    assert info.value.response.status_code == 429 and info.value.response["error"] == "ratelimited"
    assert client.chat_postMessage(channel=FINANCE, text="other channel")["ok"]
    clock.advance(1.0)
    assert client.chat_postMessage(channel=GENERAL, text="a second later")["ok"]
    simulator.rate_limit_scale = 0.05  # tier 4: 100/min -> 5/min
    for _ in range(5):
        client.users_info(user=ADA)
    with pytest.raises(SlackApiError) as info:
        client.users_info(user=ADA)
    assert info.value.response.headers["Retry-After"] == "60"
    clock.advance(60)
    assert client.users_info(user=ADA)["ok"] and simulator.rate_limited_count == 2
    assert client.auth_test()["ok"]  # special-tier methods other than posting are not limited


def test_wait_for_polls_and_times_out_helpfully(simulator: SlackSimulator, client: WebClient) -> None:
    threading.Timer(0.05, lambda: client.chat_postMessage(channel=GENERAL, text="later")).start()
    call = simulator.wait_for_call("chat.postMessage", lambda c: c.args.get("text") == "later", timeout=2)
    assert call.ok and simulator.wait_for(lambda: simulator.messages(GENERAL), timeout=1)
    with pytest.raises(TimeoutError, match="chat.postMessage"):
        simulator.wait_for(lambda: False, timeout=0.05)
    simulator.reset_calls()
    assert simulator.calls == []


# ---------------------------------------------------------------------------------------- driver
class _Recorder(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers.items()), body))  # type: ignore[attr-defined]
        reply = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slack/events", server.requests  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_driver_signature_matches_slack_docs_vector() -> None:
    raw = ("token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
           "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
           "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
           "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    driver = SlackDriver("http://127.0.0.1:9/", "8f742231b10e8888abcd99yyyzzz85a5")
    assert driver.sign(raw.encode(), timestamp=1531420618) == {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"}


def test_driver_requests_are_signed_and_slack_shaped(simulator: SlackSimulator, receiver: Any) -> None:
    url, requests = receiver
    driver = SlackDriver(url, SECRET, simulator)
    verifier = SignatureVerifier(SECRET)
    resp = driver.slash("/ask-finance", "why & how?", user_id=ADA, channel_id=GENERAL)
    assert resp.status == 200 and resp.json == {"ok": True} and resp.elapsed > 0
    headers, body = requests[-1]
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
    assert list(form) == ["token", "team_id", "team_domain", "channel_id", "channel_name", "user_id",
                          "user_name", "command", "text", "api_app_id", "is_enterprise_install",
                          "response_url", "trigger_id"]
    assert (form["command"], form["text"], form["user_name"], form["channel_name"]) == (
        "/ask-finance", "why & how?", "ada", "general")
    assert b"command=%2Fask-finance" in body
    assert form["response_url"].startswith(simulator.root_url + "/response/")
    posted = WebClient(token=TOKEN, base_url=simulator.base_url).chat_postMessage(channel=FINANCE, text="req")
    driver.block_action(user_id=ADA, action_id="claim", value="1", channel_id=FINANCE,
                        message_ts=posted["ts"])
    headers, body = requests[-1]
    assert verifier.is_valid(body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"])
    payload = json.loads(dict(urllib.parse.parse_qsl(body.decode()))["payload"])
    assert payload["type"] == "block_actions" and payload["container"] == {
        "type": "message", "message_ts": posted["ts"], "channel_id": FINANCE, "is_ephemeral": False}
    assert payload["message"]["text"] == "req" and payload["actions"][0]["value"] == "1"
    assert payload["user"] == {"id": ADA, "username": "ada", "name": "ada", "team_id": "T0001"}
    for key in ("api_app_id", "token", "trigger_id", "team", "enterprise", "is_enterprise_install", "channel",
                "response_url", "state"):
        assert key in payload, key
    first = driver.event(driver.reaction_added(BEN, "+1::skin-tone-2", FINANCE, posted["ts"]))
    again = driver.event(first.payload["event"], event_id=first.payload["event_id"], retry_num=1,
                         retry_reason="http_timeout")
    (h1, b1), (h2, b2) = requests[-2:]
    assert "X-Slack-Retry-Num" not in h1 and (h2["X-Slack-Retry-Num"], h2["X-Slack-Retry-Reason"]) == (
        "1", "http_timeout")
    env1, env2 = json.loads(b1), json.loads(b2)
    assert env1["event_id"] == env2["event_id"] == again.payload["event_id"]
    assert env1["type"] == "event_callback" and env1["team_id"] == "T0001" and env1["api_app_id"] == "A0001"
    assert env1["authorizations"] == [{"enterprise_id": None, "team_id": "T0001", "user_id": "UBOT",
                                       "is_bot": True, "is_enterprise_install": False}]
    assert env1["event"]["item"] == {"type": "message", "channel": FINANCE, "ts": posted["ts"],
                                     "channel_type": "channel"}
    assert verifier.is_valid(b2, h2["X-Slack-Request-Timestamp"], h2["X-Slack-Signature"])
    ids = {driver.event({"type": "app_mention"}).payload["event_id"] for _ in range(3)}
    assert len(ids) == 3 and all(i.startswith("Ev") for i in ids)


def test_driver_event_builders_and_views(simulator: SlackSimulator, receiver: Any) -> None:
    url, requests = receiver
    driver = SlackDriver(url, SECRET, simulator)
    root = simulator.add_message(FINANCE, user=ADA, text="question")
    reply = driver.message_event(BEN, FINANCE, "answer", thread_ts=root)
    assert "subtype" not in reply and reply["thread_ts"] == root and reply["parent_user_id"] == ADA
    assert [m["text"] for m in simulator.thread(FINANCE, root)] == ["question", "answer"]
    dm_event = driver.message_event(ADA, ADA, "hi bot")
    assert dm_event["channel"] == simulator.dm_channel_for(ADA) and dm_event["channel_type"] == "im"
    home = driver.app_home_opened(ADA)
    assert home["channel"] == simulator.dm_channel_for(ADA) and "view" not in home
    client = WebClient(token=TOKEN, base_url=simulator.base_url)
    opened = client.views_open(trigger_id=simulator.new_trigger_id(), view={**MODAL, "private_metadata": "p"})
    values = {"q": {"v": SlackDriver.text_value("How?")}, "cat": {"s": SlackDriver.select_value("expenses")}}
    driver.view_submission(user_id=ADA, callback_id="ask", values=values)
    payload = json.loads(dict(urllib.parse.parse_qsl(requests[-1][1].decode()))["payload"])
    assert payload["type"] == "view_submission" and payload["view"]["id"] == opened["view"]["id"]
    assert payload["view"]["private_metadata"] == "p" and payload["view"]["state"]["values"] == values
    assert payload["view"]["blocks"] == MODAL["blocks"]
    closed = driver.view_closed(user_id=ADA, callback_id="ask", view_id=opened["view"]["id"]).payload
    assert closed["type"] == "view_closed" and closed["view"]["id"] == opened["view"]["id"]
    in_view = driver.block_action(user_id=ADA, action_id="pick", view=opened["view"]["id"]).payload
    assert in_view["container"] == {"type": "view", "view_id": opened["view"]["id"]}
    assert "channel" not in in_view and in_view["view"]["callback_id"] == "ask"
    shortcut = driver.message_shortcut(user_id=ADA, callback_id="sc", channel_id=GENERAL,
                                       message={"ts": "1700000000.000100", "text": "hm", "user": BEN}).payload
    assert shortcut["type"] == "message_action" and shortcut["message_ts"] == "1700000000.000100"
    assert driver.global_shortcut(user_id=ADA, callback_id="g").payload["type"] == "shortcut"
    client.views_open(trigger_id=shortcut["trigger_id"], view=MODAL)  # driver triggers are real


# ---------------------------------------------------------------------------------------- Bolt end to end
def test_bolt_app_over_waitress_answers_driver(simulator: SlackSimulator) -> None:
    from slack_bolt import App
    from slack_bolt.adapter.wsgi import SlackRequestHandler
    from waitress.server import create_server

    app = App(signing_secret=SECRET, token=TOKEN, client=WebClient(token=TOKEN, base_url=simulator.base_url))

    @app.command("/ask-finance")
    def on_command(ack: Any, command: dict[str, Any], say: Any, respond: Any) -> None:
        ack(f"Got it, <@{command['user_id']}>")
        say(text=f"New request: {command['text']}")
        respond(text="Posted to #finance", replace_original=True)

    @app.event("reaction_added")
    def on_reaction(event: dict[str, Any], client: WebClient) -> None:
        client.reactions_add(channel=event["item"]["channel"], timestamp=event["item"]["ts"], name="eyes")

    server = create_server(SlackRequestHandler(app), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        driver = SlackDriver(f"http://127.0.0.1:{server.effective_port}/slack/events", SECRET, simulator)
        resp = driver.slash("/ask-finance", "expense limit?", user_id=ADA, channel_id=GENERAL)
        assert resp.status == 200 and resp.body == f"Got it, <@{ADA}>"
        simulator.wait_for(lambda: simulator.response_posts)
        assert simulator.response_posts[0].body["text"] == "Posted to #finance"
        assert simulator.messages(GENERAL)[-1]["text"] == "New request: expense limit?"
        ts = simulator.messages(GENERAL)[-1]["ts"]
        assert driver.event(driver.reaction_added(BEN, "thumbsup", GENERAL, ts)).status == 200
        simulator.wait_for_call("reactions.add")
        assert simulator.messages(GENERAL)[-1]["reactions"][0]["name"] == "eyes"
        body = b"token=x&command=%2Fask-finance&text=forged"
        forged = driver.send_raw(body, {"Content-Type": "application/x-www-form-urlencoded",
                                        **driver.sign(body, timestamp=int(time.time()) - 600)})
        assert forged.status == 401
    finally:
        server.close()
        thread.join(timeout=2)
