"""`askdesk needs start|report` and `askdesk scorecard`.

    askdesk needs start --team SLUG                    open a needs-survey round now
    askdesk needs report --team SLUG [--round 2026-Q4] [--json] [--locale en|zh-CN]
    askdesk scorecard [--quarter 2026-Q4] [--format text|json|csv] [--locale en|zh-CN]

Text is printed in the language its Slack post uses (the team's channel language; the scorecard's is the
leadership channel's, the workspace's) unless --locale says otherwise; JSON and CSV are data.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.config import LOCALES, Settings, Team


class UsageError(Exception):
    """Bad arguments: printed, exit code 2."""


def add_parsers(sub: Any) -> None:
    needs = sub.add_parser("needs", help="needs surveys: start a round, print a round's report")
    needs_sub = needs.add_subparsers(dest="needs_command", required=True)
    start = needs_sub.add_parser("start", help="open a needs-survey round for a team now")
    start.add_argument("--team", required=True, help="a team slug")
    start.set_defaults(func=cmd_needs_start)
    report = needs_sub.add_parser("report", help="print a closed round's report (default: the latest)")
    report.add_argument("--team", required=True, help="a team slug")
    report.add_argument("--round", help="a round like 2026-Q4, 2026-11 or 2026-Q4-2 (default: the latest closed)")
    report.add_argument("--json", action="store_true", help="print JSON instead of text")
    report.add_argument("--locale", choices=LOCALES, help="the language of the text (default: the team's channel "
                                                          "language)")
    report.set_defaults(func=cmd_needs_report)
    card = sub.add_parser("scorecard", help="the internal satisfaction scorecard of a quarter")
    card.add_argument("--quarter", help="a quarter like 2026-Q4 (default: the last one that ended)")
    card.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format")
    card.add_argument("--locale", choices=LOCALES, help="the language of the text (default: the workspace's)")
    card.set_defaults(func=cmd_scorecard)


def _team(settings: Settings, slug: str) -> Team:
    team = settings.team(slug.strip().lower())
    if team is None:
        raise UsageError(f"unknown team {slug!r}; configured teams: {', '.join(t.slug for t in settings.teams)}")
    return team


def _run(name: str, work: Any) -> int:
    from bot.cli import command_settings
    from bot.runtime.database import open_database

    settings = command_settings()
    try:
        engine = open_database(settings, migrate=False)  # `askdesk db upgrade` (or `run`) migrates
        try:
            return int(work(settings, engine) or 0)
        finally:
            engine.dispose()
    except UsageError as exc:
        print(f"askdesk {name}: {exc}", file=sys.stderr)
        return 2


def cmd_needs_start(args: argparse.Namespace) -> int:
    def work(settings: Settings, engine: Any) -> int:
        from bot.runtime.jobs import build_deps
        from bot.services import needs

        team = _team(settings, args.team)
        deps = build_deps(settings, engine, workers=2)
        try:
            started = needs.start_round(deps, team)
            if started.created and settings.bot_token:  # plan now: who is invited shows at once; the app sends
                deps.outbox.kick([started.job])
        finally:
            deps.outbox.stop()
        if not started.created:
            print(f"askdesk needs start: {team.slug}'s needs round {started.key} is still open (closes "
                  f"{started.closes_at:%Y-%m-%d %H:%M} UTC); no new round was opened.", file=sys.stderr)
            return 1
        from storage import needs as queries
        from storage.session import session_scope

        with session_scope(engine) as session:
            rnd = queries.get_round(session, started.round_id)
        invited = rnd.invited if rnd and rnd.planned_at else None
        who = f"{invited} people invited" if invited is not None else "invitations are planned when askdesk runs"
        print(f"{team.slug}: needs round {started.key} opened, closes {started.closes_at:%Y-%m-%d %H:%M} UTC; "
              f"{who}. Invitations go out in each person's working hours while `askdesk run` is serving.")
        return 0

    return _run("needs start", work)


def cmd_needs_report(args: argparse.Namespace) -> int:
    def work(settings: Settings, engine: Any) -> int:
        from bot.i18n import translator
        from bot.render import needs_text
        from bot.services import needs_report
        from storage.session import session_scope

        team = _team(settings, args.team)
        try:
            with session_scope(engine) as session:
                report = needs_report.build(session, settings, needs_report.find_round(session, team, args.round))
        except needs_report.ReportError as exc:
            raise UsageError(str(exc)) from exc
        if args.json:
            print(json.dumps(needs_text.report_json(report), indent=2, ensure_ascii=False))
        else:
            print(needs_text.report_text(report, translator(args.locale or settings.team_locale(team))))
        return 0

    return _run("needs report", work)


def cmd_scorecard(args: argparse.Namespace) -> int:
    def work(settings: Settings, engine: Any) -> int:
        from bot.i18n import translator
        from bot.render import needs_text
        from bot.runtime.deps import utc_now
        from bot.services import scorecard
        from bot.services.needs_periods import PeriodError, parse_quarter, previous, quarter_of
        from storage.session import session_scope

        tz, now = settings.workspace.timezone, utc_now()
        try:
            quarter = parse_quarter(args.quarter, tz) if args.quarter else previous(quarter_of(now, tz), tz)
        except PeriodError as exc:
            raise UsageError(str(exc)) from exc
        with session_scope(engine) as session:
            card = scorecard.compute(session, settings, quarter, now)
        if args.format == "json":
            print(json.dumps(needs_text.scorecard_json(card), indent=2, ensure_ascii=False))
        elif args.format == "csv":
            print(needs_text.scorecard_csv(card), end="")
        else:
            print(needs_text.scorecard_text(card, translator(args.locale or settings.team_locale(None))))
        return 0

    return _run("scorecard", work)
