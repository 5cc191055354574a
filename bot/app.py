"""The app factory: builds the Bolt `App` for a `Deps`, and a whole serving process (`boot`, `drain`);
nothing happens at import time."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from sqlalchemy.engine import Engine

from bot.analytics.fonts import warn_if_no_cjk_font
from bot.config import Settings
from bot.runtime.deps import Deps, settle_heap
from bot.runtime.jobs import build_deps
from bot.runtime.scheduler import Clock
from handlers import register_all
from handlers.common import event_id_of, handle_error, is_db_down
from storage import requests as queries
from storage.session import read_scope

log = logging.getLogger(__name__)


# Shapes Bolt's own routing code relies on (it calls .get()/[0]/["key"] on these without checking):
# a signed body that breaks them is answered 400 instead of crashing Bolt into a 500. Only the
# fields Bolt and our listeners dereference are checked, so real payloads with extra fields pass.
_NONE = type(None)
_TOP = {"view": dict, "event": dict, "container": dict, "state": dict, "actions": list,
        "authorizations": list, "enterprise": (dict, _NONE), "message": (dict, _NONE),
        "team": (dict, str, _NONE),
        "user": (dict, str), "channel": (dict, str), "type": str, "command": str, "callback_id": str,
        "trigger_id": str, "response_url": str, "user_id": str, "channel_id": str, "text": str}
_EVENT = {"type": str, "subtype": (str, _NONE), "tab": str, "item": dict, "message": dict,
          "previous_message": dict, "user": (dict, str), "channel": (dict, str), "thread_ts": (str, _NONE)}
_VIEW = {"type": str, "callback_id": str, "private_metadata": str, "state": dict}
_ACTION = {"action_id": str, "block_id": str}


def _wrong(node: dict[str, Any], rules: dict[str, Any], where: str) -> str | None:
    for key, kinds in rules.items():
        if key in node and not isinstance(node[key], kinds):
            return f"'{where}{key}' has the wrong type"
    return None


def shape_error(body: Any) -> str | None:
    """Why a (signed) request body cannot be a Slack payload, or None when its shape is fine."""
    if not isinstance(body, dict):
        return "expected a JSON object"
    view = body.get("view")
    checks = [(body, _TOP, ""), (body.get("event"), _EVENT, "event."), (view, _VIEW, "view.")]
    checks += [(item, _ACTION, "actions[].") for item in body.get("actions") or []]
    for node, rules, where in checks:
        if node is not None and (not isinstance(node, dict) or (problem := _wrong(node, rules, where))):
            return problem if isinstance(node, dict) else f"'{where or 'body'}' must be an object"
    if any(not isinstance(item, dict) or not isinstance(item.get("action_id"), str)
           for item in body.get("actions") or []):
        return "every action needs an action_id"
    if body.get("type") in ("shortcut", "message_action") and not isinstance(body.get("callback_id"), str):
        return "a shortcut needs a callback_id"
    for state in (body.get("state"), (view or {}).get("state")):
        values = state.get("values") if isinstance(state, dict) else None
        blocks = values.values() if isinstance(values, dict) else ()
        if values is not None and not (isinstance(values, dict) and all(
                isinstance(b, dict) and all(isinstance(e, dict) for e in b.values()) for b in blocks)):
            return "'state.values' must map block ids to objects of inputs"
    return None


def strip_nul(node: Any) -> bool:
    """Remove NUL characters from every string value, in place; True when there were any."""
    found = False
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, str):
            if "\x00" in value:
                node[key], found = value.replace("\x00", ""), True
        else:
            found = strip_nul(value) or found
    return found


def _encode_like(raw: str, content_type: str | None, body: dict[str, Any]) -> str:
    """`body` encoded the way Bolt's parse_body read `raw` (JSON, a form `payload` field, or a form)."""
    if content_type == "application/json" or raw.startswith("{"):
        return json.dumps(body)
    if "payload" in raw:
        return urllib.parse.urlencode({"payload": json.dumps(body)})
    return urllib.parse.urlencode(body)


def reject_malformed(req: BoltRequest, body: Any, next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's name
    """Runs right after signature verification: garbage gets a 400, never a Bolt crash (500).

    NUL characters are dropped so both databases store the same text (PostgreSQL text cannot hold
    them); the verified raw body is re-encoded too, because lazy listeners re-parse it."""
    problem = shape_error(body)
    if problem:
        log.warning("rejected a malformed Slack payload: %s", problem)
        return BoltResponse(status=400, body={"ok": False, "error": "malformed_payload"})
    if strip_nul(body) and req.mode == "http":
        req.raw_body = _encode_like(req.raw_body, req.content_type, body)
    return next()


def create_app(deps: Deps, *, socket_mode: bool = False) -> App:
    settings = deps.settings
    app = App(
        signing_secret=settings.signing_secret or None,
        client=deps.client,
        process_before_response=True,
        token_verification_enabled=False,
        request_verification_enabled=not socket_mode,
        listener_executor=deps.outbox.live,  # one bounded pool for post-ack work
        logger=logging.getLogger("askdesk.bolt"),
        before_authorize=reject_malformed,
    )

    @app.middleware
    def listener_context(body: dict[str, Any], context: BoltContext,
                         next: Callable[[], Any]) -> Any:  # noqa: A002 - Bolt's name
        # A redelivery of an event whose effect is stored stops here. The id itself is recorded by
        # the service that stores the effect, in the same transaction (queries.first_seen), so a
        # delivery whose work failed is never marked seen and its redelivery is processed.
        event_id = event_id_of(body)
        if event_id:
            with read_scope(deps.engine) as session:
                if queries.seen(session, event_id):
                    log.info("duplicate delivery of %s ignored", event_id)
                    return BoltResponse(status=200, body="")
        # Listeners declare `deps` as a parameter. Bolt gives each request a new stock WebClient, which
        # opens a connection (a TLS handshake) per call; listeners get askdesk's `client` instead: the
        # same token, base URL and retry handlers, over pooled keep-alive connections.
        context["deps"], context["client"] = deps, deps.client
        return next()

    @app.error
    def error_funnel(error: Exception, body: dict[str, Any], logger: logging.Logger) -> BoltResponse | None:
        handle_error(error, body, deps.client)
        # Database down before the ack (e.g. recording an event id): 503, so Slack delivers it again.
        return BoltResponse(status=503, body="") if is_db_down(error) else None

    register_all(app)
    return app


def boot(settings: Settings, engine: Engine, *, socket_mode: bool = False) -> tuple[Deps, App, Clock]:
    """Build deps, app and clock on an open database (`bot.runtime.database.open_database`), ready to serve."""
    deps = build_deps(settings, engine)
    app = create_app(deps, socket_mode=socket_mode)
    clock = Clock(deps)
    warn_if_no_cjk_font()  # the one warning about chart fonts (not one per missing glyph)
    settle_heap()  # everything built so far lives as long as the process
    return deps, app, clock


def drain(deps: Deps, app: App, clock: Clock) -> None:
    """Stop taking scheduled work, finish in-flight listener work and jobs, close the database."""
    clock.stop(wait=True)
    app.listener_runner.listener_executor.shutdown(wait=True)
    deps.outbox.stop()
    deps.engine.dispose()
