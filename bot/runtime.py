"""The dependencies every service receives: settings, database, Slack clients, clock."""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.services.directory import Directory
from bot.slack import ChannelPacer, build_client

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


# How long a thread may hold the GIL while others wait for it (CPython's default: 5 ms).
SWITCH_INTERVAL = 0.02


def tune_for_serving() -> None:
    """Interpreter settings for a serving process (`askdesk run`, and each of its workers).

    Serving means a couple of hundred threads that each run a short stretch of Python between two
    socket or database calls. Every such call gives the GIL up and getting it back takes a turn; with
    CPython's default 5 ms switch interval, a thread that still has work is also made to hand the GIL
    over every 5 ms, and those forced switches, with the cache misses that follow, cost CPU on every
    request. Measured with bench_ack (SQLite, one process): 20 ms gave both askdesk and the bare Bolt
    app more throughput, askdesk more (about 75 % of the bare app instead of about 67 %); 1 ms was
    worse. A CPU-bound stretch (a digest's chart) can now keep an ack waiting up to 20 ms per turn
    instead of 5, far inside Slack's 3 s."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def settle_heap() -> None:
    """Call once the app is built, before serving: what exists now (modules, the app, config) lives
    for the whole process, so move it out of the cyclic garbage collector's sight (`gc.freeze`).
    Without this every full collection walks all of it: 70-115 ms pauses, a few times a minute under
    load, in which no request is acknowledged."""
    gc.collect()
    gc.freeze()


@dataclass
class Deps:
    settings: Settings
    engine: Engine
    client: WebClient
    send_client: WebClient
    directory: Directory
    now: Callable[[], datetime] = utc_now
    instance_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    pacer: ChannelPacer = field(default_factory=ChannelPacer)
    outbox: object = None  # bot.outbox.Outbox, set by build_deps
    _workspace_url: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def workspace_url(self) -> str:
        """https://<workspace>.slack.com/, from auth.test (once), for links to messages."""
        if self._workspace_url is None:
            with self._lock:
                if self._workspace_url is None:
                    try:
                        self._workspace_url = str(self.client.auth_test().get("url") or "https://slack.com/")
                    except (SlackApiError, OSError) as exc:
                        log.warning("auth.test failed: %s", exc.__class__.__name__)
                        return "https://slack.com/"
        return self._workspace_url


def build_deps(settings: Settings, engine: Engine, *, now: Callable[[], datetime] = utc_now,
               workers: int | None = None) -> Deps:
    from bot.outbox import Outbox

    client = build_client(settings.bot_token, settings.slack_api_url)
    send_client = build_client(settings.bot_token, settings.slack_api_url, safe_retries_only=True)
    deps = Deps(settings=settings, engine=engine, client=client, send_client=send_client,
                directory=Directory(settings, client, engine), now=now)
    deps.outbox = Outbox(deps, workers=workers or settings.scheduler.workers, live_threads=settings.listener_threads)
    return deps
