"""The baseline for bench_ack: the fastest bare Bolt app that only acks and posts one message.

With `--keepalive` its post goes over askdesk's own Slack client (`build_client`: pooled keep-alive
connections, bot/slack/http.py) rather than Bolt's stock client, which opens a connection per call:
the bare app with that advantage too.

With `--floor DATABASE_URL` it is instead the least any implementation of askdesk's intake could do
on the same stack: one durable INSERT before the ack (raw DB-API, no ORM, committed alone) and two
plain-text posts after it (the triage post, then the requester's DM), with no Block Kit, no event
history, no outbox, posting with askdesk's own Slack client. It measures how close to the bare app a
real intake can get at all.

Same server setup as `askdesk run --http` (Bolt's WSGI adapter under waitress, the same HTTP and
listener thread counts, and, with `--workers`, the same process model), acking in the request
thread with the post in a lazy listener (the fastest shape measured). Its listener pool is as large
as askdesk's, so with the Slack fake answering in 200 ms it is not capped by its threads.
"""

from __future__ import annotations

import argparse
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from sqlalchemy import create_engine
from sqlalchemy.pool import StaticPool

from bot.config import Settings
from bot.runtime.server import create_server
from bot.slack.client import build_client
from storage.models import ProcessedEvent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--channel", default="C0FINANCE")
    # the same thread counts as `askdesk run` (Settings defaults): listener pool and HTTP threads
    parser.add_argument("--threads", type=int, default=Settings.model_fields["listener_threads"].default)
    parser.add_argument("--http-threads", type=int, default=Settings.model_fields["http_threads"].default)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--floor", default=None, help="database URL: run the intake floor instead (see above)")
    parser.add_argument("--keepalive", action="store_true",
                        help="post with askdesk's Slack client (pooled keep-alive) instead of Bolt's")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.floor:
        floor_setup(args.floor)  # once, before any worker forks (two creating the table would collide)
    if args.workers > 1:  # same process model as `askdesk run --workers N`
        import os

        from bot.runtime.workers import _listen

        sock = _listen("127.0.0.1", args.port)
        for _ in range(args.workers):
            if os.fork() == 0:
                serve(args, sock)
                os._exit(0)
        print("ready", flush=True)
        os.wait()
        return
    serve(args, None)


def serve(args: argparse.Namespace, sock: Any) -> None:
    client = WebClient(token="xoxb-bench", base_url=args.api)
    app = App(signing_secret=args.secret, client=client, process_before_response=True,
              token_verification_enabled=False, listener_executor=ThreadPoolExecutor(args.threads))

    def ack_only(ack: Any) -> None:
        ack()

    def post(body: dict[str, Any], client: WebClient) -> None:
        client.chat_postMessage(channel=args.channel, text=body.get("text", ""))

    pooled = build_client("xoxb-bench", args.api)  # askdesk's transport: no connection set-up per call
    if args.floor:
        saved = floor_store(args.floor)

        def ack_saved(ack: Any, body: dict[str, Any]) -> None:
            ack(text=f"Saved as #{saved(body.get('user_id', ''), body.get('text', ''))}.")

        def post_two(body: dict[str, Any]) -> None:
            pooled.chat_postMessage(channel=args.channel, text=body.get("text", ""))
            pooled.chat_postMessage(channel=body.get("user_id", ""), text="Your request was posted.")

        app.command("/ask-finance")(ack=ack_saved, lazy=[post_two])
    elif args.keepalive:
        def post_pooled(body: dict[str, Any]) -> None:
            pooled.chat_postMessage(channel=args.channel, text=body.get("text", ""))

        app.command("/ask-finance")(ack=ack_only, lazy=[post_pooled])
    else:
        app.command("/ask-finance")(ack=ack_only, lazy=[post])
    # /healthz commits a real write (bot.runtime.health): give it an in-memory table to write to
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    ProcessedEvent.__table__.create(engine)  # type: ignore[attr-defined]
    server = create_server(app, engine, host="127.0.0.1", port=args.port, threads=args.http_threads,
                           sockets=[sock] if sock else None)
    print("ready", flush=True)
    server.run()


def _sqlite_path(url: str) -> str | None:
    return url.split("///", 1)[1] if url.startswith("sqlite") else None


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def floor_setup(url: str) -> None:
    """Create the floor's one table (SQLite in WAL mode, like askdesk)."""
    path = _sqlite_path(url)
    if path is not None:
        import sqlite3

        with sqlite3.connect(path) as setup:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, user TEXT, text TEXT)")
        return
    import psycopg

    with psycopg.connect(_pg_dsn(url), autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS floor (id SERIAL PRIMARY KEY, usr TEXT, text TEXT)")


def floor_store(url: str) -> Any:
    """`save(user, text) -> id`: one INSERT committed on its own, per request, on SQLite or PostgreSQL."""
    import threading

    local = threading.local()
    path = _sqlite_path(url)
    if path is not None:
        import sqlite3

        from storage.engine import WriterLock

        # one writer at a time, with askdesk's own lock (threads, and `--workers` processes via flock):
        # SQLite's busy handler sleeps in growing steps when writers collide
        writer = WriterLock(path)

        def save_sqlite(user: str, text: str) -> int:
            if not hasattr(local, "conn"):
                local.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
                local.conn.execute("PRAGMA synchronous=NORMAL")
            writer.acquire()
            try:
                row = local.conn.execute("INSERT INTO floor (user, text) VALUES (?, ?) RETURNING id",
                                         (user, text)).fetchone()
            finally:
                writer.release()
            return int(row[0])

        return save_sqlite
    import psycopg

    dsn = _pg_dsn(url)

    def save_pg(user: str, text: str) -> int:
        if not hasattr(local, "conn"):
            local.conn = psycopg.connect(dsn, autocommit=True)
        row = local.conn.execute("INSERT INTO floor (usr, text) VALUES (%s, %s) RETURNING id", (user, text)).fetchone()
        return int(row[0])

    return save_pg


if __name__ == "__main__":
    main()
