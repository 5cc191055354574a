"""The scripted day at a small company that `askdesk demo` plays through."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bot.demo.digest import digest_scenario
from bot.demo.feedback import feedback_scenario
from bot.demo.needs import needs_scenario
from bot.demo.run import Demo
from bot.render.ids import Action, Block, Callback

DAVE, PRIYA, LI, ALICE, BOB, CAROL, HANNAH, MALLORY = (
    "U0DAVE", "U0PRIYA", "U0LI", "U0ALICE", "U0BOB", "U0CAROL", "U0HANNAH", "U0MALLORY")


def request_loop(demo: Demo) -> None:
    demo.print("━━ 1. Asking for help ━━")
    demo.slash(DAVE, "/ask-finance", "Why was my March expense report rejected?")
    demo.slash(LI, "/ask-finance", "报销发票怎么提交？需要纸质发票吗？")
    forms = len(demo.sim.opened_views)
    demo.slash(PRIYA, "/ask-it", "")
    demo.step(PRIYA, "fills in the form and presses [Send]")
    demo.driver.view_submission(user_id=PRIYA, callback_id=Callback.REQUEST_MODAL.value,
                                private_metadata=_form_metadata(demo, forms), values={
                                    Block.SUMMARY: {"value": {"type": "plain_text_input",
                                                              "value": "VPN keeps disconnecting"}},
                                    Block.DETAILS: {"value": {"type": "plain_text_input",
                                                              "value": "Every 10 minutes since Monday."}},
                                    Block.CATEGORY: {"value": {"type": "static_select",
                                                               "selected_option": {"value": "Access"}}},
                                    Block.URGENCY: {"value": {"type": "radio_buttons",
                                                              "selected_option": {"value": "high"}}}})
    demo.show()
    demo.slash(DAVE, "/ask-legal", "Can you review this NDA?")

    demo.print("\n━━ 2. The teams respond ━━")
    demo.click(ALICE, Action.CLAIM.value, 1, label="Claim")
    demo.step(BOB, "replies in the thread of #2: “Upload the PDF invoice in the expense tool.”")
    from bot.services.requests import get_request

    second = get_request(demo.deps, 2)
    assert second is not None
    demo.driver.event(demo.driver.message_event(BOB, "C0FINANCE", "Upload the PDF invoice in the expense tool.",
                                                thread_ts=second.triage_ts))
    demo.show()
    demo.click(MALLORY, Action.CLAIM.value, 2, label="Claim")
    demo.click(CAROL, Action.CLAIM.value, 3, label="Claim")
    demo.click(CAROL, Action.RESOLVE.value, 3, label="Resolve")

    demo.print("\n━━ 3. A request for the wrong team is transferred ━━")
    demo.slash(DAVE, "/ask-finance", "My laptop won't boot after the update")
    demo.click(BOB, Action.TRANSFER.value, 4, label="Transfer")
    demo.step(BOB, "picks IT, adds a note and presses [Transfer]")
    demo.driver.view_submission(user_id=BOB, callback_id=Callback.TRANSFER_MODAL.value, private_metadata="4",
                                values={Block.TRANSFER_TEAM: {"value": {"type": "static_select",
                                                                        "selected_option": {"value": "it"}}},
                                        Block.TRANSFER_NOTE: {"value": {"type": "plain_text_input",
                                                                        "value": "Hardware — yours!"}}})
    demo.show()
    demo.click(CAROL, Action.RESOLVE.value, 4, label="Resolve")

    demo.print("\n━━ 4. Resolved, reopened, resolved again ━━")
    demo.click(ALICE, Action.RESOLVE.value, 1, label="Resolve")
    demo.click(DAVE, Action.REOPEN.value, 1, where="dm", label="Reopen")
    demo.click(ALICE, Action.RESOLVE.value, 1, label="Resolve")
    demo.click(BOB, Action.RESOLVE.value, 2, label="Resolve")

    demo.print("\n━━ 5. A question from a channel becomes a request (message shortcut) ━━")
    demo.step(PRIYA, "uses “Ask a team about this” on a message in #general")
    forms = len(demo.sim.opened_views)
    demo.driver.message_shortcut(user_id=PRIYA, callback_id=Callback.SHORTCUT.value, channel_id="C0GENERAL",
                                 message={"ts": "1764000000.000100", "user": DAVE,
                                          "text": "How many vacation days roll over to next year?"})
    demo.show()
    demo.step(PRIYA, "picks People and presses [Send]")
    demo.driver.view_submission(user_id=PRIYA, callback_id=Callback.REQUEST_MODAL.value,
                                private_metadata=_form_metadata(demo, forms), values={
                                    Block.TEAM: {"value": {"type": "static_select",
                                                           "selected_option": {"value": "people"}}},
                                    Block.SUMMARY: {"value": {"type": "plain_text_input",
                                                              "value": "How many vacation days roll over?"}}})
    demo.show()
    demo.step(HANNAH, "opens the askdesk App Home")
    demo.driver.event(demo.driver.app_home_opened(HANNAH))
    demo.show()


def _form_metadata(demo: Demo, before: int) -> str:
    """The metadata of the request form askdesk opened after `before` views (it opens after the ack: wait)."""
    def request_form() -> dict | None:
        for view in demo.sim.opened_views[before:]:
            view = view.get("view", view)
            if view.get("callback_id") == Callback.REQUEST_MODAL.value:
                return view
        return None
    return str(demo.sim.wait_for(request_form, timeout=15.0).get("private_metadata", ""))


def run_scenario(demo: Demo) -> None:
    demo.print("askdesk demo — the real app, a local Slack simulator, signed requests, SQLite.\n")
    request_loop(demo)
    feedback_scenario(demo)
    needs_scenario(demo)
    digest_scenario(demo)
    calls = demo.sim.calls
    demo.print(f"\nDone: {len(calls)} Web API calls to the simulator, "
               f"{sum(1 for c in calls if not c.ok)} answered with an error on purpose or by the fake.")


def run_demo(out_dir: str = "demo-out", keep: bool = False, printer: Callable[[str], None] = print) -> int:
    from bot.runtime.logs import setup_logging

    setup_logging("WARNING")
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    demo = Demo(out, printer)
    demo.start()
    try:
        run_scenario(demo)
    finally:
        demo.stop()
        if not keep:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{out / 'demo.db'}{suffix}").unlink(missing_ok=True)
    return 0
