"""Languages (issue 16): catalogs, locale resolution and formats, every builder in both languages, and a
Chinese-speaking person's /ask through the real app and the Slack simulator."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from slack_sdk.models.views import View
from sqlmodel import select

from bot.config import ConfigError, Team, parse_config
from bot.i18n import N_, Nn_, catalogs, resolve_locale, translator
from bot.render import blocks, feedback_blocks
from bot.render.blocks import Rendered
from storage.models import Person, Request, Survey
from storage.session import session_scope
from tests.conftest import GENERAL, TEST_CONFIG, Harness, make_settings, start_harness

EN, ZH = translator("en"), translator("zh-CN")
CJK = re.compile(r"[\u4e00-\u9fff]")
NOW = datetime(2026, 12, 4, 9, 5, tzinfo=UTC)
FINANCE = Team(slug="finance", name="Finance", channel="C0FINANCE", command="/ask-finance",
               categories=("Expenses", "Payroll"))
PEOPLE = Team(slug="people", name="人事部", channel="C0PEOPLE", command="/ask-people")


# -- catalogs -------------------------------------------------------------------------------------
def test_every_message_id_has_a_zh_cn_translation_with_the_same_placeholders_and_the_mo_is_compiled() -> None:
    problems = catalogs.check()
    assert not problems, "\n".join(map(str, problems))
    assert len(catalogs.extract()) > 100  # the product's sentences really are extracted


def test_the_check_catches_a_missing_translation_and_different_placeholders() -> None:
    source = Catalog()
    source.add("Ask {team}")
    source.add("Request #{id}")
    source.add(("{n} day", "{n} days"))
    translated = Catalog(locale="zh_CN")
    translated.add("Ask {team}", "向{团队}提问")  # a translated placeholder name
    translated.add(("{n} day", "{n} days"), ("{n} 天",))
    found = {(p.msgid, p.what.split(" ")[0]) for p in catalogs.problems(source, "zh-CN", translated)}
    assert found == {("Ask {team}", "placeholders"), ("Request #{id}", "no")}


def test_placeholders_ignore_literal_braces() -> None:
    assert catalogs.placeholders("{a} and {{b}} and {c:>3}") == {"a", "c"}


# -- locales and formats --------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "fallback", "expected"), [
    ("en-US", "en", "en"), ("en-GB", "en", "en"), ("zh-CN", "en", "zh-CN"), ("zh_CN", "en", "zh-CN"),
    ("zh-Hans", "en", "zh-CN"), ("zh-TW", "en", "en"), ("zh-HK", "en", "en"), ("zh-TW", "zh-CN", "zh-CN"),
    ("zh-HK", "zh-CN", "zh-CN"), (None, "en", "en"), ("", "zh-CN", "en"),
])
def test_slack_locales_map_to_supported_ones(raw: str | None, fallback: str, expected: str) -> None:
    assert resolve_locale(raw, default="en", chinese_fallback=fallback) == expected


def test_an_unknown_locale_falls_back_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.i18n"):
        assert resolve_locale("fr-FR", default="zh-CN") == "zh-CN"
        assert resolve_locale("fr-FR", default="en") == "en"
    assert [r.getMessage() for r in caplog.records].count(
        "locale 'fr-FR' is not supported (en, zh-CN); using zh-CN") == 1
    assert len(caplog.records) == 1


def test_values_are_formatted_the_way_each_language_writes_them() -> None:
    assert (EN.fmt_duration(5220), ZH.fmt_duration(5220)) == ("1h 27m", "1小时27分钟")
    assert (EN.fmt_duration(2 * 86400 + 4 * 3600), ZH.fmt_duration(2 * 86400 + 4 * 3600)) == ("2d 4h", "2天4小时")
    assert (EN.fmt_duration(None), ZH.fmt_duration(45)) == ("—", "45秒")
    assert (EN.fmt_date(NOW), ZH.fmt_date(NOW)) == ("4 Dec", "12月4日")
    assert ZH.fmt_date(NOW, "Asia/Shanghai", skeleton="MMMEd") == "12月4日周五"
    assert (EN.fmt_number(12345), EN.fmt_percent(87.4), ZH.fmt_percent(None)) == ("12,345", "87%", "—")
    assert EN.fmt_decimal(4.0) == "4.0"


def test_plural_forms_and_lazy_messages() -> None:
    assert [EN.ngettext("transferred once", "transferred {n} times", n) for n in (1, 3)] == \
        ["transferred once", "transferred 3 times"]
    assert ZH.ngettext("transferred once", "transferred {n} times", 1) == "已转交 1 次"
    moved = N_("#{id} moved to {team}.", id=4, team="IT")
    assert (EN.render(moved), ZH.render(moved)) == ("#4 moved to IT.", "#4 已转给IT。")
    assert ZH.render(Nn_("reopened once", "reopened {n} times", 2)) == "已重新打开 2 次"


def test_locale_keys_in_the_config_are_checked() -> None:
    config = json.loads(json.dumps(TEST_CONFIG))
    config["workspace"].update(locale="zh-CN", chinese_fallback="zh-CN")
    config["teams"][2]["locale"] = "en"
    settings = parse_config("t.toml", config)
    assert (settings["workspace"].locale, settings["workspace"].chinese_fallback) == ("zh-CN", "zh-CN")
    assert [t.locale for t in settings["teams"]] == ["", "", "en"]
    config["teams"][0]["locale"] = "zh-TW"
    with pytest.raises(ConfigError, match=r"teams\[0\].locale.*'en', 'zh-CN'.*zh-TW"):
        parse_config("t.toml", config)


# -- every builder, both languages -----------------------------------------------------------------
def _request(**values: Any) -> Request:
    base = dict(id=12, team="finance", origin_team="finance", requester_id="U0LI", department="工程部",
                summary="报销发票怎么提交？", text="报销发票怎么提交？需要纸质发票吗？", category="Expenses",
                urgency="high", status="open", post_state="posted", created_at=NOW, updated_at=NOW)
    return Request(**{**base, **values})


def _texts(obj: Rendered | View | str) -> str:
    """Every text a person reads in a message, view or string (not ids, values or types)."""
    if isinstance(obj, str):
        return obj
    data: Any = obj.to_dict() if isinstance(obj, View) else [obj.text, obj.as_dicts()]
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    found.append(value)
                elif key not in ("private_metadata", "value", "action_id", "block_id", "url"):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    if isinstance(obj, Rendered):
        found.append(obj.text)
    return "\n".join(found)


# What may stay English in a Chinese message: names from the config and data, emoji codes, links, code.
DATA = re.compile(r":[a-z0-9_+\-]+:|<[^>]*>|`[^`]*`|https?://\S+|(?<![A-Za-z])(Finance|Expenses|Payroll|UTC|IT)(?![A-Za-z])")


def _builders(t: Any) -> dict[str, Rendered | View | str]:
    resolved = _request(status="resolved", resolved_at=NOW, assignee_id="U0BOB", reopen_count=1, transfer_count=2)
    survey = Survey(id=3, request_id=12, user_id="U0LI", team="finance", due_at=NOW, status="sent",
                    expires_at=NOW + timedelta(days=3))
    answered = replace_survey(survey, score=4, clarity=5, comment="很好", answered_at=NOW)
    return {
        "triage": blocks.triage_message(_request(), FINANCE, t=t),
        "triage resolved": blocks.triage_message(resolved, FINANCE, t=t, origin_team=PEOPLE),
        "transferred away": blocks.transferred_away_message(_request(), FINANCE, PEOPLE, t=t),
        "transferred here": blocks.transferred_here_note("U0BOB", "硬件问题", t=t),
        "dm pending": blocks.dm_status_message(_request(post_state="pending"), FINANCE, t=t, triage_link=None),
        "dm failed": blocks.dm_status_message(_request(post_state="failed", post_error="not_in_channel"), FINANCE,
                                              t=t, triage_link="https://x.slack.com/archives/C0FINANCE/p1"),
        "dm resolved": blocks.dm_status_message(resolved, FINANCE, t=t, triage_link=None),
        "confirmation": blocks.confirmation(_request(), FINANCE, t=t, dm_link="https://slack.com/app_redirect?app=A1"),
        "confirmation without link": blocks.confirmation(_request(), FINANCE, t=t, dm_link=None),
        "request modal": blocks.request_modal(t=t, teams=[FINANCE, PEOPLE], team=FINANCE, private_metadata="m.1"),
        "shortcut modal": blocks.request_modal(t=t, teams=[FINANCE, PEOPLE], team=None, permalink="https://x/p1",
                                               private_metadata="m.2"),
        "transfer modal": blocks.transfer_modal(_request(id=2_000_000_000), [FINANCE, PEOPLE], t=t),
        "full text modal": blocks.full_text_modal(_request(id=2_000_000_000), t=t),
        "home": blocks.home_view(t=t, mine=[_request(), resolved], queues=[(FINANCE, [_request()], 40)],
                                 team_names={"finance": "Finance"}),
        "home empty": blocks.home_view(t=t, mine=[], queues=[(FINANCE, [], 0)], team_names={}),
        "unknown command": blocks.unknown_command("/ask-legal", [FINANCE, PEOPLE], t=t),
        "survey open": feedback_blocks.survey_message(survey, _request(), FINANCE, t=t, now=NOW, threshold=5),
        "survey answered": feedback_blocks.survey_message(answered, _request(), FINANCE, t=t, now=NOW, threshold=5),
        "survey closed": feedback_blocks.survey_message(answered, _request(), FINANCE, t=t,
                                                        now=NOW + timedelta(days=4), threshold=5),
        "survey closed unanswered": feedback_blocks.survey_message(survey, _request(), FINANCE, t=t,
                                                                   now=NOW + timedelta(days=4), threshold=5),
        "survey modal": feedback_blocks.survey_modal(answered, _request(), FINANCE, t=t, threshold=5),
    }


def replace_survey(survey: Survey, **values: Any) -> Survey:
    return Survey(**{**survey.model_dump(), **values})


@pytest.mark.parametrize("name", list(_builders(EN)))
def test_every_builder_speaks_both_languages(name: str) -> None:
    english, chinese = _texts(_builders(EN)[name]), _texts(_builders(ZH)[name])
    assert english != chinese
    assert re.search(r"[A-Za-z]{3,}", DATA.sub("", english)), f"{name}: no English"
    data = ("报销发票怎么提交", "工程部", "人事部", "硬件问题", "很好", "这是")
    assert CJK.search(re.sub("|".join(data), "", chinese)), f"{name}: nothing translated"
    leftover = re.findall(r"[A-Za-z]{2,}", DATA.sub("", chinese))
    assert not leftover, f"{name}: English left in the Chinese rendering: {leftover}"


@pytest.mark.parametrize("t", [EN, ZH], ids=["en", "zh-CN"])
def test_modal_titles_and_buttons_fit_slack_limits_untruncated(t: Any) -> None:
    for name, built in _builders(t).items():
        if isinstance(built, View):
            view = built.to_dict()  # slack_sdk validates every length
            for key in ("title", "submit", "close"):
                if key in view:
                    assert len(view[key]["text"]) <= 24 and "…" not in view[key]["text"], (name, key, view[key])


def test_block_kit_limits_count_characters_for_chinese_text() -> None:
    long = _request(text="这是一个很长的问题。" * 500, summary="长" * 400)  # 5000 characters, 15000 bytes
    for t in (EN, ZH):
        message = blocks.triage_message(long, FINANCE, t=t)
        sections = [b["text"]["text"] for b in message.as_dicts() if b["type"] == "section" and "text" in b]
        assert max(len(s) for s in sections) <= 3000 < max(len(s.encode()) for s in sections)
        assert "这是一个很长的问题。" * 200 in sections[0]  # cut by characters: nearly 3000 of them kept
        header = message.as_dicts()[0]["text"]["text"]
        assert len(header) == 150 and header.endswith("…")
    assert "还有 2,200 个字符" in json.dumps(blocks.triage_message(long, FINANCE, t=ZH).as_dicts(), ensure_ascii=False)


# -- the person's language, from Slack, cached with the directory -----------------------------------
LI, MEI, PIERRE = "U0LIWEI", "U0MEI", "U0PIERRE"


@pytest.fixture
def zh_harness(sim: Any, db_url: str) -> Any:
    sim.add_user(LI, name="li.wei", tz="Asia/Shanghai", locale="zh-CN")
    sim.add_user(MEI, name="mei", tz="Asia/Taipei", locale="zh-TW")
    sim.add_user(PIERRE, name="pierre", tz="Europe/Paris", locale="fr-FR")
    harness, stop = start_harness(sim, make_settings(sim, db_url))
    yield harness
    stop()


def _users_info_calls(h: Harness, user: str) -> int:
    return sum(1 for c in h.sim.calls if c.method == "users.info" and c.args.get("user") == user)


def test_a_persons_locale_comes_from_slack_and_is_cached(zh_harness: Harness) -> None:
    h = zh_harness
    directory = h.deps.directory
    assert directory.locale_of(LI, now=NOW) == "zh-CN"
    assert directory.locale_of(MEI, now=NOW) == "en"  # zh-TW: English unless configured
    assert directory.locale_of(PIERRE, now=NOW) == "en"
    assert directory.locale_of("U0DAVE", now=NOW) == "en"  # Slack says en-US
    call = next(c for c in h.sim.calls if c.method == "users.info" and c.args.get("user") == LI)
    assert str(call.args.get("include_locale")).lower() in ("1", "true")
    with session_scope(h.deps.engine) as session:
        stored = {p.user_id: (p.locale, p.tz) for p in session.exec(select(Person)).all()}
    assert stored[LI] == ("zh-CN", "Asia/Shanghai") and stored[MEI] == ("zh-TW", "Asia/Taipei")
    # cached: in memory, then in the people table (a fresh directory), then refreshed after a day
    directory.locale_of(LI, now=NOW)
    fresh = type(directory)(h.deps.settings, h.deps.client, h.deps.engine)
    assert fresh.locale_of(LI, now=NOW + timedelta(hours=2)) == "zh-CN"
    assert _users_info_calls(h, LI) == 1
    assert fresh.timezone_of(LI, now=NOW + timedelta(hours=2)) == "Asia/Shanghai"  # one call gave both
    assert _users_info_calls(h, LI) == 1
    other = type(directory)(h.deps.settings, h.deps.client, h.deps.engine)
    other.locale_of(LI, now=NOW + timedelta(days=2))
    assert _users_info_calls(h, LI) == 2


def test_fallbacks_follow_the_workspace_settings(sim: Any, db_url: str) -> None:
    sim.add_user(MEI, name="mei", tz="Asia/Taipei", locale="zh-TW")
    sim.add_user(PIERRE, name="pierre", tz="Europe/Paris", locale="fr-FR")
    config = json.loads(json.dumps(TEST_CONFIG))
    config["workspace"].update(locale="zh-CN", chinese_fallback="zh-CN")
    harness, stop = start_harness(sim, make_settings(sim, db_url, config))
    try:
        directory = harness.deps.directory
        assert directory.locale_of(MEI, now=NOW) == "zh-CN"
        assert directory.locale_of(PIERRE, now=NOW) == "zh-CN"  # unknown: the workspace's
        assert directory.locale_of("U0DAVE", now=NOW) == "en"
        assert directory.team_translator(None).locale == "zh-CN"
    finally:
        stop()


def test_a_chinese_speakers_ask_is_answered_in_chinese_and_the_team_reads_english(zh_harness: Harness) -> None:
    h = zh_harness
    # first contact: the ack does not wait for users.info (workspace language), and is replaced at once
    first = h.driver.slash("/ask-finance", "报销发票怎么提交？需要纸质发票吗？", user_id=LI, channel_id=GENERAL)
    assert first.status == 200 and "Request *#1* sent to Finance" in first.body
    replaced = h.wait(lambda: [p for p in h.sim.response_posts if p.body.get("replace_original")
                               and "请求 *#1* 已发送给Finance" in json.dumps(p.body, ensure_ascii=False)])
    assert replaced and replaced[0].body.get("response_type") == "ephemeral"
    dm = h.wait(lambda: [m for m in h.sim.messages(h.sim.dm_channel_for(LI)) if m.get("blocks")])
    dm_text = json.dumps(dm[0]["blocks"], ensure_ascii=False)
    assert "你向Finance提交的请求 #1" in dm_text and "标记为已解决" in dm_text
    triage = h.wait(lambda: h.triage())
    triage_text = json.dumps(triage[0]["blocks"], ensure_ascii=False)
    assert "Requester" in triage_text and "Claim" in triage_text  # Finance's channel reads English
    assert _users_info_calls(h, LI) == 1  # the follow-up and the post job shared one lookup
    # known now: the ack itself is Chinese, nothing is replaced
    posts = len(h.sim.response_posts)
    second = h.driver.slash("/ask-finance", "发票丢了怎么办？", user_id=LI, channel_id=GENERAL)
    acked = second.body
    assert "请求 *#2* 已发送给Finance" in acked and "Request" not in acked
    h.wait(lambda: len(h.triage()) == 2)
    assert not [p for p in h.sim.response_posts[posts:] if p.body.get("replace_original")]
    # an English speaker's first ack needs no replacement
    h.driver.slash("/ask-finance", "Where is my payslip?", user_id="U0DAVE", channel_id=GENERAL)
    h.wait(lambda: len(h.triage()) == 3)
    assert not [p for p in h.sim.response_posts[posts:] if p.body.get("replace_original")]
    # errors reach the person in their language
    li_error = h.driver.slash("/ask-legal", "x", user_id=LI, channel_id=GENERAL)
    assert "我不认识 `/ask-legal`" in li_error.body


# -- charts: Chinese glyphs ---------------------------------------------------------------------------
def _missing_glyph_warnings(draw: Any) -> list[str]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw()
    return [str(w.message) for w in caught if "missing from" in str(w.message)]


def test_charts_with_chinese_names_have_every_glyph(tmp_path: Any) -> None:
    from matplotlib.ft2font import FT2Font

    from bot.analytics import fonts
    from bot.analytics.charts import font_family, render_matrix_chart, render_weekly_chart
    from bot.analytics.points import WeekPoint

    path = fonts.cjk_font_path()
    assert path is not None, "no CJK font: run scripts/install-fonts.sh (make test does)"
    departments, teams = ["工程部", "销售部", "市场部"], ["财务", "人事部", "IT"]
    title = ZH._("Requests by department and team · {week}", week="2026-W49")
    charmap = FT2Font(str(path)).get_charmap()
    assert all(ord(c) in charmap for c in "".join([*departments, *teams, title]) if ord(c) > 0x2e80)
    assert font_family()[1] == FT2Font(str(path)).family_name
    weeks = [WeekPoint(ZH.fmt_date(NOW - timedelta(weeks=k)), 3 + k, None if k % 2 else 80.0) for k in range(8)]
    assert _missing_glyph_warnings(lambda: render_matrix_chart(
        departments, teams, [[1, 2, 0], [0, 3, 1], [2, 0, 0]], title=title, path=tmp_path / "m.png", t=ZH)) == []
    assert _missing_glyph_warnings(lambda: render_weekly_chart(
        weeks, title="人事部 · 最近 8 周", path=tmp_path / "w.png", t=ZH)) == []
    assert (tmp_path / "m.png").stat().st_size > 10_000


def test_without_a_cjk_font_one_warning_at_start_and_matplotlib_says_what_is_missing(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from bot.analytics import charts, fonts

    monkeypatch.setattr(charts, "cjk_font_path", lambda: None)
    monkeypatch.setattr(fonts, "cjk_font_path", lambda: None)
    charts.font_family.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="bot.analytics.fonts"):
            assert fonts.warn_if_no_cjk_font() is False
        assert len(caplog.records) == 1 and "fonts-wqy-microhei" in caplog.records[0].getMessage()
        missing = _missing_glyph_warnings(lambda: charts.render_matrix_chart(
            ["工程部"], ["财务"], [[1]], title="x", path=tmp_path / "m.png"))
        assert missing  # not hidden any more
    finally:
        charts.font_family.cache_clear()


# -- digests, both languages ----------------------------------------------------------------------------
def _team_digest(*, quiet: bool = False) -> Any:
    from bot.analytics import GatedValue, RankedItem, WeekPoint
    from bot.services.digest_periods import period_ending
    from bot.services.digests import DueRef, RequestRef, Satisfaction, Speed, TeamDigest

    ok, hidden = GatedValue(87.5, 9, False), GatedValue(None, 2, True)
    ref = RequestRef(id=7, title="#7 · 报销发票怎么提交？", link="https://x/p7", age=5220)
    n = 0 if quiet else 1
    return TeamDigest(
        team="people", name="人事部", period=period_ending(NOW, "Asia/Shanghai"), new=12 * n, new_prev=9,
        resolved=10 * n, resolved_prev=10, transferred_in=2, transferred_out=1, open_end=4, oldest_open=ref,
        first_response=Speed(10 * n, 1800, 5220, 80.0, 3600, 2400),
        resolution=Speed(10 * n, 90000, 200000, 70.0, 172800, None),
        satisfaction=Satisfaction(period_ending(NOW, "Asia/Shanghai").previous, 5, 9 * n, 12, 75.0,
                                  GatedValue(4.2, 9, False), ok, hidden,
                                  {d: ok for d in ("responsiveness", "clarity", "transparency", "support")},
                                  GatedValue({"5": 3, "4": 1}, 4 * n, False), GatedValue(["很快，谢谢！"], 9, False)),
        internal_customers=[RankedItem("工程部", 5, 3, 2, 1, 2), RankedItem("销售部", 4, 4, 0, 2, 2),
                            RankedItem("市场部", 3, 0, 3, 3, None)],
        top_categories=[("Uncategorised", 3), ("请假", 2)], topics=[("年假", 3)],
        unclaimed=[DueRef(id=7, title=ref.title, link=ref.link, due_at=NOW - timedelta(hours=2))],
        unclaimed_count=3, reopened=[ref], reopened_count=n, late=True,
        weeks=[WeekPoint(f"W{k}", 10, None if k % 3 else 50.0) for k in range(8)])


def _digests(t: Any) -> dict[str, Rendered | str]:
    from bot.render import digest_blocks, digest_text
    from bot.services.digests import OrgDigest

    team, quiet = _team_digest(), _team_digest(quiet=True)
    org = OrgDigest(period=team.period, teams=[team], departments=["工程部", "销售部"],
                    matrix={("工程部", "people"): 5, ("销售部", "people"): 4},
                    matrix_csat={("工程部", "people"): team.satisfaction.csat_prev})
    return {"team digest": digest_blocks.team_digest(team, t=t), "quiet week": digest_blocks.team_digest(quiet, t=t),
            "on demand": digest_blocks.on_demand(team, t=t), "organisation": digest_blocks.org_digest(org, t=t),
            "team text": digest_text.team_text(team, t), "organisation text": digest_text.org_text(org, t)}


@pytest.mark.parametrize("name", list(_digests(EN)))
def test_every_digest_builder_speaks_both_languages(name: str) -> None:
    english, chinese = _texts(_digests(EN)[name]), _texts(_digests(ZH)[name])
    assert english != chinese and re.search(r"[A-Za-z]{4,} [A-Za-z]{3,}", english)
    figures = DATA.sub("", chinese)
    for term in ("p90", "SLA", "CSAT", "W[0-9]", "Asia/Shanghai", r"#\d+", "askdesk digest --json"):
        figures = re.sub(term, "", figures)
    assert not re.findall(r"[A-Za-z]{2,}", figures), f"{name}: English left in the Chinese rendering"
    if "text" not in name and name != "quiet week":
        assert ("1小时27分钟" in chinese or "30分钟" in chinese) and "1h 27m" in english or "30m" in english


def test_digest_dates_and_durations_follow_the_language() -> None:
    from bot.render.digest_text import period_label, week_labels

    team = _team_digest()
    assert period_label(team.period, EN) == "Fri 27 Nov, 17:05 – Fri, 4 Dec 2026, 17:05 (Asia/Shanghai)"
    assert period_label(team.period, ZH) == "11月27日周五 17:05 – 2026年12月4日周五 17:05（Asia/Shanghai）"
    assert week_labels(team, EN)[-1] == "27 Nov" and week_labels(team, ZH)[-1] == "11月27日"


def test_askdesk_help_and_digest_refusals_are_in_the_askers_language(zh_harness: Harness) -> None:
    h = zh_harness
    help_ = h.driver.slash("/askdesk", "help", user_id=LI, channel_id=GENERAL)
    assert "*askdesk* 命令" in help_.body
    unknown = h.driver.slash("/askdesk", "dance", user_id="U0DAVE", channel_id=GENERAL)
    assert "I don't know `dance`" in unknown.body
    refused = h.driver.slash("/askdesk", "digest finance", user_id=LI, channel_id=GENERAL)
    assert refused.status == 200
    told = h.wait(lambda: [p for p in h.sim.response_posts if "抱歉，周报数据只对Finance" in json.dumps(
        p.body, ensure_ascii=False)])
    assert told
