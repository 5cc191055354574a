"""The SLA builders in both languages (issue 15 x issue 16): every message and modal reads fully in
English and in Chinese, and the due phrases follow the reader's language."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.render import blocks, sla_blocks
from bot.render.sla_text import SlaView, due_phrase
from tests.test_i18n import CJK, DATA, EN, FINANCE, NOW, ZH, _request, _texts


def _builders(t: Any) -> dict[str, Any]:
    req, assigned = _request(), _request(assignee_id="U0BOB")
    waiting = _request(waiting_since=NOW, dm_ts="1.2", dm_channel="D0LI")
    view = SlaView(now=NOW, deadlines=(("first_response", NOW + timedelta(minutes=25)),
                                       ("resolution", NOW - timedelta(hours=2))))
    return {
        "reminder": sla_blocks.reminder_message(req, sla="first_response", due_at=NOW + timedelta(minutes=7),
                                                now=NOW, t=t),
        "reminder resolution": sla_blocks.reminder_message(assigned, sla="resolution", due_at=NOW, now=NOW, t=t),
        "escalation": sla_blocks.escalation_message(req, FINANCE, sla="first_response", now=NOW, target="30m",
                                                    due_at=NOW - timedelta(minutes=3), link="https://x/p1", t=t),
        "escalation resolution": sla_blocks.escalation_message(assigned, FINANCE, sla="resolution", now=NOW,
                                                               target="1d", due_at=NOW, link=None, t=t),
        "assigned": sla_blocks.assigned_message(req, FINANCE, by="U0ALICE", link="https://x/p1", t=t),
        "assigned in turn": sla_blocks.assigned_message(req, FINANCE, by=None, link=None, t=t),
        "question": sla_blocks.question_message(req, FINANCE, by="U0BOB", question="哪张发票？", t=t),
        "question note": sla_blocks.question_note(req, by="U0BOB", question="哪张发票？", t=t),
        "answer note": sla_blocks.answer_note(req, answer="", t=t),
        "loading": sla_blocks.loading_modal(_request(id=2_000_000_000), t=t),
        "notice": sla_blocks.notice_modal(req, text=t._("Assign"), t=t),
        "picker": sla_blocks.assign_modal(req, FINANCE, [("U0BOB", "鲍勃")], t=t),
        "picker empty": sla_blocks.assign_modal(req, FINANCE, [], t=t),
        "ask": sla_blocks.ask_modal(_request(id=2_000_000_000), t=t),
        "reply": sla_blocks.reply_modal(_request(id=2_000_000_000), FINANCE, t=t),
        "triage with deadlines": blocks.triage_message(req, FINANCE, t=t, sla=view),
        "triage waiting": blocks.triage_message(waiting, FINANCE, t=t, sla=SlaView(now=NOW, waiting_since=NOW)),
        "dm waiting": blocks.dm_status_message(waiting, FINANCE, t=t, triage_link=None),
        "home": blocks.home_view(t=t, mine=[waiting], queues=[(FINANCE, [req], 1)], team_names={"finance": "Finance"},
                                 sla={12: view}, availability=[(FINANCE, True), (FINANCE, False)]),
    }


@pytest.mark.parametrize("name", list(_builders(EN)))
def test_every_sla_builder_speaks_both_languages(name: str) -> None:
    english, chinese = _texts(_builders(EN)[name]), _texts(_builders(ZH)[name])
    assert english != chinese and re.search(r"[A-Za-z]{3,}", DATA.sub("", english)), name
    assert CJK.search(re.sub("报销发票怎么提交|工程部|哪张发票", "", chinese)), f"{name}: nothing translated"
    leftover = re.findall(r"[A-Za-z]{2,}", DATA.sub("", chinese).replace("SLA", "").replace("askdesk", ""))
    assert not leftover, f"{name}: English left in the Chinese rendering: {leftover}"
    built = _builders(ZH)[name]
    if isinstance(built, View):
        view = built.to_dict()  # slack_sdk validates every length
        assert all(len(view[k]["text"]) <= 24 for k in ("title", "submit", "close") if k in view)


def test_due_phrases_follow_the_language() -> None:
    soon, late = NOW + timedelta(minutes=25), NOW - timedelta(hours=2)
    assert due_phrase(soon, NOW, EN) == "due in 25m" and due_phrase(late, NOW, EN) == "overdue 2h"
    assert due_phrase(NOW + timedelta(seconds=10), NOW, EN) == "due now"
    assert due_phrase(soon, NOW, ZH) == "还剩 25分钟" and due_phrase(late, NOW, ZH) == "已超时 2小时"
