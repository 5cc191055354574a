"""Keep-alive HTTP for the Slack Web API, on urllib3's connection pools.

slack_sdk's `WebClient` opens a new connection (against Slack, a new TLS session) for every call.
`KeepAliveWebClient` overrides its public `api_call`, which every Web API method goes through, and
sends the same request (form or JSON body, bearer token, User-Agent, the client's timeout and SSL
context) over urllib3's pooled keep-alive connections. Callers see what `WebClient` gives them: a
validated `SlackResponse` (`SlackApiError` for `ok: false` or an error status), the client's
`retry_handlers` run through their public interface (`can_retry` / `prepare_for_next_attempt`),
and network failures as the builtin exceptions urllib raises (`ConnectionRefusedError`,
`RemoteDisconnected`, `TimeoutError`, ...), which connection-error handlers match.

urllib3 checks an idle connection with poll() before reusing it (no select() limit on descriptor
numbers) and reconnects when the server has closed it. Calls with files or Basic auth, and clients
behind a proxy, take `WebClient`'s own path (`super().api_call`). No private name of slack_sdk is used.
"""

from __future__ import annotations

import json as jsonlib
import os
from typing import Any
from urllib.parse import urlencode, urljoin

import urllib3
from slack_sdk import WebClient
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.web import SlackResponse

MAX_IDLE_PER_HOST = 64  # Bolt's listener threads may each hold one; more are closed after use
POOL = urllib3.PoolManager(maxsize=MAX_IDLE_PER_HOST)
_inherited: list[urllib3.PoolManager] = []


def _empty_pool_after_fork() -> None:
    """A forked worker never shares its parent's sockets (two processes would interleave on one
    stream). The parent's pool is kept referenced but unused: closing it could wait forever on a lock
    another thread held at the fork."""
    global POOL
    _inherited.append(POOL)
    POOL = urllib3.PoolManager(maxsize=MAX_IDLE_PER_HOST)


os.register_at_fork(after_in_child=_empty_pool_after_fork)


class KeepAliveWebClient(WebClient):
    """A `WebClient` whose calls travel over pooled keep-alive connections."""

    def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict | None = None,
                 data: dict | None = None, params: dict | None = None, json: dict | None = None,
                 headers: dict | None = None, auth: dict | None = None) -> SlackResponse:
        if files or auth or self.proxy:
            return super().api_call(api_method, http_verb=http_verb, files=files, data=data, params=params,
                                    json=json, headers=headers, auth=auth)
        url = urljoin(self.base_url, api_method.lstrip("/"))
        as_form = json is None
        given = {**(params or {}), **(data or {})} if as_form else json
        fields = {**self.default_params, **{k: v for k, v in given.items() if v is not None}}  # default: team_id
        token = fields.pop("token", None) or self.token
        if as_form:  # Slack reads booleans in a form as 1/0
            body = urlencode({k: int(v) if isinstance(v, bool) else v for k, v in fields.items()})
            content_type = "application/x-www-form-urlencoded"
        else:
            body, content_type = jsonlib.dumps(fields), "application/json;charset=utf-8"
        request_headers = {"Content-Type": content_type, **self.headers, **(headers or {})}
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        request = HttpRequest(method="POST", url=url, headers=request_headers, body_params=fields, data=body.encode())
        raw, content = _send(self, request, request_headers)
        # what SlackResponse needs to fetch the next page of a cursor-paginated answer
        req_args = {"headers": request_headers, "params": fields if as_form else None,
                    "json": None if as_form else fields, "data": None, "files": None}
        return SlackResponse(client=self, http_verb="POST", api_url=url, req_args=req_args, data=content,
                             headers=dict(raw.headers), status_code=raw.status).validate()


def _send(client: WebClient, request: HttpRequest, headers: dict[str, str]) -> tuple[urllib3.BaseHTTPResponse, Any]:
    """POST over the pool, again as long as one of the client's retry handlers asks for it: the last
    answer and its content, or the last error raised."""
    target = urllib3.util.parse_url(request.url).request_uri  # path and query
    state = RetryState()
    for _ in range(100):  # a bound, as slack_sdk keeps one, should a handler never count its attempts
        state.next_attempt_requested = False
        raw = response = error = None
        try:
            pool = POOL.connection_from_url(request.url, pool_kwargs={"ssl_context": client.ssl})
            raw = pool.urlopen("POST", target, body=request.data, headers=headers, timeout=client.timeout,
                               retries=False, redirect=False)
            content = _content(raw)
            response = HttpResponse(status_code=raw.status, headers=dict(raw.headers), data=raw.data,
                                    body=content if isinstance(content, dict) else None)
        except urllib3.exceptions.HTTPError as exc:
            error = _as_builtin(exc)
        for handler in client.retry_handlers:
            if handler.can_retry(state=state, request=request, response=response, error=error):
                handler.prepare_for_next_attempt(state=state, request=request, response=response, error=error)
                break
        if not state.next_attempt_requested:
            break
    if raw is None:
        raise error  # type: ignore[misc]
    return raw, content


def _content(raw: urllib3.BaseHTTPResponse) -> dict[str, Any] | bytes:
    """The parsed JSON answer (bytes for admin.analytics.getFile's gzip file)."""
    if raw.headers.get("Content-Type", "").startswith("application/gzip"):
        return raw.data
    try:
        content = jsonlib.loads(raw.data)
    except ValueError:
        content = None
    if isinstance(content, dict):
        return content
    return {"ok": False, "error": f"Received a response in a non-JSON format: {raw.data[:100]!r}"}


def _as_builtin(exc: urllib3.exceptions.HTTPError) -> OSError:
    """The builtin error urllib3 wrapped, which urllib (so the stock WebClient) raises itself: e.g.
    ConnectionRefusedError, TimeoutError, RemoteDisconnected (a ConnectionResetError), an SSL error."""
    for inner in (exc.__cause__, *exc.args, exc.__context__):
        if isinstance(inner, OSError):
            return inner
    error = TimeoutError(str(exc)) if isinstance(exc, urllib3.exceptions.TimeoutError) else OSError(str(exc))
    error.__cause__ = exc
    return error
