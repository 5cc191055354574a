"""Seed a digest benchmark database fast: numpy-generated rows, sqlite3 executemany or PostgreSQL COPY.

1,000,000 requests over the 52 weeks before the benchmark period's end, across 50 teams (skewed sizes)
and 30 departments; about 4 million request events (created, claimed, first_response, resolved,
transferred, reopened); 300,000 answered pulse surveys (+75,000 sent and never answered) and 400,000
emoji reactions (85 % by the requester). Deterministic (seeded RNG).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

TEAMS = 50
DEPARTMENTS = 30
USERS = 8000
SPAN_DAYS = 364
CHUNK = 100_000

EN = [
    "Expense report for my {m} trip was rejected", "Laptop screen is broken, need a replacement",
    "VPN access request for the new contractor", "When is the payroll date this month",
    "Invoice approval pending for vendor {m}", "New hire onboarding checklist for {m}",
    "Password reset for the HR portal", "Travel booking policy for conference in {m}",
    "Contract review needed before {m}", "Office key card stopped working",
    "Parental leave policy question", "Purchase order for monitors", "Access to the shared drive",
    "Benefits enrolment deadline", "Reimbursement of training costs for {m}", "Printer on floor 3 jammed",
    "Salary certificate for visa application", "Company credit card limit increase",
    "Github access for the data team", "Meeting room booking system is down",
]
ZH = ["报销单被驳回了，{m}出差", "笔记本电脑屏幕坏了", "申请VPN权限", "这个月工资什么时候发",
      "发票审批一直没有通过", "新员工入职流程", "门禁卡失效了", "差旅预订政策", "合同审核", "打卡记录有问题"]
MONTHS = ["March", "April", "May", "June", "Q3", "Q4", "Berlin", "Shanghai"]
CATEGORY_POOL = ["Expenses", "Payroll", "Invoices", "Laptop", "Access", "Onboarding", "Benefits", "Travel",
                 "Contracts", "Facilities", "Purchasing", "Leave", "Accounts", "Hardware", "Software"]
COMMENTS = ["Quick and clear, thanks", "Took a while but solved", "Please reply faster",
            "Great help from the team", "I had to chase twice", "非常及时，谢谢", "解释得很清楚"]
EMOJI = [("star-struck", 5), ("+1", 5), ("slightly_smiling_face", 4), ("neutral_face", 3),
         ("confused", 2), ("-1", 1)]
EMOJI_P = [0.2, 0.3, 0.2, 0.12, 0.1, 0.08]


@dataclass(frozen=True)
class Shape:
    requests: int = 1_000_000
    ratings: int = 400_000
    answers: int = 300_000
    unanswered: int = 75_000
    teams: int = TEAMS
    departments: int = DEPARTMENTS


def team_slugs(n: int = TEAMS) -> list[str]:
    return [f"team{i:02d}" for i in range(1, n + 1)]


def department_names(n: int = DEPARTMENTS) -> list[str]:
    return [f"Department {i:02d}" for i in range(1, n + 1)]


def team_config(n: int = TEAMS) -> list[dict[str, Any]]:
    slas = [("30m", "1d"), ("1h", "2d"), ("4h", "3d")]
    return [{"slug": slug, "name": f"Team {i + 1:02d}", "channel": f"C0TEAM{i + 1:03d}",
             "categories": [CATEGORY_POOL[(i + k) % len(CATEGORY_POOL)] for k in range(5)],
             "first_response_sla": slas[i % 3][0], "resolution_sla": slas[i % 3][1]}
            for i, slug in enumerate(team_slugs(n))]


def _weights(n: int, power: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** power
    return w / w.sum()


def _us(when: datetime) -> np.int64:
    return np.int64(int(when.timestamp() * 1_000_000))


def _iso(values: np.ndarray, pg: bool) -> list[str | None]:
    """int64 microseconds since the epoch (or -1 for NULL) -> stored text."""
    text = np.datetime_as_string(values.astype("datetime64[us]"), unit="us")
    suffix = "+00" if pg else ""
    return [None if v < 0 else s.replace("T", " ") + suffix for v, s in zip(values.tolist(), text.tolist(),
                                                                             strict=True)]


@dataclass
class Chunk:
    requests: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]
    surveys: list[tuple[Any, ...]]
    reactions: list[tuple[Any, ...]]


REQUEST_COLS = ("id", "team", "origin_team", "requester_id", "department", "summary", "text", "category",
                "urgency", "status", "assignee_id", "triage_channel", "triage_ts", "post_state", "created_at",
                "updated_at", "first_response_at", "resolved_at", "resolution_count", "reopen_count",
                "transfer_count")
EVENT_COLS = ("request_id", "kind", "actor_id", "team", "at", "detail")
SURVEY_COLS = ("request_id", "resolution_no", "user_id", "team", "department", "status", "due_at",
               "created_at", "sent_at", "score", "responsiveness", "clarity", "transparency", "support",
               "comment", "comment_anonymous", "answered_at", "expires_at")
REACTION_COLS = ("request_id", "team", "user_id", "emoji", "score", "is_requester", "created_at")


def chunks(end: datetime, shape: Shape = Shape(), *, pg: bool = False, seed: int = 7) -> Iterator[Chunk]:
    """Rows in chunks of CHUNK requests (with their events, surveys and reactions)."""
    rng = np.random.default_rng(seed)
    slugs, depts = team_slugs(shape.teams), department_names(shape.departments)
    cats = {c["slug"]: c["categories"] for c in team_config(shape.teams)}
    channels = {c["slug"]: c["channel"] for c in team_config(shape.teams)}
    user_dept = rng.choice(shape.departments, size=USERS, p=_weights(shape.departments, 0.9))
    end_us, span = _us(end), np.int64(SPAN_DAYS * 86_400 * 1_000_000)
    survey_p = (shape.answers + shape.unanswered) / shape.requests / 0.97
    rating_p = shape.ratings / shape.requests / 0.97
    slices = -(-shape.requests // CHUNK)
    for k, first in enumerate(range(1, shape.requests + 1, CHUNK)):
        n = min(CHUNK, shape.requests - first + 1)
        ids = np.arange(first, first + n)
        # Ids follow creation time, as in a real table that grows over time (rows of one week are close).
        slice_us = span // slices
        created = np.sort(end_us - span + k * slice_us + (rng.random(n) * slice_us).astype(np.int64))
        team = rng.choice(shape.teams, size=n, p=_weights(shape.teams, 0.8))
        moved = rng.random(n) < 0.02
        origin = np.where(moved, (team + 1 + rng.integers(0, shape.teams - 1, n)) % shape.teams, team)
        user = rng.integers(0, USERS, n)
        answered = rng.random(n) < 0.97
        fr = created + (rng.lognormal(np.log(1800), 1.0, n) * 1e6).astype(np.int64)
        work = (rng.lognormal(np.log(20 * 3600), 1.0, n) * 1e6).astype(np.int64)
        res = np.where(answered, fr, created) + work
        resolved = res < end_us
        fr = np.where(answered & (fr < end_us), fr, -1)
        res = np.where(resolved, res, -1)
        status = np.where(resolved, "resolved", np.where(fr >= 0, "claimed", "open"))
        reopened = resolved & (rng.random(n) < 0.01)
        en = rng.random(n) < 0.8
        tpl_en, tpl_zh = rng.integers(0, len(EN), n), rng.integers(0, len(ZH), n)
        month = rng.integers(0, len(MONTHS), n)
        has_cat = rng.random(n) < 0.9
        cat_i = rng.integers(0, 5, n)
        c_s, f_s, r_s = _iso(created, pg), _iso(fr, pg), _iso(res, pg)
        requests, events = [], []
        for i in range(n):
            rid, t = int(ids[i]), slugs[team[i]]
            o = slugs[origin[i]]
            text = (EN[tpl_en[i]] if en[i] else ZH[tpl_zh[i]]).format(m=MONTHS[month[i]])
            ts = f"{created[i] // 1_000_000}.{rid % 1_000_000:06d}"
            requester = f"U{user[i]:07d}"
            requests.append((rid, t, o, requester, depts[user_dept[user[i]]], text, text,
                             cats[t][cat_i[i]] if has_cat[i] else None, "normal", str(status[i]),
                             "UAGENT" if fr[i] >= 0 else None, channels[t], ts, "posted", c_s[i],
                             r_s[i] or f_s[i] or c_s[i], f_s[i], r_s[i],
                             2 if reopened[i] else int(resolved[i]), int(reopened[i]), int(moved[i])))
            events.append((rid, "created", requester, o, c_s[i], None))
            if moved[i]:
                events.append((rid, "transferred", "UAGENT", t, c_s[i],
                               json.dumps({"from": o, "to": t, "note": ""})))
            if f_s[i]:
                events.append((rid, "claimed", "UAGENT", t, f_s[i], None))
                events.append((rid, "first_response", "UAGENT", t, f_s[i], '{"via": "claim"}'))
            if r_s[i]:
                if reopened[i]:
                    mid = created[i] + (res[i] - created[i]) // 2
                    mid_s, reo_s = _iso(np.array([mid, mid + 3_600_000_000]), pg)
                    events.append((rid, "resolved", "UAGENT", t, mid_s, None))
                    events.append((rid, "reopened", requester, t, reo_s, None))
                events.append((rid, "resolved", "UAGENT", t, r_s[i], None))
        events.sort(key=lambda e: e[4])
        feedback = _feedback(rng, n, ids, team, user, user_dept, res, end_us, slugs, depts, survey_p,
                             rating_p, shape, pg)
        yield Chunk(requests, events, *feedback)


def _feedback(rng: np.random.Generator, n: int, ids: np.ndarray, team: np.ndarray, user: np.ndarray,
              user_dept: np.ndarray, res: np.ndarray, end_us: np.int64, slugs: list[str], depts: list[str],
              survey_p: float, rating_p: float, shape: Shape, pg: bool) -> tuple[list, list]:
    resolved = res >= 0
    surveyed = resolved & (rng.random(n) < survey_p)
    share = shape.answers / (shape.answers + shape.unanswered)
    sent = res + 1_800_000_000
    answered_at = sent + (rng.random(n) * 48 * 3600 * 1e6).astype(np.int64)
    answers = surveyed & (rng.random(n) < share) & (answered_at < end_us) & (sent < end_us)
    score = rng.choice(5, size=n, p=[0.05, 0.07, 0.13, 0.35, 0.40]) + 1
    dims = np.clip(score[:, None] + rng.integers(-1, 2, (n, 4)), 1, 5)
    dim_on = rng.random((n, 4)) < 0.85
    commented = rng.random(n) < 0.2
    anonymous = rng.random(n) < 0.7
    comment_i = rng.integers(0, len(COMMENTS), n)
    s_sent, s_ans = _iso(np.where(sent < end_us, sent, -1), pg), _iso(answered_at, pg)
    s_closes = _iso(np.where(sent < end_us, sent + np.int64(3 * 24 * 3600 * 1_000_000), -1), pg)  # expire_after 3d
    surveys = []
    for i in np.flatnonzero(surveyed & (sent < end_us)).tolist():
        ok = bool(answers[i])
        d = [int(dims[i, k]) if ok and dim_on[i, k] else None for k in range(4)]
        surveys.append((int(ids[i]), 1, f"U{user[i]:07d}", slugs[team[i]], depts[user_dept[user[i]]],
                        "answered" if ok else "expired", s_sent[i], s_sent[i], s_sent[i],
                        int(score[i]) if ok else None, *d,
                        COMMENTS[comment_i[i]] if ok and commented[i] else None, bool(anonymous[i]),
                        s_ans[i] if ok else None, s_closes[i]))
    rated = resolved & (rng.random(n) < rating_p)
    rated_at = np.minimum(res + (rng.random(n) * 24 * 3600 * 1e6).astype(np.int64), end_us - 1)
    r_s = _iso(np.where(rated, rated_at, -1), pg)
    emoji = rng.choice(len(EMOJI), size=n, p=EMOJI_P)
    requester = rng.random(n) < 0.85
    reactions = []
    for i in np.flatnonzero(rated).tolist():
        name, value = EMOJI[emoji[i]]
        who = f"U{user[i]:07d}" if requester[i] else f"UPEER{i % 997:04d}"
        reactions.append((int(ids[i]), slugs[team[i]], who, name, value, bool(requester[i]), r_s[i]))
    surveys.sort(key=lambda s: s[8])
    reactions.sort(key=lambda r: r[6])
    return surveys, reactions


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
