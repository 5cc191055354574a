"""Configuration: environment variables plus a TOML file, read once into a `Settings` object.

Nothing else in askdesk reads `os.environ`; handlers and services receive `Settings`. The file's
shape is a set of pydantic models (`ConfigFile`); unknown keys, wrong types and out-of-range values
fail at start with a one-line `ConfigError` naming the file, the key and what is expected (and, for
a misspelt key, the nearest valid one). `askdesk config schema` prints the same models as a JSON
Schema for editors.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.services.sla_clock import SlaSpan, parse_hours, parse_span

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
LOCALES = ("en", "zh-CN")  # the languages askdesk speaks (bot/i18n)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_CATEGORIES = 100  # a Slack select menu offers at most 100 options
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,20}$")
COMMAND_RE = re.compile(r"^/[a-z0-9_-]{1,31}$")
CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_RE = re.compile(r"^[UW][A-Z0-9]{2,}$")
_DURATION_RE = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_TEXT = 'a duration like "30m", "4h", "2d" or "1h30m"'
_CLOCK_PATTERN = r"^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
_DAY = "(mon|tue|wed|thu|fri|sat|sun)"
_DAYS_PATTERN = rf"^{_DAY}(-{_DAY})?(,{_DAY}(-{_DAY})?)*$"


class ConfigError(Exception):
    """A configuration problem, with a message meant for the person running askdesk."""


class _KeyedError(ValueError):
    """A validation problem found on a whole table or list that belongs to one key inside it
    (`loc` is relative to the value the validator checked)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


# --------------------------------------------------------------------------------------------
# value types: how a TOML value is read, written back and described in the JSON Schema
# --------------------------------------------------------------------------------------------
def parse_duration(text: str) -> timedelta:
    """Parse "30m", "4h", "2d", "1w", "90s" or combinations like "1h30m"."""
    if not isinstance(text, str):
        raise ValueError(f"expected {_DURATION_TEXT}")
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


def _got(value: Any) -> str:
    return f", got {value!r}"


def _positive_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        delta = value
    else:
        try:
            delta = parse_duration(value)
        except ValueError:
            raise ValueError(f"expected {_DURATION_TEXT}{_got(value)}") from None
    if delta.total_seconds() <= 0:
        raise ValueError(f"expected a duration longer than zero{_got(value)}")
    return delta


def _tick(value: Any) -> timedelta:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        delta = timedelta(seconds=value)
    else:
        delta = _positive_duration(value)
    if delta.total_seconds() < 0.1:
        raise ValueError(f"expected at least 0.1 seconds (a number of seconds, or {_DURATION_TEXT}){_got(value)}")
    return delta


def _clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    match = re.fullmatch(_CLOCK_PATTERN, value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'expected a time like "09:00"{_got(value)}')
    hours, minutes = value.strip().split(":")
    return time(int(hours), int(minutes))


def _working_hours(value: Any) -> tuple[time, time]:
    if isinstance(value, tuple):
        return value
    expected = f'expected a range like "09:00-18:00" (start before end){_got(value)}'
    parts = value.split("-") if isinstance(value, str) else []
    if len(parts) != 2:
        raise ValueError(expected)
    try:
        start, end = _clock(parts[0]), _clock(parts[1])
    except ValueError:
        raise ValueError(expected) from None
    if start >= end:
        raise ValueError(expected)
    return start, end


def _weekday_set(value: Any) -> tuple[int, ...]:
    if isinstance(value, tuple):
        return value
    if not isinstance(value, str) or not re.fullmatch(_DAYS_PATTERN, value.replace(" ", "")):
        raise ValueError(f'expected days like "mon-fri" or "mon,wed,fri" (names: {", ".join(WEEKDAYS)}){_got(value)}')
    days: list[int] = []
    for part in value.replace(" ", "").split(","):
        start, _, end = part.partition("-")
        a, b = WEEKDAYS.index(start), WEEKDAYS.index(end or start)
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return tuple(sorted(set(days)))


def _format_weekdays(days: tuple[int, ...]) -> str:
    return ",".join(WEEKDAYS[d] for d in days)


def _weekday(value: str) -> str:
    if value not in WEEKDAYS:
        raise ValueError(f"expected a weekday: one of {', '.join(WEEKDAYS)}{_got(value)}")
    return value


def _pattern_check(regex: re.Pattern[str], expected: str, *, optional: bool = False) -> Any:
    def check(value: str) -> str:
        if (value or not optional) and not regex.match(value):
            raise ValueError(f"expected {expected}{_got(value)}")
        return value
    return check


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'expected an IANA time zone like "Europe/Berlin"{_got(value)}') from None
    return value


def _category(value: str) -> str:
    if not value.strip() or len(value) > 75:
        raise ValueError(f"expected a non-empty name of at most 75 characters{_got(value)}")
    return value.strip()


def _categories(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(value) > MAX_CATEGORIES:
        raise ValueError(f"expected at most {MAX_CATEGORIES} categories (a Slack menu shows no more), "
                         f"got {len(value)}")
    return value


def _locale(value: str) -> str:
    if value not in LOCALES:
        raise ValueError(f"expected one of {', '.join(repr(x) for x in LOCALES)}{_got(value)}")
    return value


def _optional_locale(value: str) -> str:
    return _locale(value) if value else value


def _score(value: int) -> int:
    if not 1 <= value <= 5:
        raise ValueError(f"expected a score from 1 to 5{_got(value)}")
    return value


def _schema(description: str, **schema: Any) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "description": description, **schema})


Duration = Annotated[
    timedelta, BeforeValidator(_positive_duration),
    PlainSerializer(format_duration_setting, return_type=str, when_used="json"),
    _schema(_DURATION_TEXT, pattern=r"^\s*([0-9]+\s*[wdhms]\s*)+$"),
]
Tick = Annotated[
    timedelta, BeforeValidator(_tick),
    PlainSerializer(format_duration_setting, return_type=str, when_used="json"),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0.1}, {"type": "string", "pattern": r"^([0-9]+[wdhms])+$"}],
                    "description": f"seconds (at least 0.1), or {_DURATION_TEXT}"}),
]
Clock = Annotated[
    time, BeforeValidator(_clock), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
    _schema('a time like "09:00"', pattern=_CLOCK_PATTERN),
]
WorkingHours = Annotated[
    tuple[time, time], BeforeValidator(_working_hours),
    PlainSerializer(lambda r: f"{r[0]:%H:%M}-{r[1]:%H:%M}", return_type=str, when_used="json"),
    _schema('a range like "09:00-18:00"', pattern=r"^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$"),
]
Weekdays = Annotated[
    tuple[int, ...], BeforeValidator(_weekday_set),
    PlainSerializer(_format_weekdays, return_type=str, when_used="json"),
    _schema('days like "mon-fri" or "mon,wed,fri"', pattern=_DAYS_PATTERN),
]
Weekday = Annotated[StrictStr, AfterValidator(_weekday), WithJsonSchema({"enum": list(WEEKDAYS)})]
ChannelId = Annotated[
    StrictStr, AfterValidator(_pattern_check(CHANNEL_RE, 'a Slack channel ID like "C0123ABCD" (not a #name)')),
    _schema("a Slack channel ID like C0123ABCD", pattern=CHANNEL_RE.pattern),
]
OptionalChannelId = Annotated[
    StrictStr,
    AfterValidator(_pattern_check(CHANNEL_RE, 'a Slack channel ID like "C0123ABCD" (not a #name)', optional=True)),
    _schema("a Slack channel ID like C0123ABCD, or empty", pattern=f"^$|{CHANNEL_RE.pattern}"),
]
UserId = Annotated[
    StrictStr, AfterValidator(_pattern_check(USER_RE, 'a Slack user ID like "U0123ABCD"')),
    _schema("a Slack user ID like U0123ABCD", pattern=USER_RE.pattern),
]
Locale = Annotated[StrictStr, AfterValidator(_locale), WithJsonSchema({"enum": list(LOCALES)})]
OptionalLocale = Annotated[StrictStr, AfterValidator(_optional_locale), WithJsonSchema({"enum": ["", *LOCALES]})]
Score = Annotated[StrictInt, AfterValidator(_score), WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 5})]
Category = Annotated[StrictStr, AfterValidator(_category), _schema("a category name", minLength=1, maxLength=75)]


# -- SLAs (bot/services/sla_clock.py does the arithmetic) --------------------------------------------
def _sla_span(value: Any) -> SlaSpan:
    if isinstance(value, SlaSpan):
        return value
    if isinstance(value, timedelta):  # given in code: whole days and the rest, as on a calendar clock
        value = format_duration_setting(value) if value.total_seconds() > 0 else "0s"
    try:
        span = parse_span(value)
    except ValueError:
        raise ValueError(f"expected {_DURATION_TEXT} (at least one minute){_got(value)}") from None
    if span.nominal() < timedelta(minutes=1):
        raise ValueError(f"expected an SLA of at least one minute{_got(value)}")
    return span


def _business_hours(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple):
        return value
    try:
        return parse_hours(value)
    except ValueError:
        raise ValueError(f'expected a range like "09:00-18:00" (start before end, "24:00" at the latest)'
                         f"{_got(value)}") from None


def _format_hours(hours: tuple[int, int]) -> str:
    return "-".join(f"{minute // 60:02d}:{minute % 60:02d}" for minute in hours)


def _holiday(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):  # a TOML date, written without quotes
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f'expected a date like "2026-12-25" (YYYY-MM-DD){_got(value)}')


def _reminder_share(value: Any) -> float | None:
    if value is None or isinstance(value, float):
        return value
    text = value.strip().lower() if isinstance(value, str) else ""
    match = re.fullmatch(r"(\d{1,2})\s*%", text)
    if text == "off":
        return None
    if match and 1 <= int(match.group(1)) <= 99:
        return int(match.group(1)) / 100
    raise ValueError(f'expected a share of the SLA from "1%" to "99%", or "off"{_got(value)}')


def _team_timezone(value: str) -> str:
    return _timezone(value) if value else value


SlaDuration = Annotated[
    SlaSpan, BeforeValidator(_sla_span), PlainSerializer(str, return_type=str, when_used="json"),
    _schema(f'{_DURATION_TEXT}, at least one minute; on a business clock "1d" is one working day',
            pattern=r"^\s*([0-9]+\s*[wdhms]\s*)+$"),
]
BusinessHours = Annotated[
    tuple[int, int], BeforeValidator(_business_hours),
    PlainSerializer(_format_hours, return_type=str, when_used="json"),
    _schema('a range like "09:00-18:00" ("24:00" ends at midnight)',
            pattern=r"^[0-9]{1,2}:[0-9]{2}-[0-9]{1,2}:[0-9]{2}$"),
]
Holiday = Annotated[date, BeforeValidator(_holiday), PlainSerializer(date.isoformat, return_type=str, when_used="json"),
                    _schema("a date like 2026-12-25", format="date")]
ReminderShare = Annotated[
    float | None, BeforeValidator(_reminder_share),
    PlainSerializer(lambda v: "off" if v is None else f"{round(v * 100)}%", return_type=str, when_used="json"),
    _schema('a share of the SLA like "75%", or "off"', pattern=r"^(off|[0-9]{1,2}%)$"),
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# the TOML file
# --------------------------------------------------------------------------------------------
class UrgencySla(_Table):
    """`[teams.urgency.<level>]`: the SLAs of one urgency; a key left out keeps the team's default."""

    first_response_sla: SlaDuration | None = None
    resolution_sla: SlaDuration | None = None


class UrgencySlas(_Table):
    """`[teams.urgency]`: SLAs per urgency (the levels of the request form)."""

    low: UrgencySla | None = None
    normal: UrgencySla | None = None
    high: UrgencySla | None = None

    def levels(self) -> dict[str, UrgencySla]:
        return {level: sla for level in URGENCIES if (sla := getattr(self, level)) is not None}


class Team(_Table):
    slug: Annotated[StrictStr, AfterValidator(_pattern_check(
        SLUG_RE, "lowercase letters, digits, '-' or '_' (at most 21 characters)"))] = Field(
        description='short lowercase id like "finance"; the command defaults to /ask-<slug>',
        json_schema_extra={"pattern": SLUG_RE.pattern})
    name: StrictStr = Field("", description="display name (default: the slug, capitalised)")
    channel: ChannelId = Field(description="the triage channel's ID")
    command: Annotated[StrictStr, AfterValidator(str.lower), AfterValidator(_pattern_check(
        COMMAND_RE, 'a slash command like "/ask-finance" (2-32 characters)'))] = Field(
        "", description="the team's slash command (default /ask-<slug>)",
        json_schema_extra={"pattern": COMMAND_RE.pattern})
    categories: Annotated[tuple[Category, ...], AfterValidator(_categories)] = Field(
        (), description=f"offered in the request form (at most {MAX_CATEGORIES})",
        json_schema_extra={"maxItems": MAX_CATEGORIES})
    first_response_sla: SlaDuration = SlaSpan(seconds=4 * 3600)
    resolution_sla: SlaDuration = SlaSpan(days=2)
    digest_channel: OptionalChannelId = Field("", description="where the weekly digest goes (default: channel)")
    digest_weekday: Weekday | None = Field(None, description="overrides [digest] weekday for this team")
    digest_time: Clock | None = Field(None, description="overrides [digest] time for this team")
    locale: OptionalLocale = Field("", description="language of its triage messages and weekly digest "
                                                   "(default: [workspace] locale)")
    needs_survey: Literal["quarterly", "monthly", "off"] = Field(
        "off", description="needs-survey rounds: a round opens at the start of every quarter or month")
    needs_audience: tuple[ChannelId, ...] = Field(
        (), description="channels whose members are invited to needs surveys too (besides the team's requesters)")
    needs_window: Duration = Field(timedelta(days=14), description="how long a needs-survey round stays open")
    sla_clock: Literal["calendar", "business"] = Field(
        "calendar", description='"business": SLAs count only working time (hours, days, holidays)')
    hours: BusinessHours = Field((9 * 60, 18 * 60), description="business hours, in the team's time zone")
    days: Weekdays = Field((0, 1, 2, 3, 4), description="business days")
    timezone: Annotated[StrictStr, AfterValidator(_team_timezone)] = Field(
        "", description="IANA zone of the business hours (default: [workspace] timezone)")
    holidays: tuple[Holiday, ...] = Field((), description="dates without business hours")
    remind_at: ReminderShare = Field(0.75, description="remind in the request's thread at this share of an SLA")
    escalation_channel: OptionalChannelId = Field("", description="where breached SLAs are escalated")
    leads: tuple[UserId, ...] = Field((), description="told of breached SLAs by DM; may claim and assign")
    auto_assign: Literal["off", "round_robin"] = Field(
        "off", description='"round_robin": each new request to the next available responder')
    urgency: UrgencySlas = UrgencySlas()

    @model_validator(mode="before")
    @classmethod
    def _derived_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("slug"), str):
            slug = data["slug"]
            data = {"name": slug.title(), "command": f"/ask-{slug}", **data}
        return data

    @property
    def digest_target(self) -> str:
        return self.digest_channel or self.channel


class Workspace(_Table):
    timezone: Annotated[StrictStr, AfterValidator(_timezone)] = Field(
        "UTC", description="IANA zone for digests; fallback for people's working hours")
    admins: tuple[UserId, ...] = Field((), description="user IDs with admin rights")
    department_profile_field: StrictStr = Field("", description="Slack profile field (label) giving a department")
    leadership_channel: OptionalChannelId = Field("", description="where the organisation digest goes (off if empty)")
    locale: Locale = Field("en", description="for people whose Slack language askdesk doesn't speak, channels "
                                             "without their own, and the organisation digest")
    chinese_fallback: Locale = Field("en", description="what people whose Slack is in zh-TW, zh-HK, ... read")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Surveys(_Table):
    enabled: StrictBool = True
    delay: Duration = Field(timedelta(minutes=30), description="after the request is resolved")
    working_hours: WorkingHours = (time(9, 0), time(18, 0))
    working_days: Weekdays = (0, 1, 2, 3, 4)
    min_days_between: StrictFloat = Field(7.0, ge=0, description="at most one survey per person per this many days")
    expire_after: Duration = timedelta(days=3)
    anonymity_threshold: Annotated[StrictInt, Field(ge=3)] = Field(
        5, description="figures only over at least this many answers (smaller groups identify people)")


class DigestSettings(_Table):
    weekday: Weekday = "mon"
    time: Clock = Field(time(9, 0), description="workspace time zone")
    catch_up: Duration = Field(timedelta(days=1), description="how late a missed digest is still posted")


class SchedulerSettings(_Table):
    tick: Tick = Field(timedelta(seconds=1), description="how often the leader looks for due work")
    lease: Duration = Field(timedelta(seconds=15), description="a job's lease, renewed while it runs")
    batch_size: StrictInt = Field(200, ge=1, description="due jobs claimed at once")
    workers: StrictInt = Field(16, ge=1, description="job worker threads")


SCORECARD_PARTS = ("needs", "csat", "sla", "response", "actions")


class ScorecardWeights(_Table):
    """The weight of each part of the internal satisfaction index (each part on a 0-100 scale)."""

    needs: StrictFloat = Field(0.4, ge=0, description="needs-survey score")
    csat: StrictFloat = Field(0.3, ge=0, description="pulse-survey CSAT")
    sla: StrictFloat = Field(0.2, ge=0, description="SLA attainment")
    response: StrictFloat = Field(0.0, ge=0, description="needs-survey response rate")
    actions: StrictFloat = Field(0.1, ge=0, description="improvement actions done")

    @model_validator(mode="after")
    def _measures_satisfaction(self) -> ScorecardWeights:
        if not (self.needs or self.csat):
            raise ValueError("expected a weight above 0 for 'needs' or 'csat' (the index measures satisfaction)")
        return self

    def as_dict(self) -> dict[str, float]:
        return {part: float(getattr(self, part)) for part in SCORECARD_PARTS}


class ScorecardSettings(_Table):
    weights: ScorecardWeights = Field(
        ScorecardWeights(), description="the index's formula: sum(weight * part) / sum(weight), over the parts "
                                        "that have a value")


def _distinct_teams(teams: tuple[Team, ...]) -> tuple[Team, ...]:
    if not teams:
        raise ValueError("expected at least one [[teams]] table (slug, name, channel)")
    for attr in ("slug", "command"):
        seen: set[str] = set()
        for i, team in enumerate(teams):
            value = getattr(team, attr)
            if value in seen:
                raise _KeyedError((i, attr), f"expected a unique value{_got(value)} twice")
            seen.add(value)
    return teams


def _ratings(table: dict[str, int]) -> dict[str, int]:
    return {emoji.strip(":"): score for emoji, score in table.items()}


class ConfigFile(_Table):
    """The TOML config file (askdesk.toml)."""

    model_config = ConfigDict(title="askdesk configuration (askdesk.toml)")

    workspace: Workspace = Workspace()
    teams: Annotated[tuple[Team, ...], AfterValidator(_distinct_teams)] = Field(
        description="one [[teams]] table per department; its responders are the members of its triage channel",
        json_schema_extra={"minItems": 1})
    ratings: Annotated[dict[str, Score], AfterValidator(_ratings)] = Field(
        default_factory=lambda: dict(DEFAULT_RATINGS),
        description="emoji name -> score 1-5; replaces the whole default table when present")
    surveys: Surveys = Surveys()
    digest: DigestSettings = DigestSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    scorecard: ScorecardSettings = ScorecardSettings()


class Settings(ConfigFile):
    """Everything askdesk needs to run, read once at start: the config file plus the environment."""

    model_config = ConfigDict(title="Settings")

    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///askdesk.db"
    config_path: str = "askdesk.toml"
    port: int = 3000
    log_level: str = "INFO"
    responder_cache_ttl: timedelta = timedelta(minutes=5)
    listener_threads: int = 192
    http_threads: int = 48

    def team(self, slug: str) -> Team | None:
        return next((t for t in self.teams if t.slug == slug), None)

    def team_for_command(self, command: str) -> Team | None:
        return next((t for t in self.teams if t.command == command.strip().lower()), None)

    def team_locale(self, team: Team | None) -> str:
        """The language of a team's channel messages (`None`: the organisation digest's)."""
        return (team.locale if team else "") or self.workspace.locale

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.workspace.admins

    def __repr__(self) -> str:  # never print secrets
        return f"Settings(database_url={redact_url(self.database_url)!r}, teams={[t.slug for t in self.teams]})"

    __str__ = __repr__


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ***."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def config_schema() -> dict[str, Any]:
    """The config file's JSON Schema (defaults written as they are in TOML)."""
    schema = ConfigFile.model_json_schema(mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


# --------------------------------------------------------------------------------------------
# errors: one line naming the file, the key and what is expected
# --------------------------------------------------------------------------------------------
def _dotted(loc: tuple[str | int, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class of the table at `loc` inside `model` (None if it is no model)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue  # an item of the list the previous step resolved to
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = _item_model(current.model_fields[part].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _item_model(annotation: Any) -> Any:
    """Unwrap Annotated/tuple/list/Optional down to a model class, if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (tuple, list, typing.Annotated, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _item_model(arg)
            if found is not None:
                return found
    return None


def _describe(error: Any, model: type[BaseModel], source: str) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    kind, message = error["type"], error["msg"]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _KeyedError):
        loc = (*loc, *cause.loc)
    key = _dotted(loc)
    if kind == "extra_forbidden":
        table = _model_at(model, loc[:-1])
        valid = list(table.model_fields) if table else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"
        what = "unknown section" if len(loc) == 1 else "unknown key"
        return f"{source}: key '{key}': {what}; {hint}"
    if kind == "missing":
        field = None
        parent = _model_at(model, loc[:-1])
        if parent is not None and isinstance(loc[-1], str):
            field = parent.model_fields.get(loc[-1])
        about = f" ({field.description})" if field is not None and field.description else ""
        return f"{source}: key '{key}': required{about}, missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"{source}: key '{key}': expected a table{_got(error['input'])}"
    if cause is not None:
        text = str(cause)
    elif kind == "greater_than_equal":
        text = f"expected at least {error['ctx']['ge']}{_got(error['input'])}"
    else:
        text = message.replace("Input should be ", "expected ", 1) + _got(error["input"])
    return f"{source}: key '{key}': {text}"


def _config_error(exc: ValidationError, model: type[BaseModel], source: str) -> ConfigError:
    errors = exc.errors(include_url=False)
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")  # a misspelt key explains the "missing" one
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return ConfigError(_describe(errors[0], model, source) + more)


# --------------------------------------------------------------------------------------------
# the environment (and .env)
# --------------------------------------------------------------------------------------------
def _log_level(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}{_got(value)}")
    return value.upper()


def _port(value: Any) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"expected a TCP port number (1-65535){_got(value)}")
    return int(text)


def _api_url(value: str) -> str:
    return value if value.endswith("/") else value + "/"


def _database_url(value: str) -> str:
    scheme = value.partition(":")[0].lower()
    if scheme in ("postgres", "postgresql"):
        raise ValueError(f"{scheme}:// names no driver askdesk ships; write postgresql+psycopg://user:pass@host/db "
                         f"(got {redact_url(value)!r})")
    return value


class Environment(BaseSettings):
    """The variables askdesk reads from the environment; `.env` fills in what the environment lacks."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", env_ignore_empty=True,
                                      env_file_encoding="utf-8")

    SLACK_BOT_TOKEN: str = ""
    SLACK_SIGNING_SECRET: str = ""
    SLACK_APP_TOKEN: str = ""
    SLACK_API_URL: Annotated[str, AfterValidator(_api_url)] = "https://slack.com/api/"
    DATABASE_URL: Annotated[str, AfterValidator(_database_url)] = "sqlite:///askdesk.db"
    ASKDESK_CONFIG: str = "askdesk.toml"
    PORT: Annotated[int, BeforeValidator(_port)] = 3000
    LOG_LEVEL: Annotated[str, AfterValidator(_log_level)] = "INFO"


class _GivenEnvironment(Environment):
    """An `Environment` read from a mapping passed in (tests) instead of the process environment."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, dotenv_settings


def read_environment(environ: Mapping[str, str] | None = None, *, dotenv_path: str | None = ".env") -> Environment:
    env_file = dotenv_path if dotenv_path and Path(dotenv_path).exists() else None
    try:
        if environ is None:
            return Environment(_env_file=env_file)
        given = {k: v for k, v in environ.items() if k in Environment.model_fields and v != ""}
        return _GivenEnvironment(_env_file=env_file, **given)
    except ValidationError as exc:
        raise _config_error(exc, Environment, "environment") from None


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def parse_config(path: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a parsed TOML document; return keyword arguments for `Settings`."""
    try:
        config = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, ConfigFile, path) from None
    return {name: getattr(config, name) for name in ConfigFile.model_fields}


def load_config_file(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.exists():
        raise ConfigError(
            f"{path}: config file not found (set ASKDESK_CONFIG, or run `askdesk init` for an example askdesk.toml)"
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
    env = read_environment(environ, dotenv_path=dotenv_path)
    config = config_overrides if config_overrides is not None else load_config_file(env.ASKDESK_CONFIG)
    settings = Settings(
        bot_token=env.SLACK_BOT_TOKEN,
        signing_secret=env.SLACK_SIGNING_SECRET,
        app_token=env.SLACK_APP_TOKEN,
        slack_api_url=env.SLACK_API_URL,
        database_url=env.DATABASE_URL,
        config_path=env.ASKDESK_CONFIG,
        port=env.PORT,
        log_level=env.LOG_LEVEL,
        **config,
    )
    if require_signing_secret:
        check_signing_secret(settings)
    return settings


def check_signing_secret(settings: Settings) -> None:
    if not settings.signing_secret:
        raise ConfigError("environment: key 'SLACK_SIGNING_SECRET': required in HTTP mode (from your app's "
                          "Basic Information page)")
