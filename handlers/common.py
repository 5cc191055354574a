"""Shared listener plumbing: the error funnel and telling a user something privately."""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bot.i18n import N_, Message, Translator, recent_translator
from storage.session import describe

log = logging.getLogger("askdesk.errors")
DB_DOWN = N_("askdesk can't reach its database right now, so nothing was changed. "
             "Please try again in a minute.")
# After the ack part of the work may already be saved (e.g. a request confirmed with its number,
# whose posting then failed): saved work goes through by itself once the database is back.
DB_LOST = N_("askdesk lost its database connection while finishing that. Anything it already confirmed "
             "is saved and will go through by itself; if nothing was confirmed, please try again in a minute.")


READ_ONLY_SQLSTATE = "25006"  # PostgreSQL: read_only_sql_transaction (a standby, a read-only database)


def is_db_down(error: BaseException) -> bool:
    """The database cannot do the work right now (unreachable, full, read-only, locked too long)."""
    if isinstance(error, OperationalError | PoolTimeout):
        return True
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) == READ_ONLY_SQLSTATE


def log_db_trouble(error: BaseException) -> str:
    """Log a request refused because of the database, at ERROR with a new reference code (returned)."""
    ref = uuid.uuid4().hex[:8]
    log.error("database trouble (ref %s): %s", ref, describe(error))
    return ref


def with_ref(text: Message, ref: str) -> Message:
    """`text` followed by the reference code that is in the log."""
    return N_("{text} (reference `{ref}`)", text=text, ref=ref)


def user_id_of(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    if isinstance(user, dict):
        return user.get("id")
    return body.get("user_id") or (body.get("event") or {}).get("user")


def reader(body: dict[str, Any] | None) -> Translator:
    """The language of the person who acted, as they were last answered (memory only: this must work
    while the database is down); listeners that looked it up pass their own translator instead."""
    return recent_translator(user_id_of(body or {}))


def tell(client: WebClient | None, body: dict[str, Any], text: str | Message, t: Translator | None = None) -> None:
    """Show `text` only to the user who acted (in their language): response_url, else an ephemeral, else a DM."""
    user = user_id_of(body)
    text = (t or reader(body)).render(text)
    response_url = body.get("response_url")
    try:
        if response_url:
            WebhookClient(response_url, timeout=5).send(text=text, response_type="ephemeral",
                                                        replace_original=False)
            return
        where = body.get("channel")
        channel = (where.get("id") if isinstance(where, dict) else None) or body.get("channel_id")
        if client is None:
            log.info("no way to tell %s: %s", user, text[:80])
        elif channel and user:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        elif user:
            client.chat_postMessage(channel=user, text=text)
    except (SlackApiError, OSError, ValueError) as exc:  # ValueError: a response_url that is no URL
        log.warning("could not tell %s: %s", user, type(exc).__name__)


def user_message_for(error: BaseException) -> Message:
    if is_db_down(error):
        return with_ref(DB_DOWN, log_db_trouble(error))
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected error (ref %s)", ref, exc_info=error)
    return N_("Sorry, something went wrong on askdesk's side (reference `{ref}`). Nothing was lost; please try "
              "again.", ref=ref)


def handle_error(error: BaseException, body: dict[str, Any] | None, client: WebClient | None) -> None:
    """The one error funnel: log with a reference, tell the user a plain sentence, never a traceback.

    Nobody is told about Events API deliveries: no one pressed anything, and during a database
    outage every message in a triage channel would otherwise earn its author a DM."""
    message = with_ref(DB_LOST, log_db_trouble(error)) if is_db_down(error) else user_message_for(error)
    if body and body.get("type") != "event_callback" and client is not None and user_id_of(body):
        tell(client, body, message)


def funnel(fn: Callable[..., None]) -> Callable[..., None]:
    """Wrap a lazy listener so its errors go through `handle_error` (Bolt would only log them)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - this is the funnel
            handle_error(exc, kwargs.get("body"), kwargs.get("client"))

    return wrapper


def event_id_of(body: dict[str, Any]) -> str | None:
    """The Events API delivery's id (the same on Slack's retries), if this is one."""
    event_id = body.get("event_id") if body.get("type") == "event_callback" else None
    return str(event_id) if event_id else None


def safe_ack(fn: Callable[..., None]) -> Callable[..., BoltResponse | None]:
    """Wrap an ack function: it must always ack, even when it fails (Bolt 1.30 can lose the ack).

    An Events API delivery that failed because the database is unreachable is answered 503 instead,
    so Slack delivers it again later (nothing of it was stored, not even its event id)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> BoltResponse | None:
        ack = kwargs["ack"]
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            if ack.response is None and is_db_down(exc) and event_id_of(kwargs.get("body") or {}):
                log_db_trouble(exc)  # answered 503: Slack delivers the event again later
                return BoltResponse(status=503, body="")
            message = user_message_for(exc)  # logged with a reference either way
            if ack.response is None:
                _ack_failure(ack, kwargs, reader(kwargs.get("body") or kwargs.get("command")).render(message))
        return None

    return wrapper


def _ack_failure(ack: Any, kwargs: dict[str, Any], text: str) -> None:
    """Answer a failed ack: a command gets the sentence; a modal stays open showing it under its
    first input (an empty ack would close it and lose what the person typed); a click, whose ack
    cannot carry an answer, is answered privately right after the ack."""
    if kwargs.get("command"):
        ack(text=text)
        return
    body = kwargs.get("body") or {}
    view = kwargs.get("view") or body.get("view") or {}
    values = (view.get("state") or {}).get("values") or {}
    submission = body.get("type") == "view_submission" if body else "action" not in kwargs
    if submission and values:
        ack(response_action="errors", errors={next(iter(values)): text[:150]})
        return
    ack()
    if body.get("type") not in (None, "event_callback") and user_id_of(body):
        threading.Thread(target=tell, args=(kwargs.get("client"), body, text), daemon=True).start()


def noop_ack(ack: Any) -> None:
    ack()
