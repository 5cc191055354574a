"""`/askdesk digest [team]`: the current figures, for a team's responders and askdesk admins only."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import Team
from bot.i18n import Translator
from bot.render.blocks import Rendered, notice
from bot.render.digest_blocks import on_demand as on_demand_blocks
from bot.runtime.deps import Deps
from bot.services import digests
from bot.services.digest_periods import period_ending


def usage(t: Translator) -> str:
    """`/askdesk help`."""
    return t._("*askdesk* commands\n"
               "• `/askdesk digest [team]` — the last 7 days' requests and speed for a team you answer for, with "
               "the satisfaction of the last whole week (only you see them)\n"
               "• `/askdesk action [team]` — record an improvement action from the team's latest needs survey\n"
               "• `/askdesk help` — this message")


def unknown_subcommand(word: str, t: Translator) -> str:
    return t._("I don't know `{word}`.\n{usage}", word=word[:30], usage=usage(t))


@dataclass(frozen=True)
class Answer:
    rendered: Rendered
    allowed: bool


def _team_list(deps: Deps) -> str:
    return ", ".join(f"`{t.slug}`" for t in deps.settings.teams)


def _refused(team: Team | None, t: Translator) -> Answer:
    if team:
        text = t._("Sorry, the digest figures are only for {team}'s responders (members of its triage channel) and "
                   "askdesk admins.", team=team.name)
    else:
        text = t._("Sorry, the digest figures are only for a team's responders (members of its triage channel) "
                   "and askdesk admins.")
    return Answer(notice(text), allowed=False)


def current_figures(deps: Deps, *, user_id: str, team_slug: str | None) -> Answer:
    """The 7 days until now for `team_slug` (or the user's first team), if the user may see them; in the
    user's language (only they see it). Satisfaction is the last closed feedback week's, never the running
    week's (docs/privacy.md)."""
    settings = deps.settings
    is_admin = settings.is_admin(user_id)
    t = deps.directory.translator_for(user_id, now=deps.now())
    if team_slug:
        team = settings.team(team_slug)
        if team is None:
            return Answer(notice(t._("There is no team `{team}`. Teams: {teams}.", team=team_slug,
                                     teams=_team_list(deps))), False)
        if not (is_admin or deps.directory.is_responder(team, user_id)):
            return _refused(team, t)
        others: list[Team] = []
    else:
        mine = deps.directory.responder_teams(user_id)
        if not mine:
            if is_admin:
                return Answer(notice(t._("Which team? `/askdesk digest <team>` — {teams}.", teams=_team_list(deps))),
                              False)
            return _refused(None, t)
        team, others = mine[0], mine[1:]
    period = period_ending(deps.now(), settings.workspace.timezone)
    figures = digests.team_digest(deps.engine, settings, team, period, workspace_url=deps.workspace_url)
    rendered = on_demand_blocks(figures, t=t)
    if others:
        hint = notice(t._("Your other teams: {commands}",
                          commands=", ".join(f"`/askdesk digest {x.slug}`" for x in others)))
        rendered = Rendered(rendered.text, [*rendered.blocks, *hint.blocks][:50])
    return Answer(rendered, allowed=True)
