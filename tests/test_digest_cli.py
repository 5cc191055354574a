"""`askdesk digest` as a subprocess (`python -m bot digest ...`) against a seeded database and a TOML config
from the environment, like an operator would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.services.digest_periods import feedback_schedule, period_for_week
from slacksim.simulator import SlackSimulator
from tests.conftest import BOT_TOKEN, FINANCE_CH, TEST_CONFIG, write_config
from tests.digest_helpers import Seeder
from tests.test_digest_figures import seed_week

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    # digests at Monday 00:00: a digest's own window is then the ISO week, as seed_week expects
    config = {**TEST_CONFIG, "workspace": {**TEST_CONFIG["workspace"], "leadership_channel": "C0LEADS"},
              "digest": {"time": "00:00"}}
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url,
            "ASKDESK_CONFIG": str(write_config(tmp_path / "askdesk.toml", config)), "LOG_LEVEL": "WARNING"}


def askdesk(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", "digest", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_json_for_one_team_and_week(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_week(engine)
    out = askdesk(env, "--team", "finance", "--week", "2026-W47", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["team"] == "finance" and data["week"] == "2026-W47"
    assert data["period_start"] == "2026-11-15T23:00:00+00:00"  # Monday 00:00 in Berlin
    assert data["period_end"] == "2026-11-22T23:00:00+00:00"
    assert (data["new"], data["resolved"], data["open"]) == (6, 5, 4)
    assert data["median_first_response_seconds"] == 1800.0 and data["median_resolution_seconds"] == 72000.0
    satisfaction = data["satisfaction"]
    assert satisfaction == {**satisfaction, "responses": 0, "average": None, "csat_percent": None,
                            "suppressed": True}
    first = data["internal_customers"][0]
    assert first == {**first, "department": "Sales", "requests": 4}
    assert data["top_categories"][0] == {"category": "Expenses", "requests": 4}
    assert data["transferred_in"] == 1 and data["needs_attention"]["unclaimed_past_sla"]["count"] == 1


def test_json_for_every_team_includes_the_organisation(engine: Engine, env: dict[str, str],
                                                       tmp_path: Path) -> None:
    seed_week(engine)
    seed = Seeder(engine)
    for i in range(5):  # five answers: the organisation's CSAT may be shown
        req = seed.request(created=datetime(2026, 11, 17, 9, tzinfo=UTC), first_response=timedelta(minutes=5),
                           resolved=timedelta(hours=2))
        seed.survey(req, answered=datetime(2026, 11, 18, 9, tzinfo=UTC), score=5 if i else 1)
    out = askdesk(env, "--week", "2026-W47", "--json", "--charts", str(tmp_path / "charts"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [t["team"] for t in data["teams"]] == ["finance", "it", "hr"]
    assert data["teams"][0]["satisfaction"]["csat_percent"] == 80.0
    assert data["organisation"]["team"] == "*" and data["organisation"]["csat_percent"] == 80.0
    assert {"department": "Sales", "team": "finance", "requests": 9, "csat_percent": 80.0} in \
        data["organisation"]["matrix"]
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == [f"askdesk-{t}-2026-W47.png" for t in ("finance", "hr", "it", "organisation")]


def test_dry_run_prints_readable_digests(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_week(engine)
    out = askdesk(env, "--week", "2026-W47", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for expected in ("Finance — weekly digest 2026-W47", "new 6 (before: 3)", "first response: median 30m",
                     "1. Sales: 4 (+3 vs 1)", "categories: Expenses 4", "People — weekly digest 2026-W47",
                     "IT — weekly digest 2026-W47", "Organisation — weekly digest 2026-W47",
                     "not enough answers to show"):
        assert expected in out.stdout, expected


@pytest.mark.parametrize(("args", "message"), [
    (["--week", "2026-W99"], "is not an ISO week"),
    (["--week", "last week"], "must look like 2026-W47"),
    (["--team", "nope", "--json"], "unknown team 'nope'"),
])
def test_bad_input_exits_2(env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    out = askdesk(env, *args, "--dry-run" if "--json" not in args else "--json", cwd=tmp_path)
    assert out.returncode == 2 and message in out.stderr and not out.stdout


def test_posting_goes_through_the_job_path_once(engine: Engine, env: dict[str, str], tmp_path: Path,
                                                sim: SlackSimulator) -> None:
    year, week, _ = (datetime.now(UTC) - timedelta(days=14)).isocalendar()
    period = period_for_week(f"{year}-W{week:02d}", feedback_schedule("Europe/Berlin"))
    Seeder(engine).request(created=period.start + timedelta(hours=3))
    env = {**env, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": sim.base_url}
    first = askdesk(env, "--team", "finance", "--week", period.week, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"finance {period.week}: posted in {FINANCE_CH}" in first.stdout
    again = askdesk(env, "--team", "finance", "--week", period.week, cwd=tmp_path)
    assert again.returncode == 0 and f"finance {period.week}: already posted" in again.stdout
    posts = [m for m in sim.messages(FINANCE_CH)
             if (m.get("metadata") or {}).get("event_type") == "askdesk_digest"]
    assert len(posts) == 1 and len(sim.calls_to("files.completeUploadExternal")) == 1
    future = askdesk(env, "--team", "finance", "--week", f"{datetime.now(UTC).year + 1}-W10", cwd=tmp_path)
    assert future.returncode == 2 and "has not ended yet" in future.stderr


def test_dry_run_and_json_in_chinese_with_locale(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_week(engine)
    text = askdesk(env, "--team", "finance", "--week", "2026-W47", "--dry-run", "--locale", "zh-CN", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Finance —— 周报 2026-W47" in text.stdout and "11月16日周一 00:00" in text.stdout
    assert "首次响应：中位数 30分钟" in text.stdout
    data = json.loads(askdesk(env, "--team", "finance", "--week", "2026-W47", "--json", "--locale", "zh-CN",
                              cwd=tmp_path).stdout)
    assert data["locale"] == "zh-CN" and data["weeks"][-1]["label"] == "11月16日"
    assert data["new"] == 6  # the figures themselves do not change
    english = askdesk(env, "--team", "finance", "--week", "2026-W47", "--dry-run", cwd=tmp_path)
    assert "Finance — weekly digest 2026-W47" in english.stdout and "first response: median 30m" in english.stdout
    wrong = askdesk(env, "--dry-run", "--locale", "fr", cwd=tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'fr'" in wrong.stderr
