"""`askdesk purge --older-than 365d [--dry-run]`: the data-retention command (see bot/purge.py)."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from bot.cli import command_settings
from bot.cli.common import positive_int
from bot.config import format_duration_setting, parse_duration, redact_url


def retention_period(text: str) -> timedelta:
    """argparse type: a duration of at least one day."""
    try:
        period = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (for example 365d, 52w or 90d)") from exc
    if period < timedelta(days=1):
        raise argparse.ArgumentTypeError(
            f"{text!r} is shorter than 1d; the purge refuses to remove text of requests that may still be "
            "in progress (use for example 365d)")
    return period


def cmd_purge(args: argparse.Namespace) -> int:
    from bot.runtime.database import open_database
    from bot.services.purge import purge

    settings = command_settings()
    engine = open_database(settings, migrate=False)
    try:
        report = purge(engine, older_than=args.older_than, dry_run=args.dry_run, batch_size=args.batch_size)
    finally:
        engine.dispose()
    verb = "would purge" if args.dry_run else "purged"
    print(f"database: {redact_url(settings.database_url)}")
    print(f"{verb} data older than {format_duration_setting(args.older_than)}:")
    print("\n".join(report.lines()))
    if args.dry_run:
        print("dry run: nothing was changed")
    return 0


def add_parser(sub: Any) -> None:
    purge = sub.add_parser("purge", help="data retention: remove old request text and comments")
    purge.add_argument("--older-than", required=True, type=retention_period, metavar="DURATION",
                       help="purge requests created longer ago than this (e.g. 365d; at least 1d)")
    purge.add_argument("--dry-run", action="store_true", help="only count what would be purged")
    purge.add_argument("--batch-size", type=positive_int, default=1000,
                       help="rows per transaction (default 1000)")
    purge.set_defaults(func=cmd_purge)
