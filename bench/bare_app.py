"""The baseline for bench_ack: the fastest bare Bolt app that only acks and posts one message.

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

from bot.config import Settings
from bot.server import create_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--channel", default="C0FINANCE")
    # the same thread counts as `askdesk run` (Settings defaults): listener pool and HTTP threads
    parser.add_argument("--threads", type=int, default=Settings.listener_threads)
    parser.add_argument("--http-threads", type=int, default=Settings.http_threads)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.workers > 1:  # same process model as `askdesk run --workers N`
        import os

        from bot.workers import _listen

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

    app.command("/ask-finance")(ack=ack_only, lazy=[post])
    engine = create_engine("sqlite://")
    server = create_server(app, engine, host="127.0.0.1", port=args.port, threads=args.http_threads,
                           sockets=[sock] if sock else None)
    print("ready", flush=True)
    server.run()


if __name__ == "__main__":
    main()
