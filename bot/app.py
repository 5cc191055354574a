"""The app factory: builds the Bolt `App` for a `Deps`; nothing happens at import time."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse

from bot.runtime import Deps
from handlers import register_all
from handlers.common import handle_error
from storage import requests as queries
from storage.db import session_scope

log = logging.getLogger(__name__)


class BoundedExecutor(ThreadPoolExecutor):
    """A thread pool whose queue is bounded: when it is full, `submit` waits (back-pressure on the
    HTTP request that is about to be acknowledged) instead of letting post-ack work pile up."""

    def __init__(self, max_workers: int, max_pending: int) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix="askdesk-listener")
        self._slots = threading.BoundedSemaphore(max_workers + max_pending)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        self._slots.acquire()
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future


def create_app(deps: Deps, *, socket_mode: bool = False) -> App:
    settings = deps.settings
    threads = settings.listener_threads
    app = App(
        signing_secret=settings.signing_secret or None,
        client=deps.client,
        process_before_response=True,
        token_verification_enabled=False,
        request_verification_enabled=not socket_mode,
        listener_executor=BoundedExecutor(threads, threads * 2),
        logger=logging.getLogger("askdesk.bolt"),
    )

    @app.middleware
    def dedupe_events(body: dict[str, Any], next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's name
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            with session_scope(deps.engine) as session:
                if not queries.first_seen(session, str(event_id), now=deps.now()):
                    log.info("duplicate delivery of %s ignored", event_id)
                    return BoltResponse(status=200, body="")
        return next()

    @app.error
    def error_funnel(error: Exception, body: dict[str, Any], logger: logging.Logger) -> None:
        handle_error(error, body, deps.client)

    register_all(app, deps)
    return app
