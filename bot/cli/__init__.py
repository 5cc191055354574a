"""The `askdesk` command line."""

from bot.config import Settings, load_settings
from bot.runtime.logs import setup_logging


def command_settings(*, require_signing_secret: bool = False) -> Settings:
    """The settings a command runs with, logging set up (secrets redacted from every log line)."""
    settings = load_settings(require_signing_secret=require_signing_secret)
    setup_logging(settings.log_level, (settings.bot_token, settings.signing_secret, settings.app_token))
    return settings
