"""Synthetic history for the demo's digests: earlier weeks of requests, ratings and survey answers."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from bot.config import Settings
from storage.models import Reaction, Request, RequestEvent, Survey

DEPARTMENTS = ("Sales", "Marketing", "Engineering", "Operations", "Support")
TOPICS = {
    "finance": ("expense report rejected", "invoice payment status", "travel reimbursement", "expense report limit"),
    "it": ("vpn access", "laptop replacement", "password reset", "vpn access from home"),
    "people": ("parental leave", "holiday allowance", "payslip question", "onboarding checklist"),
}


def seed_history(engine: Engine, settings: Settings, now: datetime, *, weeks: int = 7, seed: int = 7) -> int:
    """Insert `weeks` weeks of resolved, surveyed requests before `now` (plus a few this week)."""
    rng = random.Random(seed)
    count = 0
    with engine.begin() as conn:
        for team in settings.teams:
            topics = TOPICS.get(team.slug, ("question",))
            for week in range(0, weeks + 1):
                n = rng.randint(6, 14) if week else (6 if team.slug != "people" else 1)
                for _ in range(n):
                    created = now - timedelta(days=7 * week + rng.uniform(0.5, 6.5))
                    first = created + timedelta(minutes=rng.randint(3, 240))
                    resolved = first + timedelta(hours=rng.uniform(0.5, 60))
                    if resolved > now:
                        continue
                    text = rng.choice(topics)
                    department = rng.choice(DEPARTMENTS)
                    request_id = conn.execute(insert(Request.__table__).values(  # type: ignore[attr-defined]
                        team=team.slug, origin_team=team.slug, requester_id=f"U0HIST{rng.randint(1, 60):03d}",
                        department=department, summary=text, text=text,
                        category=rng.choice(team.categories) if team.categories else None, urgency="normal",
                        status="resolved", post_state="posted", created_at=created, updated_at=resolved,
                        first_response_at=first, resolved_at=resolved, resolution_count=1, reopen_count=0,
                        transfer_count=0).returning(Request.__table__.c.id)).scalar_one()  # type: ignore[attr-defined]
                    for kind, at in (("created", created), ("first_response", first), ("resolved", resolved)):
                        conn.execute(insert(RequestEvent.__table__).values(  # type: ignore[attr-defined]
                            request_id=request_id, kind=kind, team=team.slug, at=at))
                    score = rng.choices((5, 4, 3, 2, 1), weights=(5, 4, 2, 1, 1))[0]
                    answered = resolved + timedelta(hours=2)
                    conn.execute(insert(Survey.__table__).values(  # type: ignore[attr-defined]
                        request_id=request_id, resolution_no=1, user_id=f"U0HIST{request_id:05d}", team=team.slug,
                        department=department, status="expired", due_at=resolved + timedelta(minutes=30),
                        created_at=resolved, sent_at=resolved + timedelta(minutes=30),
                        expires_at=resolved + timedelta(days=3), score=score,
                        responsiveness=max(1, score - rng.randint(0, 1)), clarity=score,
                        transparency=max(1, score - rng.randint(0, 2)), support=score,
                        comment=rng.choice((None, None, "Thanks, very quick!", "Clear answer.")),
                        comment_anonymous=True, answered_at=answered if answered < now else None))
                    if rng.random() < 0.4:
                        conn.execute(insert(Reaction.__table__).values(  # type: ignore[attr-defined]
                            request_id=request_id, team=team.slug, user_id="U0HIST000", emoji="+1", score=5,
                            is_requester=True, created_at=resolved))
                    count += 1
    return count
