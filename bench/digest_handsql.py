"""The yardstick: the same digest figures as one hand-written SQL script per dialect, everything that SQL
can compute done in the database (percentiles with window functions included), no ORM, no dataclasses.

`run(conn, ...)` returns plain dicts; the benchmark times it next to bot.services.digests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection


def _ts(conn: Connection, when: datetime) -> Any:
    """SQLite stores naive UTC text; PostgreSQL takes the aware datetime."""
    if conn.dialect.name == "postgresql":
        return when
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _secs(conn: Connection, later: str, earlier: str) -> str:
    if conn.dialect.name == "postgresql":
        return f"EXTRACT(EPOCH FROM {later} - {earlier})::float8"
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


def _q(conn: Connection, sql: str, **params: Any) -> list[Any]:
    stmt = text(sql)
    if "teams" in params:
        stmt = stmt.bindparams(bindparam("teams", expanding=True))
    return conn.execute(stmt, params).all()


def _percentiles(conn: Connection, value: str, where: str, sla_case: str, p: dict[str, Any]) -> dict:
    rows = _q(conn, f"""
        WITH d AS (SELECT team, CASE WHEN resolved_at >= :s THEN 1 ELSE 0 END AS cur, {value} AS v
                   FROM requests WHERE team IN :teams AND resolved_at >= :p AND resolved_at < :e {where}),
        r AS (SELECT team, cur, v, ROW_NUMBER() OVER (PARTITION BY team, cur ORDER BY v) - 1 AS i,
                     COUNT(*) OVER (PARTITION BY team, cur) AS n FROM d)
        SELECT team, cur, n,
               MAX(CASE WHEN i = (n - 1) / 2 THEN v END), MAX(CASE WHEN i = n / 2 THEN v END),
               MAX(CASE WHEN i = ((n - 1) * 9) / 10 THEN v END),
               MAX(CASE WHEN i = ((n - 1) * 9 + 9) / 10 THEN v END),
               SUM(CASE WHEN v <= {sla_case} THEN 1 ELSE 0 END)
        FROM r GROUP BY team, cur, n""", **p)
    out = {}
    for team, cur, n, m_lo, m_hi, p_lo, p_hi, within in rows:
        h = (n - 1) * 0.9
        out[(team, bool(cur))] = {"n": n, "median": (m_lo + m_hi) / 2,
                                  "p90": p_lo + (p_hi - p_lo) * (h - int(h)), "within": 100.0 * within / n}
    return out


DIMS = ", ".join(f"COUNT({d}), SUM({d})" for d in ("responsiveness", "clarity", "transparency", "support"))
SATISFIED = "SUM(CASE WHEN score >= 4 THEN 1 ELSE 0 END)"


def run(conn: Connection, teams: Sequence[dict[str, Any]], bounds: Sequence[datetime], threshold: int,
        with_texts: bool = False) -> dict[str, Any]:
    slugs = [t["slug"] for t in teams]
    e, s, prev = bounds[-1], bounds[-2], bounds[-3]
    p = {"teams": slugs, "p": _ts(conn, prev), "s": _ts(conn, s), "e": _ts(conn, e)}
    week_case = " ".join(f"WHEN {{col}} >= :b{i} THEN {i}" for i in range(len(bounds) - 2, 0, -1))
    bp = {f"b{i}": _ts(conn, b) for i, b in enumerate(bounds)}
    last = len(bounds) - 1
    out: dict[str, Any] = {}
    out["weekly"] = _q(conn, f"""
        SELECT team, CASE {week_case.format(col='created_at')} ELSE 0 END AS b, COUNT(*) FROM requests
        WHERE team IN :teams AND created_at >= :b0 AND created_at < :b{last} GROUP BY team, b""",
                       teams=slugs, **bp)
    out["weekly_csat"] = _q(conn, f"""
        SELECT team, CASE {week_case.format(col='expires_at')} ELSE 0 END AS b, COUNT(score), {SATISFIED}
        FROM surveys WHERE team IN :teams AND answered_at IS NOT NULL
        AND expires_at >= :b0 AND expires_at < :b{last} GROUP BY team, b""", teams=slugs, **bp)
    out["departments"] = _q(conn, """
        SELECT team, department, CASE WHEN created_at >= :s THEN 1 ELSE 0 END AS cur, COUNT(*)
        FROM requests WHERE team IN :teams AND created_at >= :p AND created_at < :e
        GROUP BY team, department, cur""", **p)
    out["categories"] = _q(conn, """
        SELECT team, category, COUNT(*) FROM requests
        WHERE team IN :teams AND created_at >= :s AND created_at < :e GROUP BY team, category""", **p)
    out["events"] = _q(conn, """
        SELECT team, kind, CASE WHEN at >= :s THEN 1 ELSE 0 END AS cur, COUNT(*) FROM request_events
        WHERE team IN :teams AND at >= :p AND at < :e AND kind IN ('resolved', 'reopened')
        GROUP BY team, kind, cur""", **p)
    if conn.dialect.name == "postgresql":
        frm, to = "detail::json->>'from'", "detail::json->>'to'"
    else:
        frm, to = "json_extract(detail, '$.from')", "json_extract(detail, '$.to')"
    out["transfers"] = _q(conn, f"""
        SELECT {frm} AS f, {to} AS t, COUNT(*) FROM request_events
        WHERE team IN :teams AND at >= :s AND at < :e AND kind = 'transferred' GROUP BY f, t""", **p)
    fr_sla = "CASE team " + " ".join(f"WHEN '{t['slug']}' THEN {t['fr']}" for t in teams) + " END"
    res_sla = "CASE team " + " ".join(f"WHEN '{t['slug']}' THEN {t['res']}" for t in teams) + " END"
    out["first_response"] = _percentiles(conn, _secs(conn, "first_response_at", "created_at"),
                                         "AND first_response_at IS NOT NULL", fr_sla, p)
    out["resolution"] = _percentiles(conn, _secs(conn, "resolved_at", "created_at"), "", res_sla, p)
    out["open"] = _q(conn, """
        SELECT team, SUM(n) FROM (
            SELECT team, COUNT(*) AS n FROM requests WHERE team IN :teams AND status IN ('open', 'claimed')
            AND created_at < :e GROUP BY team
            UNION ALL
            SELECT team, COUNT(*) AS n FROM requests WHERE team IN :teams AND resolved_at >= :e
            AND created_at < :e GROUP BY team) x GROUP BY team""", **p)
    out["oldest"] = _q(conn, """
        SELECT r.team, MIN(r.id), r.summary, r.created_at, r.triage_channel, r.triage_ts FROM requests r
        JOIN (SELECT team, MIN(created_at) AS at FROM requests WHERE team IN :teams
              AND status IN ('open', 'claimed') AND created_at < :e GROUP BY team) o
          ON o.team = r.team AND o.at = r.created_at
        WHERE r.status IN ('open', 'claimed') GROUP BY r.team, r.summary, r.created_at, r.triage_channel,
        r.triage_ts""", **p)
    cut = "CASE team " + " ".join(f"WHEN '{t['slug']}' THEN :c{i}" for i, t in enumerate(teams)) + " END"
    cuts = {f"c{i}": _ts(conn, e - timedelta(seconds=t["fr"])) for i, t in enumerate(teams)}
    out["unclaimed"] = _q(conn, f"""
        SELECT * FROM (SELECT team, id, summary, created_at, triage_channel, triage_ts,
                              ROW_NUMBER() OVER (PARTITION BY team ORDER BY created_at, id) AS rn,
                              COUNT(*) OVER (PARTITION BY team) AS n
                       FROM requests WHERE team IN :teams AND status = 'open' AND first_response_at IS NULL
                       AND created_at < {cut}) x WHERE rn <= 10""", **p, **cuts)
    out["reopened"] = _q(conn, """
        SELECT * FROM (SELECT r.team, r.id, r.summary, r.triage_channel, r.triage_ts, l.at,
                              ROW_NUMBER() OVER (PARTITION BY r.team ORDER BY l.at DESC, r.id) AS rn,
                              COUNT(*) OVER (PARTITION BY r.team) AS n
                       FROM requests r JOIN (SELECT request_id, MAX(at) AS at FROM request_events
                                             WHERE team IN :teams AND kind = 'reopened'
                                             AND at >= :s AND at < :e
                                             GROUP BY request_id) l ON l.request_id = r.id
                       WHERE r.team IN :teams) x WHERE rn <= 10""", **p)
    # satisfaction: the feedback week [s, e) -- answers of the surveys that closed in it, per team and
    # department (the team figures are the sums), the surveys that closed, the latest requester rating
    # per request, and comments where there are at least `threshold` of them
    out["surveys"] = _q(conn, f"""
        SELECT team, department, COUNT(answered_at), COUNT(score), SUM(score), {SATISFIED}, {DIMS}
        FROM surveys WHERE team IN :teams AND answered_at IS NOT NULL
        AND expires_at >= :s AND expires_at < :e GROUP BY team, department""", **p)
    out["sent"] = _q(conn, """
        SELECT team, COUNT(*) FROM surveys WHERE team IN :teams
        AND expires_at >= :s AND expires_at < :e GROUP BY team""", **p)
    out["ratings"] = _q(conn, """
        SELECT team, score, COUNT(*) FROM (
            SELECT team, score, ROW_NUMBER() OVER (PARTITION BY request_id ORDER BY created_at DESC, id DESC) AS rn
            FROM reactions WHERE created_at >= :s AND created_at < :e AND is_requester = :yes
            AND score IS NOT NULL AND (removed_at IS NULL OR removed_at >= :e)) x
        WHERE rn = 1 AND team IN :teams GROUP BY team, score""", yes=True, **p)
    shared = "comment IS NOT NULL AND comment <> '' AND comment_anonymous = :yes AND answered_at IS NOT NULL"
    closing = "expires_at >= :s AND expires_at < :e"
    allowed = [team for team, n in _q(conn, f"""
        SELECT team, COUNT(*) FROM surveys WHERE team IN :teams AND {closing} AND {shared}
        GROUP BY team""", yes=True, **p) if n >= threshold]
    if allowed:
        out["comments"] = _q(conn, f"""
            SELECT team, comment FROM surveys WHERE team IN :teams AND {closing} AND {shared}""",
                             **{**p, "teams": allowed}, yes=True)
    if with_texts:
        out["texts"] = _q(conn, """
            SELECT team, text FROM requests WHERE team IN :teams AND created_at >= :s AND created_at < :e
            AND purged_at IS NULL""", **p)
    return out
