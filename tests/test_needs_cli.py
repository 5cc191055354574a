"""`askdesk needs start|report` and `askdesk scorecard` as subprocesses, like an operator runs them,
against a database seeded with closed rounds (the differencing rule: only closed rounds are reported)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from storage import needs as queries
from storage.models import NeedsAction, Request
from storage.session import session_scope
from tests.conftest import write_config
from tests.needs_helpers import needs_config

ROOT = Path(__file__).resolve().parent.parent
Q2, Q3 = datetime(2026, 4, 2, 9, tzinfo=UTC), datetime(2026, 7, 2, 9, tzinfo=UTC)  # ended quarters
WRITTEN = ["Expense report approvals are slow", "The expense report tool is confusing",
           "My expense report status is never clear", "Expense report rules are unclear", "报销流程太慢"]


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> dict[str, str]:
    config = needs_config(threshold=3)
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url,
            "ASKDESK_CONFIG": str(write_config(tmp_path / "askdesk.toml", config)), "LOG_LEVEL": "WARNING"}


def askdesk(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def seed_round(engine: Engine, *, key: str, opens: datetime, overall: list[int], written: list[str],
               status: str = "reported", actions: int = 0) -> int:
    with session_scope(engine) as s:
        round_id = queries.create_round(s, team="finance", key=key, cadence="quarterly", opens_at=opens,
                                        closes_at=opens + timedelta(days=14), audience_start=opens - timedelta(days=90),
                                        audience_end=opens, intro=None)
        assert round_id is not None
        people = [(f"U0S{key[-1]}{i:02d}", "audience", opens) for i in range(len(overall) + 2)]
        created = queries.add_invitations(s, round_id=round_id, people=people)
        for n, (user, inv_id) in enumerate(sorted(created.items())):
            queries.set_invitation_status(s, invitation_id=inv_id, status="sending")
            queries.mark_invitation_sent(s, invitation_id=inv_id, channel=f"D{user}", ts=f"1.{n}", sent_at=opens)
            if n < len(overall):
                text = written[n] if n < len(written) else None
                queries.save_answer(s, invitation_id=inv_id, round_id=round_id, now=opens + timedelta(hours=1),
                                    values={"overall": overall[n], "support": 4, "obstacle": text})
        queries.set_round_status(s, round_id=round_id, status=status, only_from=("open",))
        for i in range(actions):
            s.add(NeedsAction(team="finance", round_id=round_id, title=f"Action {i}", created_by="U0ALICE",
                              status="done", created_at=opens + timedelta(days=15),
                              done_at=opens + timedelta(days=30)))
    return round_id


def test_needs_report_text_and_json(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_round(engine, key="2026-Q2", opens=Q2, overall=[3, 3, 4], written=[])
    seed_round(engine, key="2026-Q3", opens=Q3, overall=[5, 4, 4, 3, 5], written=WRITTEN)
    out = askdesk(env, "needs", "report", "--team", "finance", cwd=tmp_path)  # the latest closed round
    assert out.returncode == 0, out.stderr
    assert "Needs survey 2026-Q3 · Finance" in out.stdout
    assert "5 of 7 people answered (71%)" in out.stdout
    assert "Overall satisfaction: 4.2 / 5 (+0.9 since 2026-Q2) · 5 answers" in out.stdout
    assert "1. expense report — 4 people" in out.stdout and "“Expense report rules are unclear”" in out.stdout
    assert "报销" not in out.stdout  # one person's need is not a theme, and never quoted
    zh = askdesk(env, "needs", "report", "--team", "finance", "--locale", "zh-CN", cwd=tmp_path)
    assert "需求调研 2026-Q3 · Finance" in zh.stdout and "7 人中有 5 人回答（71%）" in zh.stdout
    assert "1. expense report — 4 人" in zh.stdout
    data = json.loads(askdesk(env, "needs", "report", "--team", "finance", "--round", "2026-q2", "--json",
                              cwd=tmp_path).stdout)
    assert data["round"] == "2026-Q2" and data["previous_round"] is None and data["themes"] == []
    assert data["scores"]["overall"] == {"value": pytest.approx(10 / 3), "count": 3, "suppressed": False,
                                         "change": None}
    assert data["scores"]["communication"] == {"value": None, "count": 0, "suppressed": True, "change": None}


def test_needs_report_refuses_open_and_unknown_rounds(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_round(engine, key="2026-Q3", opens=datetime.now(UTC), overall=[5, 4, 4], written=[], status="open")
    for args, message in ((("--round", "2026-Q3"), "is open until"), (("--round", "2025-Q1"), "has no needs round"),
                          ((), "no closed needs round"), (("--team", "nope"), "unknown team")):
        team = () if "--team" in args else ("--team", "finance")
        out = askdesk(env, "needs", "report", *team, *args, cwd=tmp_path)
        assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == "", (args, out.stderr)


def test_needs_start_without_a_token_opens_the_round_for_the_running_app(engine: Engine, env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    out = askdesk(env, "needs", "start", "--team", "finance", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "needs round 20" in out.stdout and "planned when askdesk runs" in out.stdout
    key = out.stdout.split("needs round ")[1].split()[0]
    again = askdesk(env, "needs", "start", "--team", "finance", cwd=tmp_path)  # started twice: refused, one line
    assert again.returncode == 1 and again.stdout == "", again.stderr
    assert again.stderr.strip().splitlines() == [again.stderr.strip()]
    assert f"needs round {key} is still open" in again.stderr and "no new round was opened" in again.stderr
    with session_scope(engine) as s:
        assert [(r.key, r.status) for r in queries.rounds_of(s, team="finance")] == [(key, "open")]
        queries.set_round_status(s, round_id=queries.rounds_of(s, team="finance")[0].id or 0, status="closed",
                                 only_from=("open",))
    after = askdesk(env, "needs", "start", "--team", "finance", cwd=tmp_path)  # once it closed: an ad-hoc one
    assert after.returncode == 0 and f"needs round {key}-2 opened" in after.stdout, after.stderr
    unknown = askdesk(env, "needs", "start", "--team", "legal", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown team" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


def test_scorecard_formats_and_the_anonymity_rule(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    seed_round(engine, key="2026-Q2", opens=Q2, overall=[3, 3, 4], written=[])
    seed_round(engine, key="2026-Q3", opens=Q3, overall=[5, 4, 4, 3, 5], written=WRITTEN, actions=1)
    seed_round(engine, key="2026-Q3-2", opens=Q3 + timedelta(days=30), overall=[1, 1], written=[])  # too few
    with session_scope(engine) as s:
        for i, minutes in enumerate((20, 45, 10, 90)):  # first responses against the 30-minute SLA
            created = Q3 + timedelta(days=1, hours=i)
            s.add(Request(team="finance", origin_team="finance", requester_id="U0DAVE", created_at=created,
                          first_response_at=created + timedelta(minutes=minutes),
                          resolved_at=created + timedelta(hours=3), status="resolved"))
    data = json.loads(askdesk(env, "scorecard", "--quarter", "2026-Q3", "--format", "json", cwd=tmp_path).stdout)
    finance = next(t for t in data["teams"] if t["team"] == "finance")
    # the second round's two answers are left out: the quarter minus the first round would give them away
    assert finance["needs_score"] == {"value": pytest.approx(4.2), "count": 5, "suppressed": False}
    assert finance["parts"]["needs"] == pytest.approx(80.0) and finance["changes"]["needs"] == pytest.approx(
        80 - (10 / 3 - 1) / 4 * 100)
    assert finance["sla_attainment"] == pytest.approx(100 * 6 / 8) and finance["sla_targets"] == 8
    assert finance["actions_done"] == 1 and finance["parts"]["actions"] == 100.0
    assert finance["pulse_csat"] == {"value": None, "count": 0, "suppressed": True}  # the quarter has ended
    assert finance["index"] == pytest.approx((0.4 * 80 + 0.2 * 75 + 0.1 * 100) / 0.7)
    assert data["weights"]["needs"] == 0.4 and "Index =" in data["formula"]
    it = next(t for t in data["teams"] if t["team"] == "it")
    assert it["index"] is None and it["needs_score"]["suppressed"]
    rows = list(csv.DictReader(io.StringIO(askdesk(env, "scorecard", "--quarter", "2026-Q3", "--format", "csv",
                                                   cwd=tmp_path).stdout)))
    assert [r["team"] for r in rows] == ["finance", "it", "hr"]
    assert rows[0]["needs_score"] == "4.20" and rows[1]["needs_score"] == "suppressed"
    assert rows[0]["pulse_csat"] == "suppressed" and rows[0]["actions_done"] == "1"
    text = askdesk(env, "scorecard", "--quarter", "2026-Q3", cwd=tmp_path).stdout
    assert "Internal satisfaction scorecard 2026-Q3" in text and "Needs-survey score: 4.2 / 5" in text
    zh = askdesk(env, "scorecard", "--quarter", "2026-Q3", "--locale", "zh-CN", cwd=tmp_path).stdout
    assert "内部满意度计分卡 2026-Q3" in zh and "需求调研得分: 4.2 / 5" in zh
    bad = askdesk(env, "scorecard", "--quarter", "Q4", cwd=tmp_path)
    assert bad.returncode == 2 and "2026-Q4" in bad.stderr


def test_the_scorecard_weights_come_from_the_config(engine: Engine, env: dict[str, str], tmp_path: Path) -> None:
    """`[scorecard] weights` in askdesk.toml: the index HR reads is the documented weighted mean with them."""
    seed_round(engine, key="2026-Q3", opens=Q3, overall=[5, 4, 4, 3, 5], written=WRITTEN, actions=1)
    path = write_config(tmp_path / "weighted.toml", needs_config(threshold=3))
    path.write_text(path.read_text(encoding="utf-8") + "\n[scorecard.weights]\nneeds = 3\ncsat = 0\nsla = 0\n"
                    "response = 1\nactions = 0\n", encoding="utf-8")
    env = {**env, "ASKDESK_CONFIG": str(path)}
    out = askdesk(env, "scorecard", "--quarter", "2026-Q3", "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    finance = next(t for t in data["teams"] if t["team"] == "finance")
    assert data["weights"] == {"needs": 3.0, "csat": 0.0, "sla": 0.0, "response": 1.0, "actions": 0.0}
    assert finance["parts"]["needs"] == pytest.approx(80.0) and finance["parts"]["response"] == pytest.approx(
        100 * 5 / 7)  # five of the seven reached answered
    assert finance["index"] == pytest.approx((3 * 80 + 1 * 100 * 5 / 7) / 4)
    text = askdesk(env, "scorecard", "--quarter", "2026-Q3", cwd=tmp_path).stdout
    assert f"Finance: index {finance['index']:.0f} / 100" in text  # 77.9: not the default weights' figure


def test_commands_never_create_a_database(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.db"
    env = {**env, "DATABASE_URL": f"sqlite:///{missing}"}
    for args in (("needs", "report", "--team", "finance"), ("needs", "start", "--team", "finance"), ("scorecard",)):
        out = askdesk(env, *args, cwd=tmp_path)
        assert out.returncode == 1 and "does not exist" in out.stderr and "Traceback" not in out.stderr, args
    assert not missing.exists()


def test_purge_removes_old_written_answers_and_quotes_and_keeps_the_numbers(engine: Engine, env: dict[str, str],
                                                                           tmp_path: Path) -> None:
    from bot.services.purge import purge

    old = seed_round(engine, key="2025-Q2", opens=datetime(2025, 4, 2, 9, tzinfo=UTC), overall=[5, 4, 4, 3, 5],
                     written=WRITTEN)
    recent = seed_round(engine, key="2026-Q3", opens=Q3, overall=[5, 4, 4], written=WRITTEN[:3])
    with session_scope(engine) as s:
        queries.save_themes(s, round_id=old, themes=[("expense report", ("expense report",), 4, ["a quote"])])
        queries.save_themes(s, round_id=recent, themes=[("expense report", ("expense report",), 3, ["kept"])])
    now = datetime(2026, 11, 1, tzinfo=UTC)
    assert purge(engine, older_than=timedelta(days=365), now=now, dry_run=True).needs_written_answers == 5
    report = purge(engine, older_than=timedelta(days=365), now=now, batch_size=2)
    assert report.needs_written_answers == 5
    with session_scope(engine) as s:
        rows = {r.round_id: r for r in queries.answers(s, round_ids=[old, recent])}
        assert all(not r.texts for r in queries.answers(s, round_ids=[old]))
        assert [r.scores["overall"] for r in queries.answers(s, round_ids=[old])] == [5, 4, 4, 3, 5]
        assert rows[recent].texts
        assert [t.quotes for t in queries.themes_of(s, round_id=old)] == ["[]"]
        assert [t.quotes for t in queries.themes_of(s, round_id=recent)] == ['["kept"]']
    assert purge(engine, older_than=timedelta(days=365), now=now).needs_written_answers == 0
    out = askdesk(env, "needs", "report", "--team", "finance", "--round", "2025-Q2", cwd=tmp_path)
    assert "1. expense report — 4 people" in out.stdout and "4.2 / 5" in out.stdout
