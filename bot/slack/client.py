"""Slack Web API access: clients with retry handlers, error classification, per-channel pacing."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.slack.http import KeepAliveWebClient

log = logging.getLogger(__name__)

# Errors after which retrying the same call can never succeed.
PERMANENT_ERRORS = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "user_not_found", "user_disabled",
    "account_inactive", "cannot_dm_bot", "messages_tab_disabled", "restricted_action", "invalid_auth",
    "not_authed", "token_revoked", "missing_scope", "no_permission", "invalid_blocks", "msg_too_long",
    "message_not_found", "cant_update_message", "invalid_arguments", "not_allowed_token_type",
    "user_not_in_channel", "channel_is_archived", "invalid_metadata_format", "invalid_metadata_schema",
})


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Retries a 429 in place only when Slack asks for a short wait; longer waits go back to the outbox
    (so a job never sleeps past its lease)."""

    def __init__(self, max_wait: float = 5.0, max_retry_count: int = 3) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if not super().can_retry(state=state, request=request, response=response, error=error):
            return False
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        value = headers.get("retry-after")
        value = value[0] if isinstance(value, list | tuple) and value else value
        try:
            return float(value or 1) <= self.max_wait
        except (TypeError, ValueError):
            return True


def build_client(token: str, base_url: str, *, timeout: int = 10, safe_retries_only: bool = False) -> WebClient:
    """A WebClient over pooled keep-alive connections that retries 429 (after Retry-After), 5xx and
    connection errors.

    `safe_retries_only` keeps only the retries that cannot duplicate a message (429: the call was
    refused), for sends whose retries are handled, with reconciliation, by the job outbox.
    """
    handlers: list[Any] = [ShortRateLimitRetryHandler()] if safe_retries_only else \
        [RateLimitErrorRetryHandler(max_retry_count=3)]
    if not safe_retries_only:
        handlers += [
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(
                max_retry_count=2,
                error_types=[URLError, ConnectionError, TimeoutError],  # URLError: WebClient's own path
            ),
        ]
    return KeepAliveWebClient(token=token or None, base_url=base_url, timeout=timeout, retry_handlers=handlers)


def slack_error(exc: BaseException) -> str:
    """A short error code for logs and storage; never contains tokens."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or f"http_{exc.response.status_code}")
    if isinstance(exc, TimeoutError | URLError | ConnectionError):
        return f"network: {type(exc).__name__}"
    return type(exc).__name__


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, SlackApiError) and slack_error(exc) in PERMANENT_ERRORS


def is_uncertain(exc: BaseException) -> bool:
    """Whether the call may still take effect although it failed: the client stopped waiting
    (timeout), the connection dropped after the request went out, or a gateway timed out (504)."""
    if isinstance(exc, SlackApiError):
        return exc.response.status_code == 504
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return is_uncertain(exc.reason)
    return isinstance(exc, TimeoutError | ConnectionResetError) or "Timeout" in type(exc).__name__


def retry_after(exc: BaseException) -> float | None:
    if isinstance(exc, SlackApiError) and exc.response.status_code == 429:
        try:
            return float(exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after") or 1)
        except (TypeError, ValueError):
            return 1.0
    return None


class ChannelPacer:
    """Keeps bulk posts to about one message per second per channel (Slack's chat.postMessage limit),
    and remembers the channels Slack rate-limited (429) until their Retry-After has passed, so other
    jobs for the same channel wait instead of calling and being refused too.

    `wait` is the gate every paced post goes through: it spaces the actual sends in a channel at least
    `interval` apart. `reserve` hands out future slots without waiting, so a bulk sender can put work
    off until its slot instead of holding a thread (it still passes `wait` when it sends)."""

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval, self.clock, self.sleep = interval, clock, sleep
        self._next: dict[str, float] = {}  # the next slot not yet handed out
        self._last: dict[str, float] = {}  # when the latest send through `wait` went (or goes) out
        self._held: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def hold(self, channel: str, until: datetime) -> None:
        """Slack asked for quiet on `channel` until `until` (the outbox's clock, which schedules the
        jobs that wait for it)."""
        with self._lock:
            self._held[channel] = max(self._held.get(channel, until), until)
            if len(self._held) > 10_000:
                self._held = {c: t for c, t in self._held.items() if t > until - timedelta(hours=1)}

    def held_for(self, channel: str, now: datetime) -> float:
        """Seconds from `now` until `channel` may be called again (0 when it is not rate-limited)."""
        with self._lock:
            until = self._held.get(channel)
        return max(0.0, (until - now).total_seconds()) if until is not None else 0.0

    def _forget_idle(self, now: float) -> None:
        if len(self._next) + len(self._last) > 50_000:  # forget channels idle for a while
            self._next = {c: t for c, t in self._next.items() if t > now}
            self._last = {c: t for c, t in self._last.items() if t > now - self.interval}

    def reserve(self, channel: str) -> float:
        """Reserve `channel`'s next free slot; returns the seconds until it (0: now). Does not wait."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next.get(channel, 0.0), self._last.get(channel, -1e9) + self.interval)
            self._next[channel] = slot + self.interval
            self._forget_idle(now)
        return slot - now

    def wait(self, channel: str) -> float:
        """Block until `channel` may receive the next message; returns the time waited."""
        with self._lock:
            now = self.clock()
            at = max(now, self._last.get(channel, -1e9) + self.interval)
            self._last[channel] = at
            self._next[channel] = max(self._next.get(channel, 0.0), at + self.interval)
            self._forget_idle(now)
        delay = at - now
        if delay > 0:
            self.sleep(delay)
        return delay
