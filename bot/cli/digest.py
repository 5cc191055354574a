"""`askdesk digest [--team SLUG] [--week 2026-W47] [--dry-run] [--json] [--charts DIR]`.

Without --dry-run/--json it posts through the same digest row + job as the scheduler, so a week's
digest is still posted exactly once (a second run reports "already posted"). Without --week it is
the latest scheduled digest; --week is that ISO week (Monday to Monday) in the workspace time zone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from bot.config import LOCALES, Settings
from bot.services.digest_periods import Period, WeekError, period_for_week, schedule_for


def add_parser(sub: Any) -> None:
    p = sub.add_parser("digest", help="post the weekly digests now, or print them (--dry-run / --json)")
    p.add_argument("--team", help="a team slug (default: every team, plus the organisation digest if "
                                  "[workspace] leadership_channel is set); '*' is the organisation digest")
    p.add_argument("--week", help="an ISO week like 2026-W47, Monday to Monday in the workspace time zone "
                                  "(default: the latest scheduled digest)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--dry-run", action="store_true", help="print a readable digest instead of posting")
    out.add_argument("--json", action="store_true", help="print the figures as JSON instead of posting")
    p.add_argument("--charts", metavar="DIR", help="with --dry-run/--json: also write the chart PNGs here")
    p.add_argument("--locale", choices=LOCALES, help="with --dry-run/--json: the language to print (and draw the "
                                                     "charts) in (default: each digest's channel language)")
    p.set_defaults(func=cmd_digest)


class UsageError(Exception):
    """Bad --team/--week: printed, exit code 2."""


def _targets(settings: Settings, team: str | None) -> list[Any]:
    from bot.services.digest_jobs import ORG, target_for, targets

    if team is None:
        return targets(settings)
    slug = ORG if team in ("*", "org", "organisation") else team
    target = target_for(settings, slug)
    if target is None:
        if slug == ORG:
            raise UsageError("the organisation digest needs [workspace] leadership_channel in the config")
        known = ", ".join(t.slug for t in settings.teams)
        raise UsageError(f"unknown team {team!r}; configured teams: {known}")
    return [target]


def _period(settings: Settings, target: Any, week: str | None, now: Any) -> Period:
    from bot.services.digest_jobs import latest_period

    if week:
        try:  # the target's own window for that key: the same digest as the scheduled one
            return period_for_week(week, schedule_for(settings, target.team))
        except WeekError as exc:
            raise UsageError(str(exc)) from exc
    return latest_period(settings, target, now)


def figures(engine: Any, settings: Settings, plan: list[tuple[Any, Period]],
            workspace_url: str | None = None, now: Any = None) -> list[Any]:
    """TeamDigest/OrgDigest for each (target, period), teams sharing a period computed in one pass.
    A period that has not ended yet shows the satisfaction of the last week closed by `now`."""
    from bot.runtime.deps import utc_now
    from bot.services import digests
    from storage.session import session_scope

    now = now or utc_now()
    groups: dict[Period, list[Any]] = defaultdict(list)
    for target, period in plan:
        if target.team is not None:
            groups[period].append(target.team)
    done: dict[tuple[str, Period], Any] = {}
    with session_scope(engine) as session:
        for period, teams in groups.items():
            for d in digests.compute(session, settings, teams, period, workspace_url=workspace_url, now=now):
                done[(d.team, period)] = d
        for target, period in plan:
            if target.team is None:
                shared = [done.get((t.slug, period)) for t in settings.teams]
                reuse = shared if all(shared) else None
                done[(target.slug, period)] = digests.compute_org(session, settings, period, teams=reuse,
                                                                  workspace_url=workspace_url, now=now)
    return [done[(target.slug, period)] for target, period in plan]


def render_digest_text(deps: Any, team_slug: str, period: Period | None = None,
                       chart_dir: str | Path | None = None) -> str:
    """A readable digest of a team ('*' = organisation) for the demo and --dry-run, in its channel's
    language; optionally its chart."""
    from bot.i18n import translator
    from bot.render import digest_text
    from bot.services.digest_jobs import chart_name, latest_period, locale_of, target_for, write_chart

    target = target_for(deps.settings, team_slug)
    if target is None:
        raise UsageError(f"unknown team {team_slug!r}")
    period = period or latest_period(deps.settings, target, deps.now())
    result = figures(deps.engine, deps.settings, [(target, period)], deps.workspace_url, deps.now())[0]
    t = translator(locale_of(deps.settings, target))
    if chart_dir is not None:
        write_chart(result, Path(chart_dir) / chart_name(target.slug, period.week), t)
    return digest_text.team_text(result, t) if target.team else digest_text.org_text(result, t)


def _print(results: list[Any], translators: list[Any], as_json: bool, single: bool) -> None:
    from bot.render import digest_text
    from bot.services.digests import OrgDigest

    if not as_json:
        texts = [digest_text.org_text(r, t) if isinstance(r, OrgDigest) else digest_text.team_text(r, t)
                 for r, t in zip(results, translators, strict=True)]
        print(("\n\n" + "—" * 60 + "\n\n").join(texts))
        return
    data = [digest_text.org_json(r, t) if isinstance(r, OrgDigest) else digest_text.team_json(r, t)
            for r, t in zip(results, translators, strict=True)]
    if single:
        payload: Any = data[0]
    else:
        org = next((d for d in data if d["team"] == "*"), None)
        payload = {"teams": [d for d in data if d["team"] != "*"], "organisation": org}
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _post(settings: Settings, engine: Any, plan: list[tuple[Any, Period]]) -> int:
    from bot.config import ConfigError
    from bot.runtime.jobs import build_deps
    from bot.services.digest_jobs import post_now

    if not settings.bot_token:
        raise ConfigError("environment: key 'SLACK_BOT_TOKEN': required to post (or use --dry-run / --json)")
    deps = build_deps(settings, engine, workers=2)
    failed = 0
    try:
        for target, period in plan:
            if period.end > deps.now():
                raise UsageError(f"week {period.week} has not ended yet; use --dry-run to preview it")
            result = post_now(deps, target, period)
            where = f" in {result.channel} (ts {result.ts})" if result.ts else ""
            detail = f": {result.error}" if result.error else ""
            print(f"{target.slug} {period.week}: {result.status.replace('_', ' ')}{where}{detail}")
            failed += result.status not in ("posted", "already_posted")
    finally:
        deps.outbox.stop()
    return 1 if failed else 0


def cmd_digest(args: argparse.Namespace) -> int:
    from bot.cli import command_settings
    from bot.runtime.database import open_database
    from bot.runtime.deps import utc_now

    settings = command_settings()
    try:
        plan = [(t, _period(settings, t, args.week, utc_now())) for t in _targets(settings, args.team)]
        engine = open_database(settings, migrate=False)
        try:
            if not (args.dry_run or args.json):
                return _post(settings, engine, plan)
            from bot.i18n import translator
            from bot.services.digest_jobs import chart_name, locale_of, write_chart

            results = figures(engine, settings, plan)
            translators = [translator(args.locale or locale_of(settings, target)) for target, _ in plan]
            if args.charts:
                for (target, period), result, t in zip(plan, results, translators, strict=True):
                    write_chart(result, Path(args.charts) / chart_name(target.slug, period.week), t)
            _print(results, translators, args.json, single=args.team is not None)
        finally:
            engine.dispose()
    except UsageError as exc:
        print(f"askdesk digest: {exc}", file=sys.stderr)
        return 2
    return 0
