"""Configuration: environment variables plus a TOML file, read once into a `Settings` object.

Nothing else in askdesk reads `os.environ`; handlers and services receive `Settings`.
A wrong or missing config fails at start with a `ConfigError` naming the file, the key and what
is expected.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

DEFAULT_RATINGS: dict[str, int] = {
    "star-struck": 5,
    "heart_eyes": 5,
    "+1": 5,
    "slightly_smiling_face": 4,
    "smiley": 4,
    "neutral_face": 3,
    "slightly_frowning_face": 2,
    "confused": 2,
    "-1": 1,
    "disappointed": 1,
    "rage": 1,
}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
URGENCIES = ("low", "normal", "high")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,20}$")
COMMAND_RE = re.compile(r"^/[a-z0-9_-]{1,31}$")
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_DURATION_RE = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


class ConfigError(Exception):
    """A configuration problem, with a message meant for the person running askdesk."""


def parse_duration(text: str) -> timedelta:
    """Parse "30m", "4h", "2d", "1w", "90s" or combinations like "1h30m"."""
    if not isinstance(text, str):
        raise ValueError("expected a duration string like \"30m\", \"4h\" or \"2d\"")
    compact = text.strip().lower().replace(" ", "")
    if not compact or _DURATION_RE.sub("", compact):
        raise ValueError(f"{text!r} is not a duration; use forms like \"30m\", \"4h\", \"2d\", \"1h30m\"")
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION_RE.findall(compact))
    return timedelta(seconds=seconds)


def format_duration_setting(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Team:
    slug: str
    name: str
    channel: str
    command: str
    categories: tuple[str, ...] = ()
    first_response_sla: timedelta = timedelta(hours=4)
    resolution_sla: timedelta = timedelta(days=2)
    digest_channel: str = ""
    digest_weekday: str | None = None
    digest_time: time | None = None

    @property
    def digest_target(self) -> str:
        return self.digest_channel or self.channel


@dataclass(frozen=True)
class Workspace:
    timezone: str = "UTC"
    admins: tuple[str, ...] = ()
    department_profile_field: str = ""
    leadership_channel: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Surveys:
    enabled: bool = True
    delay: timedelta = timedelta(minutes=30)
    working_hours: tuple[time, time] = (time(9, 0), time(18, 0))
    working_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    min_days_between: float = 7.0
    expire_after: timedelta = timedelta(days=3)
    anonymity_threshold: int = 5


@dataclass(frozen=True)
class DigestSettings:
    weekday: str = "mon"
    time: time = time(9, 0)
    catch_up: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class SchedulerSettings:
    tick: timedelta = timedelta(seconds=1)
    lease: timedelta = timedelta(seconds=15)
    batch_size: int = 200
    workers: int = 16


@dataclass(frozen=True)
class Settings:
    """Everything askdesk needs to run, read once at start."""

    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///askdesk.db"
    config_path: str = "askdesk.toml"
    port: int = 3000
    log_level: str = "INFO"
    workspace: Workspace = field(default_factory=Workspace)
    teams: tuple[Team, ...] = ()
    ratings: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_RATINGS))
    surveys: Surveys = field(default_factory=Surveys)
    digest: DigestSettings = field(default_factory=DigestSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    responder_cache_ttl: timedelta = timedelta(minutes=5)
    listener_threads: int = 192
    http_threads: int = 48

    def team(self, slug: str) -> Team | None:
        return next((t for t in self.teams if t.slug == slug), None)

    def team_for_command(self, command: str) -> Team | None:
        return next((t for t in self.teams if t.command == command.strip().lower()), None)

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.workspace.admins

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(database_url={redact_url(self.database_url)!r}, teams={[t.slug for t in self.teams]})"


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


class _Reader:
    """Typed access to a TOML table with errors naming the file and the key."""

    def __init__(self, path: str, data: Mapping[str, Any], prefix: str) -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, expected: str, got: Any = None) -> ConfigError:
        where = f"{self.prefix}.{key}" if self.prefix else key
        got_text = "" if got is None else f", got {got!r}"
        return ConfigError(f"{self.path}: key '{where}': expected {expected}{got_text}")

    def get(self, key: str, kind: type | tuple[type, ...], expected: str, default: Any = ..., ) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, f"{expected} (missing)")
            return default
        value = self.data[key]
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            raise self.fail(key, expected, value)
        if not isinstance(value, kind):
            raise self.fail(key, expected, value)
        return value

    def duration(self, key: str, default: timedelta) -> timedelta:
        raw = self.get(key, str, 'a duration string like "30m", "4h" or "2d"', None)
        if raw is None:
            return default
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise self.fail(key, 'a duration string like "30m", "4h" or "2d"', raw) from exc

    def clock(self, key: str, default: time) -> time:
        raw = self.get(key, str, 'a time like "09:00"', None)
        if raw is None:
            return default
        return _parse_clock(raw, lambda: self.fail(key, 'a time like "09:00"', raw))

    def channel(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, "a Slack channel ID like \"C0123ABCD\"", default)
        if value and not CHANNEL_RE.match(value):
            raise self.fail(key, "a Slack channel ID like \"C0123ABCD\" (not a #name)", value)
        return value


def _parse_clock(raw: str, fail: Any) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise fail()
    return time(int(match.group(1)), int(match.group(2)))


def _weekdays(raw: str, fail: Any) -> tuple[int, ...]:
    days: list[int] = []
    for part in raw.lower().replace(" ", "").split(","):
        if "-" in part:
            start, _, end = part.partition("-")
            if start not in WEEKDAYS or end not in WEEKDAYS:
                raise fail()
            a, b = WEEKDAYS.index(start), WEEKDAYS.index(end)
            days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part in WEEKDAYS:
            days.append(WEEKDAYS.index(part))
        else:
            raise fail()
    return tuple(sorted(set(days)))


def _parse_workspace(path: str, data: Mapping[str, Any]) -> Workspace:
    r = _Reader(path, data, "workspace")
    tz = r.get("timezone", str, 'an IANA time zone like "Europe/Berlin"', "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise r.fail("timezone", 'an IANA time zone like "Europe/Berlin"', tz) from exc
    admins = r.get("admins", list, "a list of Slack user IDs", [])
    for admin in admins:
        if not isinstance(admin, str) or not USER_RE.match(admin):
            raise r.fail("admins", 'a list of Slack user IDs like "U0123ABCD"', admin)
    return Workspace(
        timezone=tz,
        admins=tuple(admins),
        department_profile_field=r.get("department_profile_field", str, "a profile field label", ""),
        leadership_channel=r.channel("leadership_channel", ""),
    )


def _parse_team(path: str, index: int, data: Any) -> Team:
    prefix = f"teams[{index}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: key '{prefix}': expected a [[teams]] table")
    r = _Reader(path, data, prefix)
    slug = r.get("slug", str, "a short lowercase name like \"finance\"")
    if not SLUG_RE.match(slug):
        raise r.fail("slug", "lowercase letters, digits, '-' or '_' (at most 21 characters)", slug)
    command = r.get("command", str, "a slash command like \"/ask-finance\"", f"/ask-{slug}").lower()
    if not COMMAND_RE.match(command):
        raise r.fail("command", "a slash command like \"/ask-finance\" (2-32 characters)", command)
    categories = r.get("categories", list, "a list of category names", [])
    if any(not isinstance(c, str) or not c.strip() or len(c) > 75 for c in categories):
        raise r.fail("categories", "a list of non-empty names of at most 75 characters", categories)
    weekday = r.get("digest_weekday", str, "a weekday like \"mon\"", None)
    if weekday is not None and weekday.lower()[:3] not in WEEKDAYS:
        raise r.fail("digest_weekday", "a weekday like \"mon\"", weekday)
    digest_time = r.clock("digest_time", time(0, 0)) if "digest_time" in data else None
    return Team(
        slug=slug,
        name=r.get("name", str, "the team's display name", slug.title()),
        channel=r.channel("channel"),
        command=command,
        categories=tuple(c.strip() for c in categories),
        first_response_sla=r.duration("first_response_sla", timedelta(hours=4)),
        resolution_sla=r.duration("resolution_sla", timedelta(days=2)),
        digest_channel=r.channel("digest_channel", ""),
        digest_weekday=weekday.lower()[:3] if weekday else None,
        digest_time=digest_time,
    )


def _parse_ratings(path: str, data: Any) -> dict[str, int]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: key 'ratings': expected a table of emoji = score (1-5)")
    ratings: dict[str, int] = {}
    for emoji, score in data.items():
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ConfigError(f"{path}: key 'ratings.{emoji}': expected a score from 1 to 5, got {score!r}")
        ratings[emoji.strip(":")] = score
    return ratings


def _parse_surveys(path: str, data: Mapping[str, Any]) -> Surveys:
    r = _Reader(path, data, "surveys")
    hours_raw = r.get("working_hours", str, 'a range like "09:00-18:00"', "09:00-18:00")
    parts = hours_raw.split("-")
    fail_hours = lambda: r.fail("working_hours", 'a range like "09:00-18:00"', hours_raw)  # noqa: E731
    if len(parts) != 2:
        raise fail_hours()
    start, end = (_parse_clock(p, fail_hours) for p in parts)
    if start >= end:
        raise fail_hours()
    days_raw = r.get("working_days", str, 'days like "mon-fri"', "mon-fri")
    days = _weekdays(days_raw, lambda: r.fail("working_days", 'days like "mon-fri" or "mon,wed,fri"', days_raw))
    threshold = r.get("anonymity_threshold", int, "a whole number (at least 3)", 5)
    if threshold < 3:
        raise r.fail("anonymity_threshold", "a whole number of at least 3 (smaller groups identify people)",
                     threshold)
    min_days = r.get("min_days_between", (int, float), "a number of days", 7)
    if min_days < 0:
        raise r.fail("min_days_between", "a number of days >= 0", min_days)
    return Surveys(
        enabled=r.get("enabled", bool, "true or false", True),
        delay=r.duration("delay", timedelta(minutes=30)),
        working_hours=(start, end),
        working_days=days,
        min_days_between=float(min_days),
        expire_after=r.duration("expire_after", timedelta(days=3)),
        anonymity_threshold=threshold,
    )


def _parse_digest(path: str, data: Mapping[str, Any]) -> DigestSettings:
    r = _Reader(path, data, "digest")
    weekday = r.get("weekday", str, 'a weekday like "mon"', "mon").lower()[:3]
    if weekday not in WEEKDAYS:
        raise r.fail("weekday", 'a weekday like "mon"', data.get("weekday"))
    return DigestSettings(weekday=weekday, time=r.clock("time", time(9, 0)),
                          catch_up=r.duration("catch_up", timedelta(days=1)))


def _parse_scheduler(path: str, data: Mapping[str, Any]) -> SchedulerSettings:
    r = _Reader(path, data, "scheduler")
    tick = r.duration("tick", timedelta(seconds=1)) if not isinstance(data.get("tick"), (int, float)) else \
        timedelta(seconds=float(data["tick"]))
    if tick.total_seconds() <= 0:
        raise r.fail("tick", "a positive duration", data.get("tick"))
    return SchedulerSettings(
        tick=tick,
        lease=r.duration("lease", timedelta(seconds=15)),
        batch_size=r.get("batch_size", int, "a whole number", 200),
        workers=r.get("workers", int, "a whole number", 16),
    )


KNOWN_SECTIONS = {"workspace", "teams", "ratings", "surveys", "digest", "scheduler"}


def parse_config(path: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a parsed TOML document; return keyword arguments for `Settings`."""
    unknown = set(data) - KNOWN_SECTIONS
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; expected {sorted(KNOWN_SECTIONS)}")
    workspace = data.get("workspace", {})
    if not isinstance(workspace, dict):
        raise ConfigError(f"{path}: key 'workspace': expected a [workspace] table")
    teams_raw = data.get("teams")
    if not isinstance(teams_raw, list) or not teams_raw:
        raise ConfigError(f"{path}: key 'teams': expected at least one [[teams]] table (slug, name, channel)")
    teams = tuple(_parse_team(path, i, t) for i, t in enumerate(teams_raw))
    for attr in ("slug", "command"):
        seen: set[str] = set()
        for i, team in enumerate(teams):
            value = getattr(team, attr)
            if value in seen:
                raise ConfigError(f"{path}: key 'teams[{i}].{attr}': expected a unique value, got {value!r} twice")
            seen.add(value)
    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: key '{name}': expected a [{name}] table")
        return value

    return {
        "workspace": _parse_workspace(path, workspace),
        "teams": teams,
        "ratings": _parse_ratings(path, data["ratings"]) if "ratings" in data else dict(DEFAULT_RATINGS),
        "surveys": _parse_surveys(path, section("surveys")),
        "digest": _parse_digest(path, section("digest")),
        "scheduler": _parse_scheduler(path, section("scheduler")),
    }


def load_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.exists():
        raise ConfigError(
            f"{path}: config file not found (set ASKDESK_CONFIG or copy askdesk.example.toml to askdesk.toml)"
        )
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_config(path, data)


def load_settings(
    environ: Mapping[str, str] | None = None,
    *,
    dotenv_path: str | None = ".env",
    require_signing_secret: bool = False,
    config_overrides: dict[str, Any] | None = None,
) -> Settings:
    """Read the environment (the real environment wins over `.env`) and the TOML config."""
    env: dict[str, str] = {}
    if dotenv_path and Path(dotenv_path).exists():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    config_path = env.get("ASKDESK_CONFIG", "askdesk.toml")
    config = config_overrides if config_overrides is not None else load_config_file(config_path)
    port_raw = env.get("PORT", "3000")
    if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
        raise ConfigError(f"environment: key 'PORT': expected a TCP port number, got {port_raw!r}")
    api_url = env.get("SLACK_API_URL") or "https://slack.com/api/"
    if not api_url.endswith("/"):
        api_url += "/"
    settings = Settings(
        bot_token=env.get("SLACK_BOT_TOKEN", ""),
        signing_secret=env.get("SLACK_SIGNING_SECRET", ""),
        app_token=env.get("SLACK_APP_TOKEN", ""),
        slack_api_url=api_url,
        database_url=env.get("DATABASE_URL") or "sqlite:///askdesk.db",
        config_path=config_path,
        port=int(port_raw),
        log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
        **config,
    )
    if require_signing_secret and not settings.signing_secret:
        raise ConfigError("environment: key 'SLACK_SIGNING_SECRET': required in HTTP mode (from your app's "
                          "Basic Information page)")
    return settings
