"""Sealed modal `private_metadata`: what askdesk puts into a modal comes back from Slack with the
submission, and nothing that comes back may be trusted as it is.

A sealed value is `<base64url(JSON)>.<tag>`, the tag an HMAC-SHA256 (first 128 bits, hex) of the body
under a key derived from the signing secret (Socket Mode: from the app token). A value whose tag does not
match — edited, truncated, forged, or sealed under a secret that has since been rotated — is refused:
`unseal` returns None and logs it, and the caller changes nothing. Modals that only need to remember a
row carry its id instead and look everything else up (the transfer and survey modals do that).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
from typing import Any

from bot.config import Settings

log = logging.getLogger(__name__)
PURPOSE = b"askdesk private_metadata v1"
TAG_CHARS = 32
_PROCESS_KEY = secrets.token_bytes(32)  # no secret configured at all (e.g. a CLI): valid in this process


def key_for(settings: Settings) -> bytes:
    """The sealing key: HMAC(secret, PURPOSE), never the secret itself."""
    secret = settings.signing_secret or settings.app_token
    if not secret:
        return _PROCESS_KEY
    return hmac.new(secret.encode("utf-8"), PURPOSE, hashlib.sha256).digest()


def _tag(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("utf-8", "replace"), hashlib.sha256).hexdigest()[:TAG_CHARS]


def seal(key: bytes, payload: dict[str, Any]) -> str:
    data = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8")
    body = base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
    return f"{body}.{_tag(key, body)}"


def unseal(key: bytes, raw: object, *, user: str | None = None) -> dict[str, Any] | None:
    """The payload of a value `seal` produced under `key`, or None (logged) for anything else."""
    text = raw if isinstance(raw, str) else ""
    body, _, tag = text.rpartition(".")
    if not body or not hmac.compare_digest(tag.encode("utf-8", "replace"), _tag(key, body).encode("ascii")):
        log.warning("refused modal private_metadata that askdesk did not seal (user %s, %d chars)",
                    user or "?", len(text))
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):  # cannot happen for a value we sealed
        log.warning("refused unreadable sealed private_metadata (user %s)", user or "?")
        return None
    return payload if isinstance(payload, dict) else None
