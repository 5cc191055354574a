"""Serving Slack in a process: a `Generation` (deps, Bolt app, clock, and in Socket Mode the connection)
per configuration, `SingleProcess` for `askdesk run` without `--workers`, and the validation SIGHUP
runs before any new configuration takes over (also used by bot/runtime/workers.py)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from bot.config import ConfigError, Settings, check_signing_secret, load_settings, redact_url
from bot.runtime.database import DatabaseProblem, open_database
from bot.runtime.logs import setup_logging

log = logging.getLogger("askdesk")


SIGNAL_POLL = 0.5  # seconds between the main thread's wake-ups while it only waits for signals


def wait_for_signals(event: threading.Event, poll: float = SIGNAL_POLL) -> None:
    """Block the main thread until `event` is set, waking every `poll` seconds. Python runs a signal's
    handler in the main thread, but the kernel may deliver SIGHUP or SIGTERM to any of the process's
    threads; a main thread blocked in a plain `wait()` is then never woken, and the handler never runs."""
    while not event.wait(poll):
        pass


class Generation:
    """What one configuration runs on: deps, Bolt app, clock, and (Socket Mode) the connection.

    HTTP requests enter through `wsgi`; `stop()` waits for those already inside before draining, so a
    request that arrived just before a reload still finishes on the app that took it."""

    def __init__(self, settings: Settings, engine: Any, *, socket_mode: bool = False,
                 workers_missing: Any = None) -> None:
        from bot.app import boot
        from bot.runtime.server import make_wsgi_app

        self.settings = settings
        self.deps, self.app, self.clock = boot(settings, engine, socket_mode=socket_mode)
        self.socket: Any = None
        if socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            self.socket = SocketModeHandler(self.app, settings.app_token)  # apps.connections.open via SLACK_API_URL
        self._inner = None if socket_mode else make_wsgi_app(self.app, engine, workers_missing=workers_missing)
        self._inside = 0
        self._idle = threading.Condition()

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self._idle:
            self._inside += 1
        try:
            return self._inner(environ, start_response)  # type: ignore[misc]
        finally:
            with self._idle:
                self._inside -= 1
                self._idle.notify_all()

    def start(self) -> None:
        self.clock.start()
        if self.socket is not None:
            self.socket.connect()

    def stop(self) -> None:
        if self.socket is not None:
            _stop_socket_mode(self.socket)
        from bot.app import drain

        with self._idle:
            self._idle.wait_for(lambda: self._inside == 0, timeout=30)
        drain(self.deps, self.app, self.clock)


def _stop_socket_mode(handler: Any) -> None:
    """Take no new envelopes, let those in flight finish and send their acks, then close the connection
    (envelopes never taken are never acked, so Slack delivers them again)."""
    client = handler.client
    client.closed = True  # ends the loop that hands received envelopes to the workers
    client.auto_reconnect_enabled = client.default_auto_reconnect_enabled = False
    client.message_processor.shutdown()
    client.message_workers.shutdown(wait=True)
    handler.close()


def _socket_mode_problem(exc: BaseException) -> str:
    from bot.runtime.logs import redact
    from bot.slack.client import slack_error

    if isinstance(exc, OSError):
        return redact(f"cannot reach the Slack API ({type(exc).__name__}: {exc})")
    return (f"apps.connections.open answered {slack_error(exc)} (SLACK_APP_TOKEN must be an app-level token, "
            "xapp-..., with the connections:write scope)")


def validated_settings(*, socket_mode: bool, migrate: bool) -> Settings | None:
    """Settings read again for SIGHUP, or None (logged) when they would not work: the running
    configuration then stays."""
    from bot.runtime.preflight import check_slack

    try:
        settings = load_settings()
        if not socket_mode:
            check_signing_secret(settings)
        open_database(settings, migrate=migrate).dispose()
        check_slack(settings)
    except (ConfigError, DatabaseProblem) as exc:
        log.error("SIGHUP: configuration not reloaded, the running one stays: %s", exc)
        return None
    setup_logging(settings.log_level, (settings.bot_token, settings.signing_secret, settings.app_token))
    return settings


class SingleProcess:
    """`askdesk run` in one process: HTTP on waitress, or Socket Mode."""

    def __init__(self, settings: Settings, *, listener: Any, socket_mode: bool, migrate: bool) -> None:
        self.settings, self.listener, self.socket_mode, self.migrate = settings, listener, socket_mode, migrate
        self.current: Generation | None = None
        self.lock = threading.Lock()  # held while a reload swaps generations, and while stopping
        self.stopping = False
        self.stopped = threading.Event()

    def _generation(self, settings: Settings) -> Generation:
        return Generation(settings, open_database(settings, migrate=self.migrate), socket_mode=self.socket_mode)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.current is not None
        return self.current.wsgi(environ, start_response)

    def run(self) -> int:
        from slack_sdk.errors import SlackApiError

        self.current = self._generation(self.settings)
        log.info("askdesk starting (%s mode, database %s, %d teams)", "Socket" if self.socket_mode else "HTTP",
                 redact_url(self.settings.database_url), len(self.settings.teams))
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)
        try:
            try:
                self.current.start()
            except (SlackApiError, OSError) as exc:  # the app-level token was refused, or Slack is unreachable
                print(f"askdesk: Socket Mode connection failed: {_socket_mode_problem(exc)}", file=sys.stderr,
                      flush=True)
                return 1
            if self.socket_mode:
                wait_for_signals(self.stopped)
            else:
                self._serve_http()
        except KeyboardInterrupt:
            pass  # SIGTERM or Ctrl-C (see _on_stop); waitress itself returns from run() on either
        finally:
            self.stopping = True  # from here on signals are ignored; the drain is bounded by its work
            with self.lock:  # a reload in progress finishes first
                log.info("shutting down: draining in-flight work")
                self.current.stop()
            log.info("askdesk stopped")
        return 0

    def _serve_http(self) -> None:
        from bot.runtime.server import serve_wsgi

        server = serve_wsgi(self.wsgi, threads=self.settings.http_threads, sockets=[self.listener])
        host, port = self.listener.getsockname()[:2]
        log.info("serving HTTP on %s:%s (POST /slack/events, GET /healthz)", host, port)
        print(f"askdesk listening on http://{host}:{port}", flush=True)
        server.run()

    def _on_stop(self, _signum: int, _frame: Any) -> None:
        if self.stopping:  # already draining: an impatient second SIGTERM must not cut the drain short
            return
        self.stopping = True
        raise KeyboardInterrupt

    def _on_hup(self, _signum: int, _frame: Any) -> None:
        if self.stopping:
            return
        threading.Thread(target=self.reload, name="askdesk-reload", daemon=True).start()

    def reload(self) -> bool:
        """Validate the settings on disk; if they work, start a new generation on them and drain the old."""
        if not self.lock.acquire(blocking=False):
            log.warning("SIGHUP: a reload is already in progress")
            return False
        try:
            log.info("SIGHUP: reloading the environment and %s", self.settings.config_path)
            settings = validated_settings(socket_mode=self.socket_mode, migrate=self.migrate)
            if settings is None or self.stopping:
                return False
            if (settings.port, settings.http_threads) != (self.settings.port, self.settings.http_threads):
                log.warning("SIGHUP: PORT and thread counts take effect at the next start")
            new = self._generation(settings)
            try:
                new.start()
            except Exception as exc:  # noqa: BLE001 - e.g. Socket Mode cannot connect: keep the old one
                log.error("SIGHUP: the new configuration could not start (%s); the running one stays",
                          _socket_mode_problem(exc) if self.socket_mode else type(exc).__name__)
                new.stop()
                return False
            old, self.current, self.settings = self.current, new, settings
            assert old is not None
            old.stop()
            log.info("configuration reloaded (%d teams)", len(settings.teams))
            return True
        finally:
            self.lock.release()
