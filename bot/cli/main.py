"""`askdesk` command line: run, init, config, manifest, demo, db upgrade, digest, status, purge."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from bot.cli import command_settings, setup
from bot.cli.common import CliError
from bot.cli.digest import add_parser as add_digest_parser
from bot.cli.purge import add_parser as add_purge_parser
from bot.config import ConfigError, check_signing_secret, load_settings, redact_url

log = logging.getLogger("askdesk")


def cmd_run(args: argparse.Namespace) -> int:
    settings = command_settings()
    socket_mode = not args.http and bool(settings.app_token)
    if not socket_mode:
        check_signing_secret(settings)
    if not settings.bot_token:
        raise ConfigError("environment: key 'SLACK_BOT_TOKEN': required (the xoxb- token of your Slack app)")
    if not socket_mode and args.workers > 1:
        from bot.runtime.workers import serve_workers

        return serve_workers(settings, host=args.host, port=args.port or settings.port, workers=args.workers)
    from bot.app import boot, drain

    deps, app, clock = boot(settings, socket_mode=socket_mode)
    log.info("askdesk starting (%s mode, database %s, %d teams)", "Socket" if socket_mode else "HTTP",
             redact_url(settings.database_url), len(settings.teams))
    clock.start()
    stop_requested: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if stop_requested:  # already draining: an impatient second SIGTERM must not cut the drain short
            return
        stop_requested.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            from slack_sdk.errors import SlackApiError

            handler = SocketModeHandler(app, settings.app_token)  # apps.connections.open via app.client: SLACK_API_URL
            try:
                handler.start()
            except (SlackApiError, OSError) as exc:  # the app-level token was refused, or Slack is unreachable
                print(f"askdesk: Socket Mode connection failed: {_socket_mode_problem(exc)}", file=sys.stderr,
                      flush=True)
                return 1
            finally:
                _stop_socket_mode(handler)
        else:
            from bot.runtime.server import create_server

            server = create_server(app, deps.engine, host=args.host, port=args.port or settings.port,
                                   threads=settings.http_threads)
            log.info("serving HTTP on %s:%s (POST /slack/events, GET /healthz)", args.host,
                     server.effective_port)
            print(f"askdesk listening on http://{args.host}:{server.effective_port}", flush=True)
            server.run()
    except KeyboardInterrupt:
        pass  # Ctrl-C, or SIGTERM (see on_signal); waitress itself returns from run() on either
    finally:
        stop_requested.append(0)  # from here on signals are ignored; the drain is bounded by its work
        log.info("shutting down: draining in-flight work")
        drain(deps, app, clock)
        log.info("askdesk stopped")
    return 0


def _socket_mode_problem(exc: BaseException) -> str:
    from bot.runtime.logs import redact
    from bot.slack.client import slack_error

    if isinstance(exc, OSError):
        return redact(f"cannot reach the Slack API ({type(exc).__name__}: {exc})")
    return (f"apps.connections.open answered {slack_error(exc)} (SLACK_APP_TOKEN must be an app-level token, "
            "xapp-..., with the connections:write scope)")


def _stop_socket_mode(handler: Any) -> None:
    """Take no new envelopes, let those in flight finish and send their acks, then close the connection
    (envelopes never taken are never acked, so Slack delivers them again)."""
    client = handler.client
    client.closed = True  # ends the loop that hands received envelopes to the workers
    client.auto_reconnect_enabled = client.default_auto_reconnect_enabled = False
    client.message_processor.shutdown()
    client.message_workers.shutdown(wait=True)
    handler.close()


def cmd_manifest(args: argparse.Namespace) -> int:
    from bot.cli.manifest import manifest_yaml

    settings = load_settings()
    print(manifest_yaml(settings, request_url=args.request_url, socket=args.socket), end="")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from storage.engine import make_engine
    from storage.migrate import current_revision, upgrade

    settings = command_settings()
    upgrade(settings.database_url)
    print(f"database {redact_url(settings.database_url)} is at revision "
          f"{current_revision(make_engine(settings.database_url))}")
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
    run = sub.add_parser("run", help="serve Slack (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)")
    run.add_argument("--http", action="store_true", help="serve HTTP even if SLACK_APP_TOKEN is set")
    run.add_argument("--port", type=int, default=None, help="HTTP port (default: $PORT or 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address (default 0.0.0.0)")
    run.add_argument("--workers", type=int, default=1,
                     help="HTTP worker processes sharing the port (default 1; about one per CPU core)")
    run.set_defaults(func=cmd_run)
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
    except CliError as exc:
        print(f"askdesk: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
