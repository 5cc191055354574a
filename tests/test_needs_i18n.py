"""Needs surveys in each reader's language (issues 16 and 17), through the real app and the Slack simulator:
a Chinese-speaking person gets the invitation, the nh.questionnaire, the "we did" DM and the next round's
"Last time you told us …" in Chinese while English speakers keep English; a team whose channel language is
Chinese gets its needs report in Chinese (leadership keeps the workspace's language); modal titles fit."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.config import Settings, Team
from bot.i18n import catalogs, translator
from bot.render import needs_blocks, needs_report_blocks
from bot.render.ids import Action, Block, Callback
from bot.services import needs
from slacksim.simulator import SlackSimulator
from storage import needs as queries
from storage.models import NeedsAction, NeedsInvitation, NeedsRound, NeedsTheme
from storage.session import session_scope
from tests import needs_helpers as nh
from tests.conftest import ALICE, FINANCE_CH, Harness, make_settings
from tests.test_needs import job_status, open_round

EN, ZH = translator("en"), translator("zh-CN")
CJK = re.compile(r"[\u4e00-\u9fff]")
NEEDS_SOURCES = ("bot/render/needs_blocks.py", "bot/render/needs_report_blocks.py", "bot/render/needs_text.py",
                 "bot/services/needs.py", "bot/services/needs_invites.py", "bot/services/needs_actions.py",
                 "handlers/needs.py")


@pytest.fixture
def settings(sim: SlackSimulator, db_url: str) -> Settings:
    nh.add_audience(sim)
    sim.add_user(nh.P2, name="p2", tz="Europe/Berlin", locale="zh-CN")  # P2's Slack is set to Chinese
    return make_settings(sim, db_url, config=nh.needs_config(locale="zh-CN"))  # Finance's channel speaks Chinese


@pytest.fixture
def h(h: Harness) -> Iterator[Harness]:
    yield from nh.clocked(h)


def test_each_person_reads_the_needs_survey_in_their_language(h: Harness) -> None:
    rnd = open_round(h)
    invited = nh.invitations(h, rnd.id)
    zh_dm, en_dm = nh.dms(h, nh.P2)[0], nh.dms(h, nh.P1)[0]
    assert "想了解与他们合作的情况" in nh.shown(zh_dm) and "总体而言，你对与Finance的合作有多满意？" in nh.shown(zh_dm)
    assert "would like to know" not in nh.shown(zh_dm)
    assert "would like to know how working with them is going" in nh.shown(en_dm) and not CJK.search(nh.shown(en_dm))

    # the nh.questionnaire opens in the reader's language
    nh.click(h, nh.P2, Action.NEEDS_MORE.value, str(invited[nh.P2].id), zh_dm, h.sim.dm_channel_for(nh.P2))
    nh.click(h, nh.P1, Action.NEEDS_MORE.value, str(invited[nh.P1].id), en_dm, h.sim.dm_channel_for(nh.P1))
    def questionnaires() -> list[dict[str, object]] | None:
        found = [v for v in h.sim.opened_views if v.get("callback_id") == Callback.NEEDS_MODAL.value]
        return found if len(found) >= 2 else None

    titles = sorted(v["title"]["text"] for v in h.wait(questionnaires))  # type: ignore[index]
    assert titles == ["Needs survey", "需求调研"]
    # a validation error in Chinese
    empty = h.driver.view_submission(user_id=nh.P2, callback_id=Callback.NEEDS_MODAL.value,
                                     private_metadata=str(invited[nh.P2].id), values={})
    assert "请选择一个分数或写下回答" in json.loads(empty.body)["errors"][Block.NEEDS_OBSTACLE]
    # the thanks, in the DM brought up to date
    nh.submit(h, nh.P2, invited[nh.P2].id, nh.questionnaire(overall="4", obstacle="报销审批太慢"))
    h.wait(lambda: "谢谢！" in nh.shown(h.sim.messages(h.sim.dm_channel_for(nh.P2))[-1]))
    # a nh.click on someone else's survey is refused in the clicker's language
    nh.click(h, nh.P2, "needs_score_3", str(invited[nh.P1].id), en_dm, h.sim.dm_channel_for(nh.P1))
    h.wait(lambda: "你的点击没有改变任何内容" in replies(h))


def replies(h: Harness) -> str:
    """Everything said to people through response_url, decoded."""
    return "\n".join(json.dumps(p.body, ensure_ascii=False) for p in h.sim.response_posts)


def _close(h: Harness, rnd: NeedsRound) -> None:
    invited = nh.invitations(h, rnd.id)
    for user, words in ((nh.P1, "The expense report tool is confusing"), (nh.P2, "Expense report approvals are slow"),
                        (nh.P3, "My expense report status is never clear")):
        nh.submit(h, user, invited[user].id, nh.questionnaire(overall="4", obstacle=words))
    h.clock.set(rnd.closes_at + timedelta(minutes=1))
    nh.tick(h, 3)
    h.wait(lambda: nh.posts(h, FINANCE_CH, "askdesk_needs_report") and nh.posts(h, nh.LEADS, "askdesk_needs_report"))


def test_the_report_speaks_the_channels_language_and_we_did_each_persons(h: Harness) -> None:
    rnd = open_round(h)
    _close(h, rnd)
    team_post = nh.posts(h, FINANCE_CH, "askdesk_needs_report")[0]
    leads_post = nh.posts(h, nh.LEADS, "askdesk_needs_report")[0]
    assert "需求调研 2026-Q1 · Finance" in nh.shown(team_post) and "回复率" in nh.shown(team_post)
    assert "3 人" in nh.shown(team_post) and "记录改进行动" in nh.shown(team_post)
    assert "Needs survey 2026-Q1 · Finance" in nh.shown(leads_post) and "3 people" in nh.shown(leads_post)
    assert not CJK.search(nh.shown(leads_post).replace("Finance", ""))

    with session_scope(h.deps.engine) as s:
        theme = queries.themes_of(s, round_id=rnd.id)[0]
    nh.click(h, ALICE, Action.NEEDS_ACTION_NEW.value, str(rnd.id), team_post, FINANCE_CH)
    view = h.wait(lambda: [v for v in h.sim.opened_views if "needs_action" in str(v)])[0]
    assert "Improvement action" in str(view)  # Alice reads English, whatever the channel speaks
    h.driver.view_submission(
        user_id=ALICE, callback_id=Callback.NEEDS_ACTION_MODAL.value, private_metadata=f'{{"round": {rnd.id}}}',
        values={Block.ACTION_TITLE: {"value": {"type": "plain_text_input", "value": "One page of expense rules"}},
                Block.ACTION_THEME: {"value": {"type": "static_select", "selected_option": {"value": str(theme.id)}}}})
    card = h.wait(lambda: nh.posts(h, FINANCE_CH, "askdesk_needs_action"))[0]
    assert "改进行动" in nh.shown(card) and "已计划" in nh.shown(card)  # the card is a channel post: Chinese
    with session_scope(h.deps.engine) as s:
        action = queries.actions_of(s, team="finance")[0]
    h.driver.view_submission(user_id=ALICE, callback_id=Callback.NEEDS_DONE_MODAL.value,
                             private_metadata=str(action.id), values={})
    h.wait(lambda: job_status(h, f"needs_action_announce:{action.id}") == "done")
    nh.tick(h, 2)
    zh_done = h.wait(lambda: nh.dms(h, nh.P2, "askdesk_needs_done"))[0]
    en_done = h.wait(lambda: nh.dms(h, nh.P1, "askdesk_needs_done"))[0]
    assert "你们提的，我们做了——Finance" in nh.shown(zh_done)
    assert "我们做了：*One page of expense rules*" in nh.shown(zh_done)
    assert "You said, we did — Finance" in nh.shown(en_done) and not CJK.search(nh.shown(en_done))

    # the next round opens with what was done, in each reader's language
    team = h.deps.settings.team("finance")
    assert team is not None
    needs.start_round(h.deps, team)
    h.clock.advance(seconds=11)
    nh.tick(h, 2)
    zh_next = h.wait(lambda: [m for m in nh.dms(h, nh.P2) if "上次你们告诉我们" in nh.shown(m)])[0]
    assert "我们做了：One page of expense rules。" in nh.shown(zh_next)
    en_next = h.wait(lambda: [m for m in nh.dms(h, nh.P1) if "Last time you told us" in nh.shown(m)])[0]
    assert "We did: One page of expense rules." in nh.shown(en_next)


def test_askdesk_action_answers_in_the_askers_language(h: Harness, sim: SlackSimulator) -> None:
    sim.add_user("U0ZHLEAD", name="zhlead", tz="Asia/Shanghai", locale="zh-CN")
    resp = h.driver.slash("/askdesk", "action nosuchteam", user_id="U0ZHLEAD")
    assert resp.status == 200
    h.wait(lambda: "我不认识团队 `nosuchteam`" in replies(h))
    h.driver.slash("/askdesk", "action finance", user_id=ALICE)
    h.wait(lambda: "Finance has no closed needs-survey round yet" in replies(h))


# -- builders: titles fit, nothing left in English ---------------------------------------------------
NOW = datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
TEAM = Team(slug="finance", name="Finance", channel="C0FINANCE", command="/ask-finance")
ROUND = NeedsRound(id=1, team="finance", key="2026-Q1", cadence="quarterly", opens_at=NOW,
                   closes_at=NOW + timedelta(days=14), audience_start=NOW, audience_end=NOW, status="reported")
INVITATION = NeedsInvitation(id=5, round_id=1, user_id=nh.P1, source="audience", status="sent")
ACTION = NeedsAction(id=3, team="finance", round_id=1, title="One page of rules", status="planned",
                     created_by=ALICE, created_at=NOW, updated_at=NOW, due_on=date(2026, 2, 1))


@pytest.mark.parametrize("t", [EN, ZH], ids=["en", "zh-CN"])
def test_every_needs_modal_title_and_button_fits_slacks_24_characters(t: object) -> None:
    views = [needs_blocks.survey_modal(INVITATION, TEAM, None, threshold=3, t=t),  # type: ignore[arg-type]
             needs_report_blocks.action_modal(ROUND, TEAM, [NeedsTheme(id=1, round_id=1, rank=1, label="expense",
                                                                       terms="[]", people=3, quotes="[]")],
                                              user=ALICE, t=t),  # type: ignore[arg-type]
             needs_report_blocks.done_modal(ACTION, t)]  # type: ignore[arg-type]
    for view in views:
        data = view.to_dict()
        for key in ("title", "submit", "close"):
            text = data[key]["text"]
            assert len(text) <= 24 and not text.endswith("…"), text  # the translation itself fits, uncut
        if t is ZH:
            assert CJK.search(data["title"]["text"])


def test_the_opening_sentence_is_one_translated_sentence_and_old_plain_intros_still_show() -> None:
    stored = needs_blocks.intro_data(["expense report", "报销"], ["One page of rules", "Faster approvals"])
    assert needs_blocks.intro_text(stored, EN) == ("Last time you told us: expense report; 报销. "
                                                    "We did: One page of rules; Faster approvals.")
    assert needs_blocks.intro_text(stored, ZH) == ("上次你们告诉我们：expense report；报销。"
                                                    "我们做了：One page of rules；Faster approvals。")
    assert needs_blocks.intro_text(needs_blocks.intro_data([], ["X"]), ZH) == "上次调研之后，我们做了：X。"
    assert needs_blocks.intro_data(["a"], []) is None
    assert needs_blocks.intro_text("Last time you told us: a. We did: b.", ZH) == "Last time you told us: a. We did: b."


def test_every_message_of_the_needs_code_has_a_chinese_translation() -> None:
    source = catalogs.extract()
    ids = [m for m in source if m.id and any(path in NEEDS_SOURCES for path, _ in m.locations)]
    assert len(ids) > 100  # the needs feature's sentences really are extracted
    po = catalogs.read(catalogs.catalog_path("zh-CN", ".po"), "zh_CN")
    missing = [m.id for m in ids if not (found := po.get(m.id[0] if isinstance(m.id, tuple) else m.id))
               or not all(found.string if isinstance(found.string, tuple) else (found.string,))]
    assert not missing
    for message in ids:  # and the Chinese really is Chinese (not the English copied)
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        found = po.get(key)
        texts = found.string if isinstance(found.string, tuple) else (found.string,)
        if re.search(r"[A-Za-z]{4,}", re.sub(r"\{[^}]*\}|`[^`]*`|:[a-z_]+:|SLA|CSAT", "", key)):
            assert all(CJK.search(text) for text in texts), key
