"""`askdesk run --http --workers N`: N forked processes accept on one listening socket.

A single CPython process is bound to one core by the GIL; on a machine with more cores, workers
multiply the CPU available to Bolt, SQLAlchemy and the Slack client. Each worker builds its own
engine, app and scheduler clock after the fork (PostgreSQL's advisory lock still lets only one of
them drive the schedule; on SQLite every clock claims rows atomically, so none runs twice).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from typing import Any

from bot.config import Settings

log = logging.getLogger("askdesk")


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _child(settings: Settings, sock: socket.socket) -> int:
    from bot.app import boot, drain
    from bot.runtime.server import create_server

    deps, app, clock = boot(settings, migrate=False)  # the parent migrated before forking
    clock.start()

    def on_term(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    server = create_server(app, deps.engine, threads=settings.http_threads, sockets=[sock])
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        drain(deps, app, clock)
    return 0


def serve_workers(settings: Settings, *, host: str, port: int, workers: int) -> int:
    from storage.migrate import upgrade

    upgrade(settings.database_url)  # once, before forking
    sock = _listen(host, port)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                code = _child(settings, sock)
            except Exception:  # noqa: BLE001
                log.exception("worker crashed")
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append(pid)
    print(f"askdesk listening on http://{host}:{sock.getsockname()[1]} with {workers} workers", flush=True)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        worst = max(worst, os.waitstatus_to_exitcode(status) if status else 0)
    return worst
