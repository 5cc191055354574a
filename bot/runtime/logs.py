"""Logging setup with a filter that keeps tokens and secrets out of every log line."""

from __future__ import annotations

import logging
import re

_SECRET_RE = re.compile(r"(xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|(?<=//)[^:/@\s]+:[^@\s]+(?=@))")


def redact(text: str, extra: tuple[str, ...] = ()) -> str:
    text = _SECRET_RE.sub("***", text)
    for secret in extra:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


_TRACEBACKS = logging.Formatter()


class RedactingFilter(logging.Filter):
    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # A traceback quotes exception messages, which may carry a token or a URL with a password.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def setup_logging(level: str, secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # "skipped: maximum number of running instances reached" only means a tick outlasted the interval
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    quiet = max(logging.WARNING, root.level)
    for noisy in ("apscheduler", "waitress.queue", "slack_sdk.web.base_client", "slack_bolt"):
        logging.getLogger(noisy).setLevel(quiet)
    # Alembic's "Context impl SQLiteImpl" / "Running upgrade ..." lines only with LOG_LEVEL=DEBUG
    logging.getLogger("alembic").setLevel(logging.INFO if root.level <= logging.DEBUG else quiet)
