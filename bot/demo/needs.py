"""Demo part 3 (after the feedback): a needs-survey round (short in the demo), its report, an improvement action from
recorded to done, and the quarter's scorecard."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.render.ids import Action, Block, Callback
from bot.render.needs_blocks import score_block

if TYPE_CHECKING:
    from bot.demo.run import Demo

DAVE, PRIYA, LI, ALICE, CAROL, HANNAH, MALLORY, ADMIN = (
    "U0DAVE", "U0PRIYA", "U0LI", "U0ALICE", "U0CAROL", "U0HANNAH", "U0MALLORY", "U0ADMIN")
# Who answers what: four write about expense reports (two in Chinese), one only clicks a score.
ANSWERS = [
    (DAVE, "4", "The expense report tool is confusing", "Publish the expense report rules on one page"),
    (PRIYA, "3", "Expense report approvals take too long", None),
    (CAROL, "5", None, "Tell us when an expense report is approved"),
    (LI, "3", "报销流程太慢，审批要两周", "希望报销进度可以在线查询"),
    (HANNAH, "4", "报销审批不透明", None),
    (ADMIN, "2", "报销流程太复杂", None),
]


def _wait(demo: Demo, predicate: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    return None


def _posts(demo: Demo, channel: str, event_type: str) -> list[dict[str, Any]]:
    return [m for m in demo.sim.messages(channel) if (m.get("metadata") or {}).get("event_type") == event_type]


def _round(demo: Demo, round_id: int) -> Any:
    from storage import needs as queries
    from storage.session import session_scope

    with session_scope(demo.deps.engine) as session:
        return queries.get_round(session, round_id)


def _invitations(demo: Demo, round_id: int) -> dict[str, int]:
    from storage import needs as queries
    from storage.session import session_scope

    with session_scope(demo.deps.engine) as session:
        return {i.user_id: i.id or 0 for i in queries.invitations_of(session, round_id=round_id)}


def _select(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def _text(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def _answer(demo: Demo, user: str, invitation: int, overall: str, obstacle: str | None, start_stop: str | None) -> None:
    values: dict[str, Any] = {score_block("overall"): _select(overall), score_block("communication"): _select(overall),
                              Block.NEEDS_SHARE: {"value": {"type": "checkboxes",
                                                            "selected_options": [{"value": "share"}]}}}
    if obstacle:
        values[Block.NEEDS_OBSTACLE] = _text(obstacle)
    if start_stop:
        values[Block.NEEDS_START_STOP] = _text(start_stop)
    written = " / ".join(t for t in (obstacle, start_stop) if t) or "no written answer"
    demo.step(user, f"answers the questionnaire: {overall} overall — “{written}”")
    demo.driver.view_submission(user_id=user, callback_id=Callback.NEEDS_MODAL.value, private_metadata=str(invitation),
                                values=values)


def needs_scenario(demo: Demo) -> None:
    from bot.render import needs_text
    from bot.services import needs, needs_report, scorecard
    from bot.services.needs_periods import quarter_of
    from storage.session import session_scope

    team = demo.settings.team("finance")
    assert team is not None
    demo.settle()
    demo.print("\n━━ 8. A needs survey: what do Finance's internal customers need? ━━")
    demo.print(f"   (`askdesk needs start --team finance`; the demo's round is open {team.needs_window.seconds} "
               "seconds instead of two weeks. Invited: Finance's requesters and the members of #general, "
               "never Finance's own responders.)")
    started = needs.start_round(demo.deps, team)
    demo.deps.outbox.kick([started.job])
    invited = _wait(demo, lambda: (rnd := _round(demo, started.round_id)) and rnd.planned_at and
                    _invitations(demo, started.round_id))
    _wait(demo, lambda: len([c for c in demo.sim.calls_to("chat.postMessage")
                             if (c.args.get("metadata") or {}).get("event_type") == "askdesk_needs"]) >= len(invited))
    demo.show()

    channel = demo.sim.dm_channel_for(MALLORY)
    demo.step(MALLORY, "clicks [2] in her survey DM — one click is an answer")
    dm = next(m for m in demo.sim.messages(channel) if (m.get("metadata") or {}).get("event_type") == "askdesk_needs")
    demo.driver.block_action(user_id=MALLORY, action_id=f"{Action.NEEDS_SCORE}_2", value=str(invited[MALLORY]),
                             channel_id=channel, message_ts=dm["ts"])
    for user, overall, obstacle, start_stop in ANSWERS:
        _answer(demo, user, invited[user], overall, obstacle, start_stop)
    demo.show()

    demo.print("\n━━ 9. The round closes: the report goes to Finance's channel and to leadership ━━")
    rnd = _wait(demo, lambda: (r := _round(demo, started.round_id)) and r.status == "reported" and r.report_ts and r,
                timeout=team.needs_window.total_seconds() + 60)
    demo.show()
    if not rnd:
        demo.print("  ✗ the round did not close in time")
        return
    with session_scope(demo.deps.engine) as session:
        report = needs_report.build(session, demo.settings, rnd)
    demo.print("\n$ askdesk needs report --team finance")
    demo.print(needs_text.report_text(report, demo.deps.directory.team_translator(team)))

    demo.print("\n━━ 10. You said, we did: an improvement action ━━")
    demo.step(ALICE, "clicks [Record an action] on the report")
    demo.driver.block_action(user_id=ALICE, action_id=Action.NEEDS_ACTION_NEW.value, value=str(rnd.id),
                             channel_id=team.digest_target, message_ts=rnd.report_ts)
    demo.show()
    theme = str(report.themes[0].id) if report.themes else "none"
    demo.step(ALICE, "fills it in and presses [Record]")
    demo.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value,
                                private_metadata=f'{{"round": {rnd.id}}}', values={
                                    Block.ACTION_TITLE: _text("The expense report rules on one page"),
                                    Block.ACTION_THEME: _select(theme),
                                    Block.ACTION_DETAIL: _text("The rules now fit on one page, linked from the "
                                                               "expense tool, with who approves what and when.")})
    card = _wait(demo, lambda: _posts(demo, team.digest_target, "askdesk_needs_action"))
    demo.show()
    demo.step(ALICE, "a week later clicks [Mark done…] on the card and confirms what changed")
    demo.driver.block_action(user_id=ALICE, action_id=Action.NEEDS_ACTION_DONE.value, value=_action_id(demo),
                             channel_id=team.digest_target, message_ts=card[0]["ts"])
    demo.settle()
    demo.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_DONE_MODAL.value,
                                private_metadata=_action_id(demo), values={})
    _wait(demo, lambda: len([c for c in demo.sim.calls_to("chat.postMessage")
                             if (c.args.get("metadata") or {}).get("event_type") == "askdesk_needs_done"])
          >= len(invited))
    demo.show()

    demo.print("\n━━ 11. The internal satisfaction scorecard (this quarter so far) ━━")
    demo.print("$ askdesk scorecard --quarter " + quarter_of(demo.deps.now(), demo.settings.workspace.timezone).key)
    with session_scope(demo.deps.engine) as session:
        card_figures = scorecard.compute(session, demo.settings,
                                         quarter_of(demo.deps.now(), demo.settings.workspace.timezone), demo.deps.now())
    demo.print(needs_text.scorecard_text(card_figures, demo.deps.directory.team_translator(None)))


def _action_id(demo: Demo) -> str:
    from storage import needs as queries
    from storage.session import session_scope

    with session_scope(demo.deps.engine) as session:
        return str(queries.actions_of(session, team="finance")[-1].id)
