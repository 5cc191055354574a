"""Needs-survey invitations are sent exactly once: across a crash between the post and its record, a
planning job run twice, and two instances working the same outbox at the same time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from bot.config import Settings
from bot.runtime.jobs import build_deps
from bot.services import needs
from slacksim.simulator import SlackSimulator
from storage import jobs as job_queries
from storage import needs as queries
from storage.engine import make_engine
from storage.session import session_scope
from tests.conftest import Harness, make_settings
from tests.needs_helpers import AUDIENCE, STAFF, add_audience, dms, invitations, needs_config, rounds, start_clock, tick

CROWD = [f"U0C{i:03d}" for i in range(40)]


@pytest.fixture
def settings(sim: SlackSimulator, db_url: str) -> Settings:
    add_audience(sim)
    for user in CROWD:
        sim.add_user(user, name=user.lower(), tz="Europe/London")
        sim.channels[STAFF].members.append(user)
    return make_settings(sim, db_url, config=needs_config(needs_survey="off"))


@pytest.fixture
def h(h: Harness) -> Iterator[Harness]:
    start_clock(h)
    yield h
    assert h.scheduler is not None
    h.scheduler.stop(wait=False)


def _team(h: Harness):  # noqa: ANN202 - the configured Finance team
    team = h.deps.settings.team("finance")
    assert team is not None
    return team


def test_a_crash_between_the_post_and_its_record_is_reconciled_into_one_dm(h: Harness, monkeypatch) -> None:
    started = needs.start_round(h.deps, _team(h))
    h.deps.outbox.kick([started.job])
    real = queries.mark_invitation_sent
    crashed: list[int] = []

    def crash_once(*args, **kwargs):  # noqa: ANN202
        if not crashed and kwargs.get("invitation_id") is not None:
            crashed.append(kwargs["invitation_id"])
            raise RuntimeError("the database went away right after the post")
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "mark_invitation_sent", crash_once)
    tick(h)
    assert crashed
    victim = next(u for u, i in invitations(h, started.round_id).items() if i.id == crashed[0])
    assert invitations(h, started.round_id)[victim].status == "sending" and len(dms(h, victim)) == 1
    h.clock.advance(hours=1)
    tick(h, 2)
    invitation = invitations(h, started.round_id)[victim]
    assert invitation.status == "sent" and len(dms(h, victim)) == 1 and invitation.ts == dms(h, victim)[0]["ts"]
    assert all(len(dms(h, u)) == 1 for u in [*AUDIENCE, *CROWD])


def test_planning_twice_invites_each_person_once(h: Harness) -> None:
    started = needs.start_round(h.deps, _team(h))
    again = needs.start_round(h.deps, _team(h))  # started twice: the open round, nothing new
    assert (again.created, again.round_id, again.key, again.job) == (False, started.round_id, started.key, None)
    assert len(rounds(h)) == 1
    h.deps.outbox.kick([started.job])
    with session_scope(h.deps.engine) as s:  # the planning job runs again (a crash before it finished)
        job = job_queries.get_by_key(s, key=f"needs_plan:{started.round_id}")
        assert job is not None and job.status == "done"
    needs.plan(h.deps, {"round_id": started.round_id}, job_queries.leased(
        0, kind="needs_plan", key="x", payload=None, owner=h.deps.instance_id, until=h.clock()))
    people = invitations(h, started.round_id)
    assert set(people) == {*AUDIENCE, *CROWD}
    with session_scope(h.deps.engine) as s:
        counts = job_queries.counts_by_status(s)
    assert counts.get(("needs_invite", "pending")) == len(people)


def test_two_instances_send_every_invitation_exactly_once(h: Harness) -> None:
    other_engine = make_engine(h.deps.settings.database_url)
    other = build_deps(h.deps.settings, other_engine, now=h.clock, workers=4)
    try:
        barrier = threading.Barrier(2)

        def open_rounds(deps) -> None:  # noqa: ANN001 - both instances' clocks call for the same round
            barrier.wait()
            needs.start_round(deps, _team(h), scheduled=needs.period_of("quarterly", h.clock(), "Europe/Berlin"))

        threads = [threading.Thread(target=open_rounds, args=(d,)) for d in (h.deps, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(rounds(h)) == 1
        h.clock.advance(seconds=11)
        h.deps.outbox.tick()  # plans
        barrier = threading.Barrier(2)

        def drain(deps) -> None:  # noqa: ANN001
            barrier.wait()
            for _ in range(5):
                deps.outbox.tick(limit=7)

        threads = [threading.Thread(target=drain, args=(d,)) for d in (h.deps, other)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        people = [*AUDIENCE, *CROWD]
        assert all(len(dms(h, u)) == 1 for u in people), [u for u in people if len(dms(h, u)) != 1]
        assert {i.status for i in invitations(h, rounds(h)[0].id).values()} == {"sent"}
    finally:
        other.outbox.stop()
        other_engine.dispose()


def test_many_unknown_time_zones_are_read_in_pages_and_bots_and_deactivated_people_are_left_out(
        h: Harness) -> None:
    for i in range(30):
        h.sim.add_user(f"U0M{i:03d}", name=f"m{i}", tz="Asia/Tokyo")
        h.sim.channels[STAFF].members.append(f"U0M{i:03d}")
    h.sim.add_user("U0GONE", name="gone", tz="UTC", deleted=True)
    h.sim.add_user("U0ROBOT", name="robot", tz="UTC", is_bot=True)
    h.sim.channels[STAFF].members += ["U0GONE", "U0ROBOT"]
    started = needs.start_round(h.deps, _team(h))
    h.sim.reset_calls()
    h.deps.outbox.kick([started.job])
    people = invitations(h, started.round_id)
    assert len(people) == len(AUDIENCE) + len(CROWD) + 30 and "U0GONE" not in people and "U0ROBOT" not in people
    assert len(h.sim.calls_to("users.list")) == 1 and h.sim.calls_to("users.info") == []
    from storage.models import Person

    with session_scope(h.deps.engine) as s:
        assert s.get(Person, "U0M007").tz == "Asia/Tokyo"
