"""Hostile input, property-based: malformed and oversized payloads of every kind at the real endpoint.

One harness (real Bolt app under waitress, Slack simulator, real database) serves the whole module.
Properties, for every example: no 5xx and no traceback in any answer, the server stays up
(GET /healthz is 200), and nothing is half-written (every request has its `created` event and its
post job; every job points at an existing request). Unsigned bodies change nothing at all: not one
row, not one Slack call. Set ASKDESK_FUZZ_EXAMPLES to run more examples per kind (default 60).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, text
from sqlmodel import Session, select

from bot.render.ids import Action, Block, Callback
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.models import Job, Person, ProcessedEvent, Reaction, Request, RequestEvent, Survey
from storage.session import session_scope
from tests.conftest import (
    ALICE,
    DAVE,
    FINANCE_CH,
    GENERAL,
    TABLES,
    Harness,
    make_settings,
    populate,
    start_harness,
)

EXAMPLES = int(os.environ.get("ASKDESK_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
FORM, JSON_TYPE = "application/x-www-form-urlencoded", "application/json"
STATS: dict[str, Counter[int]] = {}


# ---------------------------------------------------------------------------------------------
# one harness for the module
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hh(pg_database: str | None, sqlite_template: Path,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    if pg_database:
        engine = create_engine(pg_database)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        url = pg_database
    else:
        path = tmp_path_factory.mktemp("hostile") / "askdesk.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    sim = SlackSimulator()
    populate(sim)
    sim.start()
    harness, stop = start_harness(sim, make_settings(sim, url))
    yield harness
    stop()
    sim.stop()
    summary = ", ".join(f"{kind}: {sum(c.values())} ({dict(sorted(c.items()))})" for kind, c in STATS.items())
    print(f"\nhostile input, examples per kind (HTTP status counts): {summary}")


def record(kind: str, status: int) -> None:
    STATS.setdefault(kind, Counter())[status] += 1


def healthz(h: Harness) -> int:
    with urllib.request.urlopen(h.url.replace("/slack/events", "/healthz"), timeout=5) as resp:
        return resp.status


def check_answer(h: Harness, kind: str, status: int, body: str, sent: bytes = b"") -> None:
    record(kind, status)
    assert status < 500, (kind, status, body[:300], sent[:500])
    assert "Traceback" not in body and 'File "' not in body, body[:300]
    assert healthz(h) == 200


def check_whole(h: Harness) -> None:
    """Nothing half-written: a request exists with its created event and post job, or not at all."""
    with session_scope(h.deps.engine) as s:
        conn = s.connection()
        ids = set(conn.execute(select(Request.id)).scalars())
        created = set(conn.execute(select(RequestEvent.request_id).where(RequestEvent.kind == "created")).scalars())
        jobs = conn.execute(select(Job.key, Job.payload)).all()
    assert ids <= created, f"requests without a created event: {ids - created}"
    posted = {int(key.split(":")[1]) for key, _ in jobs if key.startswith("post:") and key.endswith(":0")}
    assert ids <= posted, f"requests without a post job: {ids - posted}"
    for key, payload in jobs:
        rid = json.loads(payload).get("request_id")
        assert rid is None or rid in ids, f"orphan job {key}"


def snapshot(h: Harness) -> tuple[Any, ...]:
    with Session(h.deps.engine) as s:
        counts = tuple(s.exec(select(func.count()).select_from(model)).one()  # type: ignore[call-overload]
                       for model in (Request, RequestEvent, Job, ProcessedEvent, Person, Reaction, Survey))
    return (*counts, len(h.sim.calls), len(h.sim.response_posts))


def settle(h: Harness, timeout: float = 15.0) -> tuple[Any, ...]:
    """Wait until background work from earlier examples has finished (nothing changes for 0.3 s)."""
    deadline, last = time.monotonic() + timeout, snapshot(h)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = snapshot(h)
        if now == last:
            return now
        last = now
    raise AssertionError("background work did not settle")


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------
hostile_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=30),  # control characters, NUL
    st.sampled_from(["", " ", "\x00", "a\x00b", "<!channel>", "<@U0ALICE>", "*" * 40, "' OR 1=1 --",
                     "\u202e\u0644\u0627 RTL", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🙈🙉", "\ufeff", "%00", "{{7*7}}", "../../etc/passwd"]),
)
# where people type free text: also huge values (some beyond the 1 MB body limit once encoded)
big_text = st.one_of(
    hostile_text,
    st.builds(lambda ch, n: ch * n, st.characters(exclude_categories=("Cs",)), st.integers(3_000, 150_000)),
)
json_garbage = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
user_ids = st.one_of(st.sampled_from([DAVE, DAVE, ALICE, "U0NOBODY", "", "W123"]), hostile_text)
channel_ids = st.one_of(st.sampled_from([GENERAL, FINANCE_CH, "D0NOPE", "C0MISSING"]), hostile_text)
slugs = st.one_of(st.sampled_from(["finance", "it", "hr", "nope", ""]), hostile_text)
ids_as_values = st.one_of(
    st.sampled_from(["1", "2", "0", "-1", "9" * 5000, str(2**63), "1e3", " 1 ", "٣", "1.5", "0x1"]),
    st.integers().map(str), hostile_text,
)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) pair of a JSON tree, so a mutation can hit any field at any depth."""
    pairs: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        pairs.append((node, key))
        pairs.extend(_slots(value))
    return pairs


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any]) -> Any:
    """A plausible payload with up to three fields dropped, nulled or replaced by garbage."""
    payload = copy.deepcopy(draw(base))  # st.just() hands out the same object every time
    for _ in range(draw(st.integers(0, 3))):
        slots = _slots(payload)
        if not slots:
            break
        parent, key = slots[draw(st.integers(0, len(slots) - 1))]
        op = draw(st.sampled_from(["drop", "garbage", "null", "text"]))
        if op == "drop":
            del parent[key]
        else:
            parent[key] = {"garbage": draw(json_garbage), "null": None, "text": draw(hostile_text)}[op]
    return payload


def response_url(sim: SlackSimulator) -> st.SearchStrategy[str]:
    return st.one_of(st.builds(lambda: sim.new_response_url(channel_id=GENERAL, user_id=DAVE)),
                     st.just("http://127.0.0.1:9/nowhere"), hostile_text)


def slash_forms(sim: SlackSimulator) -> st.SearchStrategy[dict[str, str]]:
    commands = st.sampled_from(["/ask-finance", "/ask-it", "/ask-people", "/ask-unknown", "/ask-", "/ASK-FINANCE"])
    form = st.fixed_dictionaries({
        "token": st.just("legacy"), "team_id": st.just("T0001"), "team_domain": st.just("askdesk"),
        "channel_id": channel_ids, "channel_name": hostile_text, "user_id": user_ids, "user_name": hostile_text,
        "command": st.integers(0, 9).flatmap(lambda i: hostile_text if i == 0 else commands),
        "text": big_text, "api_app_id": st.just("A0001"),
        "is_enterprise_install": st.just("false"), "response_url": response_url(sim),
        "trigger_id": st.one_of(st.builds(lambda: sim.new_trigger_id(DAVE)), hostile_text),
    })
    return mutated(form).map(lambda d: {str(k): str(v) for k, v in d.items()})


def _user() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"id": user_ids, "name": hostile_text, "team_id": st.just("T0001")})


def modal_values() -> st.SearchStrategy[dict[str, Any]]:
    text_input = st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": big_text})
    select = st.fixed_dictionaries({"type": st.just("static_select"), "selected_option": st.fixed_dictionaries(
        {"value": st.one_of(slugs, st.sampled_from(["Expenses", "Laptop", "low", "normal", "high", "5"]))})})
    return st.dictionaries(st.one_of(st.sampled_from([b.value for b in Block]), hostile_text),
                           st.fixed_dictionaries({"value": st.one_of(text_input, select)}), max_size=7)


def interactive_payloads(sim: SlackSimulator, request_id: str = "1") -> st.SearchStrategy[Any]:
    common = {"user": _user(), "api_app_id": st.just("A0001"), "token": st.just("legacy"),
              "team": st.just({"id": "T0001", "domain": "askdesk"}), "enterprise": st.none(),
              "trigger_id": st.builds(lambda: sim.new_trigger_id(DAVE)), "is_enterprise_install": st.just(False)}
    view = st.fixed_dictionaries({
        "id": st.just("V0001"), "type": st.sampled_from(["modal", "home"]),
        "callback_id": st.integers(0, 5).flatmap(
            lambda i: hostile_text if i == 0 else st.sampled_from([c.value for c in Callback])),
        "private_metadata": st.one_of(hostile_text, st.just(request_id), st.just('{"team": "finance"}'),
                                      json_garbage.map(json.dumps)),
        "state": st.fixed_dictionaries({"values": modal_values()}), "hash": st.just("1.abc"),
    })
    action = st.fixed_dictionaries({
        "action_id": st.integers(0, 9).flatmap(lambda i: hostile_text if i == 0 else st.sampled_from(
            [a.value for a in Action] + ["survey_score_3"])),
        "block_id": st.just("b"), "type": st.just("button"), "action_ts": st.just("1.2"),
        "value": st.one_of(st.just(request_id), ids_as_values),
    })
    in_message = {"container": st.just({"type": "message", "message_ts": "1.000001", "channel_id": FINANCE_CH}),
                  "channel": st.just({"id": FINANCE_CH, "name": "finance-triage"}),
                  "message": st.fixed_dictionaries({"ts": st.just("1.000001"), "text": hostile_text}),
                  "response_url": response_url(sim), "state": st.just({"values": {}})}
    block_actions = st.one_of(
        st.fixed_dictionaries({"type": st.just("block_actions"), "actions": st.lists(action, min_size=1, max_size=2),
                               **common, **in_message}),
        st.fixed_dictionaries({"type": st.just("block_actions"), "actions": st.lists(action, min_size=1, max_size=2),
                               "view": view, "container": st.just({"type": "view", "view_id": "V0001"}), **common}))
    submission = st.fixed_dictionaries({"type": st.sampled_from(["view_submission", "view_closed"]), "view": view,
                                        "response_urls": st.just([]), **common})
    shortcut = st.fixed_dictionaries({
        "type": st.sampled_from(["shortcut", "message_action"]),
        "callback_id": st.one_of(st.just(Callback.SHORTCUT.value), hostile_text),
        "message": st.fixed_dictionaries({"ts": st.just("1.000001"), "text": big_text}),
        "channel": st.fixed_dictionaries({"id": channel_ids}), "response_url": response_url(sim), **common})
    unknown = st.fixed_dictionaries({"type": hostile_text, **common})
    payloads = st.one_of(block_actions, block_actions, submission, submission, shortcut, unknown)
    return st.integers(0, 9).flatmap(lambda i: json_garbage if i == 0 else mutated(payloads))


def event_envelopes() -> st.SearchStrategy[Any]:
    subtypes = st.sampled_from([None, "bot_message", "message_changed", "message_deleted", "thread_broadcast",
                                "channel_join", "file_share", "me_message", "weird"])
    item = st.fixed_dictionaries({"type": st.just("message"), "channel": channel_ids, "ts": hostile_text})
    reaction = st.fixed_dictionaries({
        "type": st.sampled_from(["reaction_added", "reaction_removed"]), "user": user_ids,
        "reaction": st.one_of(st.sampled_from(["+1", "star-struck", "rage"]), hostile_text), "item": item,
        "item_user": user_ids, "event_ts": st.just("1.1")})
    message = st.fixed_dictionaries({
        "type": st.just("message"), "subtype": subtypes, "user": user_ids, "channel": channel_ids,
        "text": big_text, "ts": st.just("2.000002"), "thread_ts": st.one_of(st.just("1.000001"), hostile_text),
        "channel_type": st.just("channel"), "event_ts": st.just("2.000002")}).map(
        lambda e: {k: v for k, v in e.items() if v is not None})
    home = st.fixed_dictionaries({"type": st.just("app_home_opened"), "user": user_ids,
                                  "tab": st.sampled_from(["home", "messages"]), "view": json_garbage})
    envelope = st.fixed_dictionaries({
        "type": st.just("event_callback"), "event": st.one_of(reaction, message, home),
        "event_id": st.one_of(st.text(min_size=1, max_size=80), st.integers().map(str)),
        "team_id": st.just("T0001"), "api_app_id": st.just("A0001"), "event_time": st.just(1),
        "authorizations": st.just([{"team_id": "T0001", "user_id": "UBOT", "is_bot": True}])})
    verification = st.fixed_dictionaries({"type": st.just("url_verification"), "challenge": hostile_text})
    return st.integers(0, 9).flatmap(
        lambda i: json_garbage if i == 0 else mutated(verification if i == 1 else envelope))


# ---------------------------------------------------------------------------------------------
# the properties
# ---------------------------------------------------------------------------------------------
def send(h: Harness, body: bytes, content_type: str | None) -> tuple[int, str]:
    """POST `body`, correctly signed, with this Content-Type (or none)."""
    headers = {"Content-Type": content_type} if content_type else {}
    resp = h.driver.send_raw(body, {**headers, **h.driver.sign(body)})
    return resp.status, resp.body


def bad_signature(h: Harness, body: bytes, how: str) -> dict[str, str]:
    """Headers that must not pass verification: none, zeros, stale, another secret, Bolt's lazy marks."""
    zeros = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=" + "0" * 64}
    return {
        "none": {},
        "zeros": zeros,
        "stale": h.driver.sign(body, timestamp=int(time.time()) - 3600),
        "other-secret": SlackDriver(h.url, "not-the-secret", None).sign(body),
        "lazy-headers": {"X-Slack-Bolt-Lazy-Only": "1", "X-Slack-Bolt-Lazy-Function-Name": "lazy_req_claim"},
    }[how]


@pytest.mark.parametrize("kind", ["slash", "interactive", "event"])
def test_unsigned_bodies_change_nothing(hh: Harness, kind: str) -> None:
    before = settle(hh)

    @FUZZ
    @given(data=st.data())
    def unsigned(data: st.DataObject) -> None:
        if kind == "slash":
            body = urllib.parse.urlencode(data.draw(slash_forms(hh.sim))).encode()
        elif kind == "interactive":
            body = urllib.parse.urlencode({"payload": json.dumps(data.draw(interactive_payloads(hh.sim)))}).encode()
        else:
            body = json.dumps(data.draw(event_envelopes())).encode()
        how = data.draw(st.sampled_from(["none", "zeros", "stale", "other-secret", "lazy-headers"]))
        content_type = {"Content-Type": JSON_TYPE if kind == "event" else FORM}
        resp = hh.driver.send_raw(body, {**content_type, **bad_signature(hh, body, how)})
        record(f"unsigned-{kind}", resp.status)
        assert resp.status in (400, 401, 413), (resp.status, resp.body[:200])
        assert "Traceback" not in resp.body

    unsigned()
    assert healthz(hh) == 200
    assert settle(hh) == before, "an unsigned request changed a row or made a Slack call"


def test_signed_slash_commands(hh: Harness) -> None:
    @FUZZ
    @given(form=slash_forms(hh.sim), ctype=st.sampled_from([FORM, FORM, FORM, JSON_TYPE, "text/plain", None]))
    def slash(form: dict[str, str], ctype: str | None) -> None:
        status, body = send(hh, urllib.parse.urlencode(form).encode(), ctype)
        check_answer(hh, "slash", status, body, urllib.parse.urlencode(form).encode())
        check_whole(hh)

    slash()
    settle(hh)
    check_whole(hh)


def test_signed_interactivity_payloads(hh: Harness) -> None:
    req = _one_request(hh)

    @FUZZ
    @given(payload=interactive_payloads(hh.sim, str(req)))
    def interactive(payload: Any) -> None:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        status, text_ = send(hh, body, FORM)
        check_answer(hh, "interactive", status, text_, body)
        check_whole(hh)

    interactive()
    settle(hh)
    check_whole(hh)


def test_signed_event_envelopes(hh: Harness) -> None:
    @FUZZ
    @given(envelope=event_envelopes(), ctype=st.sampled_from([JSON_TYPE, JSON_TYPE, FORM, None]))
    def events(envelope: Any, ctype: str | None) -> None:
        status, body = send(hh, json.dumps(envelope).encode(), ctype)
        check_answer(hh, "event", status, body, json.dumps(envelope).encode())
        check_whole(hh)

    events()
    settle(hh)
    check_whole(hh)


def test_raw_bytes_wrong_types_and_invalid_utf8(hh: Harness) -> None:
    @FUZZ
    @given(raw=st.one_of(st.binary(max_size=300), st.binary(max_size=50).map(lambda b: b"payload=" + b),
                         st.binary(max_size=50).map(lambda b: b"{\"type\": \"" + b + b"\"}"),
                         st.sampled_from([b"\xff\xfe\xfd", b"payload=%FF%FE", b"text=%C3%28", b"\xc3\x28",
                                          b"{\"event\": \"\xed\xa0\x80\"}", b"payload=null", b"[]", b"5",
                                          b"payload=" + b"[" * 5000, b"{" * 10_000])),
           ctype=st.sampled_from([FORM, JSON_TYPE, "text/plain", "multipart/form-data; boundary=x",
                                  "application/json; charset=latin-1", None]))
    def raw_bytes(raw: bytes, ctype: str | None) -> None:
        status, body = send(hh, raw, ctype)
        check_answer(hh, "raw", status, body, raw)

    raw_bytes()
    settle(hh)
    check_whole(hh)


def _one_request(h: Harness) -> int:
    """A real, posted request, so that forged clicks have something to aim at."""
    resp = h.driver.slash("/ask-finance", "a real request to aim at", user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200, resp.body
    return h.wait(lambda: _latest(h))


def _latest(h: Harness) -> int | None:
    with session_scope(h.deps.engine) as s:
        req = s.exec(select(Request).where(Request.requester_id == DAVE)
                     .order_by(Request.id.desc())).first()
    return req.id if req and req.post_state == "posted" else None


def test_nul_and_control_characters_are_stored_the_same_on_both_engines(hh: Harness) -> None:
    text_in = "pay\x00roll \x07 question\x1b[31m with NUL"
    resp = hh.driver.slash("/ask-finance", text_in, user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200 and "#" in resp.body, resp.body
    with session_scope(hh.deps.engine) as s:
        req = s.exec(select(Request).order_by(Request.id.desc())).first()
    assert req is not None and req.text == "payroll \x07 question\x1b[31m with NUL"
    # lazy listeners re-read the body: they see it without NUL too (ALICE's home gets published)
    event = {"type": "app_home_opened", "user": "U0ALI\x00CE", "tab": "home", "channel": "D0ALICE"}
    assert hh.driver.event(event, event_id="EvNUL\x000001").status == 200
    hh.wait(lambda: ALICE in hh.sim.published_views)
