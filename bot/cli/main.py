"""`askdesk` command line: run, init, config, manifest, demo, db upgrade, digest, needs, scorecard, status, purge."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from bot.cli import command_settings, setup
from bot.cli.common import CliError
from bot.cli.digest import add_parser as add_digest_parser
from bot.cli.needs import add_parsers as add_needs_parsers
from bot.cli.purge import add_parser as add_purge_parser
from bot.cli.run import add_parser as add_run_parser
from bot.config import ConfigError, load_settings, redact_url
from bot.runtime.database import DatabaseProblem, first_line
from bot.runtime.server import PortUnavailable

log = logging.getLogger("askdesk")


def cmd_manifest(args: argparse.Namespace) -> int:
    from bot.cli.manifest import PLACEHOLDER_URL, manifest_yaml

    settings = load_settings()
    if not args.request_url and not args.socket:
        print(f"askdesk manifest: warning: no --request-url given, so the manifest points Slack at the placeholder "
              f"{PLACEHOLDER_URL}; pass --request-url https://<your host>/slack/events (or --socket)",
              file=sys.stderr)
    print(manifest_yaml(settings, request_url=args.request_url, socket=args.socket), end="")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from bot.runtime.database import open_database
    from storage.migrate import current_revision

    settings = command_settings()
    engine = open_database(settings, migrate=True)
    print(f"database {redact_url(settings.database_url)} is at revision {current_revision(engine)}")
    engine.dispose()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.scenario import run_demo

    return run_demo(out_dir=args.out, keep=args.keep)


def cmd_status(args: argparse.Namespace) -> int:
    from bot.cli.status import print_status

    settings = command_settings()
    return print_status(settings)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("askdesk")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="askdesk", description="askdesk: internal customer service desk for Slack")
    parser.add_argument("--version", action="version", version=f"askdesk {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_run_parser(sub)
    manifest = sub.add_parser("manifest", help="print a Slack app manifest (YAML) for the configured teams")
    manifest.add_argument("--request-url", default=None, help="public URL of POST /slack/events")
    manifest.add_argument("--socket", action="store_true", help="a Socket Mode manifest (no request URLs)")
    manifest.set_defaults(func=cmd_manifest)
    demo = sub.add_parser("demo", help="run a scripted scenario against a local Slack simulator")
    demo.add_argument("--out", default="demo-out", help="folder for the demo database and charts")
    demo.add_argument("--keep", action="store_true", help="keep the demo database afterwards")
    demo.set_defaults(func=cmd_demo)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply schema migrations").set_defaults(func=cmd_db)
    status = sub.add_parser("status", help="list failed deliveries and pending work")
    status.set_defaults(func=cmd_status)
    add_purge_parser(sub)
    add_digest_parser(sub)
    add_needs_parsers(sub)
    setup.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"askdesk: configuration error: {exc}", file=sys.stderr)
        return 2
    except (CliError, DatabaseProblem, PortUnavailable) as exc:
        print(f"askdesk: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:  # the database went away while the command ran
        print(f"askdesk: database error: {first_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
