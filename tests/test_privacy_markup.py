"""Issue 13, reproduction 6: who may read a request's full text, modal metadata that comes back from Slack,
links built from what people send, and column lengths on both databases."""

from __future__ import annotations

import base64
import itertools
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel, select

from bot.config import parse_config
from bot.i18n import translator
from bot.render import blocks
from bot.render.ids import Action, Block, Callback
from bot.render.links import link, message_link, safe_url
from bot.services.sealed import key_for, seal, unseal
from storage.models import Request
from storage.session import session_scope
from tests.conftest import ADMIN, ALICE, DAVE, ERIN, FINANCE_CH, GENERAL, MALLORY, TEST_CONFIG, Harness
from tests.test_request_loop import ask, button, load, texts_of

EVIL = "https://evil.example/x|CLICK HERE> <!channel"


def _opened(h: Harness) -> int:
    return len(h.sim.opened_views)


def test_full_text_is_for_the_team_the_requester_and_admins(h: Harness) -> None:
    req = ask(h, "A harassment report that is long. " * 120)
    assert "View full text" in texts_of(h.triage(FINANCE_CH)[0])
    for user in (ALICE, DAVE, ADMIN):  # a Finance responder, the person who asked, an admin
        before = _opened(h)
        button(h, req, Action.FULL_TEXT, user)
        h.wait(lambda before=before: _opened(h) > before)
    before, told = _opened(h), len(h.sim.response_posts)
    button(h, req, Action.FULL_TEXT, MALLORY)  # anyone else, e.g. a forged action
    refusal = h.wait(lambda: len(h.sim.response_posts) > told and h.sim.response_posts[-1])
    assert "Only Finance's responders and the person who asked" in json.dumps(refusal.body)
    assert _opened(h) == before and "harassment" not in json.dumps(refusal.body)


def _shortcut_meta(h: Harness) -> str:
    resp = h.driver.message_shortcut(user_id=ERIN, callback_id=Callback.SHORTCUT.value, channel_id=GENERAL,
                                     message={"ts": "1700000000.000300", "user": DAVE, "text": "Who signs?"})
    assert resp.status == 200
    view = h.wait(lambda: h.sim.opened_views and h.sim.opened_views[-1])
    return view["view"]["private_metadata"] if "view" in view else view["private_metadata"]


def _submit(h: Harness, meta: str) -> Any:
    return h.driver.view_submission(user_id=ERIN, callback_id=Callback.REQUEST_MODAL.value, private_metadata=meta,
                                    values={Block.TEAM: {"value": {"type": "static_select",
                                                                   "selected_option": {"value": "it"}}},
                                            Block.SUMMARY: {"value": {"type": "plain_text_input",
                                                                      "value": "Who signs?"}}})


def _requests(h: Harness) -> list[Request]:
    with session_scope(h.deps.engine) as s:
        return list(s.exec(select(Request)).all())


def test_tampered_private_metadata_is_refused_logged_and_changes_nothing(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    meta = _shortcut_meta(h)
    body, _, tag = meta.rpartition(".")
    decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert decoded["permalink"].endswith("/archives/C0GENERAL/p1700000000000300")
    forged_body = base64.urlsafe_b64encode(json.dumps({**decoded, "permalink": EVIL}).encode()).decode()
    for forged in (f"{forged_body.rstrip('=')}.{tag}",  # the payload changed, the old tag kept
                   json.dumps({"team": "it", "permalink": EVIL, "channel": "C0GENERAL"}),  # the old format
                   meta[:-1] + ("0" if meta[-1] != "0" else "1"), "", "x" * 3000):
        resp = _submit(h, forged)
        assert resp.status == 200 and resp.json["response_action"] == "errors"
        assert "out of date or was changed" in resp.json["errors"][Block.SUMMARY]
    assert _requests(h) == []
    assert sum("refused modal private_metadata" in r.getMessage() for r in caplog.records) == 5
    # the genuine value still works
    assert _submit(h, meta).status == 200
    req = h.wait(lambda: next((r for r in _requests(h) if r.post_state == "posted"), None))
    assert req.source_permalink.endswith("/archives/C0GENERAL/p1700000000000300")
    assert req.source_channel == GENERAL


def test_a_stored_hostile_permalink_is_never_a_live_link() -> None:
    team = parse_config("t.toml", TEST_CONFIG)["teams"][0]
    req = Request(id=7, team="finance", origin_team="finance", requester_id=DAVE, text="hi", summary="hi",
                  source_permalink=EVIL, created_at=datetime.now(UTC))
    shown = json.dumps(blocks.triage_message(req, team, t=translator("en")).as_dicts())
    assert "<!channel" not in shown and "|CLICK HERE>" not in shown and "evil.example" not in shown
    assert link(EVIL, "x") == "x"  # not a URL: only the label
    # a real URL with markup characters stays one link
    assert link("https://a.example/p?q=1&r=<2>|3", "a|b") == "<https://a.example/p?q=1&amp;r=&lt;2&gt;%7C3|a¦b>"
    for bad in ("javascript:alert(1)", "https://", "https://user:pw@a.example/", "ftp://a.example/x",
                "https://a.example/ x", "https://a.example/\n<!here>", None, 7):
        assert safe_url(bad) is None, bad
    assert message_link("https://acme.slack.com/", "C0GENERAL", "1700000000.000300") == \
        "https://acme.slack.com/archives/C0GENERAL/p1700000000000300"
    assert message_link("https://acme.slack.com/", "C0GENERAL|x>", "1.2") is None
    assert message_link("https://acme.slack.com/", "C0GENERAL", "1.2> <!channel") is None


def test_sealing_round_trip_and_keys() -> None:
    settings = parse_config("t.toml", TEST_CONFIG)
    from bot.config import Settings

    one, other = Settings(signing_secret="one", **settings), Settings(signing_secret="two", **settings)
    sealed = seal(key_for(one), {"team": "it", "n": 1})
    assert unseal(key_for(one), sealed) == {"team": "it", "n": 1}
    assert unseal(key_for(other), sealed) is None  # a rotated secret: out of date, refused
    assert key_for(one) != b"one" and len(key_for(one)) == 32  # derived, never the secret itself
    assert unseal(key_for(one), None) is None and unseal(key_for(one), 12) is None


def test_source_channel_is_validated_and_lengths_hold_on_both_databases(h: Harness, engine: Engine) -> None:
    resp = h.driver.slash("/ask-finance", "Long channel id", user_id=DAVE, channel_id="C" + "X" * 40)
    assert resp.status == 200
    req = h.wait(lambda: next(iter(_requests(h)), None))
    assert load(h, req.id).source_channel is None  # not a channel id: dropped, never cut or stored
    checked = 0
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if _varchar(column):
                _assert_refused(engine, table, column)
                checked += 1
    assert checked >= 30
    with pytest.raises(DBAPIError), engine.begin() as conn:  # updates are checked too
        conn.execute(sa.update(Request.__table__).values(source_channel="C" * 33))  # type: ignore[arg-type]


def _varchar(column: sa.Column) -> bool:  # type: ignore[type-arg]
    kind = getattr(column.type, "impl", column.type)  # SQLModel's AutoString wraps String
    return isinstance(kind, sa.String) and bool(getattr(kind, "length", None))


def _minimal(conn: Any, table: sa.Table, counter: Iterator[int]) -> dict[str, Any]:
    """Values for the table's required columns; a row is inserted into each table a foreign key names."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.nullable or (column.primary_key and isinstance(column.type, sa.Integer)):
            continue
        fk = next(iter(column.foreign_keys), None)
        if fk is not None:
            parent = fk.column.table
            row[column.name] = conn.execute(parent.insert().values(**_minimal(conn, parent, counter))
                                            .returning(fk.column)).scalar_one()
            continue
        python = getattr(column.type, "impl", column.type).python_type
        row[column.name] = {datetime: datetime.now(UTC), int: 1, bool: False, dict: {}, list: []}.get(
            python, str(next(counter)))
    return row


def _assert_refused(engine: Engine, table: sa.Table, column: sa.Column) -> None:  # type: ignore[type-arg]
    length = column.type.length  # type: ignore[attr-defined]
    for value, refused in (("y" * (length + 1), True), ("y" * length, False)):  # exactly the length is fine
        with engine.connect() as conn:
            conn.begin()
            row = {**_minimal(conn, table, itertools.count(1)), column.name: value}
            if refused:
                with pytest.raises(DBAPIError):
                    conn.execute(table.insert().values(**row))
            else:
                conn.execute(table.insert().values(**row))
            conn.rollback()
