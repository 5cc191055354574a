"""`askdesk run`: serve Slack from one process (HTTP or Socket Mode), or with `--workers N` from N HTTP
worker processes under a supervisor that replaces any that die (bot/runtime/workers.py).

Before serving it binds the port, migrates the database under a lock (unless `--no-migrate`), checks
the bot token and warns about triage channels the bot is not in. SIGTERM (or Ctrl-C) drains in-flight
work and stops; SIGHUP reloads the environment and config file: the new settings are validated first
(a bad file, or a database or token that does not work, keeps the running configuration and logs
why), then a new app is built and takes over while the old one drains.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bot.cli import command_settings
from bot.cli.common import positive_int
from bot.config import ConfigError, check_signing_secret
from bot.runtime.database import open_database

log = logging.getLogger("askdesk")


def cmd_run(args: argparse.Namespace) -> int:
    from bot.runtime.preflight import check_slack
    from bot.runtime.server import listen

    settings = command_settings()
    socket_mode = not args.http and bool(settings.app_token)
    if not socket_mode:
        check_signing_secret(settings)
    if not settings.bot_token:
        raise ConfigError("environment: key 'SLACK_BOT_TOKEN': required (the xoxb- token of your Slack app)")
    if socket_mode and args.workers > 1:
        log.warning("--workers applies to HTTP; Socket Mode runs in one process")
    listener = None if socket_mode else listen(args.host, args.port or settings.port)
    try:
        open_database(settings, migrate=not args.no_migrate).dispose()  # migrations run once, here, locked
        check_slack(settings)
        if listener is not None and args.workers > 1:
            from bot.runtime.workers import serve_workers

            return serve_workers(settings, listener, workers=args.workers, migrate=not args.no_migrate)
        from bot.runtime.serving import SingleProcess

        return SingleProcess(settings, listener=listener, socket_mode=socket_mode, migrate=not args.no_migrate).run()
    finally:
        if listener is not None:
            listener.close()


def add_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="serve Slack (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)")
    run.add_argument("--http", action="store_true", help="serve HTTP even if SLACK_APP_TOKEN is set")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    run.add_argument("--workers", type=positive_int, default=1,
                     help="HTTP worker processes sharing the port, replaced when they die (default 1)")
    run.add_argument("--no-migrate", action="store_true",
                     help="do not apply database migrations at start (when you run `askdesk db upgrade` yourself); "
                          "askdesk then refuses to start on an older schema")
    run.set_defaults(func=cmd_run)
