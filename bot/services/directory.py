"""Who is who: responders (members of a team's triage channel), departments, time zones, languages.

Channel members are read through the Web API and cached briefly in memory; a person's department,
time zone and locale are cached in the `people` table (the locale also briefly in memory, since every
answer to a person needs it).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine

from bot.config import Settings, Team
from bot.i18n import Translator, remember_locale, resolve_locale, translator
from bot.slack.client import is_permanent, slack_error
from storage import people
from storage.group_commit import group_commit

log = logging.getLogger(__name__)
PERSON_TTL = timedelta(days=1)
GONE_ERRORS = frozenset({"user_not_found", "user_disabled", "account_inactive"})


def raise_if_transient(exc: SlackApiError) -> None:
    """Raise `exc` unless Slack's answer is final (a missing user or channel, a missing scope...):
    a guess made from a passing error (nobody is a responder, the department is "Other") would be
    stored or acted on as if it were true."""
    if not is_permanent(exc):
        raise exc


class Directory:
    def __init__(self, settings: Settings, client: WebClient, engine: Engine, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.client, self.engine, self.clock = settings, client, engine, clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()
        self._field_ids: dict[str, set[str]] | None = None
        self._locales: dict[str, tuple[float, str | None]] = {}
        self._fetching: dict[str, threading.Lock] = {}  # one users.info at a time per person
        self._names: dict[str, tuple[float, str | None]] = {}

    # -- responders -------------------------------------------------------------------------
    def members(self, channel: str, *, fresh: bool = False) -> frozenset[str]:
        """The channel's members, cached for `responder_cache_ttl` (`fresh`: asked afresh, for a decision
        that must not rest on a stale list, such as assigning a request to someone)."""
        ttl = self.settings.responder_cache_ttl.total_seconds()
        with self._lock:
            cached = self._members.get(channel)
        if cached and not fresh and self.clock() - cached[0] < ttl:
            return cached[1]
        members: set[str] = set()
        cursor = None
        try:
            while True:
                resp = self.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
                members.update(resp.get("members", []))
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    break
        except SlackApiError as exc:
            log.warning("could not read members of %s: %s", channel, slack_error(exc))
            if cached:
                return cached[1]  # a stale answer beats locking everyone out
            raise_if_transient(exc)  # a wrong "not a member" (or department) is worse than "try again"
            return frozenset()
        result = frozenset(members)
        with self._lock:
            self._members[channel] = (self.clock(), result)
        return result

    def is_responder(self, team: Team, user_id: str) -> bool:
        return user_id in self.members(team.channel)

    def responder_teams(self, user_id: str) -> list[Team]:
        return [t for t in self.settings.teams if self.is_responder(t, user_id)]

    def name_of(self, user_id: str, *, max_age: timedelta = PERSON_TTL) -> str | None:
        """A person's display name (users.info, cached for `max_age`); None for bots and deactivated users."""
        with self._lock:
            cached = self._names.get(user_id)
        if cached and self.clock() - cached[0] < max_age.total_seconds():
            return cached[1]
        try:
            return self._lookup(user_id)[1]
        except SlackApiError as exc:
            log.info("no user info for %s: %s", user_id, slack_error(exc))
            return user_id if not cached else cached[1]

    def _lookup(self, user_id: str) -> tuple[dict[str, Any], str | None]:
        """users.info and the person's name (None for a bot or someone gone), remembered for name_of; a
        person Slack no longer knows is remembered as gone (and the error raised)."""
        try:
            user = self.client.users_info(user=user_id).get("user") or {}
        except SlackApiError as exc:
            if slack_error(exc) in GONE_ERRORS:
                with self._lock:
                    self._names[user_id] = (self.clock(), None)
            raise
        profile = user.get("profile") or {}
        name = None if user.get("is_bot") or user.get("deleted") or user_id == "USLACKBOT" else str(
            profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
            or user_id)
        with self._lock:
            self._names[user_id] = (self.clock(), name)
        return user, name

    def is_gone(self, user_id: str) -> bool:
        """Whether Slack says the person was deactivated or does not exist (asked afresh, and remembered:
        the Assign picker stops offering them; a lookup that fails otherwise is not taken for "gone")."""
        return self._kind(user_id) == "gone"

    def is_person(self, user_id: str) -> bool:
        """Whether `user_id` is an active person: not gone (as `is_gone`), not a bot, not Slackbot."""
        return self._kind(user_id) == "person"

    def _kind(self, user_id: str) -> str:
        """"gone", "bot" or "person" (also when the lookup fails for another reason), asked afresh."""
        try:
            user = self._lookup(user_id)[0]
        except SlackApiError as exc:
            return "gone" if slack_error(exc) in GONE_ERRORS else "person"
        if user.get("deleted"):
            return "gone"
        return "bot" if user.get("is_bot") or user_id == "USLACKBOT" else "person"

    def people_of(self, team: Team) -> list[tuple[str, str]]:
        """The team's responders who are people (not bots, not deactivated), as (user id, name), by name: the
        channel's members asked afresh, and whether each is still active at most `responder_cache_ttl` ago."""
        max_age = self.settings.responder_cache_ttl
        named = ((user, self.name_of(user, max_age=max_age)) for user in self.members(team.channel, fresh=True))
        return sorted(((user, name) for user, name in named if name), key=lambda p: (p[1].lower(), p[0]))

    # -- people -----------------------------------------------------------------------------
    def _save_person(self, user_id: str, **values: object) -> None:
        """Cache what Slack said of a person (committed with other threads' writes: storage.group_commit)."""
        group_commit(self.engine, people.save, {"user_id": user_id, **values})

    def department_of(self, user_id: str, *, now: datetime) -> str:
        """First team (config order) whose triage channel has the user, else the profile field, else Other."""
        for team in self.settings.teams:
            if user_id in self.members(team.channel):
                return team.name
        if not self.settings.workspace.department_profile_field.strip():
            return "Other"
        person = people.cached(self.engine, user_id)
        if person and person.department and person.refreshed_at and now - person.refreshed_at < PERSON_TTL:
            return person.department
        department = self._profile_department(user_id) or "Other"
        self._save_person(user_id, department=department, refreshed_at=now)
        return department

    def _profile_department(self, user_id: str) -> str | None:
        label = self.settings.workspace.department_profile_field.strip().lower()
        if not label:
            return None
        try:
            profile = self.client.users_profile_get(user=user_id).get("profile") or {}
        except SlackApiError as exc:
            log.info("no profile for %s: %s", user_id, slack_error(exc))
            raise_if_transient(exc)
            return None
        field_ids = self._profile_field_ids(label)
        for key, field in (profile.get("fields") or {}).items():
            if not isinstance(field, dict):
                continue
            if key in field_ids or key.lower() == label or str(field.get("label", "")).strip().lower() == label:
                value = str(field.get("value") or "").strip()
                return value[:100] or None
        return None

    def _profile_field_ids(self, label: str) -> set[str]:
        """Ids of the workspace's custom profile fields with this label (team.profile.get, cached)."""
        if self._field_ids is None:
            try:
                fields = (self.client.api_call("team.profile.get").get("profile") or {}).get("fields") or []
            except SlackApiError as exc:
                log.info("team.profile.get failed: %s", slack_error(exc))
                raise_if_transient(exc)
                return set()
            self._field_ids = {}
            for field in fields:
                self._field_ids.setdefault(str(field.get("label", "")).strip().lower(), set()).add(field.get("id"))
        return self._field_ids.get(label, set())

    def timezone_of(self, user_id: str, *, now: datetime) -> str:
        """The user's IANA time zone from Slack (cached), or the workspace's."""
        person = people.cached(self.engine, user_id)
        if person and person.tz and person.refreshed_at and now - person.refreshed_at < PERSON_TTL:
            return person.tz
        return self._refresh(user_id, now=now)[0]

    def _refresh(self, user_id: str, *, now: datetime) -> tuple[str, str]:
        """Time zone and Slack locale from users.info (one call), stored; ("workspace zone", "") if unknown."""
        tz, locale = None, ""
        try:
            user = self.client.users_info(user=user_id, include_locale=True).get("user") or {}
            tz, locale = user.get("tz") or None, str(user.get("locale") or "")[:16]
        except SlackApiError as exc:
            log.info("no user info for %s: %s", user_id, slack_error(exc))
            raise_if_transient(exc)  # the survey's planning job tries again; no wrong zone is kept a day
        tz = tz or self.settings.workspace.timezone
        self._save_person(user_id, tz=tz, locale=locale, refreshed_at=now)
        with self._lock:
            self._locales[user_id] = (self.clock(), locale)
        return tz, locale

    # -- languages --------------------------------------------------------------------------
    def resolve(self, raw: str | None) -> str:
        """A supported locale for a Slack locale, with the workspace's fallbacks."""
        workspace = self.settings.workspace
        return resolve_locale(raw, default=workspace.locale, chinese_fallback=workspace.chinese_fallback)

    def _cached_locale(self, user_id: str, *, now: datetime, table: bool = True) -> str | None:
        """The person's Slack locale ("" = Slack gave none) from memory or (`table`) the people table,
        None if neither has it. What the table said is remembered for `responder_cache_ttl`, a miss
        too: then only Slack can tell, and nobody looks in the table again meanwhile."""
        with self._lock:
            cached = self._locales.get(user_id)
        if cached and self.clock() - cached[0] < self.settings.responder_cache_ttl.total_seconds():
            return cached[1]
        if not table:
            return None
        person = people.cached(self.engine, user_id)
        fresh = person is not None and person.refreshed_at is not None and now - person.refreshed_at < PERSON_TTL
        raw = person.locale if fresh else None  # type: ignore[union-attr]
        with self._lock:
            self._locales[user_id] = (self.clock(), raw)
        return raw

    def _resolved(self, user_id: str, raw: str) -> str:
        locale = self.resolve(raw)
        remember_locale(user_id, locale)
        return locale

    def locale_of(self, user_id: str, *, now: datetime) -> str:
        """The person's language (`en` or `zh-CN`): their Slack locale, cached; else `[workspace] locale`."""
        raw = self._cached_locale(user_id, now=now)
        if raw is None:
            with self._lock:
                fetching = self._fetching.setdefault(user_id, threading.Lock())
            with fetching:  # the ack's follow-up and the post job both ask on first contact: one call
                raw = self._cached_locale(user_id, now=now, table=False)  # the other one's answer, if first
                if raw is None:
                    raw = self._refresh(user_id, now=now)[1]
            with self._lock:
                self._fetching.pop(user_id, None)
        return self._resolved(user_id, raw)

    def translator_for(self, user_id: str | None, *, now: datetime) -> Translator:
        """The translator of what `user_id` reads (the workspace's when there is no user)."""
        return translator(self.locale_of(user_id, now=now) if user_id else self.settings.workspace.locale)

    def cached_translator(self, user_id: str, *, now: datetime) -> Translator | None:
        """The person's translator if their language is cached (no Slack call), else None: for answers in
        an ack, which must not wait for users.info (see handlers/commands.py)."""
        raw = self._cached_locale(user_id, now=now)
        return None if raw is None else translator(self._resolved(user_id, raw))

    def team_translator(self, team: Team | None) -> Translator:
        """The translator of a team's channel messages (`None`: the organisation digest)."""
        return translator(self.settings.team_locale(team))
