"""The dependencies every service receives: settings, database, Slack clients, clock."""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.runtime.outbox import Outbox
from bot.services.directory import Directory
from bot.slack.client import ChannelPacer

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


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
    outbox: Outbox[Deps] = field(init=False)  # set by bot.runtime.jobs.build_deps
    loaded_at: datetime = field(init=False)  # when this configuration was loaded (the latest one wins)
    _workspace_url: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.loaded_at = self.now()

    def __deepcopy__(self, memo: dict[int, Any]) -> Deps:
        return self  # one per process, shared: Bolt deep-copies the context it hands to lazy listeners

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
