"""Events API deliveries are stored atomically with their effect: the event id is recorded in the
transaction that stores the thread reply or the reaction, before the ack. A delivery whose work fails
on the database is answered 503 and not marked seen, so Slack's redelivery is applied; a redelivery
of a stored event is a no-op."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.services import ratings
from storage import feedback as feedback_queries
from storage import requests as request_queries
from storage.models import ProcessedEvent
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, FINANCE_CH, Harness
from tests.feedback_helpers import ask, load, reactions


def recorded(h: Harness, event_id: str) -> bool:
    with session_scope(h.deps.engine) as s:
        return s.get(ProcessedEvent, event_id) is not None


@pytest.fixture
def fail_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any, str], list[int]]]:
    """Make `module.name` raise the error of a dropped database connection on its next call only."""
    def arm(module: Any, name: str) -> list[int]:
        real, calls = getattr(module, name), [0]

        def flaky(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == 1:
                raise OperationalError("SELECT 1", {}, ConnectionError("server closed the connection unexpectedly"))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, flaky)
        return calls
    yield arm


def test_a_thread_reply_that_fails_half_way_is_redelivered_and_applied(
        h: Harness, fail_once: Callable[[Any, str], list[int]]) -> None:
    req = ask(h, "first response must not be lost")
    fail_once(request_queries, "by_message")  # the database drops after the event id was inserted
    reply = h.driver.message_event(ALICE, FINANCE_CH, "on it", thread_ts=req.triage_ts)
    first = h.driver.event(reply, event_id="EvHALFWAY01")
    assert first.status == 503 and first.body == ""  # Slack will deliver it again
    assert not recorded(h, "EvHALFWAY01") and load(h, req.id).first_response_at is None
    again = h.driver.event(reply, event_id="EvHALFWAY01", retry_num=1, retry_reason="http_error")
    assert again.status == 200
    assert load(h, req.id).first_response_at is not None and recorded(h, "EvHALFWAY01")


def test_a_reaction_that_fails_half_way_is_redelivered_and_applied(
        h: Harness, fail_once: Callable[[Any, str], list[int]]) -> None:
    req = ask(h, "rating must not be lost")
    fail_once(feedback_queries, "add_reaction")
    event = h.driver.reaction_added(DAVE, "+1", req.triage_channel, req.triage_ts)
    assert h.driver.event(event, event_id="EvHALFWAY02").status == 503
    assert reactions(h) == [] and not recorded(h, "EvHALFWAY02")
    assert h.driver.event(event, event_id="EvHALFWAY02", retry_num=1, retry_reason="http_error").status == 200
    assert ratings.rating_of(h.deps, req.id) == 5


def test_a_reaction_is_stored_by_the_time_it_is_acknowledged(h: Harness) -> None:
    req = ask(h, "no lazy rating")
    resp = h.driver.event(h.driver.reaction_added(DAVE, "+1", req.dm_channel, req.dm_ts), event_id="EvACKED01")
    assert resp.status == 200
    assert [(r.emoji, r.user_id) for r in reactions(h)] == [("+1", DAVE)]  # no waiting: stored before the ack


def test_a_late_redelivery_never_undoes_a_later_change(h: Harness) -> None:
    req = ask(h, "add, remove, then the add again")
    added = h.driver.reaction_added(DAVE, "+1", req.triage_channel, req.triage_ts)
    assert h.driver.event(added, event_id="EvORDER01").status == 200
    removed = h.driver.reaction_removed(DAVE, "+1", req.triage_channel, req.triage_ts)
    assert h.driver.event(removed, event_id="EvORDER02").status == 200
    assert ratings.rating_of(h.deps, req.id) is None
    assert h.driver.event(added, event_id="EvORDER01", retry_num=2, retry_reason="http_timeout").status == 200
    assert ratings.rating_of(h.deps, req.id) is None and reactions(h) == []
