"""Demo part 2: emoji ratings and pulse surveys (short delays in the built-in demo config)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bot.render.ids import Block, Callback

if TYPE_CHECKING:
    from bot.demo.run import Demo

DAVE, PRIYA, LI, ALICE, MALLORY = "U0DAVE", "U0PRIYA", "U0LI", "U0ALICE", "U0MALLORY"


def _survey_message(demo: Demo, user: str, request_id: int) -> dict | None:
    """The survey DM `user` got about request `request_id` (it names the request as "#<id> ·")."""
    for message in demo.sim.messages(demo.sim.dm_channel_for(user)):
        if (message.get("metadata") or {}).get("event_type") == "askdesk_survey" and \
                f"#{request_id} ·" in str(message.get("blocks")):
            return message
    return None


def _survey_id(message: dict) -> str:
    return str(message["metadata"]["event_payload"]["ref"])


def feedback_scenario(demo: Demo) -> None:
    from bot.services.requests import get_request

    demo.print("\n━━ 6. Rating the help with one emoji ━━")
    first = get_request(demo.deps, 1)
    assert first is not None and first.dm_channel and first.triage_ts
    demo.step(DAVE, "reacts :+1::skin-tone-3: to his DM about #1 (counts as :+1: → 5)")
    demo.driver.event(demo.driver.reaction_added(DAVE, "+1::skin-tone-3", first.dm_channel, first.dm_ts))
    demo.step(ALICE, "reacts :heart_eyes: to #1 in the triage channel (a peer reaction: never the customer's score)")
    demo.driver.event(demo.driver.reaction_added(ALICE, "heart_eyes", "C0FINANCE", first.triage_ts))
    demo.step(PRIYA, "reacts :slightly_smiling_face: to her DM about #3 (→ 4)")
    third = get_request(demo.deps, 3)
    assert third is not None and third.dm_channel
    demo.driver.event(demo.driver.reaction_added(PRIYA, "slightly_smiling_face", third.dm_channel, third.dm_ts))
    demo.show()
    from bot.services.ratings import rating_of

    demo.print(f"  (stored: #1 rated {rating_of(demo.deps, 1)} by its requester; #3 rated {rating_of(demo.deps, 3)})")

    demo.print("\n━━ 7. Pulse surveys arrive by DM a little after resolution (2 s in the demo) ━━")
    deadline = time.monotonic() + 30
    wanted = ((DAVE, 1), (PRIYA, 3), (LI, 2))
    while time.monotonic() < deadline and not all(_survey_message(demo, u, r) for u, r in wanted):
        time.sleep(0.2)
    demo.show()
    dave, priya, li = (_survey_message(demo, u, r) for u, r in wanted)
    if not (dave and priya and li):
        demo.print("  ✗ surveys did not arrive in time")
        return
    def press(user: str, action_id: str, survey: dict, owner: str, what: str) -> None:
        """`user` presses a button on the survey DM that `owner` received."""
        demo.step(user, what)
        demo.driver.block_action(user_id=user, action_id=action_id, value=_survey_id(survey),
                                 channel_id=demo.sim.dm_channel_for(owner), message_ts=survey["ts"])
        demo.show()

    press(DAVE, "survey_score_5", dave, DAVE, "clicks [5] in his survey — one click is a complete answer")
    press(LI, "survey_score_4", li, LI, "clicks [4]")
    press(MALLORY, "survey_score_1", dave, DAVE,
          "tries to click [1] on Dave's survey (forged) — refused, nothing changes")
    press(PRIYA, "survey_more", priya, PRIYA,
          "clicks [Tell us more…], rates the four dimensions and leaves an anonymous comment")

    def pick(value: str) -> dict:
        return {"value": {"type": "static_select", "selected_option": {"value": value}}}

    demo.driver.view_submission(user_id=PRIYA, callback_id=Callback.SURVEY_MODAL.value,
                                private_metadata=_survey_id(priya), values={
                                    Block.OVERALL: pick("4"), f"{Block.DIMENSION}_responsiveness": pick("5"),
                                    f"{Block.DIMENSION}_clarity": pick("4"),
                                    f"{Block.DIMENSION}_transparency": pick("3"),
                                    f"{Block.DIMENSION}_support": pick("5"),
                                    Block.COMMENT: {"value": {"type": "plain_text_input",
                                                              "value": "Quick fix, but tell us when the VPN changes."}},
                                    Block.ANONYMOUS: {"value": {"type": "checkboxes", "selected_options": [
                                        {"value": "anonymous"}]}}})
    demo.show()
