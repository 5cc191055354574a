"""SLA settings in the config file: defaults, and every mistake a config error naming its key (issue 15)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.config import ConfigError, Settings, parse_config
from bot.services import sla
from bot.services.sla_clock import SlaSpan
from tests.conftest import TEST_CONFIG


def team(**keys: Any) -> dict[str, Any]:
    config = copy.deepcopy(TEST_CONFIG)
    config["teams"][0].update(keys)
    return config


def test_defaults_keep_the_calendar_clock_and_remind_at_75_percent() -> None:
    finance = parse_config("askdesk.toml", TEST_CONFIG)["teams"][0]
    assert finance.sla_clock == "calendar" and finance.remind_at == 0.75
    assert finance.escalation_channel == "" and finance.leads == () and finance.auto_assign == "off"
    assert finance.first_response_sla == SlaSpan(seconds=1800) and finance.resolution_sla == SlaSpan(days=2)
    assert finance.first_response_sla.nominal() == timedelta(minutes=30)  # what the digests compare with


def test_a_full_sla_table_becomes_the_teams_policy() -> None:
    parsed = parse_config("askdesk.toml", team(
        sla_clock="business", hours="08:30-17:00", days="mon-thu", timezone="Asia/Shanghai",
        holidays=["2026-12-25"], remind_at="50%", escalation_channel="C0LEADS", leads=["U0LEAD"],
        auto_assign="round_robin", urgency={"high": {"first_response_sla": "10m"}, "low": {"resolution_sla": "1w"}}))
    settings = Settings(**parsed)
    policy = sla.policy_for(settings, settings.teams[0])
    cal = policy.calendar
    assert cal.business and cal.hours == (510, 1020) and cal.days == frozenset({0, 1, 2, 3})
    assert str(cal.tz) == "Asia/Shanghai" and cal.holidays == frozenset({date(2026, 12, 25)})
    assert policy.remind_at == 0.5
    assert policy.targets("high").first_response == SlaSpan(seconds=600)
    assert policy.targets("high").resolution == SlaSpan(days=2)  # not overridden: the team's default
    assert policy.targets("low").resolution == SlaSpan(weeks=1)
    assert policy.targets("normal") == policy.default
    # the team's time zone defaults to the workspace's
    plain = Settings(**parse_config("askdesk.toml", team(sla_clock="business")))
    assert str(sla.policy_for(plain, plain.teams[0]).calendar.tz) == "Europe/Berlin"
    assert sla.policy_for(plain, plain.teams[0]).calendar.is_working(
        datetime(2026, 12, 7, 9, 0, tzinfo=UTC))  # 10:00 on a Monday in Berlin


@pytest.mark.parametrize(("keys", "key", "expected"), [
    ({"first_response_sla": "30s"}, "teams[0].first_response_sla", "at least one minute"),
    ({"resolution_sla": "0m"}, "teams[0].resolution_sla", "at least one minute"),
    ({"urgency": {"high": {"first_response_sla": "59s"}}}, "teams[0].urgency.high.first_response_sla",
     "at least one minute"),
    ({"urgency": {"critical": {"first_response_sla": "5m"}}}, "teams[0].urgency.critical", "low, normal, high"),
    ({"urgency": {"high": {"first_reponse_sla": "5m"}}}, "teams[0].urgency.high.first_reponse_sla",
     "did you mean 'first_response_sla'"),
    ({"holidays": ["2026-12-25", "2026-12-32"]}, "teams[0].holidays[1]", "YYYY-MM-DD"),
    ({"holidays": ["25.12.2026"]}, "teams[0].holidays[0]", "YYYY-MM-DD"),
    ({"holidays": "2026-12-25"}, "teams[0].holidays", "tuple"),
    ({"hours": "18:00-09:00"}, "teams[0].hours", "09:00-18:00"),
    ({"hours": "9am-5pm"}, "teams[0].hours", "09:00-18:00"),
    ({"days": "weekdays"}, "teams[0].days", "mon-fri"),
    ({"timezone": "Mars/Olympus"}, "teams[0].timezone", "IANA"),
    ({"sla_clock": "office"}, "teams[0].sla_clock", "'calendar' or 'business'"),
    ({"sla_hours": "09:00-17:00"}, "teams[0].sla_hours", "did you mean 'hours'"),
    ({"remind_at": "120%"}, "teams[0].remind_at", "99%"),
    ({"remind_at": "0.75"}, "teams[0].remind_at", "off"),
    ({"auto_assign": "random"}, "teams[0].auto_assign", "round_robin"),
    ({"leads": ["alice"]}, "teams[0].leads[0]", "user ID"),
    ({"escalation_channel": "#leads"}, "teams[0].escalation_channel", "channel ID"),
])
def test_mistakes_are_config_errors_naming_the_key(keys: dict[str, Any], key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("askdesk.toml", team(**keys))
    message = str(caught.value)
    assert message.startswith("askdesk.toml: key ") and f"'{key}'" in message and expected in message, message


def test_a_team_built_in_code_may_give_its_slas_as_timedeltas() -> None:
    from bot.config import Team

    team = Team(slug="t", name="T", channel="C0T", first_response_sla=timedelta(hours=36),
                resolution_sla=timedelta(days=1))
    assert team.first_response_sla == SlaSpan(seconds=36 * 3600) and team.resolution_sla == SlaSpan(days=1)
