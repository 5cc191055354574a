"""Production HTTP serving: Bolt's WSGI adapter under waitress (a threaded WSGI server) in one
process, or under gunicorn's gthread workers (bot/runtime/workers.py) with `--workers N`.

Bolt's `App.start()` is a development server (listen backlog 5, stalls under concurrency), so
`askdesk run --http` uses this instead. Routes: `POST /slack/events`, `GET /healthz`.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy.engine import Engine

from bot.runtime.health import DatabaseHealth
from storage.session import ping

log = logging.getLogger(__name__)
MAX_BODY = 1_000_000  # Slack payloads are far smaller; refuse anything larger early

StartResponse = Callable[..., Any]


def _reply(start_response: StartResponse, status: str, payload: dict[str, Any]) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def make_wsgi_app(app: App, engine: Engine, *, workers_missing: Callable[[], int] | None = None,
                  ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app; `workers_missing` (with `--workers N`) counts worker processes not serving now,
    and `/healthz` is 503 while any is missing."""
    handler = SlackRequestHandler(app)
    health = DatabaseHealth(engine)

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz" and method in ("GET", "HEAD"):
            missing = workers_missing() if workers_missing else 0
            if missing:
                return _reply(start_response, "503 Service Unavailable", {"ok": False, "workers_missing": missing})
            problem = health.problem()  # a write is committed: a full disk or a held lock is trouble too
            if problem is None:
                return _reply(start_response, "200 OK", {"ok": True, "database": "writable"})
            return _reply(start_response, "503 Service Unavailable",
                          {"ok": False, "database": "reachable, not writable" if ping(engine) else "unreachable",
                           "error": problem})
        if path != "/slack/events":
            return _reply(start_response, "404 Not Found", {"ok": False, "error": "not_found"})
        if method != "POST":
            return _reply(start_response, "405 Method Not Allowed", {"ok": False, "error": "method_not_allowed"})
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _reply(start_response, "400 Bad Request", {"ok": False, "error": "bad_content_length"})
        if length > MAX_BODY:
            return _reply(start_response, "413 Payload Too Large", {"ok": False, "error": "too_large"})
        # Bolt's FaaS adapters mark their own re-invocations with x-slack-bolt-* headers (run only the
        # lazy listener, skip the ack function); from the outside they are never legitimate.
        for key in [k for k in environ if k.startswith("HTTP_X_SLACK_BOLT_")]:
            del environ[key]
        try:
            return handler(environ, start_response)
        except Exception:  # noqa: BLE001 - a malformed body must never take the process down
            log.warning("rejected a malformed request to /slack/events", exc_info=log.isEnabledFor(logging.DEBUG))
            return _reply(start_response, "400 Bad Request", {"ok": False, "error": "malformed_request"})

    return wsgi


def create_server(app: App, engine: Engine, *, host: str = "0.0.0.0", port: int = 3000, threads: int = 48,
                  sockets: list[Any] | None = None) -> Any:
    """A waitress server (not started); call `.run()` to serve and `.close()` to stop."""
    return serve_wsgi(make_wsgi_app(app, engine), host=host, port=port, threads=threads, sockets=sockets)


def serve_wsgi(wsgi: Callable[..., Any], *, host: str = "0.0.0.0", port: int = 3000, threads: int = 48,
               sockets: list[Any] | None = None) -> Any:
    from waitress import create_server as waitress_server

    where: dict[str, Any] = {"sockets": sockets} if sockets else {"host": host, "port": port}
    return waitress_server(wsgi, **where, threads=threads, backlog=1024,
                           connection_limit=1000, channel_timeout=30, max_request_body_size=8 * MAX_BODY,
                           ident="askdesk", clear_untrusted_proxy_headers=True)


class PortUnavailable(OSError):
    """The HTTP port cannot be listened on; the message is one line for the operator."""


def listen(host: str, port: int) -> socket.socket:
    """The listening socket `askdesk run` serves on (bound before anything else starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortUnavailable(f"port {port} on {host} is already in use (by another askdesk?); "
                                  "stop it, or choose another port with PORT or --port") from None
        raise PortUnavailable(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
