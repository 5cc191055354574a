"""SLA configuration mistakes as an operator meets them (issue 15): `askdesk config check` and `askdesk run`
in real processes stop with one line naming the file and the key (exit code 2, no traceback), and a
SIGHUP reload with a bad SLA key keeps the running SLA policy (the timers of a new request still follow
it) while a good one takes effect."""

from __future__ import annotations

import signal
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from slacksim.simulator import SlackSimulator
from tests.conftest import FINANCE_CH
from tests.test_run_process import Askdesk, ask, askdesk, env_for, one_line_error
from tests.test_socket_mode import rows

TEAM = '[[teams]]\nslug = "it"\nname = "IT"\nchannel = "C0IT"\n'


def _env_with(tmp_path: Path, lines: str) -> tuple[dict[str, str], Path]:
    """The environment of `askdesk` reading `sla.toml`: one IT team with `lines` added."""
    env = env_for(tmp_path, db_url=f"sqlite:///{tmp_path / 'askdesk.db'}")
    config = tmp_path / "sla.toml"
    config.write_text(TEAM + lines + "\n", encoding="utf-8")
    env["ASKDESK_CONFIG"] = str(config)
    return env, config


@pytest.mark.parametrize(("lines", "key", "expected"), [
    ('first_response_sla = "30s"', "teams[0].first_response_sla", "at least one minute"),
    ('[teams.urgency.high]\nresolution_sla = "45s"', "teams[0].urgency.high.resolution_sla", "at least one minute"),
    ('[teams.urgency.critical]\nfirst_response_sla = "5m"', "teams[0].urgency.critical", "low, normal, high"),
    ('holidays = ["2026-12-25", "2026-02-30"]', "teams[0].holidays[1]", "YYYY-MM-DD"),
    ('hours = "9-18"', "teams[0].hours", "09:00-18:00"),
    ('hours = "18:00-09:00"', "teams[0].hours", "09:00-18:00"),
    ('days = "weekdays"', "teams[0].days", "mon-fri"),
    ('remind_at = "120%"', "teams[0].remind_at", "99%"),
    ('remind_at = "abc"', "teams[0].remind_at", "off"),
    ('auto_assign = "random"', "teams[0].auto_assign", "round_robin"),
    ('escalation_channel = "#it-leads"', "teams[0].escalation_channel", "channel ID"),
])
def test_config_check_names_the_file_and_the_sla_key(tmp_path: Path, lines: str, key: str, expected: str) -> None:
    env, config = _env_with(tmp_path, lines)
    line = one_line_error(askdesk(["config", "check"], env, tmp_path), 2)
    assert f"{config}: key '{key}'" in line and expected in line, line


@pytest.mark.parametrize(("lines", "key"), [
    ('sla_clock = "business"\nhours = "09:00-18:00"\ndays = "mon-fri"\nholidays = ["25.12.2026"]',
     "teams[0].holidays[0]"),
    ('leads = ["U0ITLEAD"]\nescalation_channel = "it-leads"', "teams[0].escalation_channel"),
])
def test_run_refuses_to_start_with_a_bad_sla_key(tmp_path: Path, lines: str, key: str) -> None:
    env, config = _env_with(tmp_path, lines)
    line = one_line_error(askdesk(["run", "--http", "--port", "0"], env, tmp_path), 2)
    assert f"{config}: key '{key}'" in line, line
    assert not (tmp_path / "askdesk.db").exists()  # stopped before touching the database


def _escalation_due(db_url: str, request_id: int) -> datetime | None:
    found = rows(db_url, "SELECT due_at FROM jobs WHERE key = :key", key=f"sla:{request_id}:0:fr:escalate")
    if not found:
        return None
    due = found[0][0]
    return datetime.fromisoformat(due) if isinstance(due, str) else due


def _created(db_url: str, request_id: int) -> datetime:
    (created,) = rows(db_url, "SELECT created_at FROM requests WHERE id = :id", id=request_id)[0]
    return datetime.fromisoformat(created) if isinstance(created, str) else created


def test_sighup_with_a_bad_sla_key_keeps_the_running_sla_policy(sim: SlackSimulator, db_url: str,
                                                                 tmp_path: Path) -> None:
    env = env_for(tmp_path, db_url=db_url, sim=sim)  # Finance: 30m first response
    config = Path(env["ASKDESK_CONFIG"])
    good = config.read_text()
    with Askdesk(env, tmp_path, "--workers", "1") as server:
        server.healthy()
        config.write_text(good.replace('first_response_sla = "30m"', 'first_response_sla = "20s"'))
        server.proc.send_signal(signal.SIGHUP)
        server.until(lambda: "configuration not reloaded" in server.output(), timeout=30, what="the refusal")
        assert "key 'teams[0].first_response_sla': expected an SLA of at least one minute" in server.output()
        ask(server, sim, "/ask-finance", "Planned with the running SLA?", FINANCE_CH)
        due = server.until(lambda: _escalation_due(db_url, 1), timeout=30, what="request 1's escalation timer")
        assert due.replace(tzinfo=None) - _created(db_url, 1).replace(tzinfo=None) == timedelta(minutes=30)

        config.write_text(good.replace('first_response_sla = "30m"', 'first_response_sla = "45m"'))
        server.proc.send_signal(signal.SIGHUP)
        server.until(lambda: "configuration reloaded" in server.output(), timeout=30, what="the reload")
        ask(server, sim, "/ask-finance", "Planned with the new SLA?", FINANCE_CH)
        due = server.until(lambda: _escalation_due(db_url, 2), timeout=30, what="request 2's escalation timer")
        assert due.replace(tzinfo=None) - _created(db_url, 2).replace(tzinfo=None) == timedelta(minutes=45)
        assert server.terminate() == 0
    assert "Traceback" not in server.output()
